/**
 * `changesSince` for the file adapter: the changes still in the journal,
 * that is since the last compaction folded the older ones into the snapshot.
 * Read from disk on demand (live clients reconnecting with `Last-Event-ID`
 * are the only callers), so it costs nothing between calls.
 */
import { parseJournal, type JournalContext } from './file-journal.js';
import type { FileStorageFileSystem } from './file-system.js';
import type { Change } from './types.js';

export async function journalChangesSince(
  fs: FileStorageFileSystem,
  context: JournalContext,
  revision: number,
  snapshotRevision: number,
): Promise<readonly Change[] | undefined> {
  let bytes: Uint8Array | undefined;
  try {
    bytes = await fs.readFile(context.journalPath);
  } catch {
    return undefined;
  }
  if (bytes === undefined || bytes.length === 0) return revision === snapshotRevision ? [] : undefined;
  let parsed;
  try {
    // Only complete lines count: an append in progress is not a change yet.
    parsed = parseJournal(bytes, context);
  } catch {
    return undefined;
  }
  if (parsed.header.revision > revision || parsed.lastRevision < revision) return undefined;
  const changes: Change[] = [];
  for (const record of parsed.records) {
    if (record.kind !== 'change' || record.revision <= revision) continue;
    changes.push(record.idempotency === undefined ? { revision: record.revision, ops: record.ops } : { revision: record.revision, ops: record.ops, idempotency: record.idempotency });
  }
  return changes;
}
