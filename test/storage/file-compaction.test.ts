/**
 * Compaction writes out the engine's working document, frozen at one
 * revision, a slice at a time, while writes go on. Through real HTTP on real
 * files; the steps are held and released by the test (a file system whose
 * writes and syncs wait at gates), so nothing depends on timing.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { JsonValue } from '../../src/index.js';
import { nodeFileSystem, type FileStorageFile, type FileStorageFileSystem } from '../../src/storage/file.js';
import { collectWarnings, crashImage, eio, eventually, filesOf, journalLines, removeTempDirs, serve, tempDir, type Served } from './file-support.js';

afterAll(removeTempDirs);

interface Gate {
  /** Resolves once an operation is waiting at the gate. */
  reached: Promise<void>;
  release(): void;
}

/**
 * `node:fs` whose file writes and syncs can be held at gates or made to fail
 * once, by file (`journal`, whichever name it was created under, or
 * `snapshot-temp`) and operation: `journal:sync`, `snapshot-temp:write`…
 */
function gatedFileSystem(base: FileStorageFileSystem = nodeFileSystem) {
  const gates = new Map<string, { reached: () => void; opened: Promise<void> }>();
  const failures = new Set<string>();
  const pass = async (key: string): Promise<void> => {
    const gate = gates.get(key);
    if (gate !== undefined) {
      gate.reached();
      await gate.opened;
    }
    if (failures.delete(key)) throw eio(key);
  };
  const fs: FileStorageFileSystem = {
    ...base,
    async open(path, flags, mode) {
      const file = await base.open(path, flags, mode);
      const name = basename(path).includes('.journal') ? 'journal' : basename(path).endsWith('.tmp') ? 'snapshot-temp' : basename(path);
      const wrapped: FileStorageFile = {
        write: async (data, position) => {
          await pass(`${name}:write`);
          return file.write(data, position);
        },
        sync: async () => {
          await pass(`${name}:sync`);
          return file.sync();
        },
        truncate: (length) => file.truncate(length),
        close: () => file.close(),
      };
      return wrapped;
    },
  };
  return {
    fs,
    hold(key: string): Gate {
      let reached!: () => void;
      let release!: () => void;
      const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
      const opened = new Promise<void>((resolve) => (release = resolve));
      gates.set(key, { reached, opened });
      return {
        reached: reachedPromise,
        release() {
          gates.delete(key);
          release();
        },
      };
    },
    failOnce(key: string) {
      failures.add(key);
    },
  };
}

/** A document of a few megabytes: its snapshot takes many slices and many writes of the temporary file. */
function largeDocument(): Record<string, JsonValue> {
  const items: Record<string, JsonValue> = {};
  for (let i = 0; i < 30_000; i++) items[`k${i}`] = { id: i, name: `item ${i}`, tags: ['a', 'é', '😀'], text: 'lorem ipsum '.repeat(3) };
  return { items, log: {} };
}

async function textOf(served: Served): Promise<string> {
  const response = await served.http.get('/store/');
  expect(response.status).toBe(200);
  return response.text;
}

/** The revision the journal's header says the snapshot holds. */
function snapshotRevision(file: string): number {
  const header = JSON.parse(journalLines(file)[0] as string) as { snapshot: { revision: number } };
  return header.snapshot.revision;
}

async function textAfterCrash(file: string, into: string): Promise<string> {
  const reopened = await serve(crashImage(file, into), { compactRatio: Number.POSITIVE_INFINITY });
  try {
    return await textOf(reopened);
  } finally {
    await reopened.close();
  }
}


const compactAlways = { compactRatio: 1e-9, compactMinSize: 0 };

