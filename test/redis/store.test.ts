/**
 * Several stores on one Redis key, in one process (each with its own client,
 * as separate processes would have): strong and local reads, stale writes
 * retried, remote change events, 503 instead of an overwrite.
 */
import { expect, test } from 'vitest';
import { jsonStore, type JsonStore } from '../../src/json-store.js';
import type { JsonStoreOptions } from '../../src/options.js';
import type { ChangeEvent } from '../../src/document-store.js';
import { redisStorage, type RedisStorageOptions } from '../../src/storage/redis.js';
import { StorageError } from '../../src/errors.js';
import { describeRedis, eventually, type RedisTestEnv } from './helpers.js';

interface OpenOptions extends Omit<JsonStoreOptions, 'storage'> {
  redis?: Partial<RedisStorageOptions>;
}

async function openStore(env: RedisTestEnv, key: string, options: OpenOptions = {}): Promise<JsonStore> {
  const { redis, ...storeOptions } = options;
  const client = await env.client();
  const store = jsonStore({ ...storeOptions, storage: redisStorage({ client, key, ...redis }) });
  store.on('error', () => {});
  env.defer(() => store.close());
  await store.ready();
  return store;
}

describeRedis('jsonStore on redisStorage: several stores, one document', (env) => {
  test('a write through one store is read back at once through another (strong reads)', async () => {
    const key = env.key('strong');
    // Without following, only the revision check before the read can make it fresh.
    const a = await openStore(env, key, { initial: { n: 0 }, redis: { follow: false } });
    const b = await openStore(env, key, { initial: { n: 0 }, redis: { follow: false } });
    for (let i = 1; i <= 20; i++) {
      const writer = i % 2 === 0 ? a : b;
      const reader = i % 2 === 0 ? b : a;
      await writer.put('/n', i);
      expect(await reader.get('/n')).toBe(i);
    }
  });

  test('local reads catch up by following the log', async () => {
    const key = env.key('local');
    const a = await openStore(env, key, { initial: { list: [] } });
    const b = await openStore(env, key, { initial: { list: [] }, readConsistency: 'local' });
    await a.post('/list', 'x');
    await a.post('/list', 'y');
    const list = await eventually('b to follow', async () => {
      const value = (await b.get('/list')) as string[];
      return value.length === 2 ? value : undefined;
    });
    expect(list).toEqual(['x', 'y']);
  });

  test('changes from another store arrive as remote change events', async () => {
    const key = env.key('events');
    const a = await openStore(env, key, { initial: {} });
    const b = await openStore(env, key, { initial: {} });
    const seen: ChangeEvent[] = [];
    b.on('change', (event) => seen.push(structuredClone(event)));
    await a.put('/greeting', 'hello');
    await a.patch('/', { other: [1, 2] });
    await eventually('two events', () => (seen.length >= 2 ? true : undefined));
    expect(seen.every((event) => event.origin === 'remote')).toBe(true);
    expect(seen.map((event) => event.revision)).toEqual([1, 2]);
    // The starting document was stored (seeded) when the first store loaded: the first change carries only itself.
    expect(seen[0]?.ops).toEqual([{ op: 'add', path: '/greeting', value: 'hello' }]);
    expect(seen[1]?.ops).toEqual([{ op: 'add', path: '/other', value: [1, 2] }]);
  });

  test('a write made on a stale copy is retried on the fresh document, not overwritten', async () => {
    const key = env.key('stale');
    const a = await openStore(env, key, { initial: { a: 0, b: 0 }, readConsistency: 'local', redis: { follow: false } });
    const b = await openStore(env, key, { initial: { a: 0, b: 0 }, readConsistency: 'local', redis: { follow: false } });
    await a.put('/a', 1);
    await b.put('/b', 1); // b's copy does not have a's write; the engine catches up and retries
    await a.put('/a', 2);
    await b.patch('/', { b: 2 });
    const fresh = await openStore(env, key);
    expect(await fresh.get()).toEqual({ a: 2, b: 2 });
    expect(await b.get()).toEqual({ a: 2, b: 2 });
  });

  test('when retries run out the write gets 503 and nothing is overwritten', async () => {
    const key = env.key('retries');
    const a = await openStore(env, key, { initial: { v: 'initial' }, readConsistency: 'local', redis: { follow: false } });
    const b = await openStore(env, key, { initial: { v: 'initial' }, readConsistency: 'local', maxRetries: 0, redis: { follow: false } });
    await a.put('/v', 'from a');
    const refused = await b.put('/v', 'from b').then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(refused).toBeInstanceOf(StorageError);
    expect((refused as StorageError).status).toBe(503);
    const fresh = await openStore(env, key);
    expect(await fresh.get('/v')).toBe('from a');
  });

  test('concurrent increments through four stores lose nothing', async () => {
    const key = env.key('increments');
    const stores = await Promise.all([0, 1, 2, 3].map(() => openStore(env, key, { initial: { count: 0 } })));
    let succeeded = 0;
    await Promise.all(
      stores.map(async (store) => {
        for (let i = 0; i < 25; i++) {
          for (;;) {
            const current = (await store.get('/count')) as number;
            try {
              await store.patch('/count', [
                { op: 'test', path: '', value: current },
                { op: 'replace', path: '', value: current + 1 },
              ], { type: 'json-patch' });
              succeeded += 1;
              break;
            } catch (error) {
              if ((error as { status?: number }).status !== 409) throw error;
            }
          }
        }
      }),
    );
    expect(succeeded).toBe(100);
    for (const store of stores) expect(await store.get('/count')).toBe(100);
  });

  test('when the document is deleted from Redis, following stores notice and reload', async () => {
    const key = env.key('deleted');
    const a = await openStore(env, key, { initial: { v: 'initial' }, readConsistency: 'local' });
    for (let i = 1; i <= 5; i++) await a.put('/v', `old ${i}`);
    const client = await env.client();
    await client.del(Object.values(redisStorage({ client, key }).keys));
    // Another process starts the document afresh: revisions 1 and 2, below what `a` has seen.
    const b = await openStore(env, key, { initial: { v: 'new' } });
    await b.put('/v', 'new 1');
    await b.put('/w', 'new 2');
    const seen = await eventually('a to reload', async () => {
      const value = await a.get();
      return JSON.stringify(value) === JSON.stringify({ v: 'new 1', w: 'new 2' }) ? value : undefined;
    });
    expect(seen).toEqual({ v: 'new 1', w: 'new 2' });
    expect(a.store.revision).toBe(2);
  });

  test('a store opened later loads the document, whatever was compacted meanwhile', async () => {
    const key = env.key('late');
    const compaction = { minBytes: 0, ratio: 0.5, maxChanges: 7 };
    const a = await openStore(env, key, { initial: { items: [] }, redis: { compaction } });
    for (let i = 0; i < 50; i++) await a.post('/items', { i });
    const late = await openStore(env, key, { redis: { compaction } });
    expect(((await late.get('/items')) as unknown[]).length).toBe(50);
    expect(await late.get()).toEqual(await a.get());
    // And it keeps following after compactions it did not see.
    for (let i = 50; i < 80; i++) await a.post('/items', { i });
    expect(((await late.get('/items')) as unknown[]).length).toBe(80);
  });
});
