/**
 * The shared storage conformance suite, run on fileStorage(): each case gets
 * its own file in a temp folder, and reopening is a new adapter on that file.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'vitest';
import type { StorageAdapter } from '../../src/storage/types.js';
import { fileStorage, type FileStorage } from '../../src/storage/file.js';
import { storageConformance } from '../../src/testing/index.js';

function freshFile(): string {
  return join(mkdtempSync(join(tmpdir(), 'jsonstore-conformance-')), 'store.json');
}

storageConformance({
  test,
  name: 'file storage',
  factory: () => fileStorage(freshFile()),
  reopen: (closed: StorageAdapter) => fileStorage((closed as FileStorage).path),
  cleanup: (adapters: StorageAdapter[]) => {
    const folders = new Set(adapters.map((adapter) => dirname((adapter as FileStorage).path)));
    for (const folder of folders) rmSync(folder, { recursive: true, force: true });
  },
});
