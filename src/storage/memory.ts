/**
 * The default adapter: keeps the document in this process only, so that a
 * store reopened on the same adapter (or a second store after `close()`)
 * sees what the first one wrote.
 *
 * It keeps no copy of its own: a store committing to it hands it a way to
 * read the store's working document (`working-document.ts`), which, since
 * this adapter confirms every commit at once, is exactly the committed
 * document. The last store to commit is the one read; a store loading later
 * gets a copy. A change without that reader (an adapter wrapping this one)
 * is applied to a copy of its own, as before.
 */
import { applyOperations } from '../document/apply.js';
import { cloneJson, type JsonValue } from '../document/json.js';
import type { Change, StorageAdapter, StoredDocument } from './types.js';
import { markKeepsWorkingDocument, workingDocumentReader } from './working-document.js';

export interface MemoryStorage extends StorageAdapter {
  readonly name: 'memory';
}

export function memoryStorage(): MemoryStorage {
  /** The committed document: the committing store's working document, or a copy kept here. */
  let stored: { read: () => JsonValue; revision: number } | undefined;
  return markKeepsWorkingDocument({
    name: 'memory',
    capabilities: { persistent: false },
    load(): StoredDocument | undefined {
      return stored && { document: cloneJson(stored.read()), revision: stored.revision };
    },
    commit(change: Change): void {
      if (stored === undefined && change.revision !== 1) {
        throw new Error(`memory storage holds no document, so it cannot take revision ${change.revision}`);
      }
      if (stored !== undefined && change.revision !== stored.revision + 1) {
        throw new Error(`memory storage is at revision ${stored.revision} and cannot take revision ${change.revision}`);
      }
      const read = workingDocumentReader(change);
      if (read !== undefined) {
        stored = { read, revision: change.revision };
        return;
      }
      // applyOperations puts copies of the values it adds or replaces into the
      // document, so this copy shares nothing with the engine's.
      const state = { root: stored === undefined ? ({} as JsonValue) : stored.read() };
      // A copy of the engine's document, when it was kept before: never change that in place.
      if (stored !== undefined && !ownsCopy.has(stored)) state.root = cloneJson(state.root);
      applyOperations(state, change.ops);
      stored = { read: () => state.root, revision: change.revision };
      ownsCopy.add(stored);
    },
  });
}

/** Stored entries whose document this adapter made itself (so it may change it in place). */
const ownsCopy = new WeakSet<object>();
