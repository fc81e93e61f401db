import { mkdtempSync, rmSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, test } from 'vitest';
import { jsonFileStorage } from '../../examples/custom-storage/json-file-storage.js';
import { storageConformance } from '../../src/testing/index.js';
import type { StorageAdapter } from '../../src/index.js';

const directory = mkdtempSync(join(tmpdir(), 'jsonstore-custom-storage-'));
afterAll(() => rmSync(directory, { recursive: true, force: true }));

let files = 0;
const pathOf = (adapter: StorageAdapter) => (adapter as ReturnType<typeof jsonFileStorage>).path;

storageConformance({
  test,
  name: 'examples/custom-storage',
  factory: () => jsonFileStorage(join(directory, `document-${++files}.json`)),
  reopen: (closed) => jsonFileStorage(pathOf(closed)),
  cleanup: async (adapters) => {
    for (const adapter of adapters) await rm(pathOf(adapter), { force: true });
  },
});
