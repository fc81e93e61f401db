/**
 * Group commit: the writes that reach one process while its previous
 * changes are with Redis go to Redis together, in one script call
 * (`commitBatch`). Each request is still answered on its own: a write whose
 * precondition fails is refused alone, every answer's body and ETag are the
 * resource as of the revision its change got, also when the group was
 * appended after another process' change (a rebase) or refused and retried.
 *
 * Over HTTP to real Redis. The first group is held back (a wrapper around
 * the storage's `commitBatch`) until every request of the test has reached
 * the server, so the rest are sure to be waiting together.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect, test } from 'vitest';
import { jsonStore, type JsonStore } from '../../src/json-store.js';
import { contentTag, formatEtag } from '../../src/document/etag.js';
import { planPut } from '../../src/document/operations.js';
import { redisStorage, type RedisStorage } from '../../src/storage/redis.js';
import type { Change } from '../../src/storage/types.js';
import { describeRedis, eventually, fetchJson, type RedisTestEnv } from './helpers.js';

interface Served {
  store: JsonStore;
  storage: RedisStorage;
  url: string;
  /** Requests that reached the server so far. */
  arrived: () => number;
  /** Sizes of the groups handed to `commitBatch`. */
  groups: number[];
  /** Makes the next `commitBatch` call wait until `release` resolves. */
  holdNext: (release: Promise<unknown>) => void;
}

