/**
 * The invariant the read caches rest on (src/document/value-cache.ts): after
 * any write, committed or rolled back, GET and ETag of the written path, of
 * each of its ancestors and of their members equal a fresh computation from
 * the document. Random writes of every method, through HTTP, on memory, file
 * and Redis storage; the paths are read before each write so their JSON is
 * cached, and read again while the write is in flight (reads then see the
 * uncommitted change, cache it, and must not keep it once it is undone).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import request from 'supertest';
import { afterEach, describe, expect, test } from 'vitest';
import { etagOf } from '../../src/document/etag.js';
import { fileStorage, jsonStore, memoryStorage, type JsonStore, type StorageAdapter } from '../../src/index.js';
import { redisStorage } from '../../src/storage/redis.js';
import type { JsonValue } from '../../src/document/json.js';
import type { Change } from '../../src/storage/types.js';
import { randomSource } from '../support/random.js';
import { eventually } from '../support/wait.js';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { describeRedis } from '../redis/helpers.js';

const steps = Number(process.env['CACHE_STEPS'] ?? 60);
const timeout = 120_000;

type Random = () => number;
const pick = <T>(random: Random, items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;

function randomScalar(random: Random): JsonValue {
  return pick(random, [null, true, false, Math.floor(random() * 100), 'x' + Math.floor(random() * 10), 'é"\\', ''] as JsonValue[]);
}

function randomValue(random: Random, depth: number): JsonValue {
  const r = random();
  if (depth <= 0 || r < 0.4) return randomScalar(random);
  const size = Math.floor(random() * 4);
  if (r < 0.7) return Array.from({ length: size }, () => randomValue(random, depth - 1));
  const object: Record<string, JsonValue> = {};
  for (let i = 0; i < size; i++) object[pick(random, ['a', 'b', 'c', 'd', '__proto__', 'x y'])] = randomValue(random, depth - 1);
  return object;
}

/** Every path in a value, the root first. */
function pathsOf(value: JsonValue, prefix: string[] = []): string[][] {
  const out = [prefix];
  if (Array.isArray(value)) value.forEach((child, i) => out.push(...pathsOf(child, [...prefix, String(i)])));
  else if (typeof value === 'object' && value !== null) for (const key of Object.keys(value)) out.push(...pathsOf(value[key] as JsonValue, [...prefix, key]));
  return out;
}

function valueAtPath(root: JsonValue, path: readonly string[]): JsonValue | undefined {
  let node: JsonValue | undefined = root;
  for (const segment of path) {
    if (typeof node !== 'object' || node === null) return undefined;
    node = Array.isArray(node) ? node[Number(segment)] : Object.prototype.hasOwnProperty.call(node, segment) ? node[segment] : undefined;
  }
  return node;
}

