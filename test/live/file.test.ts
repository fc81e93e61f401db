import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
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

  test('maxJournalRead is checked when the storage is made', () => {
    expect(() => fileStorage('x.json', { maxJournalRead: -1 })).toThrow(/fileStorage\(\): option "maxJournalRead"/);
  });
});
