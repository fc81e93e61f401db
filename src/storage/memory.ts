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
 *
 * It remembers the last few changes (`history`), so that `changesSince` can
 * tell a reconnecting live client what it missed.
 */
import { applyOperations } from '../document/apply.js';
import { cloneJson, type JsonValue } from '../document/json.js';
import { optionChecks } from '../option-checks.js';
import type { Change, StorageAdapter, StoredDocument } from './types.js';
import { markKeepsWorkingDocument, workingDocumentReader } from './working-document.js';

export interface MemoryStorageOptions {
  /** How many recent changes `changesSince` can list; 0 keeps none. Default 1000. */
  history?: number;
  /**
   * The most bytes of those changes' operations (as JSON) kept; the oldest go
   * first, so one large change cannot hold up to `history` large copies.
   * Default 16 MiB.
   */
  historyBytes?: number;
}

export interface MemoryStorage extends StorageAdapter {
  readonly name: 'memory';
  /** The changes after `revision`, oldest first, or `undefined` when they are older than the history kept. */
  changesSince(revision: number): readonly Change[] | undefined;
}

const checks = optionChecks('memoryStorage()');

export function memoryStorage(options?: MemoryStorageOptions): MemoryStorage {
  const given = options === undefined ? {} : checks.knownOptions(options, ['history', 'historyBytes']);
  const historyLimit = checks.wholeNumber('history', given['history'], 1000, { min: 0, max: 1_000_000 });
  const historyBytes = checks.wholeNumber('historyBytes', given['historyBytes'], 16 * 1024 * 1024, { min: 0, max: Number.MAX_SAFE_INTEGER });
  /** The committed document: the committing store's working document, or a copy kept here. */
  let stored: { read: () => JsonValue; revision: number } | undefined;
  /**
   * The last `historyLimit` changes, oldest first, as JSON text: a copy (the
   * engine may change the values later) that is cheaper to make on every
   * commit than a structured clone, and parsed only when asked for.
   */
  let history: Array<{ revision: number; ops: string }> = [];
  /** Where the kept history starts in `history`, and the length of the kept entries' JSON. */
  let first = 0;
  let keptBytes = 0;
  const remember = (change: Change): void => {
    if (historyLimit === 0) return;
    const ops = JSON.stringify(change.ops);
    history.push({ revision: change.revision, ops });
    keptBytes += ops.length;
    while (first < history.length && (history.length - first > historyLimit || keptBytes > historyBytes)) {
      keptBytes -= (history[first] as { ops: string }).ops.length;
      first++;
    }
    // The dropped entries are let go in steps, not on every commit.
    if (first >= historyLimit || first * 2 > history.length) {
      history = history.slice(first);
      first = 0;
    }
  };
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
        remember(change);
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
      remember(change);
    },
    changesSince(revision: number): readonly Change[] | undefined {
      const latest = stored?.revision ?? 0;
      if (revision === latest) return [];
      const oldest = history[first];
      if (oldest === undefined || revision < oldest.revision - 1 || revision > latest) return undefined;
      return history.slice(first + revision - oldest.revision + 1).map((entry) => ({ revision: entry.revision, ops: JSON.parse(entry.ops) as Change['ops'] }));
    },
  });
}

/** Stored entries whose document this adapter made itself (so it may change it in place). */
const ownsCopy = new WeakSet<object>();