async function serve(env: RedisTestEnv, key: string, initial: unknown): Promise<Served> {
  const client = await env.client();
  const storage = redisStorage({ client, key });
  const store = jsonStore({ initial: initial as never, storage });
  store.on('error', () => {});
  const groups: number[] = [];
  let held: Promise<unknown> | undefined;
  const commitBatch = storage.commitBatch.bind(storage);
  storage.commitBatch = async (changes: readonly Change[], options) => {
    groups.push(changes.length);
    const wait = held;
    held = undefined;
    if (wait !== undefined) await wait;
    return commitBatch(changes, options);
  };
  let arrived = 0;
  const server = http.createServer((req, res) => {
    arrived += 1;
    store(req, res, () => {
      res.statusCode = 404;
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  env.defer(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await store.close();
  });
  await store.ready();
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { store, storage, url, arrived: () => arrived, groups, holdNext: (release) => (held = release) };
}

function patch(url: string, body: unknown, headers: Record<string, string> = {}) {
  return fetchJson(url, { method: 'PATCH', headers: { 'content-type': 'application/merge-patch+json', ...headers }, body: JSON.stringify(body) });
}

/** The ETag the store gives a value whose compact JSON is `body`'s. */
function etagOfBody(body: unknown): string {
  return formatEtag(contentTag(JSON.stringify(body)));
}

/** A promise and the function that resolves it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

type Answer = Awaited<ReturnType<typeof fetchJson>>;

/**
 * Holds `a`'s first write with Redis (it goes alone), runs `whileFirstHeld`,
 * lets `rest` reach the server behind it in this order, then holds their
 * group with Redis too. `release` lets the group go.
 */
async function heldGroup(a: Served, first: () => Promise<Answer>, rest: (() => Promise<Answer>)[], whileFirstHeld?: () => Promise<void>) {
  const firstGone = gate();
  const released = gate();
  const before = a.arrived();
  const calls = a.groups.length;
  a.holdNext(firstGone.promise);
  const firstAnswer = first();
  await eventually('the first change with Redis', () => a.groups.length === calls + 1);
  await whileFirstHeld?.();
  const restAnswers: Promise<Answer>[] = [];
  for (const [i, send] of rest.entries()) {
    restAnswers.push(send());
    await eventually('the request at the server, in order', () => a.arrived() - before === i + 2);
  }
  a.holdNext(released.promise);
  firstGone.open();
  await eventually('the group with Redis', () => a.groups.length === calls + 2);
  return { first: firstAnswer, rest: restAnswers, calls, release: released.open };
}

describeRedis('redisStorage: group commit', (env) => {
  test('concurrent PATCHes go in groups; a failed precondition refuses only its own request; each answer is exact', async () => {
    const key = env.key('group');
    const a = await serve(env, key, { leaves: { k0: 0 } });
    await patch(`${a.url}/leaves`, { k0: 1 }); // the first change carries the starting document
    const released = gate();
    a.holdNext(released.promise);
    const count = 12;
    const before = a.arrived();
    const writes = Array.from({ length: count }, (_, i) =>
      i === 5 ? patch(`${a.url}/leaves`, { k5: 5 }, { 'If-Match': '"not-the-current-tag"' }) : patch(`${a.url}/leaves`, { [`k${i}`]: i + 100 }),
    );
    await eventually('every request at the server', () => a.arrived() - before === count);
    released.open();
    const answers = await Promise.all(writes);

    expect(answers[5]?.status).toBe(412);
    const accepted = answers.filter((_, i) => i !== 5);
    for (const answer of accepted) {
      expect(answer.status).toBe(200);
      expect(answer.etag).toBe(etagOfBody(answer.body));
    }
    // At least one call carried several changes.
    expect(Math.max(...a.groups)).toBeGreaterThan(1);
    // Each answer holds its own write and everything committed before it: they line up, one revision each.
    const sizes = accepted.map((answer) => Object.keys(answer.body as object).length).sort((x, y) => x - y);
    expect(new Set(sizes).size).toBe(accepted.length);
    const final = await fetchJson(`${a.url}/leaves`);
    const expected: Record<string, number> = { k0: 100 };
    for (let i = 1; i < count; i++) if (i !== 5) expected[`k${i}`] = i + 100;
    expect(final.body).toEqual(expected);
    expect(final.etag).toBe(etagOfBody(expected));
    for (const answer of accepted) {
      for (const [leaf, value] of Object.entries(answer.body as Record<string, number>)) expect(value).toBe(expected[leaf]);
    }
    // What Redis holds is what was answered: a new store loads the same document.
    const fresh = jsonStore({ storage: redisStorage({ client: await env.client(), key, follow: false }) });
    env.defer(() => fresh.close());
    expect(await fresh.get('/leaves')).toEqual(expected);
  });

  test("a group held while another process writes elsewhere is appended after that write, and its answers include it", async () => {
    const key = env.key('group-rebase');
    const a = await serve(env, key, { leaves: {}, other: 0 });
    const b = await serve(env, key, { leaves: {}, other: 0 });
    await patch(`${a.url}/leaves`, { start: true });
    await eventually('b following a', async () => expect((await fetchJson(`${b.url}/leaves`)).body).toEqual({ start: true }) ?? true);
    // The first write goes alone and is held; the next three wait, then go as one group, held too.
    const { first, rest, calls, release } = await heldGroup(
      a,
      () => patch(`${a.url}/leaves`, { x0: 0 }),
      [1, 2, 3].map((i) => () => patch(`${a.url}/leaves`, { [`x${i}`]: i })),
    );
    expect(a.groups[calls + 1]).toBe(3);
    // Meanwhile the other process writes another leaf, and is answered first.
    const fromB = await patch(`${b.url}/leaves`, { fromB: 'b' });
    expect(fromB.status).toBe(200);
    release();
    const answers = await Promise.all([first, ...rest]);
    expect(answers[0]?.body).toEqual({ start: true, x0: 0 });
    for (const [i, answer] of answers.entries()) {
      expect(answer.status).toBe(200);
      expect(answer.etag).toBe(etagOfBody(answer.body));
      // The group was appended after b's change: its answers are as of revisions that have it.
      if (i > 0) expect(answer.body).toMatchObject({ start: true, fromB: 'b', x0: 0, [`x${i}`]: i });
    }
    // Appended, not refused: no call after the group's.
    expect(a.groups.length).toBe(calls + 2);
    const expected = { start: true, fromB: 'b', x0: 0, x1: 1, x2: 2, x3: 3 };
    expect((await fetchJson(`${a.url}/leaves`)).body).toEqual(expected);
    await eventually('b following a', async () => expect((await fetchJson(`${b.url}/leaves`)).body).toEqual(expected) ?? true);
  });

  test('in a group appended after another process\' write, a write that changes nothing is answered as of its place in the group', async () => {
    const key = env.key('group-noop');
    const a = await serve(env, key, { leaves: {}, other: 0 });
    const b = await serve(env, key, { leaves: {}, other: 0 });
    await patch(`${a.url}/leaves`, { start: true });
    await eventually('b following a', async () => expect((await fetchJson(`${b.url}/leaves`)).body).toEqual({ start: true }) ?? true);
    // The group: an empty merge patch (no change), then a change after it.
    const { first, rest, release } = await heldGroup(a, () => patch(`${a.url}/leaves`, { x0: 0 }), [
      () => patch(`${a.url}/leaves`, {}),
      () => patch(`${a.url}/leaves`, { x1: 1 }),
    ]);
    expect((await patch(`${b.url}/leaves`, { fromB: 'b' })).status).toBe(200);
    release();
    const [, [noop, after]] = [await first, await Promise.all(rest)];
    // After b's change (the group was appended after it), before x1 (planned after it).
    expect(noop?.status).toBe(200);
    expect(noop?.body).toEqual({ start: true, x0: 0, fromB: 'b' });
    expect(noop?.etag).toBe(etagOfBody(noop?.body));
    expect(after?.body).toEqual({ start: true, x0: 0, fromB: 'b', x1: 1 });
  });

  test('a group that overlaps another process\' write is refused whole and retried: no 503, the later writes win', async () => {
    const key = env.key('group-conflict');
    const a = await serve(env, key, { leaves: {} });
    const b = await serve(env, key, { leaves: {} });
    await patch(`${a.url}/leaves`, { start: true });
    await eventually('b following a', async () => expect((await fetchJson(`${b.url}/leaves`)).body).toEqual({ start: true }) ?? true);
    // Hold a group of several changes (the first goes alone: hold the second call).
    const { first, rest, calls, release } = await heldGroup(
      a,
      () => patch(`${a.url}/leaves`, { y0: 0 }),
      [1, 2, 3].map((i) => () => patch(`${a.url}/leaves`, { [`y${i}`]: i })),
    );
    expect((await first).status).toBe(200);
    expect(a.groups[calls + 1]).toBe(3);
    // b writes y2, which the held group writes too: the group is refused whole, then done again after b's write.
    expect((await patch(`${b.url}/leaves`, { y2: 'b' })).status).toBe(200);
    release();
    const answers = await Promise.all(rest);
    for (const answer of answers) {
      expect(answer.status).toBe(200);
      expect(answer.etag).toBe(etagOfBody(answer.body));
    }
    const expected = { start: true, y0: 0, y1: 1, y2: 2, y3: 3 };
    expect((await fetchJson(`${a.url}/leaves`)).body).toEqual(expected);
    await eventually('b following a', async () => expect((await fetchJson(`${b.url}/leaves`)).body).toEqual(expected) ?? true);
    // More calls than groups: the refused group went again.
    expect(a.groups.length).toBeGreaterThan(calls + 2);
  });
  test('after a group lands behind another process\' write, the next group is answered as it lands: each answer exact at its revision, landed as planned or not', async () => {
    const key = env.key('group-later');
    const a = await serve(env, key, { leaves: {} });
    const b = await serve(env, key, { leaves: {} });
    await patch(`${a.url}/leaves`, { start: true });
    await eventually('b following a', async () => expect((await fetchJson(`${b.url}/leaves`)).body).toEqual({ start: true }) ?? true);

    /** `first` goes alone and is held while b writes (it lands after b's write); `rest` waits behind it as one group, held until `meanwhile` has run. */
    const round = async (first: unknown, rest: unknown[], fromB: unknown, meanwhile: () => Promise<void>) => {
      const held = await heldGroup(
        a,
        () => patch(`${a.url}/leaves`, first),
        rest.map((body) => () => patch(`${a.url}/leaves`, body)),
        async () => expect((await patch(`${b.url}/leaves`, fromB)).status).toBe(200),
      );
      // One call for the group (a write that changes nothing hands storage no change).
      expect(a.groups[held.calls + 1]).toBe(rest.filter((body) => Object.keys(body as object).length > 0).length);
      await meanwhile();
      held.release();
      return [await held.first, ...(await Promise.all(held.rest))];
    };
    const exact = (answers: Answer[], bodies: unknown[]) => {
      expect(answers.map((answer) => answer.status)).toEqual(bodies.map(() => 200));
      expect(answers.map((answer) => answer.body)).toEqual(bodies);
      for (const answer of answers) expect(answer.etag).toBe(etagOfBody(answer.body));
    };

    // Landed as planned: each answer holds the writes up to its own, a write that changes nothing the state where it stands.
    const s = { start: true, b1: 1 };
    exact(await round({ x0: 0 }, [{ x1: 1 }, {}, { x2: 2 }], { b1: 1 }, async () => {}), [
      { ...s, x0: 0 },
      { ...s, x0: 0, x1: 1 },
      { ...s, x0: 0, x1: 1 },
      { ...s, x0: 0, x1: 1, x2: 2 },
    ]);
    // Landed behind another write of b's, made while the group was held.
    const t = { ...s, x0: 0, x1: 1, x2: 2, b2: 2 };
    const answers = await round({ y0: 0 }, [{ y1: 1 }, {}, { y2: 2 }], { b2: 2 }, async () => {
      expect((await patch(`${b.url}/leaves`, { b3: 3 })).status).toBe(200);
    });
    exact(answers, [
      { ...t, y0: 0 },
      { ...t, y0: 0, b3: 3, y1: 1 },
      { ...t, y0: 0, b3: 3, y1: 1 },
      { ...t, y0: 0, b3: 3, y1: 1, y2: 2 },
    ]);
    const expected = { ...t, y0: 0, b3: 3, y1: 1, y2: 2 };
    await eventually('b following a', async () => expect((await fetchJson(`${b.url}/leaves`)).body).toEqual(expected) ?? true);
    expect((await fetchJson(`${a.url}/leaves`)).etag).toBe(etagOfBody(expected));
    // The last group landed behind b's write, so the next is answered as it lands too: an answer that is undefined is still an answer.
    const quiet = await a.store.store.write((root) => planPut(root, ['leaves', 'quiet'], true), () => undefined);
    expect(quiet).toBeUndefined();
    expect((await fetchJson(`${a.url}/leaves/quiet`)).body).toBe(true);
  });

  test("once another process's change has been heard, a group is answered once, as it lands, even when it lands behind a further change", async () => {
    const key = env.key('group-heard');
    const a = await serve(env, key, { leaves: {} });
    const b = await serve(env, key, { leaves: {} });
    await patch(`${a.url}/leaves`, { start: true });
    await eventually('b following a', async () => expect((await fetchJson(`${b.url}/leaves`)).body).toEqual({ start: true }) ?? true);
    // a's last group landed as planned; then it hears b's write through its follower.
    const heard = new Promise((resolve) => a.store.store.on('change', (event) => event.origin === 'remote' && resolve(event.revision)));
    expect((await patch(`${b.url}/leaves`, { b1: 1 })).status).toBe(200);
    await heard;

    // Three writes in one group, planned within a second of hearing b (the store's window), held with Redis while b writes again: the group lands behind b's second write.
    const released = gate();
    const calls = a.groups.length;
    a.holdNext(released.promise);
    const answered: { leaf: string; revision: number; leaves: unknown }[] = [];
    const writes = ['x0', 'x1', 'x2'].map((leaf) =>
      a.store.store.write(
        (root) => planPut(root, ['leaves', leaf], true),
        (root, _plan, revision) => {
          const leaves = structuredClone((root as { leaves: unknown }).leaves);
          answered.push({ leaf, revision, leaves });
          return revision;
        },
      ),
    );
    await eventually('the group with Redis', () => a.groups.length === calls + 1);
    expect(a.groups[calls]).toBe(3);
    expect((await patch(`${b.url}/leaves`, { b2: 2 })).status).toBe(200);
    released.open();
    const revisions = await Promise.all(writes);

    // Each answer made once, at the revision its change got, after b's second write.
    expect(answered.map((answer) => answer.leaf)).toEqual(['x0', 'x1', 'x2']);
    expect(answered.map((answer) => answer.revision)).toEqual(revisions);
    const base = { start: true, b1: 1, b2: 2 };
    expect(answered.map((answer) => answer.leaves)).toEqual([
      { ...base, x0: true },
      { ...base, x0: true, x1: true },
      { ...base, x0: true, x1: true, x2: true },
    ]);
  });

  test('in one group, a write whose answer throws after its change was applied is undone alone; the others commit', async () => {
    const key = env.key('group-respond');
    const a = await serve(env, key, { leaves: {} });
    await patch(`${a.url}/leaves`, { start: true });
    const calls = a.groups.length;
    const revision = a.store.store.revision;
    // Written together through the engine, so they are planned in one group.
    const writes = [0, 1, 2, 3].map((i) =>
      a.store.store.write(
        (root) => planPut(root, ['leaves', `z${i}`], i),
        (_root, _plan, at) => {
          if (i === 2) throw new Error('injected: respond');
          return at;
        },
      ),
    );
    const outcomes = await Promise.allSettled(writes);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect(String((outcomes[2] as PromiseRejectedResult).reason)).toContain('injected: respond');
    // One call with the three changes left, at the next three revisions.
    expect(a.groups.slice(calls)).toEqual([3]);
    expect(outcomes.filter((o) => o.status === 'fulfilled').map((o) => (o as PromiseFulfilledResult<unknown>).value)).toEqual([revision + 1, revision + 2, revision + 3]);
    const expected = { start: true, z0: 0, z1: 1, z3: 3 };
    const served = await fetchJson(`${a.url}/leaves`);
    expect(served.body).toEqual(expected);
    const fresh = jsonStore({ storage: redisStorage({ client: await env.client(), key, follow: false }) });
    env.defer(() => fresh.close());
    expect(await fresh.get('/leaves')).toEqual(expected);
  });
});
