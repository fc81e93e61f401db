/**
 * src/storage/file-recovery.ts: what the file adapter does with the files it
 * finds at start-up, one case at a time, from their bytes alone. The plans
 * are spelled out in full; the refusals are checked by their words, for the
 * log and for a client.
 */
import { describe, expect, test } from 'vitest';
import type { JsonValue } from '../../src/document/json.js';
import { StorageError } from '../../src/errors.js';
import { encodeChange, encodeHeader, encodeMarker, encodeSnapshot, sha256Hex, type JournalContext } from '../../src/storage/file-journal.js';
import { planRecovery, type RecoveryPlan } from '../../src/storage/file-recovery.js';
import type { IdempotencyRecord } from '../../src/storage/types.js';

const context: JournalContext = { journalPath: '/srv/data/store.json.journal', snapshotPath: '/srv/data/store.json' };

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

/** A snapshot file holding `document`, with the SHA-256 a journal names it by. */
function snapshotFile(document: JsonValue): { bytes: Uint8Array; sha256: string; size: number } {
  const data = bytes(encodeSnapshot(document));
  return { bytes: data, sha256: sha256Hex(data), size: data.length };
}

/** The plan's account of a snapshot file found holding `revision`. */
const holding = (file: { sha256: string; size: number }, revision: number) => ({ revision, sha256: file.sha256, size: file.size });

/** The plan's account of a journal to go on appending to, after its last byte. */
const continuing = (journal: string, holdsChanges = true) => ({ appendAt: bytes(journal).length, cutTornTail: false, holdsChanges });

const add = (path: string, value: JsonValue) => [{ op: 'add' as const, path, value }];

function record(key: string, revision: number): IdempotencyRecord {
  return { key, fingerprint: `fp-${key}`, revision, at: 1_800_000_000_000 + revision, status: 201, etag: `"${revision}"` };
}

