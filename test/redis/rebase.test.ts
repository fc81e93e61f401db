/**
 * Changes that touch different paths commit without a retry: a store whose
 * copy is behind has its change appended after the ones it missed, when none
 * of those touches what its change touches, and replays them in revision
 * order. Overlapping changes, arrays, idempotency keys and a compacted log
 * still go through the refusal and retry. And the turn: a process whose
 * change was refused is served before anyone else's next change.
 *
 * Stores here do not follow each other (`follow: false`) and read locally,
 * so a store's copy stays behind until it writes; `maxRetries: 0` turns any
 * refusal into a 503, which is how a test sees that no retry was needed.
 */
import { createHash } from 'node:crypto';
import { expect, test } from 'vitest';
import { commitBatchScript, commitScript, type LuaScript } from '../../src/storage/redis-scripts.js';
import { jsonStore, type JsonStore } from '../../src/json-store.js';
import type { JsonStoreOptions } from '../../src/options.js';
import type { ChangeEvent } from '../../src/document-store.js';
import { redisStorage, type RedisStorage, type RedisStorageOptions } from '../../src/storage/redis.js';
import { JsonStoreError, RevisionConflictError, StorageError } from '../../src/errors.js';
import { describeRedis, eventually, type RedisTestEnv, type TestRedisClient } from './helpers.js';

interface OpenOptions extends Omit<JsonStoreOptions, 'storage'> {
  redis?: Partial<RedisStorageOptions>;
}

async function openStore(env: RedisTestEnv, key: string, options: OpenOptions = {}): Promise<{ store: JsonStore; storage: RedisStorage; events: ChangeEvent[] }> {
  const { redis, ...storeOptions } = options;
  const client = await env.client();
  const storage = redisStorage({ client, key, follow: false, ...redis });
  const store = jsonStore({ readConsistency: 'local', ...storeOptions, storage });
  store.on('error', () => {});
  const events: ChangeEvent[] = [];
  store.on('change', (event: ChangeEvent) => events.push(event));
  env.defer(() => store.close());
  await store.ready();
  return { store, storage, events };
}

/**
 * Two stores on a fresh key, both at revision 1. The second never retries,
 * and reads strongly: it catches up when it reads, and only then.
 */
async function twoStores(env: RedisTestEnv, label: string, initial: unknown) {
  const key = env.key(label);
  const a = await openStore(env, key, { initial: initial as never });
  const b = await openStore(env, key, { initial: initial as never, maxRetries: 0, readConsistency: 'strong' });
  // The first change carries the starting document (it touches everything): both start after it.
  await a.store.put('/started', true);
  await b.store.get();
  expect(b.store.store.revision).toBe(1);
  return { key, a, b };
}

async function refusal(write: Promise<unknown>): Promise<unknown> {
  return write.then(
    () => undefined,
    (error: unknown) => error,
  );
}

/**
 * A client that notes which scripts (EVALSHA/EVAL) were answered, and whose script calls
 * can be held back: after `holdAfterNext()`, every script call but the next one waits until `release()`.
 */
function scriptGate(client: TestRedisClient): { client: never; answered(script: LuaScript): boolean; held(): number; holdAfterNext(): void; release(): void } {
  const answered = new Set<string>();
  let passes = Number.POSITIVE_INFINITY;
  let waiting: Array<() => void> = [];
  const isScript = (args: string[]) => args[0] === 'EVALSHA' || args[0] === 'EVAL';
  const wrapper = {
    get isOpen() {
      return client.isOpen;
    },
    get isReady() {
      return client.isReady;
    },
    duplicate: () => client.duplicate(),
    on: client.on.bind(client),
    removeListener: client.removeListener.bind(client),
    async sendCommand(args: string[], options?: unknown): Promise<unknown> {
      if (isScript(args) && passes-- <= 0) await new Promise<void>((resolve) => waiting.push(resolve));
      const reply = await client.sendCommand(args, options as never);
      if (isScript(args)) answered.add(args[0] === 'EVAL' ? createHash('sha1').update(args[1] as string).digest('hex') : (args[1] as string));
      return reply;
    },
  };
  return {
    client: wrapper as never,
    answered: (script) => answered.has(script.sha1),
    held: () => waiting.length,
    holdAfterNext: () => (passes = 1),
    release: () => {
      const resolvers = waiting;
      waiting = [];
      passes = Number.POSITIVE_INFINITY;
      for (const resolve of resolvers) resolve();
    },
  };
}

