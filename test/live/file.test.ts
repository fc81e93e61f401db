import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test, vi } from 'vitest';
import { fileStorage } from '../../src/index.js';
import { nodeFileSystem, type FileStorageFileSystem } from '../../src/storage/file-system.js';
import { liveRules } from './rules.js';

const folders: string[] = [];
afterAll(async () => {
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});

async function freshFile(): Promise<string> {
  const folder = await mkdtemp(join(tmpdir(), 'jsonstore-live-'));
  folders.push(folder);
  return join(folder, 'store.json');
}

describe('live updates on file storage', () => {
  liveRules(async () => fileStorage(await freshFile()));

  test('changesSince lists the journal since the last compaction, and nothing older', async () => {
    const path = await freshFile();
    const storage = fileStorage(path, { compactMinSize: 1_000_000 });
    await storage.load();
    await storage.commit({ revision: 1, ops: [{ op: 'replace', path: '', value: { n: 0 } }] });
    await storage.commit({ revision: 2, ops: [{ op: 'replace', path: '/n', value: 1 }] });
    await storage.commit({ revision: 3, ops: [{ op: 'replace', path: '/n', value: 2 }] });
    expect((await storage.changesSince(1))?.map((change) => change.revision)).toEqual([2, 3]);
    expect(await storage.changesSince(3)).toEqual([]);
    await storage.close?.();
    // Closing folds the journal into the snapshot: older revisions are gone.
    const reopened = fileStorage(path);
    await reopened.load();
    expect(await reopened.changesSince(1)).toBeUndefined();
    expect(await reopened.changesSince(3)).toEqual([]);
    await reopened.close?.();
  });

  test('concurrent changesSince calls share one read of the journal; past maxJournalRead it is not read, and answers undefined', async () => {
    const path = await freshFile();
    const journalReads: string[] = [];
    const counting: FileStorageFileSystem = {
      ...nodeFileSystem,
      readFile: (file) => {
        if (file.endsWith('.journal')) journalReads.push(file);
        return nodeFileSystem.readFile(file);
      },
    };
    const storage = fileStorage(path, { compactMinSize: 1_000_000, maxJournalRead: 4096, fs: counting });
    await storage.load();
    await storage.commit({ revision: 1, ops: [{ op: 'replace', path: '', value: { n: 0 } }] });
    for (let revision = 2; revision <= 20; revision++) await storage.commit({ revision, ops: [{ op: 'replace', path: '/n', value: revision }] });
    journalReads.length = 0;
    // (The first change, which set the whole document, went to the snapshot.)
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => storage.changesSince(i + 1)));
    expect(journalReads).toHaveLength(1);
    answers.forEach((changes, i) => expect(changes?.map((change) => change.revision)).toEqual(Array.from({ length: 19 - i }, (_, k) => i + 2 + k)));
    // A later call reads again: it sees what was appended since.
    await storage.commit({ revision: 21, ops: [{ op: 'replace', path: '/n', value: 21 }] });
    expect((await storage.changesSince(19))?.map((change) => change.revision)).toEqual([20, 21]);
    expect(journalReads).toHaveLength(2);

    // Grown past 4 KiB: not read at all.
    for (let revision = 22; storage.stats.journalBytes <= 4096; revision++) await storage.commit({ revision, ops: [{ op: 'replace', path: '/n', value: 'x'.repeat(100) }] });
    expect(await storage.changesSince(19)).toBeUndefined();
    expect(journalReads).toHaveLength(2);
    await storage.close?.();
  });

  test('a changesSince call made after a change was made durable does not join a read started before it', async () => {
    const path = await freshFile();
    let held: Promise<void> | undefined;
    let reads = 0;
    const gated: FileStorageFileSystem = {
      ...nodeFileSystem,
      readFile: async (file) => {
        if (file.endsWith('.journal')) {
          const bytes = await nodeFileSystem.readFile(file);
          // Counted once the bytes are read: what a change after this misses.
          reads += 1;
          await held;
          return bytes;
        }
        return nodeFileSystem.readFile(file);
      },
    };
    const storage = fileStorage(path, { compactMinSize: 1_000_000, fs: gated });
    await storage.load();
    await storage.commit({ revision: 1, ops: [{ op: 'replace', path: '', value: { n: 0 } }] });
    await storage.commit({ revision: 2, ops: [{ op: 'replace', path: '/n', value: 2 }] });
    let release = () => {};
    held = new Promise((resolve) => (release = resolve));
    reads = 0;
    const early = storage.changesSince(1);
    await vi.waitFor(() => expect(reads).toBe(1));
    await storage.commit({ revision: 3, ops: [{ op: 'replace', path: '/n', value: 3 }] });
    const late = storage.changesSince(1);
    release();
    expect((await early)?.map((change) => change.revision)).toEqual([2]);
    expect((await late)?.map((change) => change.revision)).toEqual([2, 3]);
    expect(reads).toBe(2);
    await storage.close?.();
  });

  test('a read-only store does not parse a journal over maxJournalRead either', async () => {
    const path = await freshFile();
    const writer = fileStorage(path, { compactMinSize: 1_000_000 });
    await writer.load();
    await writer.commit({ revision: 1, ops: [{ op: 'replace', path: '', value: { n: 0 } }] });
    for (let revision = 2; writer.stats.journalBytes <= 4096; revision++) await writer.commit({ revision, ops: [{ op: 'replace', path: '/n', value: 'x'.repeat(100) }] });
    // Opened beside the writer (a read-only store takes no lock), with the journal as the writer left it.
    for (const [maxJournalRead, expected] of [[4096, undefined], [1_000_000, 'listed']] as const) {
      const reader = fileStorage(path, { readOnly: true, maxJournalRead });
      await reader.load();
      const changes = await reader.changesSince(1);
      expect(changes === undefined ? undefined : 'listed').toBe(expected);
      await reader.close?.();
    }
    await writer.close?.();
  });

  test('maxJournalRead is checked when the storage is made', () => {
    expect(() => fileStorage('x.json', { maxJournalRead: -1 })).toThrow(/fileStorage\(\): option "maxJournalRead"/);
  });
});
