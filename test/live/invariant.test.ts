/**
 * The invariant of the protocol: a client that applies the events in order
 * to the first value holds exactly what GET returns at that revision. Random
 * writes of every method (PUT, POST, DELETE, merge patch, JSON Patch with
 * every operation, nulls included), several in flight at once, with streams
 * at the root and at paths above, at and below the writes.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { fileStorage, memoryStorage, redisStorage, type JsonValue, type StorageAdapter } from '../../src/index.js';
import { describeRedis } from '../redis/helpers.js';
import { randomSource } from '../support/random.js';
import { SseClient } from '../support/sse-client.js';
import { eventually } from '../support/wait.js';
import { closeLiveServers, ReferenceHistory, replayClient, serveLive } from './helpers.js';

const folders: string[] = [];
afterAll(async () => {
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});
afterEach(closeLiveServers);

const keys = ['a', 'b', 'list', '0', '1', 'x'];
const subscribed = ['/', '/a', '/list', '/list/0', '/list/1', '/a/b', '/b/x', '/a/list/0', '/nothing'];

function writer(seed: number) {
  const random = randomSource(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
  const value = (depth: number): JsonValue => {
    const roll = random();
    if (depth > 2 || roll < 0.35) return pick([null, 0, 1, 'x', true, ''] as JsonValue[]);
    if (roll < 0.65) return Array.from({ length: Math.floor(random() * 3) }, () => value(depth + 1));
    const object: Record<string, JsonValue> = {};
    for (let i = Math.floor(random() * 3); i > 0; i--) object[pick(keys)] = value(depth + 1);
    return object;
  };
  const path = (): string => '/' + Array.from({ length: Math.floor(random() * 3) }, () => pick(keys)).join('/');
  const pointer = (): string => (random() < 0.1 ? '' : path().replace(/^\/$/, ''));
  return (): { method: string; path: string; body?: unknown; type?: string } => {
    const roll = random();
    if (roll < 0.25) return { method: 'PUT', path: path(), body: value(0) };
    if (roll < 0.4) return { method: 'POST', path: pick(['/list', '/a/list', '/a', '/']), body: value(1) };
    if (roll < 0.5) return { method: 'DELETE', path: path() };
    if (roll < 0.7) return { method: 'PATCH', path: path(), body: value(0), type: 'application/merge-patch+json' };
    const ops = Array.from({ length: 1 + Math.floor(random() * 3) }, () => {
      const op = pick(['add', 'remove', 'replace', 'move', 'copy'] as const);
      const target = random() < 0.3 ? pick(['/list/0', '/list/1', '/list/-', '/a/list/0', '/a/list/-']) : pointer();
      if (op === 'remove') return { op, path: target };
      if (op === 'move' || op === 'copy') return { op, from: pointer(), path: target };
      return { op, path: target, value: value(1) };
    });
    return { method: 'PATCH', path: '/', body: ops, type: 'application/json-patch+json' };
  };
}

async function invariant(storage: StorageAdapter, seed: number): Promise<void> {
  const initial = { a: { b: 1, list: [1, 2] }, b: { x: null }, list: ['p', 'q', 'r'] };
  const live = await serveLive({ storage, initial });
  await live.store.ready();
  const reference = new ReferenceHistory(live.store, (await live.store.get()) as JsonValue, live.store.store.revision);
  const clients = await Promise.all(subscribed.map((path) => SseClient.open(live.url + path)));
  await Promise.all(clients.map((client) => client.waitForMessages(1)));
  const next = writer(seed);
  let applied = 0;
  for (let round = 0; round < 40; round++) {
    // Several writes in flight at once: file storage commits them as a group.
    const results = await Promise.all(Array.from({ length: 5 }, () => next()).map((w) => live.write(w.method, w.path, w.body, w.type)));
    applied += results.filter((r) => r.status < 300).length;
  }
  expect(applied).toBeGreaterThan(50);
  const revision = live.store.store.revision;
  for (const [index, client] of clients.entries()) {
    const path = (subscribed[index] as string).split('/').filter(Boolean);
    // Every revision this client saw: its copy equals the reference at that revision.
    await eventually(`${subscribed[index]} caught up`, () => {
      const { value } = replayClient(client, null);
      return JSON.stringify(value) === JSON.stringify(reference.valueAt(revision, path));
    });
    replayClient(client, null, (at, value) => {
      expect({ at, path: subscribed[index], value }).toEqual({ at, path: subscribed[index], value: reference.valueAt(at, path) });
    });
    expect(JSON.stringify(replayClient(client, null).value)).toBe(JSON.stringify((await live.store.get(path)) ?? null));
  }
}

describe('the invariant: events applied in order give what GET gives at each revision', () => {
  for (const seed of [1, 2, 3]) {
    test(`memory storage, seed ${seed}`, () => invariant(memoryStorage(), seed), 60_000);
  }
  test('file storage (writes committed in groups)', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'jsonstore-live-'));
    folders.push(folder);
    await invariant(fileStorage(join(folder, 'store.json')), 4);
  }, 60_000);
});

describeRedis('the invariant on Redis storage', (env) => {
  test('Redis storage (group commit: events from the hub\'s copy)', async () => {
    await invariant(redisStorage({ client: await env.client(), key: env.key('live-invariant') }), 5);
  }, 60_000);
});
