/**
 * The hub without a copy ("direct", for stores that commit one change at a
 * time): touched paths read from the document after the change must give
 * the same events as following the change on a copy, and a stream that
 * starts while a change is in flight must start from a committed revision,
 * whether that change is then saved or refused.
 */
import type { Socket } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { memoryStorage, type JsonValue, type StorageAdapter } from '../../src/index.js';
import { applyOperations } from '../../src/document/apply.js';
import type { PatchOperation } from '../../src/document/patch-types.js';
import { toPath } from '../../src/document/path.js';
import { followOperation } from '../../src/live/copy.js';
import { applyLiveEvent, eventsFor } from '../../src/live/events.js';
import { touchedByChange } from '../../src/live/touches.js';
import type { Change } from '../../src/storage/types.js';
import { randomSource } from '../support/random.js';
import { SseClient } from '../support/sse-client.js';
import { eventually } from '../support/wait.js';
import { closeLiveServers, ReferenceHistory, replayClient, serveLive } from './helpers.js';

afterEach(closeLiveServers);

describe('touched paths read after the change', () => {
  const keys = ['a', 'b', 'list', '0', '1', '2', '-'];
  const subscribed = ['/', '/a', '/list', '/list/0', '/list/1', '/list/2', '/a/list', '/a/list/1', '/b', '/nothing'].map((path) => toPath(path));

  function randomChange(random: () => number): PatchOperation[] {
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const pointer = () => (random() < 0.05 ? '' : '/' + Array.from({ length: 1 + Math.floor(random() * 3) }, () => pick(keys)).join('/'));
    const value = (): JsonValue => pick([null, 1, 'x', [1, 2], { a: 1 }, []] as JsonValue[]);
    return Array.from({ length: 1 + Math.floor(random() * 4) }, () => {
      const op = pick(['add', 'add', 'remove', 'remove', 'replace', 'move', 'copy'] as const);
      if (op === 'remove') return { op, path: pointer() };
      if (op === 'move' || op === 'copy') return { op, from: pointer(), path: pointer() };
      return { op, path: pointer(), value: value() };
    });
  }

  test('random changes: the events bring every subscriber from before to after, and single operations touch exactly what the copy says', () => {
    const random = randomSource(7);
    let checked = 0;
    let single = 0;
    for (let round = 0; round < 15_000; round++) {
      const before = { a: { list: [1, 2, 3], b: null }, list: ['p', 'q', 'r'], b: 1 } as JsonValue;
      const state = { root: structuredClone(before) };
      let ops: PatchOperation[];
      try {
        ops = applyOperations(state, randomChange(random)).ops;
      } catch {
        continue;
      }
      if (ops.length === 0) continue;
      const touched = touchedByChange(state.root, ops);
      for (const path of subscribed) {
        let value: JsonValue | null = structuredClone(valueAt(before, path));
        for (const event of eventsFor(path, touched, state.root)) value = applyLiveEvent(value, structuredClone(event));
        expect({ ops, path, value }).toEqual({ ops, path, value: valueAt(state.root, path) });
      }
      if (ops.length === 1 && ops[0]?.op !== 'move') {
        const copy = { root: structuredClone(before) };
        const onCopy: string[][] = [];
        followOperation(copy, ops[0] as PatchOperation, onCopy);
        expect({ ops, touched }).toEqual({ ops, touched: onCopy });
        single++;
      }
      checked++;
    }
    expect(checked).toBeGreaterThan(1000);
    expect(single).toBeGreaterThan(300);
  });

  test('an append or a removal at the end of an array touches that element only, also within a larger change', () => {
    const after = { list: ['p', 'q', 'r', 's'] };
    expect(touchedByChange(after, [{ op: 'add', path: '/list/-', value: 's' }])).toEqual([['list', '3']]);
    expect(touchedByChange(after, [{ op: 'add', path: '/list/1', value: 'q' }])).toEqual([['list']]);
    // Two appends: each one at the end of the array as it was then.
    const two = { list: ['p', 'q', 'r', 's'] };
    expect(touchedByChange(two, [{ op: 'add', path: '/list/-', value: 'r' }, { op: 'add', path: '/list/3', value: 's' }])).toEqual([['list', '2'], ['list', '3']]);
    expect(touchedByChange({ list: ['p'] }, [{ op: 'remove', path: '/list/2' }, { op: 'remove', path: '/list/1' }])).toEqual([['list', '2'], ['list', '1']]);
    // A removal from the middle, then an append: the array, then the appended element.
    expect(touchedByChange({ list: ['q', 'p'] }, [{ op: 'remove', path: '/list/0' }, { op: 'add', path: '/list/-', value: 'p' }])).toEqual([['list'], ['list', '1']]);
  });
});

