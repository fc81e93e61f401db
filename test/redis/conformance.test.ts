/**
 * redisStorage passes the storage conformance suite, including the shared
 * cases: a peer is another adapter on the same key with a client of its own,
 * as another process would have.
 */
import { test } from 'vitest';
import { redisStorage, type RedisStorage } from '../../src/storage/redis.js';
import type { StorageAdapter } from '../../src/storage/types.js';
import { storageConformance } from '../../src/testing/index.js';
import { describeRedis } from './helpers.js';

describeRedis('redisStorage conformance', (env) => {
  const keyOf = new WeakMap<StorageAdapter, string>();
  const open = async (key: string): Promise<RedisStorage> => {
    // A client per adapter: each adapter stands for a process of its own.
    const adapter = redisStorage({ client: await env.client(), key });
    keyOf.set(adapter, key);
    return adapter;
  };
  const sameKey = (adapter: StorageAdapter): string => {
    const key = keyOf.get(adapter);
    if (key === undefined) throw new Error('not an adapter this suite opened');
    return key;
  };

  storageConformance({
    test,
    name: 'redis storage',
    factory: () => open(env.key('conformance')),
    reopen: (closed) => open(sameKey(closed)),
    peer: (adapter) => open(sameKey(adapter)),
    cleanup: async (adapters) => {
      const client = await env.client();
      const keys = adapters.flatMap((adapter) => Object.values((adapter as RedisStorage).keys));
      if (keys.length > 0) await client.del(keys);
      client.destroy();
    },
  });
});
