/**
 * Idempotent writes (the Idempotency-Key header) over real HTTP on memory,
 * file and Redis storage: a retry with the same key and request gets the
 * first answer and writes nothing; the same key with another request is 422;
 * file and Redis storage remember keys across restarts (and file storage
 * across compactions); keys are forgotten after the window and beyond the count.
 */
import { afterEach, describe, expect, test } from 'vitest';
import type { JsonStoreOptions } from '../../src/index.js';
import { expectProblem, snapshot } from '../http/support.js';
import type { Reply } from '../http/hosts.js';
import { describeRedis } from '../redis/helpers.js';
import { join } from 'node:path';
import { fileStorage, type FileStorage } from '../../src/storage/file.js';
import { crashImage, journalLines, removeTempDirs, tempDir } from './file-support.js';
import { closeAll, filePlace, memoryPlace, open, redisPlace, type Opened, type Place, type PlaceFactory } from './places.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

type Options = Omit<JsonStoreOptions, 'storage'>;

function keyed(key: string, extra: Record<string, string> = {}): Record<string, string> {
  return { 'Idempotency-Key': `"${key}"`, ...extra };
}

/** What a client learns from a write's answer. */
function answerOf(reply: Reply) {
  return { status: reply.status, etag: reply.headers.etag, location: reply.headers.location, text: reply.text };
}

/** Waits until the clock has moved past `ms` after `since` (a condition, not a fixed sleep). */
async function clockPast(since: number, ms: number): Promise<void> {
  while (Date.now() <= since + ms) await new Promise((resolve) => setTimeout(resolve, ms));
}

