/**
 * The Redis key names: checked when the adapter is made, put under an
 * optional prefix, and usable by a Redis user whose ACL allows only the keys
 * under that prefix (what docs/redis.md tells to grant, tried as written).
 */
import { expect, test } from 'vitest';
import { jsonStore } from '../../src/json-store.js';
import type { ChangeEvent } from '../../src/document-store.js';
import { redisStorage } from '../../src/storage/redis.js';
import { describeRedis, eventually, fetchJson, type TestRedisClient } from './helpers.js';

/** The ACL rules docs/redis.md gives for a user limited to the keys under `app:`. */
const aclRules = (prefix: string) => [
  'on',
  '>app-secret',
  'resetkeys',
  `~${prefix}*`,
  'resetchannels',
  '-@all',
  '+evalsha',
  '+eval',
  '+hget',
  '+xread',
  '+set',
  '+hmget',
  '+hset',
  '+hincrby',
  '+xadd',
  '+xrange',
  '+xtrim',
  '+strlen',
  '+get',
  '+del',
  '+hgetall',
  '+hdel',
  '+zadd',
  '+zrem',
  '+zcard',
  '+zrange',
  '+zrangebyscore',
  '+pttl',
  '+pexpire',
  '+lpos',
  '+rpush',
  '+lpop',
  '+lrem',
];

describeRedis('redisStorage: key names', (env) => {
  test('a key or prefix with a brace is refused when the adapter is made, naming the option', async () => {
    const client = await env.client();
    // `}x` would give `{}x}:meta`: no hash tag in common, so CROSSSLOT on Cluster.
    for (const key of ['}x', '{x', 'a{b}c', '{}']) {
      expect(() => redisStorage({ client, key })).toThrow(TypeError);
      expect(() => redisStorage({ client, key })).toThrow(/option "key" must not contain \{ or \}/);
    }
    expect(() => redisStorage({ client, key: 'doc', prefix: '{app}:' })).toThrow(/option "prefix" must not contain \{ or \}/);
    expect(() => redisStorage({ client, key: 'doc', prefix: 3 as never })).toThrow(/option "prefix" must be a string/);
  });

  test('with a prefix every key starts with it and keeps the hash tag {key}', async () => {
    const client = await env.client();
    const key = env.key('prefixed');
    const prefix = 'app:';
    const adapter = redisStorage({ client, key, prefix, compaction: false });
    env.defer(() => adapter.close());
    expect(adapter.keys).toEqual({
      meta: `app:{${key}}:meta`,
      log: `app:{${key}}:log`,
      snapshot: `app:{${key}}:snapshot`,
      compaction: `app:{${key}}:compaction`,
      idempotency: `app:{${key}}:idempotency`,
      idempotencyTimes: `app:{${key}}:idempotency-times`,
      turn: `app:{${key}}:turn`,
      turnQueue: `app:{${key}}:turn-queue`,
    });
    await adapter.commit({ revision: 1, ops: [{ op: 'replace', path: '', value: { a: 1 } }] });
    expect(await adapter.compact()).toBe(true);
    const found = ((await client.sendCommand(['KEYS', `*{${key}}*`])) as string[]).sort();
    expect(found).toEqual([adapter.keys.log, adapter.keys.meta, adapter.keys.snapshot].sort());
    // Another prefix is another document.
    const elsewhere = redisStorage({ client, key, prefix: 'other:' });
    env.defer(() => elsewhere.close());
    expect(await elsewhere.load()).toBeUndefined();
    expect(await adapter.load()).toEqual({ document: { a: 1 }, revision: 1 });
  });
});

describeRedis(
  'redisStorage: a Redis user limited by ACL to the keys under a prefix',
  (env) => {
    async function limitedUser(): Promise<{ url: string; admin: TestRedisClient }> {
      const redis = await env.privateRedis();
      const admin = await env.client(redis.url);
      await admin.sendCommand(['ACL', 'SETUSER', 'app', ...aclRules('app:')]);
      return { url: `redis://app:app-secret@127.0.0.1:${redis.port}`, admin };
    }

    test('stores with prefix "app:" write, follow each other and compact with only ~app:* granted; without the prefix Redis refuses', async () => {
      const { url, admin } = await limitedUser();
      const key = 'todos';
      const stores = await Promise.all(
        [0, 1].map(async () => {
          const client = await env.client(url);
          const store = jsonStore({
            initial: { todos: [] },
            storage: redisStorage({ client, key, prefix: 'app:', compaction: { minBytes: 0, ratio: 0, maxChanges: 5 } }),
          });
          store.on('error', () => {});
          env.defer(() => store.close());
          await store.ready();
          return store;
        }),
      );
      const [a, b] = stores as [(typeof stores)[0], (typeof stores)[0]];
      const remote: ChangeEvent[] = [];
      b.on('change', (event) => {
        if (event.origin === 'remote') remote.push(event);
      });
      // Idempotency keys too, with records pruned by count (the commit script's sorted-set commands).
      for (let i = 0; i < 12; i++) await a.post('/todos', `task ${i}`, i % 2 === 0 ? { idempotencyKey: `task-${i}` } : undefined);
      expect(await b.post('/todos', 'task 10', { idempotencyKey: 'task-10' })).toMatchObject({ replayed: true });
      // b follows through its own XREAD connection, made with the same user.
      await eventually('b to follow', () => (remote.length === 12 ? true : undefined));
      expect(await b.get('/todos')).toHaveLength(12);
      await b.post('/todos', 'from b');
      expect(await a.get('/todos/12')).toBe('from b');
      // The commit script took the compaction lock, and the compaction ran, with the same user.
      await eventually('a snapshot', async () => (Number(await admin.hGet('app:{todos}:meta', 'snapshotRev')) > 0 ? true : undefined));
      expect(((await admin.sendCommand(['KEYS', '*'])) as string[]).every((name) => name.startsWith('app:{todos}:'))).toBe(true);

      const unprefixed = jsonStore({ storage: redisStorage({ client: await env.client(url), key }) });
      unprefixed.on('error', () => {});
      env.defer(() => unprefixed.close());
      await expect(unprefixed.ready()).rejects.toThrow(/NOPERM/);
    });

    test('jsonstore --redis-prefix app: runs as that user', async () => {
      const { url, admin } = await limitedUser();
      const server = await env.cli(['--redis', url, '--key', 'todos', '--redis-prefix', 'app:']);
      expect(server.log()).toMatch(/Redis document "todos" \(keys app:\{todos\}:\*\)/);
      const put = await fetchJson(`${server.url}/todos`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '["write the docs"]' });
      expect(put.status).toBe(201);
      expect((await fetchJson(`${server.url}/todos/0`)).body).toBe('write the docs');
      expect(await admin.hGet('app:{todos}:meta', 'rev')).toBe('1');
    });
  },
  { needsServerBinary: true },
);
