/**
 * redisStorage against a real Redis, below the engine: the storage contract,
 * the key layout, what a write sends, compaction, following, timeouts.
 */
import { expect, test } from 'vitest';
import { RevisionConflictError } from '../../src/errors.js';
import type { PatchOperation } from '../../src/document/patch-types.js';
import { redisStorage, type RedisStorage, type RedisStorageOptions } from '../../src/storage/redis.js';
import type { Change } from '../../src/storage/types.js';
import { describeRedis, eventually, type RedisTestEnv, type TestRedisClient } from './helpers.js';

function replaceRoot(value: unknown): PatchOperation {
  return { op: 'replace', path: '', value: value as never };
}

function add(path: string, value: unknown): PatchOperation {
  return { op: 'add', path, value: value as never };
}

async function open(env: RedisTestEnv, client: TestRedisClient, options: Partial<RedisStorageOptions> = {}): Promise<RedisStorage> {
  const adapter = redisStorage({ client, key: options.key ?? env.key(), ...options });
  env.defer(() => adapter.close());
  return adapter;
}

/** Kills the connections blocked in XREAD (the followers), as a network failure would. */
async function killFollowerConnections(client: TestRedisClient): Promise<number> {
  const list = String(await client.sendCommand(['CLIENT', 'LIST', 'TYPE', 'normal']));
  const ids = [...list.matchAll(/^id=(\d+) .*cmd=xread/gm)].map((match) => match[1] as string);
  for (const id of ids) await client.sendCommand(['CLIENT', 'KILL', 'ID', id]);
  return ids.length;
}