describe('compaction of the frozen working document', () => {
  test('writes are acknowledged while the snapshot is written; it holds exactly its revision, and the files reopen to the live document', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const gated = gatedFileSystem();
    const initial = largeDocument();
    const served = await serve(file, { ...compactAlways, fs: gated.fs }, initial);
    try {
      // The first write makes the snapshot and a journal, which (compactMinSize 0) is folded at once.
      await served.http.put('/store/log/first').send({ n: 1 }).expect(201);
      await eventually('the first compaction', () => served.storage.stats.compactions === 1);
      const held = gated.hold('snapshot-temp:write');
      // The second is folded by a compaction, held before its first byte.
      await served.http.put('/store/log/second').send({ n: 2 }).expect(201);
      await held.reached;
      const expected = structuredClone(initial) as { items: Record<string, JsonValue>; log: Record<string, JsonValue> };
      expected.log['first'] = { n: 1 };
      expected.log['second'] = { n: 2 };
      const atCompaction = JSON.stringify(expected, null, 2) + '\n';

      // Meanwhile: new members, a change inside the frozen part, a removal: all acknowledged.
      for (let i = 0; i < 20; i++) await served.http.put(`/store/log/w${i}`).send({ i }).expect(201);
      await served.http.patch('/store/items/k7').set('Content-Type', 'application/merge-patch+json').send({ name: 'changed', tags: null }).expect(200);
      await served.http.delete('/store/items/k8').expect(204);
      expect(served.storage.stats.compactions).toBe(1);

      held.release();
      await eventually('the compaction', () => served.storage.stats.compactions === 2);
      expect(snapshotRevision(file)).toBe(2);
      expect(readFileSync(filesOf(file).snapshot, 'utf8')).toBe(atCompaction);
      // The 22 later changes moved into the new journal.
      expect(journalLines(file).slice(1).map((line) => (JSON.parse(line) as { revision: number }).revision)).toEqual(Array.from({ length: 22 }, (_, i) => i + 3));

      const live = await textOf(served);
      expect(JSON.parse(live)).toMatchObject({ items: { k7: { name: 'changed' } }, log: { w19: { i: 19 } } });
      expect(await textAfterCrash(file, join(dir, 'image'))).toBe(live);
      await served.close();
      const reopened = await serve(file, { compactRatio: Number.POSITIVE_INFINITY });
      try {
        expect(await textOf(reopened)).toBe(live);
      } finally {
        await reopened.close();
      }
    } finally {
      await served.close();
    }
  }, 60_000);

  test('a change the frozen document holds is refused: that snapshot is never installed, and the next compaction is right', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const gated = gatedFileSystem();
    const served = await serve(file, { ...compactAlways, fs: gated.fs }, largeDocument());
    try {
      await served.http.put('/store/log/first').send({ n: 1 }).expect(201);
      await eventually('the first compaction', () => served.storage.stats.compactions === 1);
      const warnings = await collectWarnings(async (seen) => {
        // Revision 2 is being synced when revision 3 arrives: the compaction after 2 freezes the document at 3.
        const synced = gated.hold('journal:sync');
        const second = served.http.put('/store/log/second').send({ n: 2 });
        const secondDone = second.then((response) => response.status);
        await synced.reached;
        const written = gated.hold('snapshot-temp:write');
        const third = served.http.put('/store/log/third').send({ n: 3 }).then((response) => response.status);
        await eventually('revision 3 handed to storage', () => served.store.store.revision === 3);
        // Revision 3's append fails: it is refused, after the compaction froze it.
        gated.failOnce('journal:write');
        synced.release();
        expect(await secondDone).toBe(201);
        await written.reached;
        expect(await third).toBe(503);
        written.release();
        await eventually('the compaction given up', () => seen.some((warning) => /could not compact .*refused/.test(warning)));
      });
      expect(warnings.filter((warning) => /could not compact/.test(warning))).toHaveLength(1);
      expect(served.storage.stats.compactions).toBe(1);
      expect(existsTemp(file)).toBe(false);
      const live = await textOf(served);
      expect(JSON.parse(live).log).toEqual({ first: { n: 1 }, second: { n: 2 } });
      expect(await textAfterCrash(file, join(dir, 'image'))).toBe(live);

      // Once the journal has doubled, compaction is tried again: writes until one starts, held,
      // so that none starts after it (each flush starts one when none runs).
      const next = gated.hold('snapshot-temp:write');
      let started = false;
      void next.reached.then(() => (started = true));
      // Writes until one sets off the next compaction (compactAlways: the first one should).
      for (let i = 0; !started; i++) {
        if (i === 1000) throw new Error('1000 writes and no compaction started');
        await served.http.put(`/store/log/again${i}`).send({ i }).expect(201);
      }
      next.release();
      await eventually('the next compaction', () => served.storage.stats.compactions === 2);
      const after = await textOf(served);
      const revision = snapshotRevision(file);
      expect(revision).toBeGreaterThan(2);
      // Each write added one member to log, in revision order: the snapshot holds the first `revision` of them.
      const now = JSON.parse(after) as { items: JsonValue; log: Record<string, JsonValue> };
      const atRevision = { items: now.items, log: Object.fromEntries(Object.entries(now.log).slice(0, revision)) };
      expect(readFileSync(file, 'utf8')).toBe(JSON.stringify(atRevision, null, 2) + '\n');
      expect(await textAfterCrash(file, join(dir, 'image2'))).toBe(after);
    } finally {
      await served.close();
    }
  }, 60_000);
});

test('an edit of the snapshot picked up by the watch while a compaction writes is not overwritten by it', async () => {
  const dir = await tempDir();
  const file = join(dir, 'store.json');
  const gated = gatedFileSystem();
  const served = await serve(file, { ...compactAlways, fs: gated.fs, watch: { interval: 20 } }, largeDocument());
  try {
    await served.http.put('/store/log/first').send({ n: 1 }).expect(201);
    await eventually('the first compaction', () => served.storage.stats.compactions === 1);
    const warnings = await collectWarnings(async (seen) => {
      const held = gated.hold('snapshot-temp:write');
      await served.http.put('/store/log/second').send({ n: 2 }).expect(201);
      await held.reached;
      writeFileSync(file, JSON.stringify({ edited: true }));
      await eventually('the edit served', async () => (await served.http.get('/store/edited')).status === 200);
      held.release();
      await eventually('the compaction given up', () => seen.some((warning) => /could not compact .*changed or removed/.test(warning)));
    });
    expect(warnings.filter((warning) => /could not compact/.test(warning))).toHaveLength(1);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ edited: true });
    expect(JSON.parse(await textOf(served))).toEqual({ edited: true });
    expect(JSON.parse(await textAfterCrash(file, join(dir, 'image')))).toEqual({ edited: true });
  } finally {
    await served.close();
  }
}, 60_000);

