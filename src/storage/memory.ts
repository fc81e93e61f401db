/**
 * The default adapter: keeps the document in this process only. It applies
 * each change's operations to its own copy, so a store reopened on the same
 * adapter (or a second store after `close()`) sees what the first one wrote.
 */
import { applyOperations } from '../document/apply.js';
import { cloneJson, type JsonValue } from '../document/json.js';
import type { Change, StorageAdapter, StoredDocument } from './types.js';

export interface MemoryStorage extends StorageAdapter {
  readonly name: 'memory';
}

export function memoryStorage(): MemoryStorage {
  let stored: { root: JsonValue; revision: number } | undefined;
  return {
    name: 'memory',
    capabilities: { persistent: false },
    load(): StoredDocument | undefined {
      return stored && { document: cloneJson(stored.root), revision: stored.revision };
    },
    commit(change: Change): void {
      const state = stored ?? { root: {}, revision: 0 };
      if (stored === undefined && change.revision !== 1) {
        throw new Error(`memory storage holds no document, so it cannot take revision ${change.revision}`);
      }
      if (stored !== undefined && change.revision !== stored.revision + 1) {
        throw new Error(`memory storage is at revision ${stored.revision} and cannot take revision ${change.revision}`);
      }
      // applyOperations puts copies of the values it adds or replaces into the
      // document, so this copy shares nothing with the engine's.
      applyOperations(state, change.ops);
      state.revision = change.revision;
      stored = state;
    },
  };
}