const url = (path: readonly string[]) => '/' + path.map(encodeURIComponent).join('/');
const pointer = (path: readonly string[]) => path.map((s) => '/' + s.replace(/~/g, '~0').replace(/\//g, '~1')).join('');

/** The paths whose answers a write at `path` may change, and their neighbours: ancestors, the path, the members of each. */
function around(root: JsonValue, path: readonly string[]): string[][] {
  const out: string[][] = [];
  for (let i = 0; i <= path.length; i++) {
    const at = path.slice(0, i);
    out.push(at);
    const value = valueAtPath(root, at);
    if (Array.isArray(value)) value.forEach((_, j) => out.push([...at, String(j)]));
    else if (typeof value === 'object' && value !== null) for (const key of Object.keys(value)) out.push([...at, key]);
  }
  return out;
}

/** A random write at an existing (or new) path; some are refused (409, 412, 404): those must change nothing either. */
function randomWrite(random: Random, root: JsonValue): { method: string; path: string[]; body?: JsonValue; type?: string; ifMatch?: string } {
  const paths = pathsOf(root);
  const path = pick(random, paths);
  const r = random();
  if (r < 0.2) return { method: 'PUT', path: random() < 0.3 ? [...path, 'n' + Math.floor(random() * 5)] : path, body: randomValue(random, 3) };
  if (r < 0.35) return { method: 'POST', path, body: randomValue(random, 2) };
  if (r < 0.5) return { method: 'PATCH', path, body: randomValue(random, 2), type: 'application/merge-patch+json' };
  if (r < 0.8) {
    const other = pick(random, paths);
    const op = pick(random, ['add', 'remove', 'replace', 'move', 'copy', 'test']);
    const ops: JsonValue[] = [];
    if (op === 'move' || op === 'copy') ops.push({ op, from: pointer(other), path: pointer(path) });
    else if (op === 'remove') ops.push({ op, path: pointer(path) });
    else ops.push({ op, path: pointer(path), value: randomValue(random, 2) });
    if (random() < 0.5) ops.push({ op: 'add', path: pointer([...pick(random, paths), 'm']), value: randomValue(random, 1) });
    return { method: 'PATCH', path: [], body: ops, type: 'application/json-patch+json' };
  }
  if (r < 0.9) return { method: 'DELETE', path };
  // A precondition that fails: nothing changes.
  return { method: 'PUT', path, body: 1, ifMatch: '"nope"' };
}

interface Holding extends StorageAdapter {
  /** Commits waiting for the test to let them go (refused or passed on to the inner adapter). */
  readonly held: Array<() => void>;
}

/** Wraps an adapter: each commit waits until the test releases it, and every `refuseEvery`-th is then refused. */
function refusing(inner: StorageAdapter, refuseEvery: number): Holding {
  let count = 0;
  const held: Array<() => void> = [];
  return {
    name: 'refusing',
    held,
    capabilities: inner.capabilities,
    load: () => inner.load(),
    async commit(change: Change) {
      count += 1;
      const refuse = count % refuseEvery === 0;
      await new Promise<void>((resolve) => held.push(resolve));
      if (refuse) throw new Error('refused by the test');
      await inner.commit(change);
    },
    close: () => inner.close?.(),
  };
}

async function check(store: JsonStore, paths: readonly string[][]): Promise<void> {
  const fresh = (await store.get()) as JsonValue;
  for (const path of paths) {
    const expected = valueAtPath(fresh, path);
    const response = await request(store).get(url(path));
    if (expected === undefined) {
      expect(response.status, `GET ${url(path)}`).toBe(404);
      continue;
    }
    expect(response.status, `GET ${url(path)}`).toBe(200);
    expect(response.text, `GET ${url(path)}`).toBe(JSON.stringify(expected));
    expect(response.headers['etag'], `ETag of ${url(path)}`).toBe(etagOf(expected));
  }
}

async function run(store: JsonStore, seed: number, holding?: Holding): Promise<void> {
  const random = randomSource(seed);
  let arrived = 0;
  const counted = (req: IncomingMessage, res: ServerResponse) => {
    arrived += 1;
    store(req, res);
  };
  for (let step = 0; step < steps; step++) {
    const before = (await store.get()) as JsonValue;
    const write = randomWrite(random, before);
    const watched = around(before, write.path);
    // Cached before the write…
    await Promise.all(watched.map((path) => request(store).get(url(path))));
    let call = request(store)[write.method.toLowerCase() as 'put'](url(write.path));
    if (write.type) call = call.set('Content-Type', write.type);
    if (write.ifMatch) call = call.set('If-Match', write.ifMatch);
    const written = write.body === undefined ? call : call.send(JSON.stringify(write.body)).type(write.type ?? 'application/json');
    // …and while it is in flight: with a holding adapter, read (and cached) while storage has not answered yet.
    let done = false;
    const response = written.then((r) => {
      done = true;
      return r;
    });
    let duringWrite: Array<PromiseLike<unknown>> = [];
    if (holding !== undefined) {
      await eventually('the write to reach storage or be answered', () => done || holding.held.length > 0);
      if (holding.held.length > 0) {
        const expected = arrived + watched.length;
        duringWrite = watched.map((path) => request(counted).get(url(path)).then((r) => r));
        await eventually('the reads to arrive', () => arrived >= expected);
        // The views run in the turn a request arrives.
        await new Promise((resolve) => setImmediate(resolve));
        for (const release of holding.held.splice(0)) release();
      }
    } else {
      duringWrite = watched.map((path) => request(store).get(url(path)).then((r) => r));
    }
    await Promise.all(duringWrite);
    await response;
    expect((await response).status, `step ${step}: ${write.method} ${url(write.path)} ${JSON.stringify(write.body)}`).toBeLessThan(600);
    const after = (await store.get()) as JsonValue;
    await check(store, [...watched, ...around(after, write.path)]);
  }
}

describe('cached JSON and ETags equal a fresh computation after random writes', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  }, timeout);

  const initialOf = (seed: number) => randomValue(randomSource(seed), 4) as JsonValue;

  test('memory storage (keeps the working document), initial never changed', async () => {
    const initial = wrap(initialOf(1));
    const copy = structuredClone(initial);
    const store = jsonStore({ initial });
    cleanups.push(() => store.close());
    await run(store, 11);
    expect(initial).toEqual(copy);
  }, timeout);

  test('memory storage wrapped, each commit held until the test lets go, every 5th refused: reads in flight see changes that are then undone', async () => {
    const initial = wrap(initialOf(2));
    const storage = refusing(memoryStorage(), 5);
    const store = jsonStore({ initial, storage });
    store.on('error', () => {});
    cleanups.push(() => store.close());
    await run(store, 12, storage);
  }, timeout);

  test('file storage, and a store reopened on the files agrees', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'jsonstore-cache-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const path = join(dir, 'doc.json');
    const store = jsonStore({ initial: wrap(initialOf(3)), storage: fileStorage(path, { fsync: 'never', compactMinSize: 256 }) });
    await run(store, 13);
    const last = await store.get();
    await store.close();
    const again = jsonStore({ storage: fileStorage(path) });
    cleanups.push(() => again.close());
    expect(await again.get()).toEqual(last);
  }, timeout);

  test('file storage, every 4th commit refused', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'jsonstore-cache-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const storage = refusing(fileStorage(join(dir, 'doc.json'), { fsync: 'never' }), 4);
    const store = jsonStore({ initial: wrap(initialOf(4)), storage });
    store.on('error', () => {});
    cleanups.push(() => store.close());
    await run(store, 14, storage);
  }, timeout);
});

describeRedis('cached JSON and ETags on Redis storage', (env) => {
  test('random writes through one store, checked; a second store follows to the same bytes', async () => {
    const client = await env.client();
    const key = env.key('cache');
    const store = jsonStore({ initial: wrap(randomValue(randomSource(5), 4) as JsonValue), storage: redisStorage({ client, key }) });
    env.defer(() => store.close());
    await run(store, 15);
    const follower = jsonStore({ storage: redisStorage({ client: await env.client(), key }) });
    env.defer(() => follower.close());
    expect(await follower.get()).toEqual(await store.get());
  }, timeout);
});

function wrap(initial: JsonValue): JsonValue {
  return { root: initial, list: [initial, { more: initial }] } as JsonValue;
}