describeRedis('redisStorage: changes to different paths commit without a retry', (env) => {
  test('a store behind commits a change to another path at once, and replays what it missed first', async () => {
    const { key, a, b } = await twoStores(env, 'rebase', { counts: { a: 0, b: 0 } });
    await a.store.put('/counts/a', 1);
    await a.store.post('/', { fromA: true });
    const revisionBefore = b.store.store.revision;
    b.events.length = 0;

    // b is two revisions behind and writes elsewhere: appended after them, no retry (maxRetries is 0).
    const result = await b.store.patch('/counts', { b: 5 });
    expect(revisionBefore).toBe(1);
    expect(result.revision).toBe(4);
    expect(b.store.store.revision).toBe(4);
    // The answer is as of revision 4: the whole /counts, a's change included.
    expect(result.value).toEqual({ a: 1, b: 5 });
    // Events in revision order: what it missed (remote), then its own change.
    expect(b.events.map((event) => [event.revision, event.origin])).toEqual([
      [2, 'remote'],
      [3, 'remote'],
      [4, 'local'],
    ]);
    // Its copy is exactly what any process rebuilds from the log, member order included.
    const fresh = await openStore(env, key);
    expect(JSON.stringify(await b.store.get())).toBe(JSON.stringify(await fresh.store.get()));
    expect(fresh.store.store.revision).toBe(4);
  });

  test('new members added by two stores end up in revision order in both copies', async () => {
    const { key, a, b } = await twoStores(env, 'member-order', {});
    await a.store.put('/x', 'from a');
    await b.store.put('/y', 'from b');
    const fresh = await openStore(env, key);
    const expected = JSON.stringify(await fresh.store.get());
    expect(Object.keys(JSON.parse(expected) as object).slice(-2)).toEqual(['x', 'y']);
    expect(JSON.stringify(await b.store.get())).toBe(expected);
  });

  test('a JSON Patch whose `test` reads another path than the missed changes wrote commits at once', async () => {
    const { a, b } = await twoStores(env, 'rebase-test-op', { mine: 1, theirs: 1 });
    await a.store.put('/theirs', 2);
    const result = await b.store.patch('/', [{ op: 'test', path: '/mine', value: 1 }, { op: 'replace', path: '/mine', value: 2 }], { type: 'json-patch' });
    expect(result.revision).toBe(3);
    expect(await b.store.get()).toMatchObject({ mine: 2, theirs: 2 });
  });

  test('changes that overlap are refused as before: same path, a `test` on what changed, an ancestor, one array', async () => {
    const { key, a, b } = await twoStores(env, 'overlap', { v: 0, list: [1, 2], tree: { leaf: 0 } });
    await a.store.put('/v', 1);
    expect(await refusal(b.store.put('/v', 2))).toBeInstanceOf(StorageError);

    await a.store.put('/tree', { leaf: 1 });
    expect(await refusal(b.store.put('/tree/leaf', 2))).toBeInstanceOf(StorageError);

    await a.store.post('/list', 3);
    // Inserting into the array a changed would shift indices: refused.
    expect(await refusal(b.store.patch('/list', [{ op: 'add', path: '/0', value: 0 }], { type: 'json-patch' }))).toBeInstanceOf(StorageError);

    // With retries the store catches up and the same writes go through on the fresh document...
    const patient = await openStore(env, key);
    await a.store.put('/v', 10);
    await patient.store.put('/v', 11);
    // ... and a `test` that no longer holds gets 409, never a silent overwrite.
    await a.store.put('/v', 12);
    const stale = await refusal(patient.store.patch('/', [{ op: 'test', path: '/v', value: 11 }, { op: 'replace', path: '/v', value: 13 }], { type: 'json-patch' }));
    expect(stale).toBeInstanceOf(JsonStoreError);
    expect((stale as JsonStoreError).status).toBe(409);
    expect(await a.store.get('/v')).toBe(12);
  });

  test('a precondition on the written path reads it: a change under it since then refuses the write', async () => {
    const { a, b } = await twoStores(env, 'precondition', { doc: { x: 0, y: 0 } });
    await a.store.put('/doc/y', 1);
    // b's write to /doc/x alone would rebase, but its precondition looked at all of /doc.
    const guarded = await refusal(b.store.patch('/doc', { x: 1 }, { precondition: () => {} }));
    expect(guarded).toBeInstanceOf(StorageError);
    const unguarded = await b.store.patch('/doc', { x: 1 });
    expect(unguarded.value).toEqual({ x: 1, y: 1 });
  });

  test('a write with an idempotency key is never rebased (another process may have made it under another path)', async () => {
    const { a, b } = await twoStores(env, 'keyed', { a: 0, b: 0 });
    await a.store.put('/a', 1);
    expect(await refusal(b.store.put('/b', 1, { idempotencyKey: 'k-1' }))).toBeInstanceOf(StorageError);
    expect(await b.store.put('/b', 2)).toMatchObject({ revision: 3 });
  });

  test('when compaction trimmed the log past the store’s revision, the write is refused and retried as before', async () => {
    const { key, a, b } = await twoStores(env, 'trimmed', { a: 0, b: 0 });
    await a.store.put('/a', 1);
    expect(await a.storage.compact()).toBe(true);
    await a.store.put('/a', 2);
    // The second compaction drops the entries the first snapshot covered, b's base among them.
    expect(await a.storage.compact()).toBe(true);
    expect(await refusal(b.store.put('/b', 1))).toBeInstanceOf(StorageError);
    // Entries after the trimmed ones still serve a rebase.
    const later = await openStore(env, key, { maxRetries: 0 });
    await a.store.put('/a', 3);
    expect(await later.store.put('/b', 2)).toMatchObject({ revision: 5 });
  });
});

