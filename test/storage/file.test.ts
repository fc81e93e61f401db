/**
 * fileStorage(): files on disk, loading, hand edits, torn and damaged
 * journals, compaction. Through real HTTP on real files.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { jsonStore } from '../../src/index.js';
import { fileStorage, nodeFileSystem, type FileStorageFileSystem } from '../../src/storage/file.js';
import {
  crashImage,
  collectWarnings,
  eventually,
  expectProblem,
  filesOf,
  journalLines,
  readOrUndefined,
  removeTempDirs,
  serve,
  tempDir,
  type Served,
} from './file-support.js';

afterAll(removeTempDirs);

async function documentOf(served: Served): Promise<unknown> {
  const response = await served.http.get('/store/');
  expect(response.status).toBe(200);
  return response.body;
}

describe('options', () => {
  test('bad options are TypeErrors naming the option', () => {
    expect(() => fileStorage('')).toThrow(/path must be a non-empty string/);
    expect(() => fileStorage(42 as unknown as string)).toThrow(TypeError);
    expect(() => fileStorage('data/')).toThrow(/must name a file/);
    expect(() => fileStorage('x.json', { fsync: 'sometimes' as 'always' })).toThrow(/option "fsync" must be 'always' or 'never'/);
    expect(() => fileStorage('x.json', { compactRatio: 0 })).toThrow(/option "compactRatio"/);
    expect(() => fileStorage('x.json', { compactRatio: Number.NaN })).toThrow(/option "compactRatio"/);
    expect(() => fileStorage('x.json', { compactMinSize: -1 })).toThrow(/option "compactMinSize"/);
    expect(() => fileStorage('x.json', { compactMinSize: 1.5 })).toThrow(/option "compactMinSize"/);
    expect(() => fileStorage('x.json', { fs: {} as FileStorageFileSystem })).toThrow(/option "fs" must be an object with the methods/);
    expect(() => fileStorage('x.json', { fsnyc: 'never' } as never)).toThrow(/unknown option "fsnyc"/);
    for (const mode of [0o400, 0o200, 0o1600, -1, 1.5, '600', Number.NaN]) {
      expect(() => fileStorage('x.json', { mode: mode as number }), String(mode)).toThrow(/option "mode" must be file permissions from 0o600 to 0o777/);
    }
    expect(() => fileStorage('x.json', { mode: 0o400 })).toThrow(/got 0o400$/);
    expect(() => fileStorage('x.json', { fsync: 'never', compactRatio: Infinity, compactMinSize: 0, mode: 0o644, fs: nodeFileSystem })).not.toThrow();
  });

  test('creating the adapter touches no file', async () => {
    const dir = await tempDir();
    fileStorage(join(dir, 'data', 'store.json'));
    expect(existsSync(join(dir, 'data'))).toBe(false);
  });
});

describe('files on disk', () => {
  test('a missing file starts from initial: the store creates the folder and a pretty snapshot of initial as it loads; the first write appends only its change', async () => {
    const dir = await tempDir();
    const file = join(dir, 'data', 'nested', 'store.json');
    const served = await serve(file, {}, { sniffles: [] });
    expect(await documentOf(served)).toEqual({ sniffles: [] });
    // Seeded while loading: the snapshot holds initial at revision 0, the journal only its header.
    const snapshot = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    expect(snapshot).toEqual({ sniffles: [] });
    expect(readFileSync(file, 'utf8')).toBe(JSON.stringify(snapshot, null, 2) + '\n');
    expect(journalLines(file)).toHaveLength(1);
    expect(JSON.parse(journalLines(file)[0] as string)).toMatchObject({ snapshot: { revision: 0 } });

    expect((await served.http.post('/store/sniffles').send({ name: 'Ada' })).status).toBe(201);
    // The first write appended its change alone; the snapshot is as seeded.
    expect(readFileSync(file, 'utf8')).toBe(JSON.stringify(snapshot, null, 2) + '\n');
    expect(journalLines(file).slice(1).map((line) => JSON.parse(line) as unknown)).toEqual([
      { revision: 1, ops: [{ op: 'add', path: '/sniffles/0', value: { name: 'Ada' } }] },
    ]);
    expect(readFileSync(filesOf(file).lock, 'utf8')).toContain(`"pid":${process.pid}`);
    await served.close();
    expect(existsSync(filesOf(file).lock)).toBe(false);
  });

  test('writes are appended to the journal, one line per change, and survive a reopen', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const first = await serve(file, {}, {});
    await first.store.ready();
    const snapshotAtStart = readFileSync(file, 'utf8');
    await first.http.put('/store/a').send({ n: 1 }).expect(201);
    await first.http.patch('/store/a').send({ n: 2 }).expect(200);
    await first.http.put('/store/b').send([1, 2]).expect(201);
    await first.http.delete('/store/b/0').expect(204);
    // Only the journal grew: the snapshot is rewritten by compaction, not per write.
    expect(readFileSync(file, 'utf8')).toBe(snapshotAtStart);
    const lines = journalLines(file);
    expect(lines).toHaveLength(5);
    expect(JSON.parse(lines[2] as string)).toMatchObject({ revision: 2, ops: [{ op: 'replace', path: '/a/n', value: 2 }] });
    const expected = await documentOf(first);
    await first.close();

    const second = await serve(file, {}, { ignored: 'initial' });
    expect(await documentOf(second)).toEqual(expected);
    await second.close();
  });

  test('close folds the journal into the snapshot: after a clean stop the snapshot is the whole document', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const served = await serve(file, {}, { list: [] });
    for (let i = 0; i < 5; i++) await served.http.post('/store/list').send({ i }).expect(201);
    const expected = await documentOf(served);
    await served.close();
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(expected);
    // Only the header is left.
    expect(journalLines(file)).toHaveLength(1);
    expect(JSON.parse(journalLines(file)[0] as string)).toMatchObject({ snapshot: { revision: 5 } });
  });

  test('a journal without a snapshot file is refused; an empty one after a clean stop means start from initial', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const served = await serve(file);
    // The store starts by writing initial as the snapshot; both writes go into the journal.
    await served.http.put('/store/x').type('json').send(String(1)).expect(201);
    await served.http.put('/store/x').type('json').send(String(2)).expect(200);
    const image = crashImage(file, join(dir, 'image'));
    await served.close();

    // Crash image without its snapshot: the journal's changes have nothing to apply to.
    rmSync(image);
    const journalBefore = readFileSync(filesOf(image).journal);
    const broken = await serve(image, {}, { fresh: true });
    // The client is told what is wrong, the server's log also which files and what to do.
    const detail = expectProblem(await broken.http.get('/store/'), 503, 'The snapshot is missing, but the journal holds 2 changes made to it');
    expect(detail).not.toContain('store.json');
    await expect(broken.store.ready()).rejects.toThrow(`${image} is missing, but ${filesOf(image).journal} holds 2 changes made to it`);
    await broken.close();
    expect(readFileSync(filesOf(image).journal)).toEqual(journalBefore);

    // After a clean stop, deleting the snapshot starts over from initial.
    rmSync(file);
    const fresh = await serve(file, {}, { fresh: true });
    expect(await documentOf(fresh)).toEqual({ fresh: true });
    await fresh.http.put('/store/y').type('json').send(String(2)).expect(201);
    await fresh.close();
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ fresh: true, y: 2 });
  });

  test('a second store on the same file in this process is refused; after close it may open', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const first = await serve(file);
    await first.http.put('/store/x').type('json').send(String(1)).expect(201);
    const second = await serve(file);
    expectProblem(await second.http.get('/store/'), 503, /already open in this process/);
    await second.close();
    await first.close();
    const third = await serve(file);
    expect(await documentOf(third)).toEqual({ x: 1 });
    await third.close();
  });
});

/** The permissions a new file or folder gets with `mode`, after the process umask. */
function afterUmask(mode: number): number {
  const umask = process.umask();
  return mode & ~umask;
}

