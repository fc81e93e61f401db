/**
 * Every rule of the stream protocol, over real HTTP, run against one kind of
 * storage (memory, file and Redis each call `liveRules`).
 */
import { afterEach, expect, test } from 'vitest';
import type { JsonValue, StorageAdapter } from '../../src/index.js';
import { expectProblemAnswer } from '../support/problem.js';
import { SseClient } from '../support/sse-client.js';
import { eventually } from '../support/wait.js';
import { closeLiveServers, replayClient, serveLive } from './helpers.js';

export function liveRules(makeStorage: () => Promise<StorageAdapter>): void {
  afterEach(closeLiveServers);

  test('a stream: 200 text/event-stream, no caching or buffering, first a put of the current value with the revision as id', async () => {
    const live = await serveLive({ storage: await makeStorage(), initial: { rooms: { '42': { name: 'blue' } } } });
    const client = await SseClient.open(`${live.url}/rooms/42`);
    expect(client.status).toBe(200);
    expect(client.headers['content-type']).toBe('text/event-stream');
    expect(client.headers['cache-control']).toBe('no-cache');
    expect(client.headers['x-accel-buffering']).toBe('no');
    await client.waitForMessages(1);
    expect(client.messages[0]).toEqual({ event: 'put', id: String(live.store.store.revision), path: '/', data: { name: 'blue' } });
    const root = await SseClient.open(live.url + '/');
    await root.waitForMessages(1);
    expect(root.messages[0]?.data).toEqual({ rooms: { '42': { name: 'blue' } } });
    const missing = await SseClient.open(`${live.url}/nothing/here`);
    await missing.waitForMessages(1);
    expect(missing.messages[0]).toMatchObject({ event: 'put', path: '/', data: null });
  });

  test('writes at, below and above the subscribed path arrive as puts relative to it; ids are the revisions', async () => {
    const live = await serveLive({ storage: await makeStorage(), initial: { rooms: { '42': { name: 'blue', tags: ['a'] } }, other: 1 } });
    const client = await SseClient.open(`${live.url}/rooms/42`);
    await client.waitForMessages(1);
    const first = Number(client.messages[0]?.id);
    expect((await live.write('PUT', '/rooms/42/name', 'green')).status).toBe(200);
    expect((await live.write('POST', '/rooms/42/tags', 'b')).status).toBe(201);
    expect((await live.write('PUT', '/other', 2)).status).toBe(200); // elsewhere: nothing
    expect((await live.write('DELETE', '/rooms/42/tags/1')).status).toBe(204);
    expect((await live.write('PATCH', '/rooms/42', [{ op: 'replace', path: '/name', value: 'red' }], 'application/json-patch+json')).status).toBe(200);
    expect((await live.write('PUT', '/rooms', { '42': { name: 'new' } })).status).toBe(200); // an ancestor replaced
    expect((await live.write('DELETE', '/rooms')).status).toBe(204); // the subscribed path removed
    await client.waitForMessages(7);
    expect(client.messages.slice(1)).toEqual([
      { event: 'put', id: String(first + 1), path: '/name', data: 'green' },
      { event: 'put', id: String(first + 2), path: '/tags/1', data: 'b' },
      { event: 'put', id: String(first + 4), path: '/tags/1', data: null },
      { event: 'put', id: String(first + 5), path: '/name', data: 'red' },
      { event: 'put', id: String(first + 6), path: '/', data: { name: 'new' } },
      { event: 'put', id: String(first + 7), path: '/', data: null },
    ]);
  });

  test('a merge patch that updates members is one patch event (null for a removed member)', async () => {
    const live = await serveLive({ storage: await makeStorage(), initial: { user: { name: 'ann', age: 3, city: 'x' } } });
    const client = await SseClient.open(`${live.url}/`);
    await client.waitForMessages(1);
    expect((await live.write('PATCH', '/user', { age: 4, city: null, email: 'a@b' }, 'application/merge-patch+json')).status).toBe(200);
    await client.waitForMessages(2);
    expect(client.messages[1]).toMatchObject({ event: 'patch', path: '/user', data: { age: 4, city: null, email: 'a@b' } });
    expect(replayClient(client, null).value).toEqual(await live.store.get());
  });

  test('Last-Event-ID: a client that reconnects gets what it missed, and ends where GET is', async () => {
    const live = await serveLive({ storage: await makeStorage(), initial: { list: [], n: 0 } });
    const first = await SseClient.open(`${live.url}/`);
    await first.waitForMessages(1);
    await live.write('POST', '/list', 'a');
    await first.waitForMessages(2);
    const before = replayClient(first, null);
    first.close();
    await eventually('the first stream released', () => live.store.live.subscriptions === 0);
    await live.write('PUT', '/n', 1);
    await live.write('POST', '/list', 'b');
    const again = await SseClient.open(`${live.url}/`, { headers: { 'last-event-id': String(before.id) } });
    await again.waitForMessages(1);
    const after = replayClient(again, structuredClone(before.value));
    // The missed changes only, not the whole document again.
    expect(again.messages.filter((m) => m.event === 'put' && m.path === '/')).toEqual([]);
    expect(after.value).toEqual(await live.store.get());
    expect(after.id).toBe(live.store.store.revision);
    // Nothing missed, nothing sent again: a client already up to date gets no event.
    const upToDate = await SseClient.open(`${live.url}/`, { headers: { 'last-event-id': String(after.id) } });
    await live.write('PUT', '/n', 2);
    await upToDate.waitForMessages(1);
    expect(upToDate.messages).toEqual([{ event: 'put', id: String(live.store.store.revision), path: '/n', data: 2 }]);
    // An id from another history (ahead of the document): a fresh full put.
    const stranger = await SseClient.open(`${live.url}/`, { headers: { 'last-event-id': '999999' } });
    await stranger.waitForMessages(1);
    expect(stranger.messages[0]).toMatchObject({ event: 'put', path: '/', data: await live.store.get() });
  });

  test('keep-alive events at the configured interval; cancel when the store closes', async () => {
    const live = await serveLive({ storage: await makeStorage(), live: { keepAlive: 20 } });
    const client = await SseClient.open(`${live.url}/`);
    await eventually('a keep-alive', () => client.events.some((event) => event.event === 'keep-alive' && event.data === 'null'));
    await live.store.close();
    await client.waitForEnd();
    const last = client.events[client.events.length - 1];
    expect(last?.event).toBe('cancel');
    expect(JSON.parse(last?.data ?? '""')).toMatch(/closing/);
    expect(live.store.live.subscriptions).toBe(0);
  });

  test('the subscription limit: 503 problem+json past it, the count in mw.live, released on disconnect', async () => {
    const live = await serveLive({ storage: await makeStorage(), live: { maxSubscriptions: 2 } });
    const one = await SseClient.open(`${live.url}/a`);
    const two = await SseClient.open(`${live.url}/b`);
    await Promise.all([one.waitForMessages(1), two.waitForMessages(1)]);
    expect(live.store.live.subscriptions).toBe(2);
    const three = await SseClient.open(`${live.url}/c`);
    await eventually('the refusal', () => three.ended);
    const problem = expectProblemAnswer({ status: three.status, contentType: three.headers['content-type'], contentLength: three.headers['content-length'], text: three.body }, 503);
    expect(problem.detail).toMatch(/limit/);
    one.close();
    await eventually('one released', () => live.store.live.subscriptions === 1);
    const four = await SseClient.open(`${live.url}/d`);
    await four.waitForMessages(1);
    expect(four.status).toBe(200);
  });

  test('a query on a stream is 400 (live queries are not offered yet); Accept with q=0 for event streams gets JSON; HEAD is a plain HEAD (also with a collection query)', async () => {
    const live = await serveLive({ storage: await makeStorage(), initial: { a: 1 } });
    for (const [query, detail] of [
      ['orderBy=%22%24key%22&limitToFirst=1', /Live queries are not supported yet/],
      ['orderBy=x', /orderBy must be a JSON string/],
      ['_nonsense=1', /_nonsense/],
    ] as const) {
      const queried = await SseClient.open(`${live.url}/?${query}`);
      await eventually('the answer', () => queried.ended);
      expect(expectProblemAnswer({ status: queried.status, contentType: queried.headers['content-type'], contentLength: queried.headers['content-length'], text: queried.body }, 400).detail).toMatch(detail);
    }
    const refused = await SseClient.open(`${live.url}/a`, { headers: { accept: 'text/event-stream;q=0, application/json' } });
    await eventually('the answer', () => refused.ended);
    expect({ status: refused.status, body: refused.body }).toEqual({ status: 200, body: '1' });
    const head = await fetch(`${live.url}/a`, { method: 'HEAD', headers: { accept: 'text/event-stream' } });
    expect(head.headers.get('content-type')).toMatch(/application\/json/);
    // The same for a collection query: q=0 or HEAD is an ordinary query answer, not the 400 for live queries.
    await live.write('PUT', '/posts', [{ id: 1 }, { id: 2 }]);
    const query = await SseClient.open(`${live.url}/posts?_limit=1`, { headers: { accept: 'text/event-stream;q=0, application/json' } });
    await eventually('the answer', () => query.ended);
    expect({ status: query.status, body: query.body, total: query.headers['x-total-count'] }).toEqual({ status: 200, body: '[{"id":1}]', total: '2' });
    const headQuery = await fetch(`${live.url}/posts?_limit=1`, { method: 'HEAD', headers: { accept: 'text/event-stream' } });
    expect({ status: headQuery.status, type: headQuery.headers.get('content-type'), total: headQuery.headers.get('x-total-count') }).toEqual({
      status: 200,
      type: 'application/json; charset=utf-8',
      total: '2',
    });
  });

  test('mw.subscribe gives server code the same events, and its unsubscribe releases it', async () => {
    const live = await serveLive({ storage: await makeStorage(), initial: { a: { b: 1 } } });
    const seen: unknown[] = [];
    const unsubscribe = live.store.subscribe('/a', (message) => seen.push(message));
    await eventually('the first put', () => seen.length === 1);
    await live.write('PUT', '/a/b', 2);
    await eventually('the change', () => seen.length === 2);
    const revision = live.store.store.revision;
    expect(seen).toEqual([
      { event: 'put', path: '/', data: { b: 1 }, revision: revision - 1 },
      { event: 'put', path: '/b', data: 2, revision },
    ]);
    expect(live.store.live.subscriptions).toBe(1);
    unsubscribe();
    expect(live.store.live.subscriptions).toBe(0);
    await live.write('PUT', '/a/b', 3);
    expect(seen).toHaveLength(2);
    // Closing the store ends a subscription with cancel.
    const last: unknown[] = [];
    live.store.subscribe('/', (message) => last.push(message));
    await eventually('the first put', () => last.length === 1);
    await live.store.close();
    expect(last[1]).toMatchObject({ event: 'cancel', data: 'the store is closing' });
    expect(live.store.live.subscriptions).toBe(0);
  });

  test('a read-only store streams too (changes made through the API)', async () => {
    const live = await serveLive({ storage: await makeStorage(), readOnly: true, initial: { n: 0 } });
    const client = await SseClient.open(`${live.url}/n`);
    await client.waitForMessages(1);
    expect((await live.write('PUT', '/n', 5)).status).toBe(405);
    await live.store.put('/n', 1);
    await client.waitForMessages(2);
    expect(client.messages.map((m) => m.data)).toEqual([0, 1] as JsonValue[]);
  });
}
