/**
 * `changesSince` for the file adapter: the changes still in the journal,
 * that is since the last compaction folded the older ones into the snapshot.
 * Read from disk on demand (live clients reconnecting with `Last-Event-ID`
 * are the only callers), so it costs nothing between calls; concurrent
 * calls share one read, and a journal over the adapter's `maxJournalRead`
 * is not read at all.
 */
import { parseJournal, type JournalContext } from './file-journal.js';
import type { FileStorageFileSystem } from './file-system.js';
import type { Change } from './types.js';

/** The changes of one read of the journal: those after `from` (its snapshot's revision), up to `through`. */
export interface JournalChanges {
  from: number;
  through: number;
  changes: readonly Change[];
}

/**
 * Reads and parses the journal; `'empty'` when it is empty, `undefined` when
 * it cannot be read or is over `maxBytes` (then it is not parsed).
 */
export async function readJournalChanges(fs: FileStorageFileSystem, context: JournalContext, maxBytes: number): Promise<JournalChanges | 'empty' | undefined> {
  let bytes: Uint8Array | undefined;
  try {
    bytes = await fs.readFile(context.journalPath);
  } catch {
    return undefined;
  }
  if (bytes === undefined || bytes.length === 0) return 'empty';
  if (bytes.length > maxBytes) return undefined;
  let parsed;
  try {
    // Only complete lines count: an append in progress is not a change yet.
    parsed = parseJournal(bytes, context);
  } catch {
    return undefined;
  }
  const changes: Change[] = [];
  for (const record of parsed.records) {
    if (record.kind !== 'change') continue;
    changes.push(record.idempotency === undefined ? { revision: record.revision, ops: record.ops } : { revision: record.revision, ops: record.ops, idempotency: record.idempotency });
  }
  return { from: parsed.header.revision, through: parsed.lastRevision, changes };
}

/** The changes after `revision` in what `readJournalChanges` found, or `undefined` when they are not all there. */
export function changesAfter(journal: JournalChanges | 'empty' | undefined, revision: number, snapshotRevision: number): readonly Change[] | undefined {
  if (journal === undefined) return undefined;
  if (journal === 'empty') return revision === snapshotRevision ? [] : undefined;
  if (journal.from > revision || journal.through < revision) return undefined;
  return journal.changes.filter((change) => change.revision > revision);
}