function permissions(path: string): string {
  return (statSync(path).mode & 0o777).toString(8);
}

describe('permissions', () => {
  test('new files are 0600 and new folders 0700 by default: only the owner may read them', async () => {
    const dir = await tempDir();
    const file = join(dir, 'data', 'nested', 'store.json');
    const served = await serve(file, { compactRatio: 0.01, compactMinSize: 0 }, { list: [] });
    await served.http.get('/store/').expect(200);
    for (let i = 0; i < 5; i++) await served.http.post('/store/list').send({ i }).expect(201);
    expect(permissions(join(dir, 'data'))).toBe(afterUmask(0o700).toString(8));
    expect(permissions(join(dir, 'data', 'nested'))).toBe(afterUmask(0o700).toString(8));
    const { snapshot, journal, lock } = filesOf(file);
    for (const path of [snapshot, journal, lock]) expect(permissions(path), path).toBe(afterUmask(0o600).toString(8));
    await served.close();
    // Rewritten by the compaction on close: still 0600.
    for (const path of [snapshot, journal]) expect(permissions(path), path).toBe(afterUmask(0o600).toString(8));
  });

  test('option mode: 0o640 gives files 0640 and new folders 0750', async () => {
    const dir = await tempDir();
    const file = join(dir, 'data', 'store.json');
    const served = await serve(file, { mode: 0o640 }, {});
    await served.http.put('/store/a').send({ x: 1 }).expect(201);
    await served.http.put('/store/b').send({ x: 2 }).expect(201);
    expect(permissions(join(dir, 'data'))).toBe(afterUmask(0o750).toString(8));
    const { snapshot, journal, lock } = filesOf(file);
    for (const path of [snapshot, journal, lock]) expect(permissions(path), path).toBe(afterUmask(0o640).toString(8));
    await served.close();
  });
});