describe('direct mode: one JSON Patch of many operations on one array', () => {
  test('3000 appends and removals in one PATCH: every stream ends at what GET gives', async () => {
    const live = await serveLive({ storage: memoryStorage(), initial: { list: [0, 1, 2, 3, 4] }, maxPatchOperations: 5000 });
    await live.store.ready();
    expect(live.store.store.pipelinesWrites).toBe(false);
    const paths = ['/', '/list', '/list/0', '/list/3', '/list/700', '/list/1499', '/list/5000'];
    const clients = await Promise.all(paths.map((path) => SseClient.open(`${live.url}${path}`)));
    for (const client of clients) await client.waitForMessages(1);
    // Appends and removals at the end only: each touches one element, placed by the array's length at that point of the change.
    let length = 5;
    const atTheEnd: PatchOperation[] = [];
    for (let i = 0; atTheEnd.length < 3000; i++) {
      if (i % 4 === 3) atTheEnd.push({ op: 'remove', path: `/list/${--length}` });
      else if (i % 4 === 1) atTheEnd.push({ op: 'add', path: `/list/${length++}`, value: i });
      else atTheEnd.push({ op: 'add', path: '/list/-', value: (length++, i) });
    }
    // Then the same mixed with insertions at the front and removals from the middle (these touch the whole array).
    const mixed: PatchOperation[] = [];
    for (let i = 0; mixed.length < 3000; i++) {
      mixed.push({ op: 'add', path: '/list/-', value: -i });
      if (i % 3 === 0) mixed.push({ op: 'remove', path: '/list/1' });
      else if (i % 3 === 1) mixed.push({ op: 'add', path: '/list/0', value: `front${i}` });
      else mixed.push({ op: 'remove', path: '/list/' + String(4 + i) });
    }
    for (const ops of [atTheEnd, mixed]) {
      const seen = (clients[1] as SseClient).messages.length;
      expect((await live.write('PATCH', '/', ops, 'application/json-patch+json')).status).toBe(200);
      for (let k = 0; k < paths.length; k++) {
        const response = await fetch(`${live.url}${paths[k]}`);
        const text = await response.text();
        expect([200, 404]).toContain(response.status);
        // A path with no value streams null.
        const expected = response.status === 200 ? JSON.stringify(JSON.parse(text)) : 'null';
        const client = clients[k] as SseClient;
        await eventually(`${paths[k]} caught up`, () => JSON.stringify(replayClient(client, null).value) === expected);
      }
      // A wrong length would widen an append to the whole array: still right, but not what the end-only change should cost.
      const onList = (clients[1] as SseClient).messages.slice(seen);
      if (ops === atTheEnd) expect(onList.filter((m) => m.path === '/').length).toBe(0);
    }
  });
});

function valueAt(root: JsonValue, path: readonly string[]): JsonValue | null {
  let node: JsonValue | undefined = root;
  for (const segment of path) {
    node = node !== null && typeof node === 'object' ? (node as Record<string, JsonValue>)[segment] : undefined;
    if (node === undefined) return null;
  }
  return node;
}

/**
 * Memory storage behind an adapter whose commits are asynchronous and, while
 * `holding`, wait until the test lets them go (saved or refused); one at a
 * time (no pipelining, no commitBatch).
 */
function heldStorage(): { storage: StorageAdapter; held: () => number; release: (refuse?: boolean) => void; setHolding: (on: boolean) => void } {
  const inner = memoryStorage();
  const waiting: Array<(refuse: boolean) => void> = [];
  let holding = true;
  const storage: StorageAdapter = {
    name: 'held',
    load: (options) => inner.load(options),
    changesSince: (revision) => inner.changesSince(revision),
    commit: (change: Change, options) =>
      new Promise<void>((resolve, reject) => {
        const settle = (refuse: boolean) => {
          if (refuse) reject(new Error('refused by the test'));
          else resolve(inner.commit(change, options) as void);
        };
        if (holding) waiting.push(settle);
        else setImmediate(() => settle(false));
      }),
  };
  return {
    storage,
    held: () => waiting.length,
    release: (refuse = false) => (waiting.shift() as (refuse: boolean) => void)(refuse),
    setHolding: (on) => (holding = on),
  };
}

