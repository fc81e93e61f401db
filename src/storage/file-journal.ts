/**
 * The on-disk formats of the file adapter, and their parsers. Pure: no I/O.
 *
 * The snapshot (`store.json`) is the document itself, pretty-printed, so a
 * person can read and edit it. Everything the adapter needs besides the
 * document lives in the journal (`store.json.journal`), one JSON value per
 * line:
 *
 *   {"format":"express-jsonstore journal 1","snapshot":{"revision":12,"sha256":"…"}}   header
 *   {"revision":13,"ops":[{"op":"replace","path":"/a","value":1}]}                     a change
 *   {"revision":14,"ops":[…],"idempotency":{"key":"k1",…}}                            a change sent with an Idempotency-Key
 *   {"snapshot":{"revision":40,"sha256":"…"}}                                           a marker
 *
 * The header says which snapshot the journal continues (its revision and the
 * SHA-256 of its bytes), so a snapshot edited by hand is recognised. A marker
 * is appended just before a compaction renames a new snapshot into place: if
 * the process dies before the journal is replaced, the marker still says which
 * revision that new snapshot holds.
 *
 * A header may also carry `"idempotency":[…]`: the idempotency records of
 * changes folded into the snapshot, still inside their retention, so keys
 * survive compactions and clean stops. Readers ignore members they do not
 * know, so journals with records stay readable by versions without them, and
 * a record that is not well-formed is dropped, never fatal.
 */
import { createHash } from 'node:crypto';
import { parseJsonPatch } from '../document/json-patch.js';
import { hasMember, isObject, type JsonValue } from '../document/json.js';
import type { PatchOperation } from '../document/patch-types.js';
import { StorageError } from '../errors.js';
import { asIdempotencyRecord, encodeIdempotencyRecord } from './idempotency.js';
import type { IdempotencyRecord } from './types.js';

export const JOURNAL_FORMAT = 'express-jsonstore journal 1';

/** Which snapshot a journal continues: the revision it holds and the SHA-256 (hex) of its bytes. */
export interface SnapshotRef {
  revision: number;
  sha256: string;
}

export interface ChangeRecord {
  kind: 'change';
  /** 1-based line number in the journal, for messages. */
  line: number;
  revision: number;
  ops: PatchOperation[];
  idempotency?: IdempotencyRecord;
}

export interface MarkerRecord {
  kind: 'marker';
  line: number;
  snapshot: SnapshotRef;
}

export type JournalRecord = ChangeRecord | MarkerRecord;

export interface ParsedJournal {
  header: SnapshotRef;
  /** The idempotency records the header carries (those of changes folded into the snapshot). */
  idempotency: IdempotencyRecord[];
  /** Every complete line after the header, in order. */
  records: JournalRecord[];
  /** Bytes up to the end of the last complete line: where the next append goes. */
  completeLength: number;
  /** Bytes of an unfinished last line (a crash mid-append), dropped; 0 when there is none. */
  tornLength: number;
  /** The revision of the last change, or the header's revision when there is none. */
  lastRevision: number;
}

/** File names, for messages that tell a person what to do. */
export interface JournalContext {
  journalPath: string;
  snapshotPath: string;
}

const NEWLINE = 0x0a;

/**
 * An error that keeps the store from starting. `message` (for the server's
 * log and `ready()`) names the files and says what to do; a client is told
 * only `summary`, which names no file, folder or process.
 */
export function startupError(message: string, summary: string, cause?: unknown): StorageError {
  return new StorageError(message, { cause, publicDetail: `${summary}; the store did not start (the server's log says what to do)` });
}
const utf8 = new TextDecoder('utf-8', { fatal: true });

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function encodeHeader(snapshot: SnapshotRef, idempotency: readonly IdempotencyRecord[] = []): string {
  const head = JSON.stringify({ format: JOURNAL_FORMAT, snapshot });
  if (idempotency.length === 0) return head + '\n';
  return `${head.slice(0, -1)},"idempotency":[${idempotency.map(encodeIdempotencyRecord).join(',')}]}\n`;
}

export function encodeChange(revision: number, ops: readonly PatchOperation[], idempotency?: IdempotencyRecord): string {
  const line = JSON.stringify({ revision, ops });
  if (idempotency === undefined) return line + '\n';
  return `${line.slice(0, -1)},"idempotency":${encodeIdempotencyRecord(idempotency)}}\n`;
}

export function encodeMarker(snapshot: SnapshotRef): string {
  return JSON.stringify({ snapshot }) + '\n';
}

/** The snapshot text: the document pretty-printed, as a person expects to see it. */
export function encodeSnapshot(document: JsonValue): string {
  return JSON.stringify(document, null, 2) + '\n';
}

/** Reads one change line this process wrote itself (trusted: no checks). */
export function decodeOwnChange(line: string): PatchOperation[] {
  return (JSON.parse(line) as { ops: PatchOperation[] }).ops;
}

/**
 * Parses the snapshot. Anything but a JSON text is a startup error naming
 * the file and, when the parser tells, the line and column.
 */