describe('symbolic links and leftovers', () => {
  /** A folder for the store and, beside it, a file the store must never touch. */
  async function setup(): Promise<{ dir: string; file: string; target: string; missing: string }> {
    const dir = await tempDir();
    mkdirSync(join(dir, 'outside'));
    const target = join(dir, 'outside', 'precious.json');
    writeFileSync(target, '{"precious":true}');
    mkdirSync(join(dir, 'data'));
    return { dir, file: join(dir, 'data', 'store.json'), target, missing: join(dir, 'outside', 'missing.json') };
  }

  const places = [
    { name: 'snapshot', path: (file: string) => file },
    { name: 'journal', path: (file: string) => filesOf(file).journal },
    { name: 'snapshot temp file', path: (file: string) => `${file}.tmp` },
    { name: 'journal temp file', path: (file: string) => `${file}.journal.tmp` },
  ];

  for (const place of places) {
    test(`a symbolic link as the ${place.name} is refused at startup with a clear error; nothing outside the folder is touched`, async () => {
      const { dir, file, target, missing } = await setup();
      for (const pointsTo of [target, missing]) {
        const link = place.path(file);
        symlinkSync(pointsTo, link);
        const served = await serve(file, {}, { fresh: true });
        const detail = expectProblem(await served.http.get('/store/'), 503, "A symbolic link is where one of the store's files should be");
        expect(detail).not.toContain(dir);
        expect(detail).not.toContain('store.json');
        await expect(served.store.ready()).rejects.toThrow(`${link} is a symbolic link. The store does not follow links where its files should be`);
        expectProblem(await served.http.put('/store/a').send({ x: 1 }), 503);
        await served.close();
        expect(readFileSync(target, 'utf8')).toBe('{"precious":true}');
        expect(existsSync(missing)).toBe(false);
        // The link is left as it was, for a person to look at.
        expect(lstatSync(link).isSymbolicLink()).toBe(true);
        expect(readdirSync(join(dir, 'data'))).toEqual([link.slice(join(dir, 'data').length + 1)]);
        rmSync(link);
      }
    });
  }

  test('a symbolic link planted as a temp file while the store runs is not written through: the compaction fails, nothing outside changes', async () => {
    const { file, target } = await setup();
    const warnings = await collectWarnings(async () => {
      const served = await serve(file, {}, { log: [] });
      for (let i = 0; i < 3; i++) await served.http.post('/store/log').send({ i }).expect(201);
      symlinkSync(target, `${file}.tmp`);
      // Closing folds the journal into a new snapshot, written to store.json.tmp.
      await served.close();
    });
    expect(warnings.some((warning) => warning.includes(`${file}.tmp is a symbolic link; the store does not write through it`))).toBe(true);
    expect(readFileSync(target, 'utf8')).toBe('{"precious":true}');
    // Cleaning up after the failed compaction may have removed the link itself (never what it points to).
    rmSync(`${file}.tmp`, { force: true });
    const reopened = await serve(file);
    expect(await documentOf(reopened)).toEqual({ log: [{ i: 0 }, { i: 1 }, { i: 2 }] });
    await reopened.close();
  });

  test('something other than a file (a folder) where a file should be is refused at startup', async () => {
    const { dir, file } = await setup();
    mkdirSync(filesOf(file).journal);
    const served = await serve(file);
    const detail = expectProblem(await served.http.get('/store/'), 503, "Something other than a file is where one of the store's files should be");
    expect(detail).not.toContain(dir);
    await expect(served.store.ready()).rejects.toThrow(`${filesOf(file).journal} is not a regular file`);
    await served.close();
  });

  test('on a fresh store, leftover temp files are removed before the first write', async () => {
    const { dir, file } = await setup();
    writeFileSync(`${file}.tmp`, 'half a snapshot');
    writeFileSync(`${file}.journal.tmp`, 'half a journal');
    const served = await serve(file, {}, { fresh: true });
    expect(await documentOf(served)).toEqual({ fresh: true });
    // Gone once the store is open, before anything is written (the store seeded the snapshot and journal itself).
    expect(readdirSync(join(dir, 'data')).sort()).toEqual(['store.json', 'store.json.journal', 'store.json.lock']);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ fresh: true });
    await served.http.put('/store/a').send({ x: 1 }).expect(201);
    await served.close();
    const reopened = await serve(file);
    expect(await documentOf(reopened)).toEqual({ fresh: true, a: { x: 1 } });
    await reopened.close();
  });
});

