/**
 * Values come back exactly as written, by every path a document takes
 * through Redis: replaying the log, loading a snapshot, following another
 * process. Lua never decodes JSON, so `[]` stays an array and big integers
 * keep every digit.
 */
import { expect, test } from 'vitest';
import { jsonStore, type JsonStore } from '../../src/json-store.js';
import type { JsonValue } from '../../src/document/json.js';
import { redisStorage, type RedisStorage, type RedisStorageOptions } from '../../src/storage/redis.js';
import { describeRedis, eventually, type RedisTestEnv } from './helpers.js';

/** Awkward values; every member is written and read back on its own path too. */
function awkwardDocument(): Record<string, JsonValue> {
  return {
    emptyArray: [],
    emptyObject: {},
    nested: [[], {}, [[]], { '': [] }],
    maxSafeInteger: 2 ** 53 - 1,
    minSafeInteger: -(2 ** 53 - 1),
    small: 1e-7,
    tiny: 5e-324,
    huge: -1.5e300,
    fraction: 0.1,
    unicode: { 'ключ': 'значение', '鍵': '値', '🔑': '🎉 e\u0301 \u202Eright-to-left', 'nul\u0000': 'line\u2028separator' },
    'a/b': 'slash in a key',
    '~': 'tilde',
    '~0~1': 'escape lookalikes',
    '/': { '/': '~' },
    '': 'empty key',
    'loneSurrogate\ud800': '\udc00',
    // An own member named __proto__, as JSON.parse makes it (a literal would set the prototype).
    ...(JSON.parse('{"__proto__": {"polluted": false}}') as Record<string, JsonValue>),
  };
}

async function openStore(env: RedisTestEnv, key: string, redis: Partial<RedisStorageOptions> = {}, initial: JsonValue = {}): Promise<{ store: JsonStore; adapter: RedisStorage }> {
  const adapter = redisStorage({ client: await env.client(), key, ...redis });
  const store = jsonStore({ initial, storage: adapter });
  store.on('error', () => {});
  env.defer(() => store.close());
  await store.ready();
  return { store, adapter };
}

function exactly(value: unknown): string {
  return JSON.stringify(value);
}

describeRedis('redisStorage: round-trip fidelity', (env) => {
  test('a whole document, via the log, a snapshot and a follower', async () => {
    const key = env.key('fidelity');
    const expected = exactly(awkwardDocument());
    const { store: writer, adapter } = await openStore(env, key);
    const { store: follower } = await openStore(env, key, {}, {});
    await writer.put('/', awkwardDocument());

    const fromLog = await openStore(env, key, { compaction: false });
    expect(exactly(await fromLog.store.get())).toBe(expected);

    expect(await adapter.compact()).toBe(true);
    const fromSnapshot = await openStore(env, key);
    expect(exactly(await fromSnapshot.store.get())).toBe(expected);

    const client = await env.client();
    expect(await client.get(adapter.keys.snapshot)).toBe(expected);

    const followed = await eventually('the follower', () => (follower.store.revision >= 1 ? follower.store : undefined));
    expect(exactly(await followed.read((root) => root))).toBe(expected);
  });

  test('each value written on its own, at paths with "/" and "~" in keys', async () => {
    const key = env.key('members');
    const { store: writer } = await openStore(env, key, {}, { members: {} });
    const document = awkwardDocument();
    for (const member of Object.keys(document)) {
      await writer.put(['members', member], document[member] as JsonValue);
    }
    for (const member of Object.keys(document)) {
      await writer.patch(['members'], [{ op: 'add', path: `/${member.replace(/~/g, '~0').replace(/\//g, '~1')}-copy`, value: document[member] as JsonValue }], {
        type: 'json-patch',
      });
    }
    const expected = exactly(await writer.get());
    const { store: reader } = await openStore(env, key, { compaction: false });
    expect(exactly(await reader.get())).toBe(expected);
    const value = (await reader.get(['members'])) as Record<string, JsonValue>;
    expect(value['maxSafeInteger']).toBe(9007199254740991);
    expect(value['small']).toBe(1e-7);
    expect(value['emptyArray']).toEqual([]);
    expect(Array.isArray(value['emptyArray-copy'])).toBe(true);
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype);
    expect(Object.keys(value)).toContain('__proto__');
  });

  test('a document that is just an empty array, or a number', async () => {
    for (const initial of [[], 2 ** 53 - 1, 1e-7, '', null] as JsonValue[]) {
      const key = env.key('root');
      const { store } = await openStore(env, key, {}, initial);
      await store.put('/', initial);
      const { store: reader } = await openStore(env, key, {}, { wrong: true });
      expect(exactly(await reader.get())).toBe(exactly(initial));
    }
  });

  // What is committed must be the change as written, not the value as later
  // operations of the same patch left it ([{add /a []}, {add /a/0 1}] once
  // reached storage as [{add /a [1]}, ...], which replays to [1, 1]).
  test('a patch that fills a container it just added reaches other processes as written', async () => {
    const key = env.key('alias');
    const { store: writer } = await openStore(env, key);
    await writer.patch(
      '/',
      [
        { op: 'add', path: '/a', value: [] },
        { op: 'add', path: '/a/0', value: 1 },
      ],
      { type: 'json-patch' },
    );
    expect(await writer.get()).toEqual({ a: [1] });
    const { store: reader } = await openStore(env, key, { compaction: false });
    expect(await reader.get()).toEqual({ a: [1] });
  });
});
