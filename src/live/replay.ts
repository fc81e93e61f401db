/**
 * Catching up a client that reconnects with `Last-Event-ID`: what changed
 * since that revision, as touched paths, from the store's recent history or
 * the storage's `changesSince`. The client is then sent the values *now* at
 * those paths (see events.ts), which brings its copy to the current revision
 * without resending changes it already applied.
 */
import type { JsonValue } from '../document/json.js';
import type { Path } from '../document/path.js';
import type { Change, StorageAdapter } from '../storage/types.js';
import { touchesOf } from './events.js';

interface Remembered {
  revision: number;
  touched: readonly Path[];
}

/** The paths touched by the last `limit` changes (paths only: values are read from the document when needed). */
export class RecentChanges {
  private readonly entries: Remembered[] = [];
  private start = 0;

  constructor(private readonly limit: number) {}

  push(revision: number, touched: readonly Path[]): void {
    if (this.limit === 0) return;
    const last = this.entries[this.entries.length - 1];
    // A gap (a reload) makes the older entries useless for catching up.
    if (last !== undefined && revision !== last.revision + 1) this.clear();
    this.entries.push({ revision, touched });
    if (this.entries.length - this.start > this.limit) this.start++;
    // Shift out the dropped entries now and then, not on every change.
    if (this.start > 1024 && this.start * 2 > this.entries.length) {
      this.entries.splice(0, this.start);
      this.start = 0;
    }
  }

  clear(): void {
    this.entries.length = 0;
    this.start = 0;
  }

  /** The paths touched after `revision` up to `latest`, or `undefined` when not all of those changes are remembered. */
  since(revision: number, latest: number): Path[] | undefined {
    if (revision === latest) return [];
    const first = this.entries[this.start];
    if (first === undefined || first.revision > revision + 1) return undefined;
    const last = this.entries[this.entries.length - 1] as Remembered;
    if (last.revision !== latest) return undefined;
    const touched: Path[] = [];
    for (let i = this.start + (revision + 1 - first.revision); i < this.entries.length; i++) touched.push(...(this.entries[i] as Remembered).touched);
    return touched;
  }
}

/** What the storage's `changesSince` says happened after a revision: its changes, contiguous, up to `through`. */
export interface StoredChanges {
  changes: readonly Change[];
  through: number;
}

/**
 * The changes after `revision`, from the storage's `changesSince`:
 * `undefined` when it cannot tell (no such method, history gone, an error).
 */
export async function changesSinceInStorage(adapter: StorageAdapter, revision: number): Promise<StoredChanges | undefined> {
  if (typeof adapter.changesSince !== 'function') return undefined;
  let changes: readonly Change[] | undefined;
  try {
    changes = await adapter.changesSince(revision);
  } catch {
    return undefined;
  }
  if (!Array.isArray(changes)) return undefined;
  const kept: Change[] = [];
  let through = revision;
  for (const change of changes) {
    if (change.revision <= through) continue;
    if (change.revision !== through + 1) return undefined;
    kept.push(change);
    through = change.revision;
  }
  return { changes: kept, through };
}

/** The paths `changes` touched, read wide on `root`, the current document (any state after them will do). */
export function touchesOfChanges(changes: readonly Change[], root: JsonValue): Path[] {
  const touched: Path[] = [];
  for (const change of changes) for (const op of change.ops) touched.push(...touchesOf(root, op, false));
  return touched;
}