describe('hand edits', () => {
  test('editing the snapshot while the store is stopped is picked up on restart', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const first = await serve(file, {}, { todo: [] });
    await first.http.post('/store/todo').send({ text: 'write tests' }).expect(201);
    await first.close();

    const edited = JSON.parse(readFileSync(file, 'utf8')) as { todo: Array<{ text: string; done?: boolean }> };
    edited.todo[0]!.done = true;
    edited.todo.push({ text: 'added by hand' });
    // A person's formatting, not ours.
    writeFileSync(file, JSON.stringify(edited, null, 4));

    const second = await serve(file, {}, { todo: [] });
    expect(await documentOf(second)).toEqual(edited);
    await second.http.post('/store/todo').send({ text: 'after the edit' }).expect(201);
    await second.close();

    const third = await serve(file);
    expect(await documentOf(third)).toEqual({ todo: [...edited.todo, { text: 'after the edit' }] });
    await third.close();
  });

  test('a snapshot edited while the journal holds changes (after a crash): the edit is served, the journal is set aside with a warning', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const served = await serve(file, {}, { n: 0 });
    await served.http.put('/store/n').type('json').send(String(1)).expect(200);
    await served.http.put('/store/n').type('json').send(String(2)).expect(200);
    await served.http.put('/store/n').type('json').send(String(3)).expect(200);
    const image = crashImage(file, join(dir, 'image'));
    await served.close();

    writeFileSync(image, JSON.stringify({ n: 100 }, null, 2));
    const journalBefore = readFileSync(filesOf(image).journal);
    const warnings = await collectWarnings(async () => {
      const restarted = await serve(image);
      expect(await documentOf(restarted)).toEqual({ n: 100 });
      await restarted.http.put('/store/n').type('json').send('101').expect(200);
      await restarted.close();
    });
    const aside = readdirSync(dirname(image)).filter((name) => name.startsWith(`${basename(image)}.journal.superseded-`));
    expect(aside).toHaveLength(1);
    expect(readFileSync(join(dirname(image), aside[0]!))).toEqual(journalBefore);
    expect(warnings.join('\n')).toMatch(/was edited while its journal held 3 changes made to the previous version; the edit is served and those changes are not: the journal was moved to .*\.journal\.superseded-/);
    const again = await serve(image);
    expect(await documentOf(again)).toEqual({ n: 101 });
    await again.close();
  });
  test('editing the snapshot while the store runs (not watched): writes go on, close warns, and the next start serves the edit', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const warnings = await collectWarnings(async () => {
      const served = await serve(file, { compactMinSize: 0, compactRatio: 0.1 }, { n: 0 });
      await served.http.put('/store/n').type('json').send('1').expect(200);
      writeFileSync(file, JSON.stringify({ n: 'edited while running' }));
      for (let i = 2; i <= 10; i++) await served.http.put('/store/n').type('json').send(String(i)).expect(200);
      expect(served.storage.stats.compactions).toBe(0);
      await served.close();
    });
    expect(warnings.some((warning) => warning.includes('was edited while the store had it open, so the journal was not folded into it'))).toBe(true);
    // Neither the edit nor the changes were dropped.
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ n: 'edited while running' });
    expect(journalLines(file).length).toBeGreaterThan(9);
    const restarted = await serve(file);
    expect(await documentOf(restarted)).toEqual({ n: 'edited while running' });
    await restarted.close();
    expect(readdirSync(dir).some((name) => name.startsWith('store.json.journal.superseded-'))).toBe(true);
  });
});