function idempotency(name: string, place: PlaceFactory, persistent: boolean): void {
  const seed: Options = { initial: { items: [], obj: { a: 1 } } };

  test(`${name}: a POST repeated with the same key appends once and gets the first answer`, async () => {
    const ctx = await open(await place(), seed);
    const first = await ctx.post('/items', { n: 1 }, keyed('post-1'));
    expect(first.status).toBe(201);
    expect(first.headers['idempotent-replayed']).toBeUndefined();
    const again = await ctx.post('/items', { n: 1 }, keyed('post-1'));
    expect(answerOf(again)).toEqual(answerOf(first));
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.headers['cache-control']).toBe('no-store');
    expect(await ctx.store.get('/items')).toEqual([{ n: 1 }]);
    // A bare token is the same key as the quoted string.
    const bare = await ctx.post('/items', { n: 1 }, { 'Idempotency-Key': 'post-1' });
    expect(bare.headers['idempotent-replayed']).toBe('true');
    // Another key is another write.
    expect((await ctx.post('/items', { n: 1 }, keyed('post-2'))).status).toBe(201);
    expect(await ctx.store.get('/items')).toEqual([{ n: 1 }, { n: 1 }]);
  });

  test(`${name}: a POST to an object repeated with its key gets the same {"name"} answer`, async () => {
    const ctx = await open(await place(), seed);
    const first = await ctx.post('/obj', { n: 1 }, keyed('post-obj'));
    expect(first.status).toBe(201);
    const key = decodeURIComponent((first.headers.location as string).split('/').pop() as string);
    expect(JSON.parse(first.text)).toEqual({ name: key });
    const again = await ctx.post('/obj', { n: 1 }, keyed('post-obj'));
    expect(answerOf(again)).toEqual(answerOf(first));
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(await ctx.store.get('/obj')).toEqual({ a: 1, [key]: { n: 1 } });
  });

  test(`${name}: PUT, merge PATCH, JSON Patch and DELETE repeated with their keys write once`, async () => {
    const ctx = await open(await place(), seed);
    const put = await ctx.put('/obj/b', 2, keyed('put'));
    const patch = await ctx.patch('/obj', { c: 3 }, undefined, keyed('merge'));
    const jsonPatch = await ctx.patch('/items', [{ op: 'add', path: '/-', value: 'x' }], 'application/json-patch+json', keyed('json-patch'));
    const del = await ctx.delete('/obj/a', keyed('delete'));
    expect([put.status, patch.status, jsonPatch.status, del.status]).toEqual([201, 200, 200, 204]);
    const revision = ctx.store.store.revision;
    // Someone else changes /obj/b meanwhile: the replay keeps the first answer's status and ETag, and shows no body it cannot vouch for.
    expect((await ctx.put('/obj/b', 'changed')).status).toBe(200);
    const putAgain = await ctx.put('/obj/b', 2, keyed('put'));
    expect({ ...answerOf(putAgain), replayed: putAgain.headers['idempotent-replayed'] }).toEqual({ ...answerOf(put), text: '', replayed: 'true' });
    const patchAgain = await ctx.patch('/obj', { c: 3 }, undefined, keyed('merge'));
    expect(patchAgain.headers['idempotent-replayed']).toBe('true');
    expect(patchAgain.status).toBe(200);
    const jsonPatchAgain = await ctx.patch('/items', [{ op: 'add', path: '/-', value: 'x' }], 'application/json-patch+json', keyed('json-patch'));
    expect({ ...answerOf(jsonPatchAgain), replayed: jsonPatchAgain.headers['idempotent-replayed'] }).toEqual({ ...answerOf(jsonPatch), replayed: 'true' });
    const delAgain = await ctx.delete('/obj/a', keyed('delete'));
    expect({ ...answerOf(delAgain), replayed: delAgain.headers['idempotent-replayed'] }).toEqual({ ...answerOf(del), replayed: 'true' });
    expect(ctx.store.store.revision).toBe(revision + 1);
    expect(await ctx.store.get()).toEqual({ items: ['x'], obj: { b: 'changed', c: 3 } });
  });

  test(`${name}: the same key with another body, path, method or precondition is 422 and changes nothing`, async () => {
    const ctx = await open(await place(), seed);
    const first = await ctx.post('/items', { n: 1 }, keyed('k'));
    expect(first.status).toBe(201);
    const before = await snapshot(ctx);
    const reused = /This Idempotency-Key was already used for a different request/;
    expectProblem(await ctx.post('/items', { n: 2 }, keyed('k')), 422, reused);
    expectProblem(await ctx.post('/obj', { n: 1 }, keyed('k')), 422, reused);
    expectProblem(await ctx.put('/items', { n: 1 }, keyed('k')), 422, reused);
    expectProblem(await ctx.post('/items', { n: 1 }, keyed('k', { 'If-Match': first.headers.etag as string })), 422, reused);
    expect(await snapshot(ctx)).toEqual(before);
  });

  test(`${name}: a write refused (404, 412) is not remembered: the retry is judged again`, async () => {
    const ctx = await open(await place(), seed);
    expectProblem(await ctx.post('/missing/list', 1, keyed('later')), 404);
    expect((await ctx.put('/missing', { list: [] })).status).toBe(201);
    expect((await ctx.post('/missing/list', 1, keyed('later'))).status).toBe(201);
    expect(await ctx.store.get('/missing')).toEqual({ list: [1] });
  });

  test(`${name}: the same key sent many times at once writes once, and every answer is the first one`, async () => {
    const ctx = await open(await place(), seed);
    const replies = await Promise.all(Array.from({ length: 12 }, () => ctx.post('/items', 'once', keyed('burst'))));
    const answers = replies.map(answerOf);
    expect(new Set(answers.map((a) => JSON.stringify(a))).size).toBe(1);
    expect(replies.filter((r) => r.headers['idempotent-replayed'] === undefined)).toHaveLength(1);
    expect(answers[0]?.status).toBe(201);
    expect(await ctx.store.get('/items')).toEqual(['once']);
  });

  test(`${name}: a bad Idempotency-Key is 400 naming the header, and changes nothing; reads ignore it`, async () => {
    const ctx = await open(await place(), seed);
    const before = await snapshot(ctx);
    const bad = ['', '"unterminated', '"a" , "b"', 'two words', `"${'x'.repeat(256)}"`, '""', '"caf\u00e9"'];
    for (const value of bad) {
      expectProblem(await ctx.request('POST', '/items', { json: 1, headers: { 'Idempotency-Key': value } }), 400, /Idempotency-Key header/);
    }
    expectProblem(await ctx.request('POST', '/items', { json: 1, headers: { 'Idempotency-Key': ['"a"', '"b"'] } }), 400, /Idempotency-Key header/);
    expect(await snapshot(ctx)).toEqual(before);
    expect((await ctx.get('/items', { 'Idempotency-Key': 'not a key' })).status).toBe(200);
    // The longest key there may be, with escapes.
    const longest = 'k'.repeat(253) + '\\"';
    expect((await ctx.post('/items', 1, { 'Idempotency-Key': `"${longest}"` })).status).toBe(201);
  });

  test(`${name}: keys beyond idempotencyKeys are forgotten oldest first${persistent ? ', also after a restart' : ''}`, async () => {
    const where = await place();
    const options: Options = { ...seed, idempotencyKeys: 2 };
    let ctx: Opened = await open(where, options);
    for (const key of ['k1', 'k2', 'k3']) expect((await ctx.post('/items', key, keyed(key))).status).toBe(201);
    if (persistent) {
      await ctx.close();
      ctx = await open(where, options);
    }
    expect((await ctx.post('/items', 'k3', keyed('k3'))).headers['idempotent-replayed']).toBe('true');
    expect((await ctx.post('/items', 'k2', keyed('k2'))).headers['idempotent-replayed']).toBe('true');
    const forgotten = await ctx.post('/items', 'k1', keyed('k1'));
    expect(forgotten.status).toBe(201);
    expect(forgotten.headers['idempotent-replayed']).toBeUndefined();
    expect(await ctx.store.get('/items')).toEqual(['k1', 'k2', 'k3', 'k1']);
  });

  test(`${name}: keys older than idempotencyWindow are forgotten${persistent ? ', also after a restart' : ''}`, async () => {
    const where = await place();
    const window = 200;
    const options: Options = { ...seed, idempotencyWindow: window };
    let ctx: Opened = await open(where, options);
    expect((await ctx.post('/items', 'old', keyed('old'))).status).toBe(201);
    // Read after the answer: the key's time is taken when the write commits, inside the request.
    const written = Date.now();
    // (That a key inside its window is replayed is what the other tests check, with the default 24 hours.)
    await clockPast(written, window);
    if (persistent) {
      await ctx.close();
      ctx = await open(where, options);
    }
    const again = await ctx.post('/items', 'old', keyed('old'));
    expect(again.status).toBe(201);
    expect(again.headers['idempotent-replayed']).toBeUndefined();
    expect(await ctx.store.get('/items')).toEqual(['old', 'old']);
  });

  if (persistent) {
    test(`${name}: a key is remembered across a restart: the retry gets the first answer`, async () => {
      const where = await place();
      const ctx = await open(where, seed);
      const first = await ctx.post('/items', { n: 1 }, keyed('restart'));
      const put = await ctx.put('/obj/b', [1, 2], keyed('restart-put'));
      await ctx.close();
      const again = await open(where, seed);
      const replay = await again.post('/items', { n: 1 }, keyed('restart'));
      expect(answerOf(replay)).toEqual(answerOf(first));
      expect(replay.headers['idempotent-replayed']).toBe('true');
      expect(answerOf(await again.put('/obj/b', [1, 2], keyed('restart-put')))).toEqual(answerOf(put));
      expectProblem(await again.post('/items', { n: 2 }, keyed('restart')), 422);
      expect(await again.store.get('/items')).toEqual([{ n: 1 }]);
    });

    test(`${name}: the storage holds the records with the changes (what a fresh load returns)`, async () => {
      const where = await place();
      const ctx = await open(where, seed);
      const first = await ctx.post('/items', 'stored', keyed('stored'));
      const stored = await where.stored();
      expect(stored?.idempotency).toEqual([
        expect.objectContaining({ key: 'stored', status: 201, etag: first.headers.etag, location: first.headers.location, revision: stored?.revision }),
      ]);
    });
  }
}