/** Plans a start expected to be refused; returns the error for closer checks. */
function refusal(snapshot: Uint8Array | undefined, journal: Uint8Array | undefined): StorageError {
  let caught: unknown;
  try {
    planRecovery(snapshot, journal, context);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(StorageError);
  return caught as StorageError;
}

const v1 = snapshotFile({ todos: ['a'] });
const v2 = snapshotFile({ todos: ['a', 'b', 'c'] });

describe('no snapshot', () => {
  test('no files at all: the initial document', () => {
    expect(planRecovery(undefined, undefined, context)).toEqual({ kind: 'initial' });
  });

  test('an empty journal, or one without changes (even with a torn line): the initial document', () => {
    expect(planRecovery(undefined, bytes(''), context)).toEqual({ kind: 'initial' });
    expect(planRecovery(undefined, bytes(encodeHeader({ revision: 4, sha256: v1.sha256 })), context)).toEqual({ kind: 'initial' });
    const torn = encodeHeader({ revision: 4, sha256: v1.sha256 }) + encodeChange(5, add('/x', 1)).slice(0, -3);
    expect(planRecovery(undefined, bytes(torn), context)).toEqual({ kind: 'initial' });
  });

  test('a journal holding changes made to the missing snapshot: refused, counting them', () => {
    const header = encodeHeader({ revision: 0, sha256: v1.sha256 });
    const one = refusal(undefined, bytes(header + encodeChange(1, add('/x', 1))));
    expect(one.message).toBe(
      '/srv/data/store.json is missing, but /srv/data/store.json.journal holds 1 change made to it. The store did not start and changed no file: ' +
        'restore /srv/data/store.json from a backup, or delete /srv/data/store.json.journal to start from the initial document',
    );
    expect(one.detail).toBe("The snapshot is missing, but the journal holds 1 change made to it; the store did not start (the server's log says what to do)");
    const two = refusal(undefined, bytes(header + encodeChange(1, add('/x', 1)) + encodeChange(2, add('/y', 2))));
    expect(two.detail).toBe("The snapshot is missing, but the journal holds 2 changes made to it; the store did not start (the server's log says what to do)");
  });
});

describe('a snapshot', () => {
  test('alone: the snapshot at revision 0; a journal is created before the first append', () => {
    const plan: RecoveryPlan = {
      kind: 'snapshot',
      snapshot: holding(v1, 0),
      document: { todos: ['a'] },
      revision: 0,
      journal: undefined,
      idempotency: [],
    };
    expect(planRecovery(v1.bytes, undefined, context)).toEqual(plan);
    // An empty journal holds nothing.
    expect(planRecovery(v1.bytes, bytes(''), context)).toEqual(plan);
  });

  test('with the journal of a clean stop (header only, naming it): continued, holding no changes', () => {
    const journal = encodeHeader({ revision: 7, sha256: v1.sha256 }, [record('k6', 6)]);
    expect(planRecovery(v1.bytes, bytes(journal), context)).toEqual({
      kind: 'snapshot',
      snapshot: holding(v1, 7),
      document: { todos: ['a'] },
      revision: 7,
      journal: continuing(journal, false),
      idempotency: [record('k6', 6)],
    });
  });

  test('with a journal continuing it: its changes replayed, their idempotency records after the header\'s', () => {
    const journal =
      encodeHeader({ revision: 7, sha256: v1.sha256 }, [record('k6', 6)]) +
      encodeChange(8, add('/todos/-', 'b'), record('k8', 8)) +
      encodeChange(9, add('/todos/-', 'c'));
    expect(planRecovery(v1.bytes, bytes(journal), context)).toEqual({
      kind: 'snapshot',
      snapshot: holding(v1, 7),
      document: { todos: ['a', 'b', 'c'] },
      revision: 9,
      journal: continuing(journal),
      idempotency: [record('k6', 6), record('k8', 8)],
    });
  });

  test('with a torn last line (a crashed append, never acknowledged): left out, and cut off before the next append', () => {
    const complete = encodeHeader({ revision: 7, sha256: v1.sha256 }) + encodeChange(8, add('/todos/-', 'b'));
    const torn = encodeChange(9, add('/todos/-', 'c'), record('k9', 9)).slice(0, -10);
    expect(planRecovery(v1.bytes, bytes(complete + torn), context)).toEqual({
      kind: 'snapshot',
      snapshot: holding(v1, 7),
      document: { todos: ['a', 'b'] },
      revision: 8,
      journal: { appendAt: bytes(complete).length, cutTornTail: true, holdsChanges: true },
      idempotency: [],
    });
  });
});

describe('after a compaction that stopped part way', () => {
  // The old journal: v1 at revision 7, changes 8 and 9 (folded into v2), the marker naming v2, then change 10 appended meanwhile.
  const folded = encodeHeader({ revision: 7, sha256: v1.sha256 }) + encodeChange(8, add('/todos/-', 'b'), record('k8', 8)) + encodeChange(9, add('/todos/-', 'c'));

  test('the marker names the renamed snapshot, the journal not replaced yet: the changes after the marker replayed, the journal continued', () => {
    const journal = folded + encodeMarker({ revision: 9, sha256: v2.sha256 }) + encodeChange(10, add('/todos/-', 'd'), record('k10', 10));
    expect(planRecovery(v2.bytes, bytes(journal), context)).toEqual({
      kind: 'snapshot',
      snapshot: holding(v2, 9),
      document: { todos: ['a', 'b', 'c', 'd'] },
      revision: 10,
      journal: continuing(journal),
      // The records of the changes folded in are kept too.
      idempotency: [record('k8', 8), record('k10', 10)],
    });
  });

  test('the marker written but the snapshot never renamed: the old snapshot with every change replayed', () => {
    const journal = folded + encodeMarker({ revision: 9, sha256: v2.sha256 }) + encodeChange(10, add('/todos/-', 'd'));
    expect(planRecovery(v1.bytes, bytes(journal), context)).toEqual({
      kind: 'snapshot',
      snapshot: holding(v1, 7),
      document: { todos: ['a', 'b', 'c', 'd'] },
      revision: 10,
      journal: continuing(journal),
      idempotency: [record('k8', 8)],
    });
  });

  test('two markers: the one naming the snapshot found counts', () => {
    const v3 = snapshotFile({ todos: ['a', 'b', 'c', 'd'] });
    const journal =
      folded +
      encodeMarker({ revision: 9, sha256: v2.sha256 }) +
      encodeChange(10, add('/todos/-', 'd')) +
      encodeMarker({ revision: 10, sha256: v3.sha256 }) +
      encodeChange(11, add('/todos/-', 'e'));
    expect(planRecovery(v3.bytes, bytes(journal), context)).toMatchObject({
      snapshot: holding(v3, 10),
      document: { todos: ['a', 'b', 'c', 'd', 'e'] },
      revision: 11,
    });
    expect(planRecovery(v2.bytes, bytes(journal), context)).toMatchObject({
      snapshot: holding(v2, 9),
      document: { todos: ['a', 'b', 'c', 'd', 'e'] },
      revision: 11,
    });
  });

  test('two markers naming the same bytes (a change undone in between): the snapshot holds the later revision', () => {
    // The first compaction wrote its marker but not its rename; the second, to the same document, got as far as the rename.
    const journal =
      folded +
      encodeMarker({ revision: 9, sha256: v2.sha256 }) +
      encodeChange(10, add('/todos/-', 'd')) +
      encodeChange(11, [{ op: 'remove', path: '/todos/3' }]) +
      encodeMarker({ revision: 11, sha256: v2.sha256 });
    expect(planRecovery(v2.bytes, bytes(journal), context)).toEqual({
      kind: 'snapshot',
      snapshot: holding(v2, 11),
      document: { todos: ['a', 'b', 'c'] },
      revision: 11,
      journal: continuing(journal),
      idempotency: [record('k8', 8)],
    });
  });
});

describe('a snapshot edited by hand while the store was stopped', () => {
  test('after a clean stop (the journal holds no changes): the edit counts as one change, and a new journal is started', () => {
    const edited = snapshotFile({ todos: ['edited'] });
    const journal = encodeHeader({ revision: 7, sha256: v1.sha256 }, [record('k6', 6)]);
    expect(planRecovery(edited.bytes, bytes(journal), context)).toEqual({
      kind: 'snapshot',
      snapshot: holding(edited, 8),
      document: { todos: ['edited'] },
      revision: 8,
      journal: undefined,
      // The writes they answer were made: still known.
      idempotency: [record('k6', 6)],
    });
  });

  test('the journal holds no complete change, only a torn line: the same, and nothing is cut (the journal is replaced)', () => {
    const edited = snapshotFile({ todos: ['edited'] });
    const journal = encodeHeader({ revision: 7, sha256: v1.sha256 }) + encodeChange(8, add('/todos/-', 'b')).slice(0, 5);
    expect(planRecovery(edited.bytes, bytes(journal), context)).toEqual({
      kind: 'snapshot',
      snapshot: holding(edited, 8),
      document: { todos: ['edited'] },
      revision: 8,
      journal: undefined,
      idempotency: [],
    });
  });

  test('with unsaved changes in the journal, made to its previous version: the edit wins, and the journal is to be set aside', () => {
    const edited = snapshotFile({ todos: ['edited'] });
    const journal = encodeHeader({ revision: 7, sha256: v1.sha256 }) + encodeChange(8, add('/todos/-', 'b')) + encodeChange(9, add('/todos/-', 'c'));
    expect(planRecovery(edited.bytes, bytes(journal), context)).toEqual({
      kind: 'snapshot',
      supersededJournal: { changes: 2, lastRevision: 9 },
      snapshot: holding(edited, 10),
      document: { todos: ['edited'] },
      revision: 10,
      journal: undefined,
      idempotency: [],
    });
  });
});

describe('damaged files', () => {
  test('a damaged journal line: refused, naming the line, before the snapshot is looked at', () => {
    const journal = encodeHeader({ revision: 7, sha256: v1.sha256 }) + encodeChange(8, add('/todos/-', 'b')) + '{"revision":9,\n';
    for (const snapshot of [v1.bytes, undefined, bytes('not json')]) {
      const error = refusal(snapshot, bytes(journal));
      expect(error.message).toMatch(/^Line 3 of \/srv\/data\/store\.json\.journal is damaged: not valid JSON/);
      expect(error.detail).toBe("Line 3 of the journal is damaged; the store did not start (the server's log says what to do)");
    }
  });

  test('a snapshot that is not JSON: refused, with or without a journal', () => {
    const snapshot = bytes('{\n  "todos": [\n    "a",\n  ]\n}\n');
    for (const journal of [undefined, bytes(encodeHeader({ revision: 0, sha256: sha256Hex(snapshot) }))]) {
      const error = refusal(snapshot, journal);
      expect(error.message).toMatch(/^\/srv\/data\/store\.json is not valid JSON \(/);
      expect(error.detail).toMatch(/^The snapshot is not valid JSON/);
    }
  });

  test('a change that does not apply to the snapshot it names: refused, naming its line and revision', () => {
    const journal = encodeHeader({ revision: 7, sha256: v1.sha256 }) + encodeChange(8, add('/todos/-', 'b')) + encodeChange(9, add('/missing/x', 1));
    const error = refusal(v1.bytes, bytes(journal));
    expect(error.message).toMatch(/^Line 3 of \/srv\/data\/store\.json\.journal \(revision 9\) does not apply to \/srv\/data\/store\.json: /);
    expect(error.message).toMatch(/The store did not start and changed no file\. Restore the snapshot the journal was written against/);
    expect(error.detail).toBe("Line 3 of the journal does not apply to the snapshot; the store did not start (the server's log says what to do)");
  });
});