describe('damaged files', () => {
  /** A store with a few changes in its journal, left as a crash would leave it. */
  async function crashedStore(): Promise<{ dir: string; image: string }> {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const served = await serve(file, {}, { items: [] });
    for (let i = 0; i < 5; i++) await served.http.post('/store/items').send({ i }).expect(201);
    const image = crashImage(file, join(dir, 'image'));
    await served.close();
    return { dir, image };
  }

  test('a snapshot that is not JSON is a startup error naming the file; 503 and ready() rejects; no file changes', async () => {
    const { image } = await crashedStore();
    writeFileSync(image, '{\n  "items": [\n    {"i": 0},\n  ]\n}\n');
    const before = { snapshot: readFileSync(image), journal: readFileSync(filesOf(image).journal) };
    const served = await serve(image);
    const detail = expectProblem(await served.http.get('/store/'), 503, 'The snapshot is not valid JSON');
    // No file or folder names for clients.
    expect(detail).not.toContain('store.json');
    await expect(served.store.ready()).rejects.toThrow(`${image} is not valid JSON`);
    expectProblem(await served.http.post('/store/items').send({ i: 9 }), 503);
    await served.close();
    expect(readFileSync(image)).toEqual(before.snapshot);
    expect(readFileSync(filesOf(image).journal)).toEqual(before.journal);
  });

  test('a damaged line in the middle of the journal is a startup error naming file and line; no file changes', async () => {
    const { image } = await crashedStore();
    const journal = filesOf(image).journal;
    const lines = journalLines(image);
    expect(lines).toHaveLength(6);
    // Line 3 (header is line 1) loses a quote.
    lines[2] = (lines[2] as string).replace('"ops"', 'ops"');
    writeFileSync(journal, lines.join(''));
    const before = { snapshot: readFileSync(image), journal: readFileSync(journal) };

    const served = await serve(image);
    const detail = expectProblem(await served.http.get('/store/'), 503, 'Line 3 of the journal is damaged');
    expect(detail).not.toContain('store.json');
    await expect(served.store.ready()).rejects.toThrow(`Line 3 of ${journal} is damaged: not valid JSON`);
    // The server's log gets the whole story.
    expect(served.errors.map((error) => error.message).join('\n')).toContain(`Line 3 of ${journal} is damaged`);
    expectProblem(await served.http.put('/store/x').type('json').send(String(1)), 503);
    await served.close();
    expect(readFileSync(image)).toEqual(before.snapshot);
    expect(readFileSync(journal)).toEqual(before.journal);
    expect(existsSync(filesOf(image).lock)).toBe(false);
  });

  test('revisions in the journal must be consecutive: a missing line is named', async () => {
    const { image } = await crashedStore();
    const journal = filesOf(image).journal;
    const lines = journalLines(image);
    lines.splice(2, 1);
    writeFileSync(journal, lines.join(''));
    const served = await serve(image);
    expectProblem(await served.http.get('/store/'), 503, 'Line 3 of the journal is damaged');
    await expect(served.store.ready()).rejects.toThrow(/Line 3 of .* is damaged: its revision \d+ does not follow revision \d+/);
    await served.close();
  });

  test('a complete last line that is damaged is an error too, not a torn append', async () => {
    const { image } = await crashedStore();
    const journal = filesOf(image).journal;
    const lines = journalLines(image);
    lines[4] = '{"revision":5,"ops":[{"op":"add"}]}\n';
    writeFileSync(journal, lines.join(''));
    const served = await serve(image);
    expectProblem(await served.http.get('/store/'), 503, 'Line 5 of the journal is damaged');
    await served.close();
  });
});

