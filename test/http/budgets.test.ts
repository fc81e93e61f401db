/**
 * Budgets, through real HTTP on memory, file and Redis storage: a write that
 * would insert too much (copies included, measured before they are made),
 * leave the document too large, or carry too many JSON Patch operations is a
 * 413 naming the option, the figure and the limit, and changes nothing.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';
import { JsonStoreError } from '../../src/errors.js';
import { jsonStore } from '../../src/index.js';
import { describeRedis, eventually } from '../redis/helpers.js';
import { fileStorage } from '../../src/storage/file.js';
import { removeTempDirs, tempDir } from '../storage/file-support.js';
import { acknowledged, closeAll, expectKept, filePlace, memoryPlace, open, redisPlace, type PlaceFactory } from '../storage/places.js';
import { expectProblem } from './support.js';

afterEach(async () => {
  await closeAll();
  await removeTempDirs();
});

const JSON_PATCH = 'application/json-patch+json';
const MiB = 1024 * 1024;

const copyOps = (count: number, from: string, path: string) => Array.from({ length: count }, () => ({ op: 'copy', from, path }));

function budgets(place: PlaceFactory): void {
  test('a JSON Patch that doubles /a 30 times is 413 at the operation that passes 4 MiB; nothing changed', async () => {
    const ctx = await open(await place());
    expect((await ctx.put('/', { a: ['0123456789'] })).status).toBe(200);
    const before = await acknowledged(ctx);
    const problem = expectProblem(await ctx.patch('/', copyOps(30, '/a', '/a/-'), JSON_PATCH), 413);
    expect(problem.type).toBe('tag:express-jsonstore,2026:budget-exceeded');
    // Each copy doubles /a: the 19th makes what this write inserts pass 4 MiB (4 × the 1mb limit).
    const match = /^This write would insert at least (\d+) bytes of JSON \(passed at JSON Patch operation 18 \(copy "\/a\/-"\)\); the limit is 4194304 bytes \(the maxWriteGrowth option\); nothing was changed$/.exec(problem.detail);
    expect(match, problem.detail).not.toBeNull();
    expect(Number(match?.[1])).toBeGreaterThan(4 * MiB);
    await expectKept(ctx, before);
    expect(ctx.store.store.documentSize).toBe(before.text.length);
  });

  test('copies of a large value are allowed up to maxWriteGrowth, and refused past it', async () => {
    const ctx = await open(await place());
    // 500 002 bytes as JSON: 8 copies insert 4 000 016 bytes, 9 insert 4 500 018.
    expect((await ctx.put('/big', 'x'.repeat(500_000))).status).toBe(201);
    expect((await ctx.put('/copies', [])).status).toBe(201);
    const before = await acknowledged(ctx);
    expectProblem(
      await ctx.patch('/', copyOps(9, '/big', '/copies/-'), JSON_PATCH),
      413,
      /^This write would insert at least \d+ bytes of JSON \(passed at JSON Patch operation 8 \(copy "\/copies\/-"\)\); the limit is 4194304 bytes \(the maxWriteGrowth option\); nothing was changed$/,
    );
    await expectKept(ctx, before);
    expect((await ctx.patch('/', copyOps(8, '/big', '/copies/-'), JSON_PATCH)).status).toBe(200);
    const after = await acknowledged(ctx);
    expect(after.revision).toBe(before.revision + 1);
    expect((JSON.parse(after.text) as { copies: string[] }).copies).toHaveLength(8);
    expect(ctx.store.store.documentSize).toBe(Buffer.byteLength(after.text));
    await expectKept(ctx, after);
  });

  test('maxPatchOperations: 1000 operations are taken, 1001 are 413 before any is planned', async () => {
    const ctx = await open(await place(), { initial: { a: 1 } });
    expect((await ctx.put('/a', 1)).status).toBe(200);
    const before = await acknowledged(ctx);
    // Planned, 1001 operations would be a 409 (the last one fails): the count is checked first.
    const tooMany = [...Array.from({ length: 1000 }, () => ({ op: 'test', path: '/a', value: 1 })), { op: 'remove', path: '/nothing' }];
    expectProblem(await ctx.patch('/', tooMany, JSON_PATCH), 413, 'This JSON Patch has 1001 operations; the limit is 1000 (the maxPatchOperations option); nothing was changed');
    await expectKept(ctx, before);
    const enough = [...Array.from({ length: 999 }, () => ({ op: 'test', path: '/a', value: 1 })), { op: 'replace', path: '/a', value: 2 }];
    expect((await ctx.patch('/', enough, JSON_PATCH)).text).toBe('{"a":2}');
  });

  test('a document near maxDocumentSize refuses growth and accepts writes that shrink it', async () => {
    const limit = 10_000;
    const ctx = await open(await place(), { maxDocumentSize: limit });
    expect((await ctx.put('/big', 'x'.repeat(9_000))).status).toBe(201);
    expect((await ctx.put('/list', [1, 2, 3])).status).toBe(201);
    const before = await acknowledged(ctx);
    expect(ctx.store.store.documentSize).toBe(before.text.length);
    // The figure is the size the document would have had, exactly.
    const grown = Buffer.byteLength(JSON.stringify({ ...(JSON.parse(before.text) as object), more: 'y'.repeat(1_000) }));
    expectProblem(
      await ctx.put('/more', 'y'.repeat(1_000)),
      413,
      `This write would make the document ${grown} bytes of JSON; the limit is ${limit} bytes (the maxDocumentSize option); nothing was changed`,
    );
    expectProblem(await ctx.post('/list', 'y'.repeat(1_000)), 413, /maxDocumentSize/);
    expectProblem(await ctx.patch('/', [{ op: 'copy', from: '/big', path: '/again' }], JSON_PATCH), 413, /maxDocumentSize/);
    await expectKept(ctx, before);
    // Up to the limit exactly is fine.
    const room = limit - before.text.length - ',"fill":""'.length;
    expect((await ctx.put('/fill', 'z'.repeat(room))).status).toBe(201);
    expect(ctx.store.store.documentSize).toBe(limit);
    expect((await ctx.get('/')).text).toHaveLength(limit);
    expectProblem(await ctx.put('/list/-', 1), 413, /maxDocumentSize/);
    // Shrinking writes: a smaller replacement, a merge patch that removes, a DELETE.
    expect((await ctx.put('/big', 'x'.repeat(8_000))).status).toBe(200);
    expect((await ctx.patch('/', { fill: null })).status).toBe(200);
    expect((await ctx.delete('/list')).status).toBe(204);
    const after = await acknowledged(ctx);
    expect(ctx.store.store.documentSize).toBe(Buffer.byteLength(after.text));
    await expectKept(ctx, after);
  });

  test('a stored document already over maxDocumentSize loads and serves; only writes that grow it are refused', async () => {
    const where = await place();
    const first = await open(where);
    expect((await first.put('/big', 'x'.repeat(20_000))).status).toBe(201);
    await first.close();
    const ctx = await open(where, { maxDocumentSize: 10_000 });
    const before = await acknowledged(ctx);
    expect(before.text).toHaveLength(20_010);
    expect(ctx.store.store.documentSize).toBe(20_010);
    expectProblem(await ctx.put('/more', 1), 413, /would make the document 20019 bytes of JSON; the limit is 10000 bytes \(the maxDocumentSize option\)/);
    await expectKept(ctx, before);
    // Still over the limit, but smaller: accepted.
    expect((await ctx.put('/big', 'x'.repeat(15_000))).status).toBe(200);
    expect((await ctx.put('/big', 'x'.repeat(15_000))).status).toBe(200);
    expect(ctx.store.store.documentSize).toBe(15_010);
  });

  test('the size follows rolled-back commits: a refused commit leaves the budget as it was', async () => {
    const ctx = await open(await place(), { maxDocumentSize: 1_000 });
    expect((await ctx.put('/a', 'x'.repeat(500))).status).toBe(201);
    ctx.faults.next = 'reject';
    expectProblem(await ctx.put('/b', 'y'.repeat(400)), 503);
    expect(ctx.store.store.documentSize).toBe(Buffer.byteLength((await ctx.get('/')).text));
    // Had the refused write been counted, this would be over the limit.
    expect((await ctx.put('/b', 'y'.repeat(400))).status).toBe(201);
    expect(ctx.store.store.documentSize).toBe(Buffer.byteLength((await ctx.get('/')).text));
  });
}

describe('memory storage', () => {
  budgets(async () => memoryPlace());

  test('programmatic writes are held to the same budgets', async () => {
    const store = jsonStore({ initial: { a: ['0123456789'] }, maxPatchOperations: 5, maxWriteGrowth: 1_000, maxDocumentSize: 2_000 });
    const refusal = async (write: Promise<unknown>) => {
      const error = await write.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(JsonStoreError);
      expect((error as JsonStoreError).status).toBe(413);
      return (error as JsonStoreError).message;
    };
    expect(await refusal(store.patch('/', copyOps(6, '/a', '/a/-'), { type: 'json-patch' }))).toMatch(/maxPatchOperations/);
    expect(await refusal(store.put('/b', 'x'.repeat(1_000)))).toMatch(/maxWriteGrowth/);
    await store.put('/b', 'x'.repeat(900));
    await store.put('/c', 'x'.repeat(900));
    expect(await refusal(store.put('/d', 'x'.repeat(200)))).toMatch(/maxDocumentSize/);
    expect(await store.get()).toEqual({ a: ['0123456789'], b: 'x'.repeat(900), c: 'x'.repeat(900) });
  });
});

describe('file storage', () => {
  budgets(filePlace);

  // Large by design: the default maxDocumentSize must leave room for documents this big.
  test('by default a 100 MiB document loads and is served, may not grow, and may shrink', { timeout: 120_000 }, async () => {
    const file = join(await tempDir(), 'store.json');
    // A flat string, as JSON.parse makes: {"big":"xxx…"} is 100 MiB exactly.
    const big = Buffer.alloc(100 * MiB - 10, 'x').toString('latin1');
    await writeFile(file, `{"big":"${big}"}`);
    const ctx = await open({ kind: 'file', adapter: async () => fileStorage(file), stored: async () => undefined });
    expect(ctx.store.store.documentSize).toBe(100 * MiB);
    const whole = await ctx.get('/');
    expect(whole.status).toBe(200);
    expect(whole.headers['content-length']).toBe(String(100 * MiB));
    expectProblem(
      await ctx.put('/b', 1),
      413,
      `This write would make the document ${100 * MiB + 6} bytes of JSON; the limit is ${100 * MiB} bytes (the maxDocumentSize option); nothing was changed`,
    );
    expect((await ctx.put('/big', 'smaller')).status).toBe(200);
    expect((await ctx.put('/b', 1)).status).toBe(201);
    expect((await ctx.get('/')).text).toBe('{"big":"smaller","b":1}');
  });
});

describeRedis('Redis storage', (env) => {
  let count = 0;
  budgets(async () => redisPlace(env, `budgets-${++count}`));

  test("another process's changes count towards this store's maxDocumentSize", async () => {
    const place = redisPlace(env, 'budgets-shared');
    const writer = await open(place);
    const reader = await open(place, { maxDocumentSize: 10_000, readConsistency: 'local' });
    expect((await writer.put('/big', 'x'.repeat(9_500))).status).toBe(201);
    await eventually('the change to reach the other store', () => (reader.store.store.revision === writer.store.store.revision ? true : undefined));
    expect(reader.store.store.documentSize).toBe(9_510);
    expectProblem(await reader.put('/more', 'y'.repeat(1_000)), 413, /would make the document 10520 bytes/);
    expect((await writer.put('/big', 'x')).status).toBe(200);
    await eventually('the shrink to reach the other store', () => (reader.store.store.revision === writer.store.store.revision ? true : undefined));
    expect(reader.store.store.documentSize).toBe(11);
    expect((await reader.put('/more', 'y'.repeat(1_000))).status).toBe(201);
  });
});
