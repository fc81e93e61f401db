/**
 * Test helpers for the gateway bridges: both Express majors, a real listening
 * server, and a raw HTTP/1.1 client that shows exactly what went over the
 * wire (repeated header lines, missing bodies, cut connections).
 */
import { chmodSync, existsSync, readFileSync } from 'node:fs';
import { Agent, createServer, get, request as httpRequest, type RequestListener, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import express from 'express';
import { afterEach } from 'vitest';
import type { GatewayMiddleware } from '../../src/gateway/index.js';
import { eventually } from '../support/wait.js';

export type ExpressFactory = typeof express;

// `express4` is the npm alias of express@4 kept for these tests. Loaded by
// require so no type declaration is needed; its API is, for these tests, the
// one @types/express describes.
const express4 = createRequire(import.meta.url)('express4') as ExpressFactory;

/** Both supported Express majors, for `describe.each`. */
export const expressVersions: ReadonlyArray<readonly [string, ExpressFactory]> = [
  ['Express 5', express],
  ['Express 4', express4],
];

/** A logger that keeps lines for assertions (and keeps test output quiet). */
export function captureLogger(): { lines: string[]; logger: (line: string) => void } {
  const lines: string[] = [];
  return { lines, logger: (line: string) => void lines.push(line) };
}

export interface Listening {
  server: Server;
  port: number;
  url: string;
  close(): Promise<void>;
}

/** Serves `handler` (an Express app or a plain listener) on an ephemeral port of 127.0.0.1. */
export async function listen(handler: RequestListener): Promise<Listening> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    server,
    port,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface RawResponse {
  status: number;
  reason: string;
  /** Header lines in order, names as sent. */
  headerLines: Array<[string, string]>;
  body: Buffer;
  /** False when the connection closed before the framing (Content-Length or final chunk) said the body was complete. */
  complete: boolean;
  raw: Buffer;
}

export function header(response: RawResponse, name: string): string[] {
  return response.headerLines.filter(([key]) => key.toLowerCase() === name.toLowerCase()).map(([, value]) => value);
}

export function parseRaw(raw: Buffer, method: string): RawResponse {
  const end = raw.indexOf('\r\n\r\n');
  if (end === -1) return { status: 0, reason: '', headerLines: [], body: Buffer.alloc(0), complete: false, raw };
  const [statusLine = '', ...lines] = raw.toString('latin1', 0, end).split('\r\n');
  const match = /^HTTP\/1\.[01] (\d{3}) ?(.*)$/.exec(statusLine);
  const headerLines = lines.map((line): [string, string] => {
    const colon = line.indexOf(':');
    return [line.slice(0, colon), line.slice(colon + 1).trim()];
  });
  const status = Number(match?.[1] ?? 0);
  const rest = raw.subarray(end + 4);
  const lookup = (name: string): string | undefined => headerLines.find(([key]) => key.toLowerCase() === name)?.[1];
  if (method === 'HEAD' || status === 204 || status === 304) {
    return { status, reason: match?.[2] ?? '', headerLines, body: rest, complete: true, raw };
  }
  if (lookup('transfer-encoding')?.toLowerCase() === 'chunked') {
    const parts: Buffer[] = [];
    let offset = 0;
    let complete = false;
    for (;;) {
      const lineEnd = rest.indexOf('\r\n', offset);
      if (lineEnd === -1) break;
      const size = Number.parseInt(rest.toString('latin1', offset, lineEnd), 16);
      if (Number.isNaN(size)) break;
      if (size === 0) {
        complete = rest.indexOf('\r\n', lineEnd + 2) !== -1;
        break;
      }
      const start = lineEnd + 2;
      if (start + size > rest.length) {
        parts.push(rest.subarray(start));
        break;
      }
      parts.push(rest.subarray(start, start + size));
      offset = start + size + 2;
    }
    return { status, reason: match?.[2] ?? '', headerLines, body: Buffer.concat(parts), complete, raw };
  }
  const length = lookup('content-length');
  if (length !== undefined) {
    return { status, reason: match?.[2] ?? '', headerLines, body: rest, complete: rest.length === Number(length), raw };
  }
  return { status, reason: match?.[2] ?? '', headerLines, body: rest, complete: true, raw };
}

/**
 * Sends one request as raw bytes (`Connection: close` is added) and reads
 * until the server closes. `head` is the request line and header lines,
 * without the final blank line.
 */
export function rawRequest(port: number, head: string, body: string | Buffer = ''): Promise<RawResponse> {
  const method = head.split(' ')[0] ?? 'GET';
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('connect', () => {
      socket.write(`${head.replace(/\r?\n/g, '\r\n')}\r\nConnection: close\r\n\r\n`);
      if (body.length > 0) socket.write(body);
    });
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', (error: NodeJS.ErrnoException) => {
      // A reset is how a cut connection may show up; the parse below says what arrived.
      if (error.code !== 'ECONNRESET') reject(error);
    });
    socket.on('close', () => resolve(parseRaw(Buffer.concat(chunks), method)));
  });
}

/** Resolves after `turns` rounds of the event loop, to let pending callbacks run. */
export async function settle(turns = 5): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((resolve) => setImmediate(resolve));
}

