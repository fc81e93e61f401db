/**
 * Writes are atomic and serialized per store: concurrent writes to
 * different paths all survive, and optimistic read-modify-write loops that
 * retry on 409/412 lose no update.
 */
import { afterEach, describe, expect, test } from 'vitest';
import type { StorageAdapter } from '../../src/index.js';
import { closeServers, hosts, serve, type Served } from './hosts.js';

afterEach(closeServers);

const JSON_PATCH = 'application/json-patch+json';

/** Randomized backoff before a retry, as a polite client does (it keeps the test fast, not correct). */
const backoff = () => new Promise((resolve) => setTimeout(resolve, Math.random() * 20));

/** Increments /counter/n with a JSON Patch guarded by `test`, retrying on 409. */
async function incrementWithTest(ctx: Served): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const current = (await ctx.get('/counter/n')).json() as number;
    const reply = await ctx.patch('/counter', [
      { op: 'test', path: '/n', value: current },
      { op: 'replace', path: '/n', value: current + 1 },
    ], JSON_PATCH);
    if (reply.status === 200) return attempt;
    expect(reply.status).toBe(409);
    await backoff();
  }
}

/** Increments /counter/n with a JSON Patch guarded by If-Match, retrying on 412. */
async function incrementWithIfMatch(ctx: Served): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    // Value and ETag from the same response, so they describe the same state.
    const read = await ctx.get('/counter');
    const current = (read.json() as { n: number }).n;
    const reply = await ctx.patch('/counter', [{ op: 'replace', path: '/n', value: current + 1 }], JSON_PATCH, {
      'If-Match': read.headers.etag as string,
    });
    if (reply.status === 200) return attempt;
    expect(reply.status).toBe(412);
    await backoff();
  }
}

/**
 * A storage that confirms each commit a little later, so writes overlap in
 * time, and that records any commit the engine started before the previous
 * one settled or out of revision order (a serialized store never does).
 */
function slowStorage(): StorageAdapter & { violations: string[] } {
  let inFlight = false;
  let last = 0;
  const violations: string[] = [];
  return {
    violations,
    load: () => undefined,
    commit: async (change) => {
      if (inFlight) violations.push(`revision ${change.revision} committed while another commit was in flight`);
      if (change.revision !== last + 1) violations.push(`revision ${change.revision} after ${last}`);
      inFlight = true;
      await new Promise((resolve) => setTimeout(resolve, 1));
      inFlight = false;
      last = change.revision;
    },
  };
}

describe.each(hosts)('$name', (host) => {
  test.each([
    ['memory storage', () => undefined],
    ['storage that commits asynchronously', slowStorage],
  ])('100 concurrent PUTs to different keys all land (%s)', async (_name, makeStorage) => {
    const storage = makeStorage();
    const ctx = await serve(host, { initial: { keep: 'me' }, storage });
    const replies = await Promise.all([...Array(100).keys()].map((i) => ctx.put(`/items/k${i}`, { i })));
    // The first write to create /items is 201; so is every later new key.
    expect(replies.map((r) => r.status)).toEqual(Array(100).fill(201));
    const doc = (await ctx.doc()) as { keep: string; items: Record<string, { i: number }> };
    expect(doc.keep).toBe('me');
    expect(Object.keys(doc.items)).toHaveLength(100);
    for (let i = 0; i < 100; i++) expect(doc.items[`k${i}`]).toEqual({ i });
    expect(ctx.store.store.revision).toBe(100);
    expect(storage?.violations ?? []).toEqual([]);
  });

  test('100 concurrent appends with "-" get 100 distinct indices', async () => {
    const ctx = await serve(host, { initial: { list: [] } });
    const replies = await Promise.all([...Array(100).keys()].map((i) => ctx.put('/list/-', i)));
    const locations = replies.map((r) => r.headers.location);
    expect(new Set(locations).size).toBe(100);
    const list = ((await ctx.doc()) as { list: number[] }).list;
    expect([...list].sort((a, b) => a - b)).toEqual([...Array(100).keys()]);
    for (const [i, reply] of replies.entries()) {
      expect(reply.headers.location).toBe(`${host.base}/list/${list.indexOf(i)}`);
    }
  });

  test.each([
    ['memory storage', () => undefined],
    ['storage that commits asynchronously', slowStorage],
  ])('100 JSON Patch increments retrying on 409 (test) and 412 (If-Match) all land (%s)', async (_name, makeStorage) => {
    const storage = makeStorage();
    const ctx = await serve(host, { initial: { counter: { n: 0 } }, storage });
    const attempts = await Promise.all([...Array(100).keys()].map((i) => (i % 2 === 0 ? incrementWithTest(ctx) : incrementWithIfMatch(ctx))));
    expect(await ctx.doc()).toEqual({ counter: { n: 100 } });
    // Exactly one revision per successful increment: failed attempts wrote nothing.
    expect(ctx.store.store.revision).toBe(100);
    expect(attempts.every((n) => n >= 1)).toBe(true);
    expect(storage?.violations ?? []).toEqual([]);
  });

  test('a write and a whole-document replace interleave without tearing', async () => {
    const ctx = await serve(host, { initial: { a: 0, b: 0 } });
    const replies = await Promise.all([
      ...[...Array(50).keys()].map((i) => ctx.patch('/', { a: i + 1, b: i + 1 })),
      ...[...Array(50).keys()].map(() => ctx.get('/')),
    ]);
    for (const reply of replies) {
      const doc = reply.json() as { a: number; b: number };
      expect(doc.a).toBe(doc.b);
    }
  });
});