describe('torn appends', () => {
  test('a journal cut at every byte of its last record loads the state before it; the whole record loads it', { timeout: 60_000 }, async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const served = await serve(file, {}, { notes: [] });
    await served.http.post('/store/notes').send({ text: 'first' }).expect(201);
    await served.http.post('/store/notes').send({ text: 'second' }).expect(201);
    const before = await documentOf(served);
    // Multi-byte characters, so some cuts fall inside a character.
    await served.http.post('/store/notes').send({ text: 'drïtte ✓ 🦔' }).expect(201);
    const after = await documentOf(served);
    const image = crashImage(file, join(dir, 'image'));
    await served.close();

    const journal = readFileSync(filesOf(image).journal);
    const lastStart = journal.lastIndexOf(0x0a, journal.length - 2) + 1;
    expect(journal.length - lastStart).toBeGreaterThan(20);
    const snapshot = readFileSync(image);
    for (let cut = lastStart; cut <= journal.length; cut++) {
      const caseDir = join(dir, `cut-${cut}`);
      const target = crashImage(image, caseDir);
      writeFileSync(filesOf(target).journal, journal.subarray(0, cut));
      const store = await serve(target, {}, { notes: [] });
      const whole = cut === journal.length;
      expect(await documentOf(store), `cut at byte ${cut}`).toEqual(whole ? after : before);
      // The torn tail is gone before anything is appended after it.
      expect(statSync(filesOf(target).journal).size).toBe(whole ? journal.length : lastStart);
      await store.http.put('/store/later').type('json').send(String(cut)).expect(201);
      await store.close();
      expect(readFileSync(target)).not.toEqual(snapshot);
      const reopened = await serve(target);
      expect(await documentOf(reopened)).toEqual({ ...(whole ? after : before) as object, later: cut });
      await reopened.close();
      rmSync(caseDir, { recursive: true });
    }
  });
});