describeRedis('redisStorage: the storage contract', (env) => {
  test('a key nobody wrote loads as nothing, at revision 0', async () => {
    const client = await env.client();
    const adapter = await open(env, client);
    expect(await adapter.load()).toBeUndefined();
    expect(await adapter.currentRevision()).toBe(0);
    expect(await adapter.changesSince(0)).toEqual([]);
  });

  test('a store made while its client is still connecting loads without failing', async () => {
    const key = env.key();
    const writer = await open(env, await env.client(), { key });
    await writer.commit({ revision: 1, ops: [replaceRoot({ ready: true })] });
    // connect() called, not awaited, and commands refused while offline.
    const connecting = env.lazyClient(env.url, { disableOfflineQueue: true });
    const adapter = await open(env, connecting, { key });
    expect(await adapter.load()).toEqual({ document: { ready: true }, revision: 1 });
  });

  test('declares itself shared and persistent', async () => {
    const adapter = await open(env, await env.client());
    expect(adapter.name).toBe('redis');
    expect(adapter.capabilities).toMatchObject({ shared: true, persistent: true });
  });

  test('a change is taken only at the next revision; a stale one is refused with the current revision', async () => {
    const client = await env.client();
    const adapter = await open(env, client);
    await adapter.commit({ revision: 1, ops: [replaceRoot({ a: 1 })] });
    await adapter.commit({ revision: 2, ops: [add('/b', 2)] });

    for (const revision of [1, 2, 4]) {
      const refused = await adapter.commit({ revision, ops: [add('/c', 3)] }).then(
        () => undefined,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(RevisionConflictError);
      expect((refused as RevisionConflictError).currentRevision).toBe(2);
    }
    expect(await adapter.load()).toEqual({ document: { a: 1, b: 2 }, revision: 2 });
  });

  test('two adapters on one key: exactly one of two commits of the same revision wins', async () => {
    const key = env.key();
    const first = await open(env, await env.client(), { key });
    const second = await open(env, await env.client(), { key });
    await first.commit({ revision: 1, ops: [replaceRoot({ n: 0 })] });
    for (let revision = 2; revision < 30; revision++) {
      const outcomes = await Promise.allSettled([
        first.commit({ revision, ops: [{ op: 'replace', path: '/n', value: revision * 10 + 1 }] }),
        second.commit({ revision, ops: [{ op: 'replace', path: '/n', value: revision * 10 + 2 }] }),
      ]);
      const won = outcomes.filter((outcome) => outcome.status === 'fulfilled');
      const lost = outcomes.filter((outcome) => outcome.status === 'rejected');
      expect(won).toHaveLength(1);
      expect((lost[0] as PromiseRejectedResult).reason).toBeInstanceOf(RevisionConflictError);
    }
    expect((await first.load())?.revision).toBe(29);
  });

  test('a refused commit brings back the changes it missed, for the catch-up that follows', async () => {
    const key = env.key();
    const behind = await open(env, await env.client(), { key });
    const ahead = await open(env, await env.client(), { key });
    await ahead.commit({ revision: 1, ops: [replaceRoot({ n: 0 })] });
    await ahead.commit({ revision: 2, ops: [{ op: 'replace', path: '/n', value: 2 }] });
    await expect(behind.commit({ revision: 1, ops: [replaceRoot({ mine: true })] })).rejects.toBeInstanceOf(RevisionConflictError);
    expect((await behind.changesSince(0))?.map((change) => change.revision)).toEqual([1, 2]);
    // Used once: later calls ask Redis, so they see what happened since.
    await ahead.commit({ revision: 3, ops: [{ op: 'replace', path: '/n', value: 3 }] });
    expect((await behind.changesSince(0))?.map((change) => change.revision)).toEqual([1, 2, 3]);
    // Any other call in between discards them.
    await expect(behind.commit({ revision: 2, ops: [replaceRoot({ mine: true })] })).rejects.toBeInstanceOf(RevisionConflictError);
    await ahead.commit({ revision: 4, ops: [{ op: 'replace', path: '/n', value: 4 }] });
    expect(await behind.currentRevision()).toBe(4);
    expect((await behind.changesSince(1))?.map((change) => change.revision)).toEqual([2, 3, 4]);
  });

  test('changesSince gives the missing changes in order, [] when up to date, undefined when storage holds less', async () => {
    const adapter = await open(env, await env.client());
    const changes: Change[] = [
      { revision: 1, ops: [replaceRoot({ list: [] })] },
      { revision: 2, ops: [add('/list/0', 'x')] },
      { revision: 3, ops: [add('/list/1', 'y'), { op: 'remove', path: '/list/0' }] },
    ];
    for (const change of changes) await adapter.commit(change);
    expect(await adapter.changesSince(0)).toEqual(changes);
    expect(await adapter.changesSince(1)).toEqual(changes.slice(1));
    expect(await adapter.changesSince(3)).toEqual([]);
    expect(await adapter.changesSince(7)).toBeUndefined();
    expect(await adapter.currentRevision()).toBe(3);
  });

  test('a store more than 1000 changes behind is told to load instead of catching up', async () => {
    const adapter = await open(env, await env.client(), { compaction: false });
    await adapter.commit({ revision: 1, ops: [replaceRoot({ n: 0 })] });
    for (let revision = 2; revision <= 1002; revision++) {
      await adapter.commit({ revision, ops: [{ op: 'replace', path: '/n', value: revision }] });
    }
    expect(await adapter.changesSince(1)).toBeUndefined();
    const changes = await adapter.changesSince(2);
    expect(changes).toHaveLength(1000);
    expect(changes?.[999]?.revision).toBe(1002);
  });

  test('the first change carries the starting document, so loading needs no initial value', async () => {
    const key = env.key();
    const adapter = await open(env, await env.client(), { key });
    await adapter.commit({ revision: 1, ops: [replaceRoot([1, 2]), add('/2', 3)] });
    const reopened = await open(env, await env.client(), { key });
    expect(await reopened.load()).toEqual({ document: [1, 2, 3], revision: 1 });
  });
});

describeRedis('redisStorage: keys and what a write sends', (env) => {
  test('all keys share the hash tag {key}, so they live in one Cluster slot', async () => {
    const client = await env.client();
    const key = env.key('tag');
    const adapter = await open(env, client, { key, compaction: { minBytes: 0, ratio: 0, maxChanges: 1 } });
    await adapter.commit({ revision: 1, ops: [replaceRoot({})] });
    await adapter.commit({ revision: 2, ops: [add('/a', 1)] });
    await eventually('a snapshot', async () => ((await client.exists(adapter.keys.snapshot)) === 1 ? true : undefined));
    for (const name of Object.values(adapter.keys)) expect(name.startsWith(`{${key}}:`)).toBe(true);
    const found = (await client.sendCommand(['KEYS', `{${key}}*`])) as string[];
    expect(found.length).toBeGreaterThan(0);
    for (const name of found) expect(Object.values(adapter.keys)).toContain(name);
  });

  test('a write appends only its change to the log; the snapshot is not rewritten', async () => {
    const client = await env.client();
    const adapter = await open(env, client);
    const big = { items: Array.from({ length: 2000 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b'] })), counter: 0 };
    await adapter.commit({ revision: 1, ops: [replaceRoot(big)] });
    expect(await adapter.compact()).toBe(true);
    const snapshotBytes = await client.strLen(adapter.keys.snapshot);
    expect(snapshotBytes).toBeGreaterThan(50_000);

    await adapter.commit({ revision: 2, ops: [{ op: 'replace', path: '/counter', value: 1 }] });
    const [entry] = (await client.sendCommand(['XRANGE', adapter.keys.log, '2-0', '2-0'])) as Array<[string, string[]]>;
    expect(entry?.[0]).toBe('2-0');
    // With the paths it wrote (`0:`, the root: a change that does not say touches everything), for rebasing others' changes.
    expect(entry?.[1]).toEqual(['ops', '[{"op":"replace","path":"/counter","value":1}]', 'paths', '0:']);
    expect(await client.strLen(adapter.keys.snapshot)).toBe(snapshotBytes);
    expect(await client.hGet(adapter.keys.meta, 'snapshotRev')).toBe('1');
  });

  test('storage written by an unknown layout version is refused, not misread', async () => {
    const client = await env.client();
    const adapter = await open(env, client);
    await client.hSet(adapter.keys.meta, { rev: '1', layout: '99' });
    await expect(adapter.load()).rejects.toThrow(/layout 99/);
    await expect(adapter.commit({ revision: 2, ops: [add('/a', 1)] })).rejects.toThrow(/layout 99/);
  });

  test('a missing change in the log is reported, not papered over', async () => {
    const client = await env.client();
    const adapter = await open(env, client, { compaction: false });
    await adapter.commit({ revision: 1, ops: [replaceRoot({})] });
    await adapter.commit({ revision: 2, ops: [add('/a', 1)] });
    await adapter.commit({ revision: 3, ops: [add('/b', 2)] });
    await client.sendCommand(['XDEL', adapter.keys.log, '2-0']);
    await expect(adapter.load()).rejects.toThrow(/jumps from revision 1 to 3/);
    expect(await adapter.changesSince(1)).toBeUndefined();
  });

  test('options are checked when the adapter is made', async () => {
    const client = await env.client();
    expect(() => redisStorage({ client: {} as never })).toThrow(/option "client"/);
    expect(() => redisStorage({ client, key: '' })).toThrow(/option "key"/);
    expect(() => redisStorage({ client, commandTimeout: -1 })).toThrow(/commandTimeout/);
    // Node's timers would fire at once.
    expect(() => redisStorage({ client, commandTimeout: 2 ** 31 })).toThrow(/commandTimeout/);
    expect(() => redisStorage({ client, compaction: { maxChanges: 0 } })).toThrow(/maxChanges/);
  });
});

describeRedis('redisStorage: compaction', (env) => {
  test('the log is folded into a snapshot; loading gives the same document; old changes go', async () => {
    const client = await env.client();
    const key = env.key('compact');
    const adapter = await open(env, client, { key, compaction: false });
    let document: Record<string, number> = {};
    await adapter.commit({ revision: 1, ops: [replaceRoot({})] });
    for (let revision = 2; revision <= 40; revision++) {
      await adapter.commit({ revision, ops: [add(`/k${revision % 7}`, revision)] });
      document = { ...document, [`k${revision % 7}`]: revision };
      if (revision === 20 || revision === 35) expect(await adapter.compact()).toBe(true);
    }
    // Nothing new to fold.
    expect(await adapter.compact()).toBe(true);
    expect(await adapter.compact()).toBe(false);

    const reopened = await open(env, await env.client(), { key });
    const loaded = await reopened.load();
    expect(loaded?.revision).toBe(40);
    expect(loaded?.document).toEqual(document);
    expect(JSON.stringify(loaded?.document)).toBe(JSON.stringify(JSON.parse(String(await client.get(adapter.keys.snapshot)))));

    // The entries after the previous snapshot (35) stay for followers; older ones are gone.
    expect(await client.xLen(adapter.keys.log)).toBe(5);
    expect(await adapter.changesSince(30)).toBeUndefined();
    expect((await adapter.changesSince(35))?.map((change) => change.revision)).toEqual([36, 37, 38, 39, 40]);
  });

  test('writes trigger compaction by themselves, and one process at a time does it', async () => {
    const key = env.key('auto');
    const compaction = { minBytes: 200, ratio: 1, maxChanges: 1000 };
    const adapters = [
      await open(env, await env.client(), { key, compaction }),
      await open(env, await env.client(), { key, compaction }),
      await open(env, await env.client(), { key, compaction }),
    ];
    const client = await env.client();
    let revision = 1;
    await adapters[0]?.commit({ revision, ops: [replaceRoot({ log: [] })] });
    for (let i = 0; i < 300; i++) {
      revision += 1;
      const adapter = adapters[i % adapters.length] as RedisStorage;
      await adapter.commit({ revision, ops: [add(`/log/${i}`, { i, text: 'some text to make the log grow' })] });
    }
    await Promise.all(adapters.map((adapter) => adapter.compact()));
    const snapshotRev = Number(await client.hGet(adapters[0]!.keys.meta, 'snapshotRev'));
    expect(snapshotRev).toBe(revision);
    // The log was trimmed (only changes since the snapshot before the last one
    // remain), and everything up to the head is folded in.
    expect(await client.xLen(adapters[0]!.keys.log)).toBeLessThan(300);
    expect(await client.hGet(adapters[0]!.keys.meta, 'logBytes')).toBe('0');
    const loaded = await adapters[1]?.load();
    expect(loaded?.revision).toBe(revision);
    expect((loaded?.document as { log: unknown[] }).log).toHaveLength(300);
    expect(await client.exists(adapters[0]!.keys.compaction)).toBe(0);
  });
});

describeRedis('redisStorage: following other processes', (env) => {
  test('changes committed elsewhere reach watch(), in order, from the revision loaded', async () => {
    const key = env.key('follow');
    const writer = await open(env, await env.client(), { key });
    await writer.commit({ revision: 1, ops: [replaceRoot({ n: 0 })] });
    await writer.commit({ revision: 2, ops: [{ op: 'replace', path: '/n', value: 1 }] });

    const reader = await open(env, await env.client(), { key });
    expect((await reader.load())?.revision).toBe(2);
    const seen: Change[] = [];
    const unwatch = await reader.watch!((change) => seen.push(change), () => {});
    for (let revision = 3; revision <= 12; revision++) {
      await writer.commit({ revision, ops: [{ op: 'replace', path: '/n', value: revision - 1 }] });
    }
    await eventually('ten changes', () => (seen.length >= 10 ? true : undefined));
    expect(seen.map((change) => change.revision)).toEqual([3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
    expect(seen[0]?.ops).toEqual([{ op: 'replace', path: '/n', value: 2 }]);
    await unwatch?.();
  });

  test("while its own commits go on, watch() is not fed them again; other processes' changes reach every watcher, once", async () => {
    const key = env.key('follow-own');
    const client = await env.client();
    const writer = await open(env, client, { key });
    // On the writer's connection: Redis runs the peer's commit, then the writer's, in the order they were sent.
    const peer = await open(env, client, { key });
    expect(await writer.load()).toBeUndefined();
    const watchers = [[], []] as number[][];
    const unwatch = await Promise.all(watchers.map((seen) => writer.watch!((change) => seen.push(change.revision), () => {})));
    await writer.commit({ revision: 1, ops: [replaceRoot({ n: 0, peer: 0 })] });
    const leaf = (path: string, value: number) => ({ ops: [{ op: 'replace' as const, path, value }], touches: { writes: [path], reads: [] } });
    let revision = 2;
    while (revision <= 60) {
      if (revision !== 30) {
        await writer.commit({ revision, ...leaf('/n', revision) });
        revision += 1;
        continue;
      }
      // The peer's change lands between two of the writer's, while no XREAD waits: the writer's commit, made at 30 too, lands after it, and its reply brings it.
      const [, landed] = await Promise.all([peer.commit({ revision: 30, ...leaf('/peer', 1) }), writer.commit({ revision: 30, ...leaf('/n', 30) })]);
      expect(landed).toMatchObject({ revision: 31, missed: [{ revision: 30 }] });
      revision = 32;
    }
    // Once the writer stops, following resumes after what it has: the peer's next change, and none of the writer's.
    await peer.commit({ revision: 61, ...leaf('/peer', 2) });
    for (const seen of watchers) {
      await eventually("the peer's change after the writer stopped", () => (seen.includes(61) ? true : undefined));
      expect(seen.filter((r) => r === 30 || r === 61)).toEqual([30, 61]);
      // Before this, the follower was woken by each of the writer's 59 commits and delivered them all.
      // Only a read already waiting when the first commits landed may bring one or two.
      expect(seen.filter((r) => r !== 30 && r !== 61).length).toBeLessThanOrEqual(5);
      expect(seen).toEqual([...new Set(seen)].sort((a, b) => a - b));
    }
    for (const stop of unwatch) await stop?.();
  });

  test('follow: false offers no watch', async () => {
    const adapter = await open(env, await env.client(), { follow: false });
    expect(adapter.watch).toBeUndefined();
  });
});

describeRedis(
  'redisStorage: on a Redis of its own (connections killed, server frozen)',
  (env) => {
    test('a lost follower connection is reported, and on reconnection the engine is told to resync', async () => {
      // Killing connections is for a Redis of our own, never the shared one.
      const redis = await env.privateRedis();
      const key = env.key('lost');
      const admin = await env.client(redis.url);
      const writer = await open(env, await env.client(redis.url), { key });
      await writer.commit({ revision: 1, ops: [replaceRoot({ n: 0 })] });
      const reader = await open(env, await env.client(redis.url), { key });
      await reader.load();
      const seen: number[] = [];
      const errors: string[] = [];
      await reader.watch!(
        (change) => seen.push(change.revision),
        (error) => errors.push((error as Error).message),
      );
      await writer.commit({ revision: 2, ops: [{ op: 'replace', path: '/n', value: 1 }] });
      await eventually('revision 2', () => (seen.includes(2) ? true : undefined));

      await eventually('a follower to kill', async () => ((await killFollowerConnections(admin)) > 0 ? true : undefined));
      await writer.commit({ revision: 3, ops: [{ op: 'replace', path: '/n', value: 2 }] });
      await eventually('the resync notice', () => (errors.some((message) => /is back/.test(message)) ? true : undefined));
      expect(errors[0]).toMatch(/lost the Redis connection/);
      await eventually('revision 3', () => (seen.includes(3) ? true : undefined));
      await writer.commit({ revision: 4, ops: [{ op: 'replace', path: '/n', value: 3 }] });
      await eventually('revision 4', () => (seen.includes(4) ? true : undefined));
    });

    test('close() ends the follower connection it opened and leaves the app client alone', async () => {
      const redis = await env.privateRedis();
      const admin = await env.client(redis.url);
      const client = await env.client(redis.url);
      const adapter = redisStorage({ client, key: env.key('close') });
      await adapter.load();
      await adapter.watch!(() => {}, () => {});
      const followers = async () => [...String(await admin.sendCommand(['CLIENT', 'LIST', 'TYPE', 'normal'])).matchAll(/cmd=xread/g)].length;
      await eventually('the follower connection', async () => ((await followers()) === 1 ? true : undefined));
      await adapter.close();
      await eventually('no follower connection', async () => ((await followers()) === 0 ? true : undefined));
      expect(client.isOpen).toBe(true);
      expect(await client.ping()).toBe('PONG');
    });

    test('a store closed right after it started following leaves no connection behind', async () => {
      const redis = await env.privateRedis();
      const admin = await env.client(redis.url);
      const client = await env.client(redis.url);
      const connections = async () => String(await admin.sendCommand(['CLIENT', 'LIST', 'TYPE', 'normal'])).trim().split('\n').length;
      const baseline = await connections();
      for (let i = 0; i < 10; i++) {
        const adapter = redisStorage({ client, key: env.key('brief') });
        await adapter.load();
        await adapter.watch!(() => {}, () => {});
        if (i % 2 === 1) await new Promise((resolve) => setImmediate(resolve));
        await adapter.close();
      }
      await eventually('the follower connections to go', async () => ((await connections()) === baseline ? true : undefined));
    });

    test('commands fail after commandTimeout instead of waiting for Redis', async () => {
      const redis = await env.privateRedis();
      const client = await env.client(redis.url);
      const adapter = await open(env, client, { commandTimeout: 300 });
      await adapter.commit({ revision: 1, ops: [replaceRoot({ a: 1 })] });
      redis.pause(true);
      try {
        await expect(adapter.commit({ revision: 2, ops: [add('/b', 2)] })).rejects.toThrow(/did not answer within 300 ms/);
        await expect(adapter.currentRevision()).rejects.toThrow(/did not answer within 300 ms/);
        await expect(adapter.load()).rejects.toThrow(/did not answer within 300 ms/);
      } finally {
        redis.pause(false);
      }
      // A command that timed out had been sent, so a thawed Redis may still
      // run it: its outcome is unknown, never half-applied.
      const revision = await eventually('Redis back', () => adapter.currentRevision());
      expect([1, 2]).toContain(revision);
      expect(await adapter.load()).toEqual(revision === 1 ? { document: { a: 1 }, revision: 1 } : { document: { a: 1, b: 2 }, revision: 2 });
      await adapter.commit({ revision: revision + 1, ops: [add('/c', 3)] });
      expect((await adapter.load())?.document).toMatchObject({ a: 1, c: 3 });
    });

    test('a client that is not connected makes commands fail, not hang', async () => {
      const redis = await env.privateRedis({ start: false });
      const adapter = await open(env, env.lazyClient(redis.url), { commandTimeout: 300 });
      await expect(adapter.load()).rejects.toThrow(/did not answer within 300 ms/);
      const offline = await open(env, env.lazyClient(redis.url, { disableOfflineQueue: true }));
      await expect(offline.load()).rejects.toThrow(/offline/);
    });
  },
  { needsServerBinary: true },
);
