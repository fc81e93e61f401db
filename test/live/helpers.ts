/**
 * Shared by the live-update tests: a store served over real HTTP (on any
 * host of test/http/hosts.ts), writes through fetch, the reference history
 * of the document built from raw `change` events, and a client's copy
 * rebuilt from its events.
 */
import http from 'node:http';
import { once } from 'node:events';
import { jsonStore, applyLiveEvent, type JsonStore, type JsonStoreOptions, type JsonValue } from '../../src/index.js';
import { applyOperations } from '../../src/document/apply.js';
import type { Host } from '../http/hosts.js';
import type { SseClient } from '../support/sse-client.js';

export interface LiveServer {
  /** Where the store is mounted, e.g. http://127.0.0.1:1234/store */
  url: string;
  port: number;
  store: JsonStore;
  server: http.Server;
  write(method: string, path: string, body?: unknown, type?: string): Promise<{ status: number; text: string }>;
  close(): Promise<void>;
}

const open: LiveServer[] = [];

export async function serveLive(options: JsonStoreOptions = {}, host?: Host, port = 0): Promise<LiveServer> {
  const store = jsonStore(options);
  const listener = host === undefined ? (store as unknown as http.RequestListener) : host.app(store as never);
  const server = http.createServer(listener);
  server.listen(port, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address() as { port: number };
  const base = `http://127.0.0.1:${address.port}${host?.base ?? ''}`;
  const served: LiveServer = {
    url: base,
    port: address.port,
    store,
    server,
    async write(method, path, body, type = 'application/json') {
      const response = await fetch(base + path, {
        method,
        headers: body === undefined ? {} : { 'content-type': type },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      return { status: response.status, text: await response.text() };
    },
    async close() {
      const index = open.indexOf(served);
      if (index !== -1) open.splice(index, 1);
      await store.close().catch(() => {});
      server.closeAllConnections();
      server.close();
    },
  };
  open.push(served);
  return served;
}

export async function closeLiveServers(): Promise<void> {
  for (const served of [...open]) await served.close();
}

/** The document at every revision, from the store's own `change` events (independent of the live code). */
export class ReferenceHistory {
  private readonly state: { root: JsonValue };
  readonly at = new Map<number, string>();

  constructor(store: JsonStore, root: JsonValue, revision: number) {
    this.state = { root: structuredClone(root) };
    this.at.set(revision, JSON.stringify(root));
    store.on('change', (event) => {
      applyOperations(this.state, event.ops);
      this.at.set(event.revision, JSON.stringify(this.state.root));
    });
  }

  valueAt(revision: number, path: string[]): JsonValue | null {
    const text = this.at.get(revision);
    if (text === undefined) throw new Error(`no reference for revision ${revision}`);
    let node: JsonValue | undefined = JSON.parse(text) as JsonValue;
    for (const segment of path) {
      node = node !== null && typeof node === 'object' ? (node as Record<string, JsonValue>)[segment] : undefined;
      if (node === undefined) return null;
    }
    return node;
  }
}

/**
 * Replays a client's events onto `start` and checks after each revision's
 * events that the copy equals `expected(revision)`; returns the copy and
 * the last id.
 */
export function replayClient(
  client: SseClient,
  start: JsonValue | null,
  check?: (revision: number, value: JsonValue | null) => void,
  from = 0,
): { value: JsonValue | null; id: number | undefined } {
  let value = start;
  const messages = client.messages.slice(from).filter((m) => m.event === 'put' || m.event === 'patch');
  for (let i = 0; i < messages.length; i++) {
    const message = messages[i]!;
    value = applyLiveEvent(value, { event: message.event as 'put' | 'patch', path: message.path as string, data: message.data as JsonValue });
    const next = messages[i + 1];
    // Several events of one revision are checked after the last of them.
    if (check && (next === undefined || next.id !== message.id)) check(Number(message.id), structuredClone(value));
  }
  const last = messages[messages.length - 1];
  return { value, id: last === undefined ? undefined : Number(last.id) };
}
