import { open, readFile, rename, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { StorageAdapter, StoredDocument } from '../../src/index.js'; // in your project: 'express-jsonstore'

/** One JSON file holding `{ revision, document }`, replaced atomically on every change. */
export function jsonFileStorage(path: string): StorageAdapter & { readonly path: string } {
  return {
    name: 'json-file',
    path,
    capabilities: { wholeDocument: true, persistent: true },
    async load() {
      const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
        if (error.code === 'ENOENT') return undefined; // nothing stored yet: the store starts from `initial`
        throw error;
      });
      return text === undefined ? undefined : (JSON.parse(text) as StoredDocument);
    },
    async commit({ revision, document }) {
      // Write a temporary file and flush it, then rename it over the old one:
      // after a crash the file holds the old document or the new, never half.
      const temporary = `${path}.${process.pid}.tmp`;
      await synced(temporary, 'w', (file) => file.writeFile(JSON.stringify({ revision, document })));
      await rename(temporary, path);
      await synced(dirname(path), 'r'); // flush the rename too (POSIX; Windows cannot open directories)
    },
  };
}

/** Opens `path`, lets `write` use it, then fsyncs and closes it. */
async function synced(path: string, flags: 'w' | 'r', write?: (file: FileHandle) => Promise<void>): Promise<void> {
  const file = await open(path, flags);
  try {
    await write?.(file);
    await file.sync();
  } finally {
    await file.close();
  }
}
