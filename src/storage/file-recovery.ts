/**
 * What `fileStorage()` does with the files it finds at start-up, decided
 * without touching them: `planRecovery()` reads the bytes of the snapshot and
 * the journal and says which document to serve, at which revision, and
 * whether to go on appending to the journal; or throws a startup error that
 * says what is wrong and what to do. The adapter then carries the plan out.
 *
 * The cases (see docs/file-storage.md):
 * - no snapshot: the initial document, unless the journal holds changes made
 *   to the missing snapshot (refused);
 * - a snapshot and no journal (or an empty one): the snapshot at revision 0;
 * - a journal whose header names the snapshot: its changes are replayed and
 *   the journal continued; the unfinished last line of a crashed append
 *   (never acknowledged) is dropped and cut off;
 * - a journal whose marker names the snapshot (a compaction that stopped
 *   after renaming the new snapshot, before replacing the journal): the
 *   changes after the marker's revision are replayed and the journal continued;
 * - a snapshot edited by hand (the journal names another snapshot): the edit
 *   counts as one change, and a new journal is started before the next
 *   append. Changes the journal holds were made to the previous version, so
 *   they cannot be replayed onto the edit: the edit wins, and the journal is
 *   set aside (`supersededJournal`) rather than refusing to start, since the
 *   person who edited the file meant the file to be the document;
 * - a damaged journal or snapshot, or a change that does not apply: refused.
 */
import { applyOperations, type DocumentState } from '../document/apply.js';
import type { JsonValue } from '../document/json.js';
import {
  parseJournal,
  parseSnapshot,
  sha256Hex,
  startupError,
  type ChangeRecord,
  type JournalContext,
  type MarkerRecord,
  type ParsedJournal,
} from './file-journal.js';
import { reasonOf } from './file-system.js';
import type { IdempotencyRecord } from './types.js';

/** No snapshot, and no change made to one: the store starts from its initial document. */
export interface InitialPlan {
  kind: 'initial';
}

/** The snapshot, with the journal's changes to it replayed. */
export interface SnapshotPlan {
  kind: 'snapshot';
  /** The snapshot file: the revision it holds, the SHA-256 of its bytes, its size. */
  snapshot: { revision: number; sha256: string; size: number };
  /** The document to serve and its revision. */
  document: JsonValue;
  revision: number;
  /**
   * The journal to go on appending to, at byte `appendAt`; `cutTornTail`:
   * an unfinished last line is there, to cut off before the next append.
   * `undefined` when there is none to continue: a new one is created before
   * the next append.
   */
  journal: { appendAt: number; cutTornTail: boolean; holdsChanges: boolean } | undefined;
  /** The idempotency records found (the header's, then the changes'), in order: the later record of a key wins. */
  idempotency: IdempotencyRecord[];
  /**
   * The snapshot was edited while the journal held changes made to its
   * previous version: they are not replayed, and the adapter moves the
   * journal aside (to keep them for whoever wants them back).
   */
  supersededJournal?: { changes: number; lastRevision: number };
}

export type RecoveryPlan = InitialPlan | SnapshotPlan;

function countChanges(count: number): string {
  return count === 1 ? '1 change' : `${count} changes`;
}

/**
 * Decides how to start from the files found: `snapshot` and `journal` are
 * their bytes, `undefined` for a file that does not exist. Pure: reads
 * nothing, changes nothing. Throws a startup error (`StorageError`) when the
 * files cannot be loaded as they are.
 */
export function planRecovery(snapshot: Uint8Array | undefined, journal: Uint8Array | undefined, context: JournalContext): RecoveryPlan {
  const { snapshotPath, journalPath } = context;
  // An empty journal holds nothing: treated as no journal.
  const parsed = journal !== undefined && journal.length > 0 ? parseJournal(journal, context) : undefined;
  const changes = (parsed?.records ?? []).filter((record): record is ChangeRecord => record.kind === 'change');

  if (snapshot === undefined) {
    if (changes.length > 0) {
      throw startupError(
        `${snapshotPath} is missing, but ${journalPath} holds ${countChanges(changes.length)} made to it. The store did not start and changed no file: ` +
          `restore ${snapshotPath} from a backup, or delete ${journalPath} to start from the initial document`,
        `The snapshot is missing, but the journal holds ${countChanges(changes.length)} made to it`,
      );
    }
    return { kind: 'initial' };
  }

  const sha256 = sha256Hex(snapshot);
  const state: DocumentState = { root: parseSnapshot(snapshot, snapshotPath) };
  const { base, continueJournal } = baseOf(sha256, parsed);
  let revision = base;
  for (const change of changes) {
    if (change.revision <= base) continue;
    try {
      applyOperations(state, change.ops);
    } catch (error) {
      throw startupError(
        `Line ${change.line} of ${journalPath} (revision ${change.revision}) does not apply to ${snapshotPath}: ${reasonOf(error)}. ` +
          `The store did not start and changed no file. Restore the snapshot the journal was written against, or move the journal away ` +
          `to start from ${snapshotPath} alone (losing its changes)`,
        `Line ${change.line} of the journal does not apply to the snapshot`,
      );
    }
    revision = change.revision;
  }

  const superseded = !continueJournal && changes.length > 0 && parsed !== undefined;
  return {
    kind: 'snapshot',
    ...(superseded ? { supersededJournal: { changes: changes.length, lastRevision: parsed.lastRevision } } : {}),
    snapshot: { revision: base, sha256, size: snapshot.length },
    document: state.root,
    revision,
    journal:
      continueJournal && parsed !== undefined
        ? { appendAt: parsed.completeLength, cutTornTail: parsed.tornLength > 0, holdsChanges: changes.length > 0 }
        : undefined,
    // Kept even when the journal belonged to a snapshot edited since: the writes they answer were made.
    idempotency: [...(parsed?.idempotency ?? []), ...changes.flatMap((change) => (change.idempotency === undefined ? [] : [change.idempotency]))],
  };
}

/** The revision the snapshot holds, and whether the journal continues it. */
function baseOf(sha256: string, journal: ParsedJournal | undefined): { base: number; continueJournal: boolean } {
  if (journal === undefined) return { base: 0, continueJournal: false };
  if (journal.header.sha256 === sha256) return { base: journal.header.revision, continueJournal: true };
  // A compaction that stopped after renaming the new snapshot left a marker naming it.
  const marker = journal.records.findLast((record): record is MarkerRecord => record.kind === 'marker' && record.snapshot.sha256 === sha256);
  if (marker !== undefined) return { base: marker.snapshot.revision, continueJournal: true };
  // Edited by hand (after a clean stop, after a crash, or while the store ran): the edit counts as one change.
  return { base: journal.lastRevision + 1, continueJournal: false };
}
