/**
 * src/live/events.ts, pure: which paths an operation touches, the events a
 * subscriber gets for them, and the client-side rules that apply them. Plus
 * the `live` options, checked at factory time.
 */
import { describe, expect, test } from 'vitest';
import { applyLiveEvent, jsonStore, memoryStorage, type JsonStoreOptions, type JsonValue } from '../../src/index.js';
import { coverOf, eventsFor, formatEvent, touchesOf } from '../../src/live/events.js';
import { PathRegistry } from '../../src/live/subscriptions.js';
import { RecentChanges } from '../../src/live/replay.js';

describe('touchesOf', () => {
  const doc = { list: [1, 2, 3], obj: { a: 1 } };
  test('appends and removals at the end of an array touch the element; elsewhere the whole array', () => {
    expect(touchesOf(doc, { op: 'add', path: '/list/3', value: 4 }, true)).toEqual([['list', '3']]);
    expect(touchesOf(doc, { op: 'add', path: '/list/1', value: 4 }, true)).toEqual([['list']]);
    expect(touchesOf(doc, { op: 'remove', path: '/list/2' }, true)).toEqual([['list', '2']]);
    expect(touchesOf(doc, { op: 'remove', path: '/list/0' }, true)).toEqual([['list']]);
    expect(touchesOf(doc, { op: 'replace', path: '/list/0', value: 9 }, true)).toEqual([['list', '0']]);
  });
  test('without the state before the change (a catch-up), every insertion or removal in an array touches the array', () => {
    expect(touchesOf(doc, { op: 'add', path: '/list/3', value: 4 }, false)).toEqual([['list']]);
    expect(touchesOf(doc, { op: 'add', path: '/obj/b', value: 4 }, false)).toEqual([['obj', 'b']]);
  });
  test('move touches both ends; test touches nothing', () => {
    expect(touchesOf(doc, { op: 'move', from: '/obj/a', path: '/list/0' }, true)).toEqual([['obj', 'a'], ['list']]);
    expect(touchesOf(doc, { op: 'test', path: '/obj/a', value: 1 }, true)).toEqual([]);
  });
  test('coverOf drops repeats and paths below another touched path, keeping order', () => {
    expect(coverOf([['a', 'b'], ['c'], ['a'], ['a', 'b'], ['c', 'd']])).toEqual([['c'], ['a']]);
  });
});

describe('eventsFor', () => {
  const root = { rooms: { r1: { name: 'x', n: null, tags: ['a'] } }, other: 1 } as JsonValue;
  test('a change at or above the subscription: one put of the whole value; elsewhere: nothing', () => {
    expect(eventsFor(['rooms', 'r1'], [['rooms']], root)).toEqual([{ event: 'put', path: '/', data: { name: 'x', n: null, tags: ['a'] } }]);
    expect(eventsFor(['rooms', 'gone'], [['rooms', 'gone']], root)).toEqual([{ event: 'put', path: '/', data: null }]);
    expect(eventsFor(['rooms', 'r1'], [['other']], root)).toEqual([]);
  });
  test('below: puts relative to the subscription, percent-encoded; several members of one object: one patch', () => {
    expect(eventsFor(['rooms'], [['rooms', 'r1', 'tags', '0']], root)).toEqual([{ event: 'put', path: '/r1/tags/0', data: 'a' }]);
    expect(eventsFor([], [['rooms', 'r1', 'name'], ['rooms', 'r1', 'gone']], root)).toEqual([{ event: 'patch', path: '/rooms/r1', data: { name: 'x', gone: null } }]);
    const odd = { 'a/b c': 1 } as JsonValue;
    expect(eventsFor([], [['a/b c']], odd)).toEqual([{ event: 'put', path: '/a%2Fb%20c', data: 1 }]);
  });
  test('a stored null is sent within its parent, so that it does not read as "removed"', () => {
    expect(eventsFor([], [['rooms', 'r1', 'n']], root)).toEqual([{ event: 'put', path: '/rooms/r1', data: { name: 'x', n: null, tags: ['a'] } }]);
  });
  test('SSE text: id, event and one data line', () => {
    expect(formatEvent({ event: 'put', path: '/', data: 'a\nb' }, 7)).toBe('id: 7\nevent: put\ndata: {"path":"/","data":"a\\nb"}\n\n');
  });
});

describe('applyLiveEvent (the client rules)', () => {
  test('put sets, creating missing parents; null removes (splicing arrays); patch sets members', () => {
    let value: JsonValue | null = null;
    value = applyLiveEvent(value, { event: 'put', path: '/', data: { list: [1, 2] } });
    value = applyLiveEvent(value, { event: 'put', path: '/a/b', data: 1 });
    value = applyLiveEvent(value, { event: 'put', path: '/list/2', data: 3 });
    value = applyLiveEvent(value, { event: 'put', path: '/list/0', data: null });
    value = applyLiveEvent(value, { event: 'patch', path: '/a', data: { b: null, c: 2 } });
    expect(value).toEqual(JSON.parse('{"list":[2,3],"a":{"c":2}}'));
    expect(applyLiveEvent(value, { event: 'put', path: '/', data: null })).toBe(null);
  });
});

