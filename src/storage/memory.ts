/**
 * The default adapter: keeps the document in this process only. It applies
 * each change's operations to its own copy, so a store reopened on the same
 * adapter (or a second store after `close()`) sees what the first one wrote.
 * It remembers the last few changes (`history`), so that `changesSince` can
 * tell a reconnecting live client what it missed.
 */
import { applyOperations } from '../document/apply.js';
import { cloneJson, type JsonValue } from '../document/json.js';
import { optionChecks } from '../option-checks.js';
import type { Change, StorageAdapter, StoredDocument } from './types.js';

export interface MemoryStorageOptions {
  /** How many recent changes `changesSince` can list; 0 keeps none. Default 1000. */
  history?: number;
}

export interface MemoryStorage extends StorageAdapter {
  readonly name: 'memory';
  /** The changes after `revision`, oldest first, or `undefined` when they are older than the history kept. */
  changesSince(revision: number): readonly Change[] | undefined;
}

const checks = optionChecks('memoryStorage()');

export function memoryStorage(options?: MemoryStorageOptions): MemoryStorage {
  const given = options === undefined ? {} : checks.knownOptions(options, ['history']);
  const historyLimit = checks.wholeNumber('history', given['history'], 1000, { min: 0, max: 1_000_000 });
  let stored: { root: JsonValue; revision: number } | undefined;
  /**
   * The last `historyLimit` changes, oldest first, as JSON text: a copy (the
   * engine may change the values later) that is cheaper to make on every
   * commit than a structured clone, and parsed only when asked for.
   */
  let history: Array<{ revision: number; ops: string }> = [];
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
      if (historyLimit > 0) {
        history.push({ revision: change.revision, ops: JSON.stringify(change.ops) });
        // Trimmed in steps, not on every commit.
        if (history.length >= historyLimit * 2) history = history.slice(-historyLimit);
      }
    },
    changesSince(revision: number): readonly Change[] | undefined {
      const latest = stored?.revision ?? 0;
      if (revision === latest) return [];
      const kept = history.length > historyLimit ? history.slice(-historyLimit) : history;
      const first = kept[0];
      if (first === undefined || revision < first.revision - 1 || revision > latest) return undefined;
      return kept.slice(revision - first.revision + 1).map((entry) => ({ revision: entry.revision, ops: JSON.parse(entry.ops) as Change['ops'] }));
    },
  };
}