export function parseSnapshot(bytes: Uint8Array, snapshotPath: string): JsonValue {
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw startupError(
      `${snapshotPath} is not valid UTF-8 text. The store did not start and changed no file: fix the file or restore a backup, then start again`,
      'The snapshot is not valid UTF-8 text',
    );
  }
  // A byte order mark is what some editors add; it is not part of the JSON.
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  try {
    return JSON.parse(text) as JsonValue;
  } catch (error) {
    // Parser messages may quote the text around the error, newlines and all.
    const reason = (error instanceof Error ? error.message : String(error)).replace(/\s+/g, ' ');
    const where = locate(text, reason);
    throw startupError(
      `${snapshotPath} is not valid JSON (${reason}${where}). The store did not start and changed no file: fix the file or restore a backup, then start again`,
      `The snapshot is not valid JSON${where.replace(/^; /, ' at ')}`,
    );
  }
}

/** " at line L, column C" when a JSON.parse message gives a position. */
function locate(text: string, reason: string): string {
  const match = /position (\d+)/.exec(reason);
  if (!match) return '';
  const position = Number(match[1]);
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  return `; line ${line}, column ${column}`;
}

function damaged(context: JournalContext, line: number, reason: string): StorageError {
  return startupError(
    `Line ${line} of ${context.journalPath} is damaged: ${reason}. The store did not start and changed no file. ` +
      `The journal holds the changes made since ${context.snapshotPath} was last written: repair that line, ` +
      `or move the journal away to start from ${context.snapshotPath} alone (losing those changes)`,
    `Line ${line} of the journal is damaged`,
  );
}

function isRevision(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function snapshotRefOf(value: unknown): SnapshotRef | undefined {
  if (!isObject(value)) return undefined;
  const { revision, sha256 } = value;
  if (!isRevision(revision) || typeof sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(sha256)) return undefined;
  return { revision, sha256 };
}

/**
 * Parses a whole journal. A last line without its newline is an append the
 * process did not finish (it was never acknowledged): it is reported as
 * `tornLength` and left out. Any other line that is not a well-formed record,
 * or a change whose revision does not follow the one before, throws an error
 * naming the file and the line.
 */
export function parseJournal(bytes: Uint8Array, context: JournalContext): ParsedJournal {
  const records: JournalRecord[] = [];
  let header: SnapshotRef | undefined;
  let idempotency: IdempotencyRecord[] = [];
  let lastRevision = 0;
  let start = 0;
  let line = 0;
  for (;;) {
    const end = bytes.indexOf(NEWLINE, start);
    if (end === -1) break;
    line++;
    let value: unknown;
    try {
      value = JSON.parse(utf8.decode(bytes.subarray(start, end)));
    } catch (error) {
      throw damaged(context, line, error instanceof SyntaxError ? `not valid JSON (${error.message})` : 'not valid UTF-8 text');
    }
    if (header === undefined) {
      const ref = isObject(value) && value['format'] === JOURNAL_FORMAT ? snapshotRefOf(value['snapshot']) : undefined;
      if (ref === undefined) {
        throw damaged(context, line, `it is not a journal header of this version (expected {"format":"${JOURNAL_FORMAT}","snapshot":{…}})`);
      }
      header = ref;
      lastRevision = ref.revision;
      idempotency = recordsOf(value);
    } else {
      records.push(parseRecord(value, line, lastRevision, header, context));
      const record = records[records.length - 1] as JournalRecord;
      if (record.kind === 'change') lastRevision = record.revision;
    }
    start = end + 1;
  }
  if (header === undefined) throw damaged(context, 1, 'the header line is incomplete');
  return { header, idempotency, records, completeLength: start, tornLength: bytes.length - start, lastRevision };
}

/** The well-formed idempotency records of a header. */
function recordsOf(header: unknown): IdempotencyRecord[] {
  const list = isObject(header) ? header['idempotency'] : undefined;
  if (!Array.isArray(list)) return [];
  return list.map(asIdempotencyRecord).filter((record): record is IdempotencyRecord => record !== undefined);
}

function parseRecord(value: unknown, line: number, previous: number, header: SnapshotRef, context: JournalContext): JournalRecord {
  if (!isObject(value)) throw damaged(context, line, 'it is not a JSON object');
  if (hasMember(value, 'ops')) {
    const revision = value['revision'];
    if (!isRevision(revision) || revision < 1) throw damaged(context, line, '"revision" is not a positive integer');
    if (revision !== previous + 1) {
      throw damaged(context, line, `its revision ${revision} does not follow revision ${previous} (a line is missing, repeated or out of place)`);
    }
    let ops: PatchOperation[];
    try {
      ops = parseJsonPatch(value['ops'] as JsonValue);
    } catch (error) {
      throw damaged(context, line, error instanceof Error ? error.message : String(error));
    }
    const idempotency = asIdempotencyRecord(value['idempotency']);
    return idempotency === undefined ? { kind: 'change', line, revision, ops } : { kind: 'change', line, revision, ops, idempotency };
  }
  const snapshot = snapshotRefOf(value['snapshot']);
  if (snapshot === undefined) throw damaged(context, line, 'it is neither a change nor a snapshot marker');
  if (snapshot.revision < header.revision || snapshot.revision > previous) {
    throw damaged(context, line, `its snapshot revision ${snapshot.revision} is outside the revisions written so far (${header.revision} to ${previous})`);
  }
  return { kind: 'marker', line, snapshot };
}
