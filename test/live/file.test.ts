import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { fileStorage } from '../../src/index.js';
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
});
