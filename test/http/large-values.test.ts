/**
 * Values over 1 MB of JSON are serialized in slices after the read returns,
 * with writes meanwhile copying what they change: the answer is the value
 * as it was when the read was made, whole, with its own ETag.
 */
import request from 'supertest';
import { expect, test } from 'vitest';
import { etagOf } from '../../src/document/etag.js';
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