function existsTemp(file: string): boolean {
  try {
    readFileSync(`${file}.tmp`);
    return true;
  } catch {
    return false;
  }
}

/**
 * A file system that is not node's: every path of the store's folder is
 * kept under `backing/` instead, so `node:fs` finds nothing at the store's
 * path (the lock file alone, which always uses `node:fs`, stays where it is).
 */
function movedFileSystem(dir: string): FileStorageFileSystem {
  const moved = (path: string) => (path === dir ? join(dir, 'backing') : path.startsWith(dir + '/') ? join(dir, 'backing', path.slice(dir.length + 1)) : path);
  return {
    readFile: (path) => nodeFileSystem.readFile(moved(path)),
    open: (path, flags, mode) => nodeFileSystem.open(moved(path), flags, mode),
    rename: (from, to) => nodeFileSystem.rename(moved(from), moved(to)),
    removeFile: (path) => nodeFileSystem.removeFile(moved(path)),
    makeDirectory: (path, mode) => nodeFileSystem.makeDirectory(moved(path), mode),
    syncDirectory: (path) => nodeFileSystem.syncDirectory(moved(path)),
    entryKind: (path) => nodeFileSystem.entryKind(moved(path)),
  };
}

test('a custom fs that is not node:fs compacts the frozen document (the snapshot is checked through it)', async () => {
  const dir = await tempDir();
  const file = join(dir, 'store.json');
  const fs = movedFileSystem(dir);
  await nodeFileSystem.makeDirectory(join(dir, 'backing'));
  const warnings = await collectWarnings(async (seen) => {
    const served = await serve(file, { ...compactAlways, fs }, { items: {} });
    try {
      for (let i = 0; i < 3; i++) {
        await served.http.put(`/store/items/i${i}`).send({ i }).expect(201);
        const failed = () => served.errors.length > 0 || seen.length > 0;
        await eventually(`compaction ${i + 1}, or a failure`, () => served.storage.stats.compactions === i + 1 || failed());
      }
      expect(served.errors).toEqual([]);
      expect(seen).toEqual([]);
      expect(JSON.parse(readFileSync(join(dir, 'backing', 'store.json'), 'utf8'))).toEqual({ items: { i0: { i: 0 }, i1: { i: 1 }, i2: { i: 2 } } });
    } finally {
      await served.close();
    }
  });
  expect(warnings).toEqual([]);
  const reopened = await serve(file, { compactRatio: Number.POSITIVE_INFINITY, fs }, {});
  try {
    expect(JSON.parse(await textOf(reopened))).toEqual({ items: { i0: { i: 0 }, i1: { i: 1 }, i2: { i: 2 } } });
  } finally {
    await reopened.close();
  }
});

/** `node:fs` that counts whole reads of one file. */
function readCountingFileSystem(counted: string): { fs: FileStorageFileSystem; reads(): number } {
  let reads = 0;
  return {
    fs: {
      ...nodeFileSystem,
      readFile: (path) => {
        if (path === counted) reads += 1;
        return nodeFileSystem.readFile(path);
      },
    },
    reads: () => reads,
  };
}

test('the first compaction after the snapshot was created, or after loading the files, does not read the snapshot back', async () => {
  const dir = await tempDir();
  const file = join(dir, 'store.json');
  const counting = readCountingFileSystem(file);
  const initial = { items: { seeded: true } } as Record<string, JsonValue>;
  const seeded = await serve(file, { ...compactAlways, fs: counting.fs }, initial);
  try {
    await seeded.store.ready();
    // The first write creates the snapshot (writeFirstSnapshot, as a seed does); then a compaction of the frozen document folds its journal in.
    const before = counting.reads();
    await seeded.http.put('/store/items/a').send({ n: 1 }).expect(201);
    await eventually('the first compaction after the snapshot was created', () => seeded.storage.stats.compactions === 1);
    expect(counting.reads() - before).toBe(0);
    expect(seeded.errors).toEqual([]);
  } finally {
    await seeded.close();
  }

  const loaded = await serve(file, { ...compactAlways, fs: counting.fs }, {});
  try {
    await loaded.store.ready();
    const before = counting.reads();
    await loaded.http.put('/store/items/b').send({ n: 2 }).expect(201);
    await eventually('the first compaction after loading', () => loaded.storage.stats.compactions === 1);
    expect(counting.reads() - before).toBe(0);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual({ items: { seeded: true, a: { n: 1 }, b: { n: 2 } } });
  } finally {
    await loaded.close();
  }
});