/** Polls `check` until it returns true (or fails the test after `limitMs`, by default the shared generous guard). */
export async function waitFor(check: () => boolean, what: string, limitMs?: number): Promise<void> {
  await eventually(what, check, limitMs);
}

/**
 * Sends `GET path` and never reads the answer, so the server's socket
 * buffers fill up and a bridge that follows backpressure stops asking the app
 * for more. Destroy the socket to leave.
 */
export function clientThatDoesNotRead(port: number, path = '/app'): Socket {
  const socket = connect(port, '127.0.0.1');
  socket.on('error', () => undefined);
  socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  socket.pause();
  return socket;
}

/** Waits until `count()` has grown and then stays the same for `quietMs`: the app is being held back. */
export async function waitForStall(count: () => number, what: string, quietMs = 300): Promise<void> {
  // Unchanged across two polls could be a pause of this process (a GC) or of the
  // producer's, not backpressure: it must hold still for a while.
  let last = -1;
  let changedAt = performance.now();
  await waitFor(() => {
    const current = count();
    if (current !== last) {
      last = current;
      changedAt = performance.now();
      return false;
    }
    return current > 0 && performance.now() - changedAt >= quietMs;
  }, what);
}

/** Requests `path` and disconnects as soon as the first bytes of the body arrive. */
export function leaveAfterFirstChunk(port: number, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = get({ port, host: '127.0.0.1', path }, (res) => {
      res.once('data', () => {
        req.destroy();
        resolve();
      });
    });
    req.on('error', reject); // After the disconnect resolved, a late error changes nothing.
  });
}

/** A promise with its resolve function, for apps that must wait on the test. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((res) => {
    resolve = res;
  });
  return { promise, resolve };
}

const fixtures = fileURLToPath(new URL('./fixtures', import.meta.url));

/** Path of a CGI fixture, made executable (in case a checkout lost the mode bit). */
export function fixture(name: string): string {
  const path = join(fixtures, name);
  chmodSync(path, 0o755);
  return path;
}

/** Whether a process is still running; a zombie (exited, not yet reaped by its parent) counts as gone. */
export function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = `/proc/${pid}/stat`;
  if (existsSync(stat)) {
    const state = readFileSync(stat, 'utf8').replace(/^.*\) /s, '').charAt(0);
    if (state === 'Z' || state === 'X') return false;
  }
  return true;
}

/** Whether `pid` is our zombie: exited but never reaped. */
export function isZombie(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  if (!existsSync(stat)) return false;
  return readFileSync(stat, 'utf8').replace(/^.*\) /s, '').charAt(0) === 'Z';
}

/**
 * Mounts a bridge at `/app` in a fresh app of one Express major: `mount` gives
 * the app (for supertest), `serve` also listens on a free port. Servers are
 * closed after each test; the bridge's log lines are kept for assertions.
 */
export function bridgeHarness<App, Options extends { logger?: unknown }>(
  express: ExpressFactory,
  bridge: (app: App, options?: Options) => GatewayMiddleware,
) {
  let servers: Listening[] = [];
  afterEach(async () => {
    await Promise.all(servers.map((server) => server.close()));
    servers = [];
  });

  function mount(app: App, options: Options = {} as Options) {
    const log = captureLogger();
    const server = express();
    server.use('/app', bridge(app, { logger: log.logger, ...options }));
    return { server, lines: log.lines };
  }

  async function serve(app: App, options: Options = {} as Options) {
    const mounted = mount(app, options);
    const listening = await listen(mounted.server);
    servers.push(listening);
    return { ...listening, lines: mounted.lines };
  }

  return { mount, serve };
}

/**
 * POSTs `bodyBytes` to `postPath` (for an app that answers without reading
 * its input), then GETs `getPath`, both through a keep-alive agent with one
 * socket, so the GET can only go out once the POST's connection is free again.
 * `whilePosting` runs once the POST is on its way (to hold the app until the
 * upload backs up). Resolves with both statuses and how many sockets the agent opened; fails if
 * the GET is not answered within the shared generous guard.
 */
export async function postUnreadThenGet(
  port: number,
  postPath: string,
  getPath: string,
  bodyBytes = 8 * 1024 * 1024,
  whilePosting: () => Promise<void> = async () => undefined,
): Promise<{ postStatus: number; getStatus: number; sockets: number }> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  let sockets = 0;
  const send = (method: string, path: string, body?: Buffer): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port, method, path, agent }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('socket', (socket) => {
        if (!(socket as Socket & { counted?: boolean }).counted) {
          (socket as Socket & { counted?: boolean }).counted = true;
          sockets += 1;
        }
      });
      req.on('error', reject);
      req.end(body);
    });
  try {
    const posted = send('POST', postPath, Buffer.alloc(bodyBytes, 'x'));
    await whilePosting();
    const postStatus = await posted;
    let getStatus: number | undefined;
    void send('GET', getPath).then((status) => (getStatus = status));
    await eventually('the GET after an unread POST body to be answered on the same connection', () => getStatus, 15_000);
    return { postStatus, getStatus: getStatus as number, sockets };
  } finally {
    agent.destroy();
  }
}