describeRedis('redisStorage: the turn', (env) => {
  test('a process whose change was refused is served before another process’s next change', async () => {
    const key = env.key('turn');
    // A turn long enough that a busy machine cannot let it expire mid-test (it is given up as soon as y writes).
    const turnTimeout = 60_000;
    const x = redisStorage({ client: await env.client(), key, follow: false, turnTimeout });
    const y = redisStorage({ client: await env.client(), key, follow: false, turnTimeout });
    const probe = await env.client();
    const replace = (path: string, value: number) => [{ op: 'replace' as const, path, value }];
    await x.load();
    await y.load();
    await x.commit({ revision: 1, ops: [{ op: 'replace', path: '', value: { v: 0 } }] });

    // y wrote on revision 0: refused (the starting document touches everything), and y now has the turn.
    const refused = await refusal(y.commit({ revision: 1, ops: replace('/v', 1), touches: { writes: ['/v'], reads: [] } }));
    expect(refused).toBeInstanceOf(RevisionConflictError);
    expect(Number(await probe.sendCommand(['PTTL', x.keys.turn]))).toBeGreaterThan(0);

    // x is up to date and asks first, but waits for y's retry, which takes revision 2.
    const order: string[] = [];
    // Both sent in the same tick, x first.
    const fromX = x.commit({ revision: 2, ops: replace('/v', 2), touches: { writes: ['/v'], reads: [] } }).then(
      () => order.push('x appended'),
      (error: unknown) => order.push(error instanceof RevisionConflictError ? 'x refused' : String(error)),
    );
    const fromY = y.commit({ revision: 2, ops: replace('/v', 3), touches: { writes: ['/v'], reads: [] } }).then(() => order.push('y appended'));
    await Promise.all([fromX, fromY]);
    expect(order).toEqual(['y appended', 'x refused']);
    // y appended and passed the turn to x, first in line; x, refused in its turn, keeps it for its retry.
    expect(await probe.sendCommand(['HGET', x.keys.meta, 'rev'])).toBe('2');
    expect(await probe.sendCommand(['EXISTS', x.keys.turnQueue])).toBe(0);
    await x.commit({ revision: 3, ops: replace('/v', 4), touches: { writes: ['/v'], reads: [] } });
    expect(await probe.sendCommand(['EXISTS', x.keys.turn])).toBe(0);
    await x.close();
    await y.close();
  });

  test('processes waiting for the turn are served in the order they came', async () => {
    const key = env.key('turn-line');
    const turnTimeout = 60_000;
    const stores = await Promise.all([0, 1, 2, 3].map(async () => redisStorage({ client: await env.client(), key, follow: false, turnTimeout })));
    const [holder, first, second, third] = stores as [RedisStorage, RedisStorage, RedisStorage, RedisStorage];
    const probe = await env.client();
    const replace = (value: number) => ({ ops: [{ op: 'replace' as const, path: '/v', value }], touches: { writes: ['/v'], reads: [] } });
    for (const store of stores) await store.load();
    await first.commit({ revision: 1, ops: [{ op: 'replace', path: '', value: { v: 0 } }] });
    // holder wrote on revision 0: refused, it takes the turn.
    expect(await refusal(holder.commit({ revision: 1, ...replace(1) }))).toBeInstanceOf(RevisionConflictError);
    // Three others line up, one after the other (each waits until the line holds the one before it).
    const order: string[] = [];
    const settled: Array<Promise<unknown>> = [];
    for (const [name, store] of [['first', first], ['second', second], ['third', third]] as const) {
      const length = Number(await probe.sendCommand(['LLEN', holder.keys.turnQueue]));
      settled.push(store.commit({ revision: 2, ...replace(2) }).then(() => order.push(`${name} appended`), () => order.push(`${name} refused`)));
      await eventually(`${name} in line`, async () => Number(await probe.sendCommand(['LLEN', holder.keys.turnQueue])) === length + 1);
    }
    // The holder writes: the turn goes to `first`, whose change (revision 2) is now stale: refused, it keeps the turn.
    await holder.commit({ revision: 2, ...replace(1) });
    const orderIs = (...expected: string[]) => eventually(expected.join(', '), () => JSON.stringify(order) === JSON.stringify(expected));
    await orderIs('first refused');
    expect(await probe.sendCommand(['GET', holder.keys.turn])).not.toBeNull();
    expect(order).toEqual(['first refused']);
    await first.commit({ revision: 3, ...replace(3) });
    // Then `second`, then `third`, each refused once and served next.
    await orderIs('first refused', 'second refused');
    await second.commit({ revision: 4, ...replace(4) });
    await orderIs('first refused', 'second refused', 'third refused');
    await third.commit({ revision: 5, ...replace(5) });
    await Promise.all(settled);
    expect(await probe.sendCommand(['EXISTS', holder.keys.turn])).toBe(0);
    expect(await probe.sendCommand(['HGET', holder.keys.meta, 'rev'])).toBe('5');
    for (const store of stores) await store.close();
  });

  test('a process with turnTimeout 0 that meets the turn leaves the line and its expiry alone (commit and commitBatch)', async () => {
    const key = env.key('turn-zero');
    const turnTimeout = 60_000;
    const holder = redisStorage({ client: await env.client(), key, follow: false, turnTimeout });
    // `first` waits in line; its polls are held back, so only the line itself keeps its place.
    const firstClient = scriptGate(await env.client());
    const first = redisStorage({ client: firstClient.client, key, follow: false, turnTimeout });
    // The other process runs with turnTimeout 0 (mixed configs during a rollout).
    const zeroClient = scriptGate(await env.client());
    const zero = redisStorage({ client: zeroClient.client, key, follow: false, turnTimeout: 0 });
    const probe = await env.client();
    const replace = (value: number) => ({ ops: [{ op: 'replace' as const, path: '/v', value }], touches: { writes: ['/v'], reads: [] } });
    for (const store of [holder, first, zero]) await store.load();
    await holder.commit({ revision: 1, ops: [{ op: 'replace', path: '', value: { v: 0, w: 0 } }] });
    expect(await refusal(holder.commit({ revision: 1, ...replace(1) }))).toBeInstanceOf(RevisionConflictError);

    firstClient.holdAfterNext();
    const firstInLine = refusal(first.commit({ revision: 2, ...replace(2) }));
    await eventually('first in line', async () => Number(await probe.sendCommand(['LLEN', holder.keys.turnQueue])) === 1);
    await eventually('first polling no more', () => firstClient.held() > 0);

    // zero asks while the turn is held, once with commit and once with commitBatch: neither joins nor touches the line.
    const settled: Array<Promise<unknown>> = [];
    settled.push(refusal(zero.commit({ revision: 2, ...replace(5) })));
    settled.push(
      refusal(
        zero.commitBatch!([
          { revision: 2, ...replace(6) },
          { revision: 3, ops: [{ op: 'replace', path: '/w', value: 6 }], touches: { writes: ['/w'], reads: [] } },
        ]),
      ),
    );
    await eventually("zero's commit and commit-batch scripts answered", () => zeroClient.answered(commitScript) && zeroClient.answered(commitBatchScript));
    expect(await probe.sendCommand(['LLEN', holder.keys.turnQueue])).toBe(1);
    expect(Number(await probe.sendCommand(['PTTL', holder.keys.turnQueue]))).toBeGreaterThan(0);

    // The line still works: the holder writes, the turn goes to `first`, whose stale change is refused in its turn; its retry lands.
    await holder.commit({ revision: 2, ...replace(1) });
    firstClient.release();
    expect(await firstInLine).toBeInstanceOf(RevisionConflictError);
    await first.commit({ revision: 3, ...replace(3) });
    expect(await probe.sendCommand(['EXISTS', holder.keys.turn])).toBe(0);
    // zero's changes, made on revision 1, are refused once the turn is free.
    for (const outcome of await Promise.all(settled)) expect(outcome).toBeInstanceOf(RevisionConflictError);
    for (const store of [holder, first, zero]) await store.close();
  });

  test('a change that reads (a `test`, a precondition) does not take the turn when refused', async () => {
    const key = env.key('turn-reads');
    const x = redisStorage({ client: await env.client(), key, follow: false });
    const probe = await env.client();
    await x.load();
    await x.commit({ revision: 1, ops: [{ op: 'replace', path: '', value: { v: 0 } }] });
    const refused = await refusal(x.commit({ revision: 1, ops: [{ op: 'replace', path: '/v', value: 1 }], touches: { writes: ['/v'], reads: ['/w'] } }));
    expect(refused).toBeInstanceOf(RevisionConflictError);
    expect(await probe.sendCommand(['EXISTS', x.keys.turn])).toBe(0);
    await x.close();
  });
});