describe('compaction', () => {
  test('the journal is folded into the snapshot once it outgrows it, while writes go on; nothing is lost', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const served = await serve(file, { compactRatio: 0.5, compactMinSize: 0 }, { log: [] });
    for (let round = 0; round < 10; round++) {
      const writes = Array.from({ length: 20 }, (_, i) => served.http.post('/store/log').send({ round, i, pad: 'x'.repeat(50) }));
      for (const response of await Promise.all(writes)) expect(response.status).toBe(201);
    }
    const expected = (await documentOf(served)) as { log: unknown[] };
    expect(expected.log).toHaveLength(200);
    // A compaction may still be under way (writes set one off in the background): the counters match the files once it is done.
    await eventually('the stats to match the files', () => {
      const { snapshotBytes } = served.storage.stats;
      return snapshotBytes === statSync(file).size ? true : undefined;
    });
    const { compactions, journalBytes, snapshotBytes } = served.storage.stats;
    expect(compactions).toBeGreaterThan(0);
    // Without compaction the journal would hold all 200 changes.
    expect(journalLines(file).length).toBeLessThan(200);
    expect(journalBytes).toBeLessThanOrEqual(statSync(filesOf(file).journal).size);
    expect(snapshotBytes).toBe(statSync(file).size);
    const image = crashImage(file, join(dir, 'image'));
    await served.close();

    // As a crash would have left it, and after a clean stop.
    for (const target of [image, file]) {
      const reopened = await serve(target);
      expect(await documentOf(reopened)).toEqual(expected);
      await reopened.close();
    }
  });

  test('a crash at any step of a compaction leaves files that load the same document', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const images: string[] = [];
    let recording = false;
    // Before each change to the disk, a copy of the files: what a crash at that point would leave.
    const record = () => {
      if (recording) images.push(crashImage(file, join(dir, `image-${images.length}`)));
    };
    const base = nodeFileSystem;
    const recordingFs: FileStorageFileSystem = {
      ...base,
      async open(path, flags, mode) {
        record();
        const opened = await base.open(path, flags, mode);
        return {
          write: (data, position) => (record(), opened.write(data, position)),
          sync: () => (record(), opened.sync()),
          truncate: (length) => (record(), opened.truncate(length)),
          close: () => opened.close(),
        };
      },
      rename: (from, to) => (record(), base.rename(from, to)),
      removeFile: (path) => (record(), base.removeFile(path)),
      syncDirectory: (path) => (record(), base.syncDirectory(path)),
    };
    const served = await serve(file, { fs: recordingFs }, { rows: [] });
    for (let i = 0; i < 6; i++) await served.http.post('/store/rows').send({ i }).expect(201);
    const expected = await documentOf(served);
    recording = true;
    // close() compacts: snapshot to a temp file, marker, rename, new journal.
    await served.close();
    recording = false;
    images.push(crashImage(file, join(dir, 'image-final')));
    expect(images.length).toBeGreaterThan(8);
    for (const image of images) {
      const reopened = await serve(image);
      expect(await documentOf(reopened), image).toEqual(expected);
      await reopened.close();
    }
  });

  test('Infinity compacts only on close', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const served = await serve(file, { compactRatio: Infinity, compactMinSize: 0 }, { log: [] });
    for (let i = 0; i < 30; i++) await served.http.post('/store/log').send({ i }).expect(201);
    expect(served.storage.stats.compactions).toBe(0);
    // The snapshot holds initial (seeded as the store loaded); the 30 changes follow the header in the journal.
    expect(journalLines(file)).toHaveLength(31);
    await served.close();
    expect(journalLines(file)).toHaveLength(1);
    expect((JSON.parse(readFileSync(file, 'utf8')) as { log: unknown[] }).log).toHaveLength(30);
  });
});

describe('programmatic use', () => {
  test('jsonStore() on fileStorage: put/get/close/reopen', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const store = jsonStore({ initial: { a: 1 }, storage: fileStorage(file) });
    await store.ready();
    await store.put('/b', { c: [1, 2, 3] });
    await store.patch('/b/c', [{ op: 'add', path: '/-', value: 4 }], { type: 'json-patch' });
    await store.close();
    expect(readOrUndefined(filesOf(file).lock)).toBeUndefined();
    const again = jsonStore({ initial: {}, storage: fileStorage(file) });
    expect(await again.get()).toEqual({ a: 1, b: { c: [1, 2, 3, 4] } });
    await again.close();
  });
});