describe('PathRegistry and RecentChanges', () => {
  test('affected: ancestors and descendants of a touched path, not its siblings; emptied nodes are pruned', () => {
    const registry = new PathRegistry<string>();
    const root = registry.add([], 'root');
    registry.add(['a'], 'a');
    const deep = registry.add(['a', 'b', 'c'], 'abc');
    registry.add(['x'], 'x');
    const found = registry.affected([['a', 'b']]) ?? new Map();
    expect([...found.keys()].map((node) => [...node.subscribers]).flat().sort()).toEqual(['a', 'abc', 'root']);
    registry.remove(deep, 'abc');
    registry.remove(root, 'root');
    expect(registry.size).toBe(2);
    // Nobody at, above or below: nothing to do.
    expect(registry.affected([['y']])).toBeUndefined();
    expect([...(registry.affected([['a', 'b']]) ?? new Map()).keys()].map((node) => [...node.subscribers]).flat()).toEqual(['a']);
  });
  test('recent changes answer only for a complete range', () => {
    const recent = new RecentChanges(2);
    recent.push(1, [['a']]);
    recent.push(2, [['b']]);
    recent.push(3, [['c']]);
    expect(recent.since(1, 3)).toEqual([['b'], ['c']]);
    expect(recent.since(0, 3)).toBeUndefined();
    expect(recent.since(3, 3)).toEqual([]);
  });
});

describe('the live options', () => {
  function optionError(options: unknown): string {
    try {
      jsonStore(options as JsonStoreOptions);
    } catch (error) {
      expect(error).toBeInstanceOf(TypeError);
      return (error as Error).message;
    }
    throw new Error('no error');
  }
  test('checked at factory time, naming the option', () => {
    expect(optionError({ live: { keepAlive: -1 } })).toMatch(/^jsonStore\(\): option "live.keepAlive" must be/);
    expect(optionError({ live: { bufferSize: 'lots' } })).toMatch(/"live.bufferSize"/);
    expect(optionError({ live: { maxSubscriptions: 1.5 } })).toMatch(/"live.maxSubscriptions"/);
    expect(optionError({ live: { keepalive: 1 } })).toMatch(/unknown option "live.keepalive"; the live options are keepAlive/);
    expect(optionError({ live: 'yes' })).toMatch(/option "live" must be true, false or an object/);
    expect(() => jsonStore({ live: { keepAlive: 0, bufferSize: '64kb', maxSubscriptions: 0, history: 0 } })).not.toThrow();
    expect(() => jsonStore({ live: false })).not.toThrow();
    expect(() => memoryStorage({ history: -1 })).toThrow(/memoryStorage\(\): option "history"/);
  });
  test('memory storage keeps its change history within historyBytes: large changes push older ones out', async () => {
    expect(() => memoryStorage({ historyBytes: -1 })).toThrow(/memoryStorage\(\): option "historyBytes"/);
    const storage = memoryStorage({ history: 100, historyBytes: 1000 });
    const store = jsonStore({ storage });
    for (let i = 1; i <= 5; i++) await store.put(`/k${i}`, i);
    const revisions = (since: number) => storage.changesSince(since)?.map((change) => change.revision);
    expect(revisions(1)).toEqual([2, 3, 4, 5]);
    // 988 bytes of JSON: kept, but it pushes out every older one to stay within 1 000.
    await store.put('/big', 'x'.repeat(950));
    expect(revisions(5)).toEqual([6]);
    expect(revisions(1)).toBeUndefined();
    // Larger than the whole budget: not kept, and nothing before it can be listed.
    await store.put('/huge', 'y'.repeat(3000));
    expect(revisions(6)).toBeUndefined();
    expect(revisions(7)).toEqual([]);
    await store.put('/after', true);
    expect(revisions(7)).toEqual([8]);
    expect(storage.changesSince(7)?.[0]?.ops).toEqual([{ op: 'add', path: '/after', value: true }]);
    await store.close();
  });
  test('live: false turns streams off: Accept text/event-stream gets plain JSON', async () => {
    const store = jsonStore({ live: false, initial: { a: 1 } });
    const { createServer } = await import('node:http');
    const server = createServer(store).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as { port: number };
    const answer = await fetch(`http://127.0.0.1:${port}/a`, { headers: { accept: 'text/event-stream' } });
    expect(answer.headers.get('content-type')).toMatch(/application\/json/);
    expect(await answer.text()).toBe('1');
    server.close();
    await store.close();
  });
});