describe('direct mode: a stream starting while a change is in flight', () => {
  test('starts from a committed revision: not the change in flight, which then arrives as an event if saved and never if refused', async () => {
    const { storage, held, release } = heldStorage();
    const live = await serveLive({ storage, initial: { n: 0 } });
    await live.store.ready();
    expect(live.store.store.pipelinesWrites).toBe(false);
    const reference = new ReferenceHistory(live.store, { n: 0 }, live.store.store.revision);
    // A first change, saved: revision 1 (the memory storage takes the starting document with it).
    const first = live.write('PUT', '/n', 1);
    await eventually('the first commit held', () => held() === 1);
    release();
    expect((await first).status).toBe(200);

    // In flight: n = 2 in the working document, not saved yet.
    const saved = live.write('PUT', '/n', 2);
    await eventually('the second commit held', () => held() === 1);
    const early = SseClient.open(`${live.url}/n`);
    const root = SseClient.open(`${live.url}/`);
    // Both streams asked for (counted) while the change is in flight.
    await eventually('two streams starting', () => live.store.live.subscriptions === 2);
    release();
    expect((await saved).status).toBe(200);
    const [streamN, streamRoot] = await Promise.all([early, root]);
    await eventually('n = 2 on both streams', () => replayClient(streamN, null).value === 2 && (replayClient(streamRoot, null).value as { n: number }).n === 2);

    // In flight and then refused: n = 3 must never show, the next saved change does.
    const refused = live.write('PUT', '/n', 3);
    await eventually('the third commit held', () => held() === 1);
    const late = SseClient.open(`${live.url}/n`);
    await eventually('the third stream starting', () => live.store.live.subscriptions === 3);
    release(true);
    expect((await refused).status).toBeGreaterThanOrEqual(500);
    const streamLate = await late;
    await streamLate.waitForMessages(1);
    expect(streamLate.messages[0]).toMatchObject({ event: 'put', path: '/', data: 2 });
    const after = live.write('PUT', '/n', 4);
    await eventually('the fourth commit held', () => held() === 1);
    release();
    expect((await after).status).toBe(200);
    for (const client of [streamN, streamRoot, streamLate]) {
      await eventually('n = 4', () => JSON.stringify(replayClient(client, null).value).includes('4'));
      // Every event: the value GET gave at its revision; 3 never sent.
      replayClient(client, null, (at, value) => expect(value).toEqual(reference.valueAt(at, client === streamRoot ? [] : ['n'])));
      expect(client.messages.map((m) => m.data)).not.toContain(3);
    }
  });

  test('a slow stream that drains while a change is in flight gets its fresh put at a committed revision (here: the change is refused)', async () => {
    const { storage, held, release, setHolding } = heldStorage();
    setHolding(false);
    const live = await serveLive({ storage, initial: { big: '', n: 0 }, limit: '1mb', live: { bufferSize: 256 * 1024 } });
    const sockets: Socket[] = [];
    live.server.on('connection', (socket) => sockets.push(socket));
    const client = await SseClient.open(live.url + '/');
    await client.waitForMessages(1);
    client.pause();
    // Far past the buffer and whatever the kernel holds (15 MB): the stream drops its backlog and waits to send the current value.
    const chunk = 'x'.repeat(100 * 1024);
    const written = 150;
    for (let i = 0; i < written; i++) await live.store.put('/big', `${i}${chunk}`);
    const committed = await live.store.get();
    // A change in flight: n = 1 in the working document only.
    setHolding(true);
    const refused = live.store.put('/n', 1).then(
      () => 'saved',
      () => 'refused',
    );
    await eventually('the change held', () => held() === 1);
    // The client reads again: the server's socket drains while the change is still in flight.
    client.resume();
    await eventually('the socket drained', () => sockets.every((socket) => socket.destroyed || socket.writableLength === 0));
    release(true);
    expect(await refused).toBe('refused');
    await eventually('the fresh put', () => JSON.stringify(replayClient(client, null).value) === JSON.stringify(committed));
    expect(client.messages.some((m) => JSON.stringify(m.data).includes('"n":1'))).toBe(false);
    // The backlog was coalesced: this went through the fresh put.
    expect(client.messages.filter((m) => m.event === 'put').length).toBeLessThan(written);
    // And the stream goes on from there.
    setHolding(false);
    await live.store.put('/n', 2);
    await eventually('n = 2', () => (replayClient(client, null).value as { n: number }).n === 2);
    expect(client.ended).toBe(false);
  }, 120_000);
});
