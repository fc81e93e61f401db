/**
 * redisStorage with a `createCluster()` client, on a private one-node Redis
 * Cluster that owns every slot: the scripts name all their keys, and the keys
 * share one hash tag, so Cluster routes every command to one node.
 */
import { createCluster } from 'redis';
import { expect, test } from 'vitest';
import { jsonStore } from '../../src/json-store.js';
import { redisStorage, type RedisStorage } from '../../src/storage/redis.js';
import { describeRedis, eventually, type PrivateRedis, type RedisTestEnv } from './helpers.js';

async function startCluster(env: RedisTestEnv): Promise<PrivateRedis> {
  const redis = await env.privateRedis({ args: ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf'] });
  const admin = await env.client(redis.url);
  await admin.sendCommand(['CLUSTER', 'ADDSLOTSRANGE', '0', '16383']);
  await eventually('the cluster to be ready', async () => (/cluster_state:ok/.test(String(await admin.sendCommand(['CLUSTER', 'INFO']))) ? true : undefined));
  return redis;
}

describeRedis(
  'redisStorage on Redis Cluster',
  (env) => {
    test('two stores with cluster clients share one document, follow each other and compact', async () => {
      const redis = await startCluster(env);
      const key = env.key('cluster');
      const clusters = [0, 1].map(() => {
        const cluster = createCluster({ rootNodes: [{ url: redis.url }] });
        cluster.on('error', () => {});
        env.defer(async () => cluster.destroy());
        return cluster;
      });
      await Promise.all(clusters.map((cluster) => cluster.connect()));
      const adapters: RedisStorage[] = clusters.map((client) => redisStorage({ client, key, compaction: { minBytes: 0, ratio: 0.5, maxChanges: 10 } }));
      const stores = adapters.map((storage) => jsonStore({ initial: { list: [] }, storage }));
      for (const store of stores) {
        store.on('error', () => {});
        env.defer(() => store.close());
      }
      const [a, b] = stores as [(typeof stores)[0], (typeof stores)[0]];
      const remote: number[] = [];
      b.on('change', (event) => {
        if (event.origin === 'remote') remote.push(event.revision);
      });
      await b.ready();

      for (let i = 0; i < 30; i++) await (i % 2 === 0 ? a : b).post('/list', i);
      expect(await b.get('/list')).toEqual(Array.from({ length: 30 }, (_, i) => i));
      expect(await a.get('/list')).toEqual(await b.get('/list'));
      await eventually('remote changes through the follower', () => (remote.length >= 15 ? true : undefined));

      const admin = await env.client(redis.url);
      await eventually('a snapshot', async () => (Number(await admin.hGet(adapters[0]!.keys.meta, 'snapshotRev')) > 0 ? true : undefined));
      const slots = await Promise.all(Object.values(adapters[0]!.keys).map((name) => admin.sendCommand(['CLUSTER', 'KEYSLOT', name])));
      expect(new Set(slots).size).toBe(1);
    });

    test('under a prefix the keys keep one slot, the slot of {key}, and the scripts run', async () => {
      const redis = await startCluster(env);
      const cluster = createCluster({ rootNodes: [{ url: redis.url }] });
      cluster.on('error', () => {});
      env.defer(async () => cluster.destroy());
      await cluster.connect();
      const key = env.key('cluster-prefixed');
      const storage = redisStorage({ client: cluster, key, prefix: 'app:', compaction: { minBytes: 0, ratio: 0, maxChanges: 3 } });
      const store = jsonStore({ initial: { n: 0 }, storage });
      store.on('error', () => {});
      env.defer(() => store.close());
      for (let i = 1; i <= 8; i++) await store.put('/n', i);
      expect(await store.get('/n')).toBe(8);
      const admin = await env.client(redis.url);
      await eventually('a snapshot', async () => (Number(await admin.hGet(storage.keys.meta, 'snapshotRev')) > 0 ? true : undefined));
      expect(Object.values(storage.keys).every((name) => name.startsWith(`app:{${key}}:`))).toBe(true);
      const slots = await Promise.all([...Object.values(storage.keys), `{${key}}`].map((name) => admin.sendCommand(['CLUSTER', 'KEYSLOT', name])));
      expect(new Set(slots).size).toBe(1);
    });
  },
  { needsServerBinary: true },
);
