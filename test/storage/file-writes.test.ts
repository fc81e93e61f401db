/**
 * fileStorage() under concurrent writers: nothing lost, group commit
 * batches the fsyncs, and a failing disk refuses writes without losing or
 * inventing any.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { JsonValue } from '../../src/document/json.js';
import { fileStorage } from '../../src/storage/file.js';
import {
  collectWarnings,
  crashImage,
  eventually,
  expectProblem,
  faultyFileSystem,
  filesOf,
  journalLines,
  newFaults,
  removeTempDirs,
  serve,
  tempDir,
  type Served,
} from './file-support.js';

afterAll(removeTempDirs);

interface Reply {
  status: number;
  body: unknown;
  text: string;
  type: string | null;
}

/** One request on its own connection, so that many are truly in flight at once. */
async function call(port: number, method: string, path: string, body?: unknown, type = 'application/json'): Promise<Reply> {
  const response = await fetch(`http://127.0.0.1:${port}/store${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': type },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? undefined : JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: response.status, body: parsed, text, type: response.headers.get('content-type') };
}

async function documentOf(served: Served): Promise<Record<string, unknown>> {
  const reply = await call(served.port, 'GET', '/');
  expect(reply.status).toBe(200);
  return reply.body as Record<string, unknown>;
}

/** Increments /counters/<name> with JSON Patch test + replace, retrying on 409 until it applies. */
async function increment(port: number, name: string): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const current = await call(port, 'GET', `/counters/${name}`);
    expect(current.status).toBe(200);
    const value = current.body as number;
    const patch = [
      { op: 'test', path: `/${name}`, value },
      { op: 'replace', path: `/${name}`, value: value + 1 },
    ];
    const reply = await call(port, 'PATCH', '/counters', patch, 'application/json-patch+json');
    if (reply.status === 200) return attempt;
    expect(reply.status, reply.text).toBe(409);
  }
}

describe('concurrent writers', () => {
  test('200 concurrent POSTs and 200 contended increments (20 counters): none lost, after reopen too; fsyncs are shared', { timeout: 60_000 }, async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const faults = newFaults();
    // A disk whose fsync takes a little while, as real ones do: writes arriving meanwhile must share the next one.
    faults.slowSync = 2;
    const counterNames = Array.from({ length: 20 }, (_, i) => `c${i}`);
    const initial = { items: [], counters: Object.fromEntries(counterNames.map((name) => [name, 0])) };
    const served = await serve(file, { fs: faultyFileSystem(faults) }, initial);
    // Count from the second write on (the store wrote its files as it loaded, the first write opened the way).
    expect((await call(served.port, 'PUT', '/started', true)).status).toBe(201);

    const syncsBefore = faults.calls.sync + faults.calls.syncDirectory;
    const appendsBefore = served.storage.stats.appends;
    const posts = await Promise.all(Array.from({ length: 200 }, (_, i) => call(served.port, 'POST', '/items', { client: i })));
    for (const reply of posts) expect(reply.status, reply.text).toBe(201);
    const syncs = faults.calls.sync + faults.calls.syncDirectory - syncsBefore;
    const appends = served.storage.stats.appends - appendsBefore;
    expect(syncs).toBeGreaterThan(0);
    expect(syncs).toBeLessThan(200);
    expect(appends).toBeLessThan(200);
    expect(served.storage.stats.changes).toBe(201);
    faults.slowSync = 0;

    // Different paths and the same paths at once: 200 increments over 20 counters, plus PUTs to distinct keys.
    const work = [
      ...Array.from({ length: 200 }, (_, i) => increment(served.port, counterNames[i % 20] as string)),
      ...Array.from({ length: 50 }, (_, i) => call(served.port, 'PUT', `/keys/k${i}`, { i }).then((reply) => expect(reply.status).toBe(201))),
    ];
    const attempts = (await Promise.all(work)).filter((value): value is number => typeof value === 'number');
    // Contended: some increments had to retry.
    expect(Math.max(...attempts)).toBeGreaterThan(1);

    const expected = await documentOf(served);
    const items = expected['items'] as Array<{ client: number }>;
    expect(items.map((item) => item.client).sort((a, b) => a - b)).toEqual(Array.from({ length: 200 }, (_, i) => i));
    expect(expected['counters']).toEqual(Object.fromEntries(counterNames.map((name) => [name, 10])));
    expect(Object.keys(expected['keys'] as object)).toHaveLength(50);
    await served.close();

    const reopened = await serve(file);
    expect(await documentOf(reopened)).toEqual(expected);
    await reopened.close();
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(expected);
  });

  test("fsync: 'never' acknowledges without fsync and keeps every write across a reopen", async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const faults = newFaults();
    const served = await serve(file, { fsync: 'never', fs: faultyFileSystem(faults) }, { items: [] });
    expect((await call(served.port, 'POST', '/items', 0)).status).toBe(201);
    const syncsBefore = faults.calls.sync;
    const replies = await Promise.all(Array.from({ length: 50 }, (_, i) => call(served.port, 'POST', '/items', i + 1)));
    for (const reply of replies) expect(reply.status).toBe(201);
    expect(faults.calls.sync).toBe(syncsBefore);
    const expected = await documentOf(served);
    await served.close();
    const reopened = await serve(file);
    expect(await documentOf(reopened)).toEqual(expected);
    expect((expected['items'] as number[]).length).toBe(51);
    await reopened.close();
  });
});

describe('a failing disk', () => {
  test('a failed fsync: 503 problem+json, nothing applied, the journal cut back; the next write succeeds', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const faults = newFaults();
    const served = await serve(file, { fs: faultyFileSystem(faults) }, { a: 1 });
    expect((await call(served.port, 'PUT', '/a', 2)).status).toBe(200);
    const journalSize = statSync(filesOf(file).journal).size;

    faults.sync = 1;
    const refused = await call(served.port, 'PUT', '/a', 3);
    expect(refused.status).toBe(503);
    expect(refused.type).toBe('application/problem+json; charset=utf-8');
    expect((refused.body as { detail: string }).detail).toMatch(/nothing was changed/);
    expect(served.errors.map((error) => error.message)).toEqual([expect.stringMatching(/writing the journal failed: EIO/)]);
    expect((await call(served.port, 'GET', '/a')).body).toBe(2);
    // The bytes written before the failed fsync are gone again.
    expect(statSync(filesOf(file).journal).size).toBe(journalSize);

    expect((await call(served.port, 'PUT', '/a', 4)).status).toBe(200);
    await served.close();
    const reopened = await serve(file);
    expect(await documentOf(reopened)).toEqual({ a: 4 });
    await reopened.close();
  });

  test('a torn write that cannot be cut back: every write is refused until the journal is repaired, then writes go on', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const faults = newFaults();
    const served = await serve(file, { fs: faultyFileSystem(faults) }, { log: [] });
    expect((await call(served.port, 'POST', '/log', 'one')).status).toBe(201);
    expect((await call(served.port, 'POST', '/log', 'two')).status).toBe(201);

    faults.write = 1;
    faults.truncate = true;
    expect((await call(served.port, 'POST', '/log', 'torn')).status).toBe(503);
    const blocked = await call(served.port, 'POST', '/log', 'blocked');
    expect(blocked.status).toBe(503);
    expect(served.errors.at(-1)?.message).toMatch(/repairing the journal after an earlier failed write/);
    expect(await documentOf(served)).toEqual({ log: ['one', 'two'] });

    faults.truncate = false;
    expect((await call(served.port, 'POST', '/log', 'three')).status).toBe(201);
    expect(await documentOf(served)).toEqual({ log: ['one', 'two', 'three'] });
    // Every line of the journal is whole: the torn bytes were cut off before the next append.
    for (const line of journalLines(file)) expect(() => JSON.parse(line) as unknown).not.toThrow();
    await served.close();
    const reopened = await serve(file);
    expect(await documentOf(reopened)).toEqual({ log: ['one', 'two', 'three'] });
    await reopened.close();
  });

  test('a failed fsync that cannot be cut back: the client is told the outcome is unknown (a restart would show the change), never "nothing was changed"', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const faults = newFaults();
    const served = await serve(file, { fs: faultyFileSystem(faults) }, { a: 1 });
    expect((await call(served.port, 'PUT', '/a', 2)).status).toBe(200);

    faults.sync = 1;
    faults.truncate = true;
    const refused = await call(served.port, 'PUT', '/a', 3);
    expect(refused.status).toBe(503);
    expect(refused.type).toBe('application/problem+json; charset=utf-8');
    const detail = (refused.body as { detail: string }).detail;
    expect(detail).toMatch(/whether the change was saved is unknown/);
    expect(detail).not.toMatch(/nothing was changed/);
    expect(detail).not.toContain(dir);
    // And the error says so to code, as StorageError.outcome, not only in words.
    expect(served.errors.map((error) => (error as { outcome?: string }).outcome)).toContain('unknown');
    // The server's log has the file and both failures.
    expect(served.errors.at(-1)?.message).toContain(`writing the journal ${filesOf(file).journal} failed (EIO), and repairing the journal`);
    // Not in the document now...
    expect((await call(served.port, 'GET', '/a')).body).toBe(2);
    // ...but the appended line is still in the journal: a crash now would bring it back, which is why "unknown" is the honest answer.
    const image = crashImage(file, join(dir, 'image'));
    const restarted = await serve(image);
    expect(await documentOf(restarted)).toEqual({ a: 3 });
    await restarted.close();

    // Nothing is appended after the unknown tail: writes are refused (truthfully: they were not saved) until it is cut off.
    const blocked = await call(served.port, 'PUT', '/a', 4);
    expect(blocked.status).toBe(503);
    expect((blocked.body as { detail: string }).detail).toMatch(/nothing was changed/);
    faults.truncate = false;
    expect((await call(served.port, 'PUT', '/a', 5)).status).toBe(200);
    await served.close();
    const reopened = await serve(file);
    expect(await documentOf(reopened)).toEqual({ a: 5 });
    await reopened.close();
  });

  test('a failed batch that cannot be cut back: every change a restart could bring back was answered "unknown", none "nothing was changed"', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const faults = newFaults();
    // A slow fsync, so that writes pile up into batches.
    faults.slowSync = 20;
    const served = await serve(file, { fs: faultyFileSystem(faults) }, { items: [] });
    expect((await call(served.port, 'POST', '/items', -1)).status).toBe(201);

    const pending = Array.from({ length: 40 }, (_, i) => call(served.port, 'POST', '/items', i));
    // Once the first batch is being synced, the next batch's fsync fails and so does every cut-back.
    const syncs = faults.calls.sync;
    while (faults.calls.sync === syncs) await new Promise((resolve) => setTimeout(resolve, 1));
    faults.sync = 1;
    faults.truncate = true;
    const replies = await Promise.all(pending);
    for (const reply of replies) expect([201, 503]).toContain(reply.status);

    // What a crash right now would load.
    const image = crashImage(file, join(dir, 'image'));
    const restarted = await serve(image);
    const afterCrash = new Set(((await documentOf(restarted))['items'] as number[]) ?? []);
    await restarted.close();

    let comeBack = 0;
    for (const [i, reply] of replies.entries()) {
      if (reply.status === 201) {
        expect(afterCrash.has(i), `acknowledged ${i}`).toBe(true);
        continue;
      }
      const detail = (reply.body as { detail: string }).detail;
      if (afterCrash.has(i)) {
        comeBack++;
        expect(detail, `refused ${i}, back after a crash`).toMatch(/whether the change was saved is unknown/);
      } else {
        expect(detail, `refused ${i}, not back after a crash`).toMatch(/nothing was changed|unknown/);
      }
    }
    expect(comeBack).toBeGreaterThan(0);

    // Once the cut-back works, the refused changes are gone for good.
    faults.truncate = false;
    faults.slowSync = 0;
    expect((await call(served.port, 'POST', '/items', 100)).status).toBe(201);
    const expected = [-1, ...replies.flatMap((reply, i) => (reply.status === 201 ? [i] : [])), 100];
    expect((await documentOf(served))['items']).toEqual(expected);
    await served.close();
    const reopened = await serve(file);
    expect((await documentOf(reopened))['items']).toEqual(expected);
    await reopened.close();
  });

  test('a failure among many writes in flight: refused ones never appear, acknowledged ones all do, later writes succeed', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const faults = newFaults();
    faults.slowSync = 2;
    const served = await serve(file, { fs: faultyFileSystem(faults) }, { items: [] });
    expect((await call(served.port, 'POST', '/items', -1)).status).toBe(201);

    // The second fsync from now fails, with writes queued behind it.
    const pending = Array.from({ length: 60 }, (_, i) => call(served.port, 'POST', '/items', i));
    let syncs = faults.calls.sync;
    while (faults.calls.sync === syncs) await new Promise((resolve) => setTimeout(resolve, 1));
    syncs = faults.calls.sync;
    faults.sync = 1;
    const replies = await Promise.all(pending);
    const accepted = replies.flatMap((reply, i) => (reply.status === 201 ? [i] : []));
    const refused = replies.flatMap((reply, i) => (reply.status === 503 ? [i] : []));
    expect(accepted.length + refused.length).toBe(60);
    expect(refused.length).toBeGreaterThan(0);
    for (const i of refused) expect(replies[i]?.type).toBe('application/problem+json; charset=utf-8');

    const after = await Promise.all(Array.from({ length: 10 }, (_, i) => call(served.port, 'POST', '/items', 100 + i)));
    for (const reply of after) expect(reply.status).toBe(201);
    const expected = [-1, ...accepted, ...Array.from({ length: 10 }, (_, i) => 100 + i)].sort((a, b) => a - b);
    const sorted = (items: unknown) => [...(items as number[])].sort((a, b) => a - b);
    expect(sorted((await documentOf(served))['items'])).toEqual(expected);
    await served.close();
    const reopened = await serve(file);
    expect(sorted((await documentOf(reopened))['items'])).toEqual(expected);
    await reopened.close();
  });

  test('a store on no files writes initial as the snapshot while it loads; when that fails it leaves no file behind, and a later try starts it', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const faults = newFaults();
    faults.rename = 1;
    const served = await serve(file, { fs: faultyFileSystem(faults) }, { fresh: true });
    await expect(served.store.ready()).rejects.toThrow(/writing the snapshot failed: EIO/);
    expect(existsSync(file)).toBe(false);
    // The folder's fsync fails after the snapshot was renamed into place: it is removed again.
    faults.syncDirectory = 1;
    // Each request tries the load again (at most once a second) until one succeeds.
    await eventually('the store loads on a later try', async () => (await served.http.get('/store/')).status === 200);
    expect(faults.syncDirectory).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ fresh: true });
    expect(journalLines(file)).toHaveLength(1);

    // The first write appends its change alone.
    expect((await served.http.put('/store/a').send({ x: 3 })).status).toBe(201);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ fresh: true });
    expect(journalLines(file).slice(1).map((line) => JSON.parse(line) as unknown)).toEqual([{ revision: 1, ops: [{ op: 'add', path: '/a', value: { x: 3 } }] }]);
    await served.close();
  });

  test('a first commit on no files (no seed) whose new snapshot cannot be removed again: the outcome is unknown; the next commit replaces it', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const faults = newFaults();
    const storage = fileStorage(file, { fs: faultyFileSystem(faults) });
    expect(await storage.load()).toBeUndefined();
    // The folder's fsync fails after the snapshot was renamed into place, and so does removing it again.
    faults.syncDirectory = 1;
    faults.removeFile = 1;
    const replaceRoot = (value: JsonValue) => [{ op: 'replace' as const, path: '', value }];
    const failed = await Promise.resolve(storage.commit({ revision: 1, ops: replaceRoot({ fresh: true, a: { x: 1 } }) })).then(
      () => undefined,
      (error: unknown) => error as { outcome?: string; message: string },
    );
    expect(failed?.outcome).toBe('unknown');
    expect(failed?.message).toMatch(/writing the snapshot failed: EIO, and removing the new .*store\.json again failed too \(EIO\)/);
    // Indeed: the snapshot with the change is there, and a restart now would load it.
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ fresh: true, a: { x: 1 } });

    await storage.commit({ revision: 1, ops: replaceRoot({ fresh: true, b: { x: 2 } }) });
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ fresh: true, b: { x: 2 } });
    await storage.close?.();
    const reopened = await serve(file);
    expect(await documentOf(reopened)).toEqual({ fresh: true, b: { x: 2 } });
    await reopened.close();
  });

  test('a compaction that fails refuses no write: a warning, and it is tried again later', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const faults = newFaults();
    // Caught here rather than printed.
    await collectWarnings(async (warnings) => {
      const served = await serve(file, { fs: faultyFileSystem(faults), compactRatio: 0.2, compactMinSize: 0 }, { log: [] });
      expect((await call(served.port, 'POST', '/log', 0)).status).toBe(201);
      faults.rename = true;
      for (let i = 1; i <= 40; i++) expect((await call(served.port, 'POST', '/log', i)).status).toBe(201);
      // Compaction runs in the background: wait for its failure to be reported.
      await eventually('a compaction failure warning', () => warnings.some((message) => message.includes(`could not compact ${file}`)));
      expect(served.storage.stats.compactions).toBe(0);

      faults.rename = false;
      // After a failure the next try waits for the journal to grow further, by
      // how much depends on when the failure came: write until it compacts.
      let written = 41;
      while (served.storage.stats.compactions === 0 && written < 2000) {
        expect((await call(served.port, 'POST', '/log', written)).status).toBe(201);
        written++;
      }
      await eventually('a compaction once renames work again', () => served.storage.stats.compactions > 0);
      await served.close();
      expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ log: Array.from({ length: written }, (_, i) => i) });
      const reopened = await serve(file);
      expect((await documentOf(reopened))['log']).toHaveLength(written);
      await reopened.close();
    });
  });
});
