/**
 * Values over 1 MB of JSON are serialized in slices after the read returns,
 * with writes meanwhile copying what they change: the answer is the value
 * as it was when the read was made, whole, with its own ETag.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { expect, test } from 'vitest';
import { contentTag, etagOf, formatEtag } from '../../src/document/etag.js';
import { jsonStore } from '../../src/index.js';
import type { JsonValue } from '../../src/document/json.js';

function document(records: number): Record<string, JsonValue> {
  const items: Record<string, JsonValue> = {};
  for (let i = 0; i < records; i++) items[`r${i}`] = { id: i, name: `item ${i}`, tags: ['a', 'b'], text: 'lorem ipsum '.repeat(3) };
  return { meta: { count: 0 }, items, list: Object.values(items).slice(0, 5000) };
}

test('GET of a large value answers its exact bytes and ETag, and a repeat comes from the cache', async () => {
  const initial = document(16_000);
  const store = jsonStore({ initial, maxDocumentSize: 1e9 });
  for (const path of ['/', '/items']) {
    const expected = JSON.stringify(path === '/' ? initial : initial.items);
    expect(expected.length).toBeGreaterThan(1024 * 1024);
    for (let i = 0; i < 2; i++) {
      const response = await request(store).get(path);
      expect(response.status).toBe(200);
      expect(response.text).toBe(expected);
      expect(response.headers['etag']).toBe(etagOf(JSON.parse(expected) as JsonValue));
      expect(Number(response.headers['content-length'])).toBe(Buffer.byteLength(expected));
    }
  }
  const etag = etagOf(initial);
  expect((await request(store).get('/').set('If-None-Match', etag)).status).toBe(304);
}, 60_000);

test('?pretty of a large value is made in slices too: its exact bytes, the pretty ETag, HEAD with its length, and no one serialization over 1 MB', async () => {
  const initial = document(16_000);
  const store = jsonStore({ initial, maxDocumentSize: 1e9 });
  await store.ready();
  const stringify = JSON.stringify;
  const expected = stringify(initial, null, 2) + '\n';
  expect(expected.length).toBeGreaterThan(2 * 1024 * 1024);
  // Every JSON text made while the store answers: one made in a single call would hold the event loop for all of it.
  let longest = 0;
  JSON.stringify = ((...args: Parameters<typeof JSON.stringify>) => {
    const text = stringify(...args);
    if (typeof text === 'string') longest = Math.max(longest, text.length);
    return text;
  }) as typeof JSON.stringify;
  let response;
  let head;
  let tail;
  try {
    response = await request(store).get('/?pretty');
    head = await request(store).head('/?print=pretty');
    tail = await request(store).get('/items/r15999?pretty');
  } finally {
    JSON.stringify = stringify;
  }
  expect(response.status).toBe(200);
  expect(response.text).toBe(expected);
  expect(response.headers['etag']).toBe(formatEtag(contentTag(stringify(initial)), 'pretty'));
  expect(Number(response.headers['content-length'])).toBe(Buffer.byteLength(expected));
  expect(head.status).toBe(200);
  expect(head.headers['etag']).toBe(response.headers['etag']);
  expect(Number(head.headers['content-length'])).toBe(Buffer.byteLength(expected));
  expect(tail.text).toBe(stringify(initial.items?.['r15999' as never], null, 2) + '\n');
  expect(longest).toBeLessThan(1024 * 1024);
  expect((await request(store).get('/?pretty').set('If-None-Match', response.headers['etag'] as string)).status).toBe(304);
}, 60_000);

test('writes during a large GET change nothing in its answer, and show in the next one', async () => {
  const initial = document(16_000);
  const before = JSON.stringify(initial);
  const store = jsonStore({ initial, maxDocumentSize: 1e9 });
  await store.ready();
  const reading = request(store).get('/').then((r) => r);
  // Writes to every part of the document while it is being serialized.
  const writes: Array<PromiseLike<unknown>> = [];
  for (let i = 0; i < 50; i++) {
    writes.push(request(store).patch('/meta').type('application/merge-patch+json').send({ count: i + 1 }).then((r) => r));
    writes.push(request(store).put(`/items/r${i * 300}/name`).send('"changed"').then((r) => r));
    writes.push(request(store).delete(`/list/${4000 - i}`).then((r) => r));
  }
  const [response] = await Promise.all([reading, ...writes]);
  const body = response.text;
  // Whole and consistent: the tag is the hash of exactly these bytes, and they are one state of the document.
  expect(response.headers['etag']).toBe(etagOf(JSON.parse(body) as JsonValue));
  const after = JSON.stringify(await store.get());
  expect(after).not.toBe(before);
  expect([before, after]).toContain(body);
  const again = await request(store).get('/');
  expect(again.text).toBe(after);
  expect(again.headers['etag']).toBe(etagOf(JSON.parse(after) as JsonValue));
  // The caller's initial was never changed.
  expect(JSON.stringify(initial)).toBe(before);
}, 60_000);

/** GET `path` over real HTTP, pausing after the first chunk until `whilePaused` is done; the whole body, ETag and Content-Length. */
function getPausing(port: number, path: string, whilePaused: () => Promise<void>, method = 'GET'): Promise<{ status: number; body: string; etag: string | undefined; length: number }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method }, (res) => {
      const chunks: Buffer[] = [];
      let paused = false;
      const done = () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), etag: res.headers['etag'], length: Number(res.headers['content-length']) });
      res.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        if (paused) return;
        paused = true;
        res.pause();
        whilePaused().then(() => res.resume(), reject);
      });
      res.on('end', () => (paused || method === 'HEAD' ? done() : whilePaused().then(done, reject)));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

