/**
 * Many removals from one large object: applied, refused by storage (rolled
 * back) and reloaded by storage, the document comes out exact, key order
 * included (it shows in every GET and in the ETag).
 */
import { afterEach, describe, expect, test } from 'vitest';
import { jsonStore, memoryStorage, type JsonValue, type StorageAdapter } from '../../src/index.js';
import { closeServers, hosts, serve } from './hosts.js';
import { expectJson, expectProblem, expectUnchanged, snapshot } from './support.js';

afterEach(closeServers);

const MERGE = 'application/merge-patch+json';
const JSON_PATCH = 'application/json-patch+json';

/** 20 000 members, integer-like keys (which enumerate first) and `__proto__` among them. */
function bigObject(): Record<string, JsonValue> {
  const big: Record<string, JsonValue> = {};
  for (let i = 0; i < 20_000; i++) big[`k${i}`] = i % 3 === 0 ? { n: i } : i;
  big['5'] = 'five';
  big['12'] = 'twelve';
  Object.defineProperty(big, '__proto__', { value: 'own', writable: true, enumerable: true, configurable: true });
  return big;
}

/** What a merge patch does, computed independently: members keep their place, new ones go last. */
function merged(original: Record<string, JsonValue>, patch: Record<string, JsonValue>): Record<string, JsonValue> {
  const out: Record<string, JsonValue> = {};
  const define = (key: string, value: JsonValue) => Object.defineProperty(out, key, { value, writable: true, enumerable: true, configurable: true });
  for (const key of Object.keys(original)) {
    if (!Object.hasOwn(patch, key)) define(key, original[key] as JsonValue);
    else if (patch[key] !== null) define(key, patch[key] as JsonValue);
  }
  for (const key of Object.keys(patch)) if (!Object.hasOwn(original, key) && patch[key] !== null) define(key, patch[key] as JsonValue);
  return out;
}

/** 900 removals spread over the object, a few replacements and 50 new members. */
function bigMergePatch(): Record<string, JsonValue> {
  const patch: Record<string, JsonValue> = {};
  for (let i = 0; i < 1800; i += 2) patch[`k${i * 11}`] = null;
  patch['k1'] = 'changed';
  patch['5'] = null;
  Object.defineProperty(patch, '__proto__', { value: null, writable: true, enumerable: true, configurable: true });
  for (let i = 0; i < 50; i++) patch[`new${i}`] = i;
  return patch;
}

/** Memory storage whose commits can be made to fail. */
function switchableStorage(): { storage: StorageAdapter; fail(on: boolean): void } {
  const inner = memoryStorage();
  let failing = false;
  const storage: StorageAdapter = {
    capabilities: inner.capabilities,
    load: () => inner.load(),
    commit: (change) => {
      if (failing) throw new Error('disk on fire');
      return inner.commit(change);
    },
  };
  return { storage, fail: (on) => void (failing = on) };
}

describe.each(hosts)('$name', (host) => {
  test('a merge patch removing 900 of 20 000 keys: refused by storage it changes nothing; accepted, the order is exact, after a reload too', async () => {
    const big = bigObject();
    const initial = { before: 1, big, after: 2 };
    const { storage, fail } = switchableStorage();
    const ctx = await serve(host, { initial, storage });
    ctx.store.on('error', () => {});
    const before = await snapshot(ctx);
    expect(before.text).toBe(JSON.stringify(initial));

    const patch = bigMergePatch();
    fail(true);
    expectProblem(await ctx.patch('/big', patch, MERGE), 503);
    await expectUnchanged(ctx, before);

    fail(false);
    const expected = merged(big, patch);
    expect(Object.keys(expected)).toHaveLength(20_003 - 902 + 50);
    expectJson(await ctx.patch('/big', patch, MERGE), 200, expected);
    const text = JSON.stringify({ before: 1, big: expected, after: 2 });
    expect((await ctx.get('/')).text).toBe(text);

    // The adapter applied the same operations to its own copy.
    await ctx.store.close();
    const reopened = await serve(host, { storage });
    expect((await reopened.get('/')).text).toBe(text);
  });

  test('JSON Patch removals interleaved with adds, replaces and moves on one object roll back exactly', async () => {
    const big = bigObject();
    const ctx = await serve(host, { initial: { big, other: { x: 1 } } });
    const before = await snapshot(ctx);
    const ops: unknown[] = [];
    for (let i = 0; i < 400; i++) {
      ops.push({ op: 'replace', path: `/big/k${i * 7}`, value: 'replaced' });
      ops.push({ op: 'remove', path: `/big/k${i * 7}` });
    }
    ops.push(
      { op: 'remove', path: '/big/k9' },
      { op: 'add', path: '/big/k9', value: 'now last' },
      { op: 'move', from: '/big/k10', path: '/big/renamed' },
      { op: 'move', from: '/big/k11', path: '/other/k11' },
      { op: 'remove', path: '/big/k12/n' },
      { op: 'add', path: '/big/k12/m', value: 1 },
      { op: 'remove', path: '/big/__proto__' },
      { op: 'add', path: '/big/3', value: 'three' },
      { op: 'remove', path: '/big/12' },
    );
    const reply = await ctx.patch('/', [...ops, { op: 'test', path: '/other/x', value: 2 }], JSON_PATCH);
    expectProblem(reply, 409, `JSON Patch operation ${ops.length} (test "/other/x"): the value at /other/x is not the expected one`);
    await expectUnchanged(ctx, before);

    // The same operations without the failing test apply, in the order RFC 6902 gives.
    expect((await ctx.patch('/', ops, JSON_PATCH)).status).toBe(200);
    const expected = bigObject();
    for (let i = 0; i < 400; i++) delete expected[`k${i * 7}`];
    delete expected['k9'];
    expected['k9'] = 'now last';
    delete expected['k10'];
    expected['renamed'] = 10;
    delete expected['k11'];
    expected['k12'] = { m: 1 };
    delete expected['__proto__'];
    expected['3'] = 'three';
    delete expected['12'];
    expect((await ctx.get('/')).text).toBe(JSON.stringify({ big: expected, other: { x: 1, k11: 11 } }));
  });
});

describe('a store reopened on the same memory storage', () => {
  test('sees removals and their re-adds in the order they were made', async () => {
    const storage = memoryStorage();
    const first = jsonStore({ initial: { o: { a: 1, b: 2, c: 3, d: 4 } }, storage });
    await first.patch('/o', [
      { op: 'remove', path: '/a' },
      { op: 'remove', path: '/c' },
      { op: 'add', path: '/a', value: 'again' },
    ], { type: 'json-patch' });
    await first.close();
    const second = jsonStore({ storage });
    expect(JSON.stringify(await second.get())).toBe('{"o":{"b":2,"d":4,"a":"again"}}');
  });
});