describe('memory storage', () => {
  idempotency('memory', async () => memoryPlace(), false);

  test('memory: the programmatic API takes idempotencyKey too', async () => {
    const ctx = await open(memoryPlace(), { initial: { items: [] } });
    const first = await ctx.store.post('/items', 'once', { idempotencyKey: 'api-1' });
    const again = await ctx.store.post('/items', 'once', { idempotencyKey: 'api-1' });
    expect(again).toEqual({ ...first, replayed: true });
    await expect(ctx.store.post('/items', 'twice', { idempotencyKey: 'api-1' })).rejects.toMatchObject({ status: 422 });
    expect(() => ctx.store.post('/items', 'x', { idempotencyKey: '' })).toThrow(/idempotencyKey must be/);
    expect(await ctx.store.get('/items')).toEqual(['once']);
  });
});

describe('file storage', () => {
  idempotency('file', filePlace, true);

  test('file: keys survive compactions while running, repeated clean stops, and a crash image of the files', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    // Compacts after nearly every write.
    const options = { compactRatio: 0.01, compactMinSize: 0 };
    let latest: FileStorage | undefined;
    const place: Place = {
      kind: 'file',
      adapter: async () => (latest = fileStorage(file, options)),
      stored: async () => undefined,
    };
    let ctx = await open(place, { initial: { items: [] } });
    const firsts: Reply[] = [];
    for (let i = 0; i < 20; i++) firsts.push(await ctx.post('/items', i, keyed(`c${i}`)));
    expect(latest?.stats.compactions).toBeGreaterThan(0);
    // The journal now starts after the first keys' changes: their records are in its header.
    expect(journalLines(file).length).toBeLessThan(20);
    const image = crashImage(file, join(dir, 'image'));
    for (let round = 0; round < 2; round++) {
      await ctx.close();
      ctx = await open(place, { initial: { items: [] } });
    }
    for (let i = 0; i < 20; i++) expect(answerOf(await ctx.post('/items', i, keyed(`c${i}`)))).toEqual(answerOf(firsts[i] as Reply));
    expect(await ctx.store.get('/items')).toEqual(Array.from({ length: 20 }, (_, i) => i));
    await ctx.close();
    const crashed = fileStorage(image);
    try {
      const stored = await crashed.load();
      expect(stored?.idempotency?.map((record) => record.key).sort()).toEqual(Array.from({ length: 20 }, (_, i) => `c${i}`).sort());
    } finally {
      await crashed.close?.();
    }
  });
});

describeRedis('Redis storage', (env) => {
  let count = 0;
  idempotency('redis', async () => redisPlace(env, `idem-${++count}`), true);
});