test('a value too large to cache (over 16 MB) is sent as it is serialized: exactly the revision its ETag names, whatever is written meanwhile', async () => {
  const initial = document(160_000);
  const before = JSON.stringify(initial);
  expect(before.length).toBeGreaterThan(16 * 1024 * 1024);
  const store = jsonStore({ initial, maxDocumentSize: 1e9 });
  const server = http.createServer(store);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  try {
    const write = (body: JsonValue) => store.patch('/meta', body);
    // Paused after its first bytes while the document changes, in the part already sent and in the part not sent yet.
    const first = await getPausing(port, '/', async () => {
      await write({ count: 1 });
      await store.put('/items/r159999/name', 'changed at the end');
      await store.delete('/list/0');
    });
    expect(first.status).toBe(200);
    expect(first.body).toBe(before);
    expect(first.length).toBe(Buffer.byteLength(before));
    expect(first.etag).toBe(etagOf(initial));

    const after = JSON.stringify(await store.get());
    expect(after).not.toBe(before);
    // Again while writes go on: the second answer is the state after the first writes, and names it.
    const second = await getPausing(port, '/', async () => {
      await write({ count: 2 });
    });
    expect(second.body).toBe(after);
    expect(second.etag).toBe(etagOf(JSON.parse(after) as JsonValue));
    // Unchanged since: its tag is remembered, the bytes are made again, the same.
    const latest = JSON.stringify(await store.get());
    const third = await getPausing(port, '/', async () => {});
    const fourth = await getPausing(port, '/', async () => {});
    expect(third.body).toBe(latest);
    expect(fourth.body).toBe(latest);
    expect(fourth.etag).toBe(third.etag);
    expect(third.etag).toBe(etagOf(JSON.parse(latest) as JsonValue));
    const head = await getPausing(port, '/', async () => {}, 'HEAD');
    expect(head.length).toBe(Buffer.byteLength(latest));
    expect(head.etag).toBe(third.etag);
    const conditional = await request(server).get('/').set('If-None-Match', third.etag as string);
    expect(conditional.status).toBe(304);
    expect(JSON.stringify(initial)).toBe(before);
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}, 120_000);

test('a HEAD, a 304 or a 412 of a value over 16 MB whose tag is known does not freeze the document: the next write changes it in place', async () => {
  const records: Record<string, JsonValue> = {};
  for (let i = 0; i < 100_000; i++) records[`r${i}`] = { id: i, text: 'lorem ipsum dolor sit amet '.repeat(7) };
  const store = jsonStore({ initial: { big: records, n: 0 }, maxDocumentSize: 1e10 });
  const first = await request(store).get('/big');
  expect(first.status).toBe(200);
  expect(Number(first.headers['content-length'])).toBeGreaterThan(16 * 1024 * 1024);
  const etag = first.headers['etag'] as string;
  const writeN = async (n: number) => expect((await request(store).put('/n').set('content-type', 'application/json').send(String(n))).status).toBe(200);
  // The GET froze the document: the first write after it copies the root once (/big keeps its tag: nothing under it changed).
  await writeN(1);
  const root = () => store.store.peekWorkingDocument();
  const before = root();
  for (const bodiless of [
    request(store).head('/big'),
    request(store).get('/big').set('If-None-Match', etag),
    request(store).get('/big').set('If-Match', '"not-the-tag"'),
  ]) {
    const response = await bodiless;
    expect([200, 304, 412]).toContain(response.status);
    // Not the value: nothing for a HEAD or a 304, a problem+json for the 412.
    expect((response.text ?? '').length).toBeLessThan(2000);
    await writeN(2);
    expect(root()).toBe(before);
  }
  expect((await request(store).get('/big').set('If-None-Match', etag)).status).toBe(304);
}, 120_000);

test('an object of many members, listed once for large reads, answers every write after it: added, removed, renamed, undone', async () => {
  // Over 1024 members: the serializer keeps the list of keys (member-keys.ts); 1.3 MB: read in slices.
  const members: Record<string, JsonValue> = {};
  for (let i = 0; i < 1600; i++) members[`k${i}`] = 'lorem ipsum dolor sit amet '.repeat(30);
  const model: Record<string, JsonValue> = JSON.parse(JSON.stringify({ meta: { n: 0 }, big: members }));
  const store = jsonStore({ initial: { meta: { n: 0 }, big: members }, maxDocumentSize: 1e9 });
  const agrees = async (): Promise<void> => {
    for (const [path, value] of [['/big', model['big']], ['/', model]] as const) {
      const response = await request(store).get(path);
      expect(response.status).toBe(200);
      expect(response.text).toBe(JSON.stringify(value));
      expect(response.headers['etag']).toBe(etagOf(value as JsonValue));
    }
  };
  const big = model['big'] as Record<string, JsonValue>;
  await agrees();

  expect((await request(store).put('/big/added').send('"new"').type('json')).status).toBe(201);
  big['added'] = 'new';
  await agrees();

  expect((await request(store).delete('/big/k5')).status).toBe(204);
  delete big['k5'];
  await agrees();

  const move = [{ op: 'move', from: '/big/k7', path: '/big/k7b' }];
  expect((await request(store).patch('/').type('application/json-patch+json').send(move)).status).toBe(200);
  big['k7b'] = big['k7'] as JsonValue;
  delete big['k7'];
  await agrees();

  // Applied, then undone by the failing test: the keys listed meanwhile must not stay.
  const undone = [{ op: 'add', path: '/big/later', value: 1 }, { op: 'test', path: '/meta/n', value: 99 }];
  const refused = request(store).patch('/').type('application/json-patch+json').send(undone);
  expect((await refused).status).toBe(409);
  await agrees();

  // Fewer members than the list threshold, and small enough to serialize whole.
  for (let round = 0; round < 2; round++) {
    const keys = Object.keys(big).slice(0, 750);
    const remove = keys.map((key) => ({ op: 'remove', path: `/big/${key}` }));
    expect((await request(store).patch('/').type('application/json-patch+json').send(remove)).status).toBe(200);
    for (const key of keys) delete big[key];
  }
  expect(JSON.stringify(big).length).toBeLessThan(1024 * 1024);
  await agrees();
}, 60_000);

test('keys listed while measuring an object follow the writes made in place after it', async () => {
  // 1 600 small members: measured (and listed) by a GET, served whole; then changed in place and read in slices.
  const members: Record<string, JsonValue> = {};
  for (let i = 0; i < 1600; i++) members[`k${i}`] = i;
  const store = jsonStore({ initial: { big: members }, maxDocumentSize: 1e9, limit: '2mb' });
  const model: Record<string, JsonValue> = JSON.parse(JSON.stringify(members));
  // The first write copies `big` from `initial` (copy-on-write); the ones after change that copy in place.
  expect((await request(store).put('/big/k1').type('json').send('"own"')).status).toBe(200);
  model['k1'] = 'own';
  expect((await request(store).get('/big')).text).toBe(JSON.stringify(model));
  expect((await request(store).put('/big/added').type('json').send('"new"')).status).toBe(201);
  model['added'] = 'new';
  const long = 'x'.repeat(1100 * 1024);
  expect((await request(store).put('/big/k0').type('json').send(JSON.stringify(long))).status).toBe(200);
  model['k0'] = long;
  const response = await request(store).get('/big');
  expect(response.text).toBe(JSON.stringify(model));
  expect(response.headers['etag']).toBe(etagOf(model));
}, 60_000);

test('a move out of an array into a later member of it changes that member, not a stale copy: cached JSON, ETags and `initial` stay right', async () => {
  const initial = { a: [{ n: 0 }, { n: 1 }, { n: 2 }] };
  const store = jsonStore({ initial });
  // Cached before the move: /a/2 is the member that becomes /a/1.
  expect((await request(store).get('/a/2')).body).toEqual({ n: 2 });
  const move = [{ op: 'move', from: '/a/0', path: '/a/1/x' }];
  expect((await request(store).patch('/').type('application/json-patch+json').send(move)).status).toBe(200);
  const expected = { a: [{ n: 1 }, { n: 2, x: { n: 0 } }] };
  for (const [path, value] of [['/a/1', expected.a[1]], ['/a', expected.a], ['/', expected]] as const) {
    const response = await request(store).get(path);
    expect(response.body).toEqual(value);
    expect(response.headers['etag']).toBe(etagOf(value as JsonValue));
  }
  // Copy-on-write: the caller's object is never changed.
  expect(initial).toEqual({ a: [{ n: 0 }, { n: 1 }, { n: 2 }] });
});
