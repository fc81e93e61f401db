/**
 * `fileStorage(path)`: the document in a plain JSON file on disk, safe
 * against crashes, with writes that cost in proportion to the change.
 *
 * Three files live side by side (see docs/file-storage.md):
 *   store.json          the snapshot: the document, pretty-printed
 *   store.json.journal  the changes made since the snapshot, one line each
 *   store.json.lock     the pid of the process that has the store open
 *
 * The adapter never follows a symbolic link where one of its files should be:
 * such a link could make it write outside the folder. New files are created
 * exclusively, with the `mode` option (0600 by default).
 *
 * A write is appended to the journal and acknowledged once it is on disk;
 * writes that arrive during an append + fsync share the next one (group
 * commit). When the journal outgrows the snapshot, a new snapshot is written
 * beside the old one and renamed over it, and the journal starts again.
 * Loading replays the journal onto the snapshot, as `planRecovery()`
 * (file-recovery.ts) decides from the files found; the file operations are in
 * file-system.ts.
 */
import { createHash } from 'node:crypto';
import { lstat } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { applyOperations, type DocumentState } from '../document/apply.js';
import type { JsonValue } from '../document/json.js';
import { piecesInSlices } from '../document/json-slices.js';
import { StorageError } from '../errors.js';
import { optionChecks, shown } from '../option-checks.js';
import {
  decodeOwnChange,
  encodeChange,
  encodeHeader,
  encodeMarker,
  parseJournal,
  parseSnapshot,
  sha256Hex,
  startupError,
  type JournalContext,
  type SnapshotRef,
} from './file-journal.js';
import { acquireLock, type FileLock } from './file-lock.js';
import { planRecovery } from './file-recovery.js';
import { changesAfter, readJournalChanges, type JournalChanges } from './file-history.js';
import { errorCode, nodeFileSystem, reasonOf, writeAll, type FileStorageFile, type FileStorageFileSystem } from './file-system.js';
import { retainedRecords } from './idempotency.js';
import { frozenDocumentReader, markFoldsWorkingDocument, type FrozenDocument } from './working-document.js';
import type { Change, IdempotencyRecord, IdempotencyRetention, StorageAdapter, StorageCapabilities, StoredDocument, Unwatch } from './types.js';

export { nodeFileSystem, type FileStorageEntryKind, type FileStorageFile, type FileStorageFileSystem } from './file-system.js';

// ---- options ----------------------------------------------------------------------

export interface FileStorageOptions {
  /**
   * `'always'` (default): a write is acknowledged only once it is on disk
   * (fsync); writes that arrive while one is being synced share the next
   * fsync (group commit). `'never'`: acknowledged once the operating system
   * has it, which survives the process being killed but not a power loss or
   * an OS crash. Compaction fsyncs in both modes.
   */
  fsync?: 'always' | 'never';
  /**
   * Compact (fold the journal into a new snapshot) when the journal grows
   * larger than `compactRatio` times the snapshot. Default 1. `Infinity`:
   * only when the store is closed.
   */
  compactRatio?: number;
  /** Never compact a journal smaller than this many bytes. Default 65536 (64 KiB). */
  compactMinSize?: number;
  /**
   * Most bytes of journal that `changesSince` reads: live clients reconnecting
   * with a `Last-Event-ID` older than the store's recent history are replayed
   * the changes they missed from the journal. A larger journal is not read,
   * and such a client gets the current value instead. Concurrent reads share
   * one. Default 8 MiB.
   */
  maxJournalRead?: number;
  /**
   * The permissions of every file the store creates (snapshot, journal,
   * lock and their temporary files). Default `0o600`: only the owner may
   * read or write. Must let the owner read and write. A folder the store
   * creates gets the same permissions plus search (x) wherever reading is
   * allowed: `0o700` by default, `0o750` for `0o640`. Existing folders are
   * left as they are; the process umask applies as usual.
   */
  mode?: number;
  /**
   * Open the files for reading only: no folder, lock or journal is created
   * and no file is changed, so a read-only folder works; every `commit` is
   * refused. For stores served with `readOnly: true`. Default `false`.
   */
  readOnly?: boolean;
  /**
   * Pick up edits of the snapshot file made by a person (or another program)
   * while the store runs: see docs/file-storage.md, "Editing the file while
   * the store runs". `true` checks about every 250 ms; `{ interval }` sets
   * the milliseconds. Default `false`.
   */
  watch?: boolean | { interval?: number };
  /** For tests: the file operations to use instead of `node:fs`. */
  fs?: FileStorageFileSystem;
}

interface ResolvedFileStorageOptions {
  fsync: 'always' | 'never';
  compactRatio: number;
  compactMinSize: number;
  maxJournalRead: number;
  fileMode: number;
  folderMode: number;
  readOnly: boolean;
  /** Milliseconds between checks of the snapshot file for edits; undefined: not watched. */
  watchInterval: number | undefined;
  fs: FileStorageFileSystem;
}

/** What the adapter has done since it was created. */
export interface FileStorageStats {
  /** Changes made durable. */
  changes: number;
  /** Appends to the journal; several changes share one under load (group commit). */
  appends: number;
  /** fsync calls on files and folders. */
  fsyncs: number;
  /** Journals folded into a new snapshot. */
  compactions: number;
  /** Current size of the journal, in bytes. */
  journalBytes: number;
  /** Current size of the snapshot, in bytes. */
  snapshotBytes: number;
}

export interface FileStorage extends StorageAdapter {
  readonly name: 'file';
  /** The snapshot file, as an absolute path. */
  readonly path: string;
  readonly stats: Readonly<FileStorageStats>;
  /** The changes after `revision` still in the journal (since the last compaction), or `undefined` when older. */
  changesSince(revision: number): Promise<readonly Change[] | undefined>;
}

const optionNames = ['fsync', 'compactRatio', 'compactMinSize', 'maxJournalRead', 'mode', 'readOnly', 'watch', 'fs'];
const fileSystemMethods = ['readFile', 'open', 'rename', 'removeFile', 'makeDirectory', 'syncDirectory', 'entryKind'] as const;

const checks = optionChecks('fileStorage()');

function fail(message: string): never {
  return checks.fail(message);
}

function resolveOptions(path: unknown, options: FileStorageOptions | undefined): ResolvedFileStorageOptions {
  if (typeof path !== 'string' || path.trim() === '') fail('the path must be a non-empty string, such as "data/store.json"');
  if (/[\\/]$/.test(path)) fail(`the path must name a file, not a folder: ${JSON.stringify(path)}`);
  if (options === undefined) options = {};
  checks.knownOptions(options, optionNames);
  // Here null has always meant the default, like undefined.
  const fsync = checks.oneOf('fsync', options.fsync ?? undefined, ['always', 'never'] as const, 'always');
  const compactRatio = checks.positiveNumber('compactRatio', options.compactRatio ?? undefined, 1, true);
  const compactMinSize = checks.wholeNumber('compactMinSize', options.compactMinSize ?? undefined, 64 * 1024, { min: 0, unit: 'bytes' });
  const maxJournalRead = checks.wholeNumber('maxJournalRead', options.maxJournalRead ?? undefined, 8 * 1024 * 1024, { min: 0, unit: 'bytes' });
  const fileMode = options.mode ?? 0o600;
  if (typeof fileMode !== 'number' || !Number.isInteger(fileMode) || fileMode < 0 || fileMode > 0o777 || (fileMode & 0o600) !== 0o600) {
    const got = typeof fileMode === 'number' && Number.isInteger(fileMode) && fileMode >= 0 ? `0o${fileMode.toString(8)}` : shown(options.mode);
    fail(`option "mode" must be file permissions from 0o600 to 0o777 that let the owner read and write, such as 0o600 or 0o640, got ${got}`);
  }
  // Search (x) wherever reading is allowed, so that whoever may read the files may reach them.
  const folderMode = fileMode | ((fileMode & 0o444) >> 2);
  const fs = options.fs ?? nodeFileSystem;
  if (typeof fs !== 'object' || fs === null || fileSystemMethods.some((name) => typeof fs[name] !== 'function')) {
    fail(`option "fs" must be an object with the methods ${fileSystemMethods.join(', ')}`);
  }
  const readOnly = checks.boolean('readOnly', options.readOnly ?? undefined, false);
  const watchInterval = watchIntervalOf(options.watch);
  return { fsync, compactRatio, compactMinSize, maxJournalRead, fileMode, folderMode, readOnly, watchInterval, fs };
}

function watchIntervalOf(watch: FileStorageOptions['watch']): number | undefined {
  if (watch === undefined || watch === null || watch === false) return undefined;
  if (watch === true) return defaultWatchInterval;
  if (typeof watch !== 'object') fail(`option "watch" must be true, false or { interval: milliseconds }, got ${shown(watch)}`);
  checks.knownOptions(watch, ['interval'], 'in option "watch"');
  return checks.wholeNumber('watch.interval', watch.interval ?? undefined, defaultWatchInterval, { min: 10, max: 60_000, unit: 'milliseconds' });
}

const defaultWatchInterval = 250;

// ---- the adapter -------------------------------------------------------------------

/**
 * The document in a JSON file with a journal beside it. Options are checked
 * here: a bad one throws a `TypeError` naming it. Nothing is read or
 * written until the store loads.
 */
export function fileStorage(path: string, options?: FileStorageOptions): FileStorage {
  const settings = resolveOptions(path, options);
  // A compaction writes out the engine's working document, frozen, rather than reading the files back.
  return markFoldsWorkingDocument(new FileStorageAdapter(resolve(path), settings));
}

/** A change handed to `commit`, serialized, waiting for its append. */
interface QueuedChange {
  revision: number;
  line: string;
  idempotency: IdempotencyRecord | undefined;
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface SnapshotState {
  exists: boolean;
  /** The revision the snapshot file holds. */
  revision: number;
  /** SHA-256 of its bytes; tells it apart from a copy edited by hand. */
  sha256: string;
  size: number;
}

interface OpenJournal {
  file: FileStorageFile;
  /** Where the next append goes: the end of the last complete line. */
  size: number;
}

/** A compaction in progress, from the moment it chose its revision. */
interface Compaction {
  /** The revision the new snapshot holds. */
  revision: number;
  /** Journal lines of later revisions, appended since: they move into the new journal. */
  tail: string[];
  /** A change it holds was refused (the engine undoes it): the snapshot must not be installed. */
  refused: boolean;
  /** The snapshot it replaces: an edit picked up by the watch meanwhile must not be overwritten. */
  replaces: string;
}

/** Bytes of snapshot text gathered before each write to the temporary file. */
const snapshotWriteBytes = 1024 * 1024;

/** What tells a file changed without reading it. */
interface FileIdentity {
  ino: number;
  size: number;
  mtimeMs: number;
  ctimeMs: number;
}

async function fileIdentity(path: string): Promise<FileIdentity | undefined> {
  try {
    const info = await lstat(path);
    return { ino: info.ino, size: info.size, mtimeMs: info.mtimeMs, ctimeMs: info.ctimeMs };
  } catch {
    return undefined;
  }
}

function sameIdentity(a: FileIdentity, b: FileIdentity | undefined): boolean {
  return b !== undefined && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;
}

/** Why bytes are not JSON, in JSON.parse's words; undefined when they parse. */
function jsonSyntaxReason(bytes: Uint8Array): string | undefined {
  try {
    JSON.parse(Buffer.from(bytes).toString('utf8'));
    return undefined;
  } catch (error) {
    return `not valid JSON (${(error as Error).message})`;
  }
}

function snapshotChangedError(path: string): Error {
  return new Error(`${path} was changed or removed by something else while the store had it open; stop the store before editing it`);
}

/** Bytes hashed between two turns of the event loop (a few milliseconds of work). */
const hashedPerTurn = 4 * 1024 * 1024;

/** `sha256Hex`, with a turn of the event loop after every few megabytes. */
async function sha256InSlices(bytes: Uint8Array): Promise<string> {
  const hash = createHash('sha256');
  for (let start = 0; start < bytes.length; start += hashedPerTurn) {
    if (start > 0) await new Promise((resolve) => setImmediate(resolve));
    hash.update(bytes.subarray(start, start + hashedPerTurn));
  }
  return hash.digest('hex');
}

const noSnapshot: SnapshotState = { exists: false, revision: 0, sha256: '', size: 0 };
const noop = () => {};

/** A failed file operation, for the server's log (the engine tells a client only that the change was not saved). */
function ioFailure(action: string, error: unknown): Error {
  return new Error(`${action} failed: ${reasonOf(error)}`, { cause: error });
}

/**
 * A write that failed and whose partial result could not be undone on disk:
 * the change may come back after a restart, so the client must not be told
 * that nothing was changed.
 */
class UnknownOutcome extends Error {}

function unknownOutcomeError(error: UnknownOutcome): StorageError {
  return new StorageError(`${error.message}. Whether the change was saved is unknown: it may appear after a restart`, {
    cause: error.cause,
    outcome: 'unknown',
    publicDetail:
      'The storage failed while saving the change and could not undo what it had written, so whether the change was saved is unknown: ' +
      'it is not in the document now, but may appear after a restart',
  });
}

class FileStorageAdapter implements FileStorage {
  readonly name = 'file' as const;
  readonly capabilities: StorageCapabilities = { pipelining: true, persistent: true, idempotency: true };
  readonly path: string;
  /** Absent when read-only: nothing may be written. */
  readonly seed?: (document: JsonValue) => Promise<undefined>;

  private readonly journalPath: string;
  private readonly lockPath: string;
  private readonly snapshotTemp: string;
  private readonly journalTemp: string;
  private readonly directory: string;
  private readonly context: JournalContext;
  /** A read of the journal for `changesSince` in progress, started at durable revision `from`, shared by the calls made meanwhile (its changes too: read-only). */
  private journalRead: { from: number; result: Promise<JournalChanges | 'empty' | undefined> } | undefined;
  private readonly settings: ResolvedFileStorageOptions;
  private readonly fs: FileStorageFileSystem;
  private readonly counters = { changes: 0, appends: 0, fsyncs: 0, compactions: 0 };

  private lock: FileLock | undefined;
  private loaded = false;
  private closing = false;
  private snapshot: SnapshotState = noSnapshot;
  /** `undefined` while the journal on disk is absent or belongs to another snapshot: created before the next append. */
  private journal: OpenJournal | undefined;
  /** Whether the journal holds changes, so that closing should fold it into the snapshot. */
  private journalHoldsChanges = false;
  /** The last revision `commit` took; the next must follow it. */
  private acceptedRevision = 0;
  /** The last revision on disk. */
  private durableRevision = 0;
  private queue: QueuedChange[] = [];
  private flushScheduled = false;
  /** Appends and the steps of a compaction that touch the journal run one at a time, in this chain. */
  private io: Promise<void> = Promise.resolve();
  /** After a failed write: what must succeed before the journal takes another append. */
  private repair: (() => Promise<void>) | undefined;
  private compaction: Compaction | undefined;
  private compactionRun: Promise<void> | undefined;
  /** After a failed compaction, the journal size at which to try again. */
  private compactAgainAt = 0;
  /**
   * The idempotency records of durable changes, by key: what a new journal's
   * header carries, so they outlive the journal lines they came with.
   */
  private idempotency = new Map<string, IdempotencyRecord>();
  /** From the engine's commits: freezes its working document, which a compaction then writes out. */
  private freezeDocument: (() => FrozenDocument) | undefined;
  /** The snapshot file as the last compaction left it (what tells a later edit by hand without reading it). */
  private writtenSnapshot: FileIdentity | undefined;
  /** How long the engine keeps records, as the last change with one said; until then every loaded record is kept. */
  private retention: IdempotencyRetention | undefined;
  /** The watch: the snapshot file's identity when last compared, and the hash of an edit refused as invalid. */
  private seenSnapshot: FileIdentity | undefined;
  private idleCompaction: ReturnType<typeof setTimeout> | undefined;
  private refusedEdit: string | undefined;
  /** The hash of invalid bytes seen once: reported only if they are still there at the next check. */
  private unsettledEdit: string | undefined;

  constructor(path: string, settings: ResolvedFileStorageOptions) {
    this.path = path;
    this.journalPath = `${path}.journal`;
    this.lockPath = `${path}.lock`;
    this.snapshotTemp = `${path}.tmp`;
    this.journalTemp = `${path}.journal.tmp`;
    this.directory = dirname(path);
    this.context = { journalPath: this.journalPath, snapshotPath: path };
    this.settings = settings;
    this.fs = settings.fs;
    if (!settings.readOnly) this.seed = (document) => this.seedSnapshot(document);
  }

  get stats(): FileStorageStats {
    return { ...this.counters, journalBytes: this.journal?.size ?? 0, snapshotBytes: this.snapshot.size };
  }

  changesSince(revision: number): Promise<readonly Change[] | undefined> {
    // Past the budget, a reconnecting live client gets the current value instead of the changes it missed.
    // (A read-only store does not track the journal's size: its read stops before parsing.)
    if ((this.journal?.size ?? 0) > this.settings.maxJournalRead) return Promise.resolve(undefined);
    // A read started before the last change was made durable would miss it: calls join only a read that has every durable change.
    if (this.journalRead === undefined || this.journalRead.from !== this.durableRevision) {
      const read = readJournalChanges(this.fs, this.context, this.settings.maxJournalRead).finally(() => {
        if (this.journalRead?.result === read) this.journalRead = undefined;
      });
      this.journalRead = { from: this.durableRevision, result: read };
    }
    return this.journalRead.result.then((journal) => changesAfter(journal, revision, this.snapshot.revision));
  }

  // ---- loading -----------------------------------------------------------------------

  async load(): Promise<StoredDocument | undefined> {
    // Loading again starts over from the files.
    if (this.lock) await this.close();
    if (this.settings.readOnly) return this.loadReadOnly();
    try {
      await this.fs.makeDirectory(this.directory, this.settings.folderMode);
    } catch (error) {
      throw startupError(
        `Could not create the folder ${this.directory} for ${this.path} (${reasonOf(error)})`,
        `Could not create the store's folder (${errorCode(error) ?? 'error'})`,
        error,
      );
    }
    this.lock = acquireLock(this.lockPath, this.path, this.settings.fileMode);
    try {
      await this.refuseLinks();
      const stored = await this.readFiles();
      this.loaded = true;
      return stored;
    } catch (error) {
      await this.journal?.file.close().catch(noop);
      this.journal = undefined;
      this.lock.release();
      this.lock = undefined;
      if (error instanceof StorageError) throw error;
      throw startupError(`Could not read ${this.path} (${reasonOf(error)})`, `Could not read the store's files (${errorCode(error) ?? 'error'})`, error);
    }
  }

  /**
   * Reads the files as a restart would, changing none: no folder, lock or
   * journal is created and a torn journal tail is only skipped.
   */
  private async loadReadOnly(): Promise<StoredDocument | undefined> {
    try {
      await this.refuseLinks();
      const snapshotBytes = await this.fs.readFile(this.path);
      const journalBytes = await this.fs.readFile(this.journalPath);
      this.resetState();
      const plan = planRecovery(snapshotBytes, journalBytes, this.context);
      this.lock = { path: this.lockPath, release: noop };
      this.loaded = true;
      if (plan.kind === 'initial') return undefined;
      this.snapshot = { exists: true, ...plan.snapshot };
      this.acceptedRevision = plan.revision;
      this.durableRevision = plan.revision;
      for (const record of plan.idempotency) this.rememberKey(record);
      return { document: plan.document, revision: plan.revision, idempotency: [...this.idempotency.values()] };
    } catch (error) {
      if (error instanceof StorageError) throw error;
      throw startupError(`Could not read ${this.path} (${reasonOf(error)})`, `Could not read the store's files (${errorCode(error) ?? 'error'})`, error);
    }
  }

  /**
   * Refuses to start when a symbolic link (or a folder, a FIFO, ...) is
   * where one of the store's files should be: written through, a link could
   * change a file outside the folder. The lock file is checked when it is taken.
   */
  private async refuseLinks(): Promise<void> {
    for (const path of [this.path, this.journalPath, this.snapshotTemp, this.journalTemp]) {
      const kind = await this.fs.entryKind(path);
      if (kind === 'symlink') {
        throw startupError(
          `${path} is a symbolic link. The store does not follow links where its files should be (a link there could make it write outside its folder). ` +
            `The store did not start and changed no file: replace the link with the file it points to (or remove it), ` +
            `or give fileStorage() the real location, and make sure no other user can write to the folder`,
          "A symbolic link is where one of the store's files should be",
        );
      }
      if (kind === 'other') {
        throw startupError(
          `${path} is not a regular file (a folder?). The store did not start and changed no file: move it away, this is where one of the store's files goes`,
          "Something other than a file is where one of the store's files should be",
        );
      }
    }
  }

  /** Reads snapshot and journal, checks them, and opens the journal for appends. Changes no file before every check passed. */
  private async readFiles(): Promise<StoredDocument | undefined> {
    // Taken before the read: an edit after it shows a new identity.
    const identity = await fileIdentity(this.path);
    const snapshotBytes = await this.fs.readFile(this.path);
    const journalBytes = await this.fs.readFile(this.journalPath);
    this.resetState();
    const plan = planRecovery(snapshotBytes, journalBytes, this.context);
    if (plan.kind === 'initial') {
      await this.removeLeftovers();
      return undefined;
    }
    this.snapshot = { exists: true, ...plan.snapshot };
    // The store knows these bytes (their hash): the first compaction need not read them back.
    this.writtenSnapshot = this.seenSnapshot = identity;
    if (plan.supersededJournal !== undefined) await this.setJournalAside(plan.supersededJournal);
    if (plan.journal !== undefined) {
      const file = await this.fs.open(this.journalPath, 'r+');
      this.journal = { file, size: plan.journal.appendAt };
      if (plan.journal.cutTornTail) {
        // The unfinished last line of a crashed append goes before anything is appended after it.
        await file.truncate(plan.journal.appendAt);
        await this.syncFile(file);
      }
      this.journalHoldsChanges = plan.journal.holdsChanges;
    }
    this.acceptedRevision = plan.revision;
    this.durableRevision = plan.revision;
    for (const record of plan.idempotency) this.rememberKey(record);
    await this.removeLeftovers();
    return { document: plan.document, revision: plan.revision, idempotency: [...this.idempotency.values()] };
  }

  /**
   * The snapshot was edited while the journal held changes made to its
   * previous version: the edit is served, and the journal is renamed aside
   * (not replaced by the next one) so that those changes can still be read.
   */
  private async setJournalAside(superseded: { changes: number; lastRevision: number }): Promise<void> {
    const aside = `${this.journalPath}.superseded-${superseded.lastRevision}`;
    const kind = await this.fs.entryKind(aside);
    if (kind === 'symlink' || kind === 'other') {
      throw startupError(
        `${aside} is not a regular file; the store sets the journal aside there (${this.path} was edited while the journal held changes). Move it away, then start again`,
        "Something other than a file is where the store sets its journal aside",
      );
    }
    await this.fs.rename(this.journalPath, aside);
    await this.syncDirectory();
    process.emitWarning(
      `${this.path} was edited while its journal held ${superseded.changes === 1 ? '1 change' : `${superseded.changes} changes`} made to the previous version; ` +
        `the edit is served and those changes are not: the journal was moved to ${aside} (delete it once you do not need it)`,
      { type: 'JsonStoreWarning', code: 'JSONSTORE_JOURNAL_SUPERSEDED' },
    );
  }

  /** Temporary files of a write that did not finish: removed before anything is written, since new ones are created exclusively. */
  private async removeLeftovers(): Promise<void> {
    for (const path of [this.snapshotTemp, this.journalTemp]) {
      try {
        await this.fs.removeFile(path);
      } catch (error) {
        throw startupError(
          `Could not remove ${path}, left over from a write that did not finish (${reasonOf(error)}). The store did not start: remove it, then start again`,
          `Could not remove a temporary file left over from a write that did not finish (${errorCode(error) ?? 'error'})`,
          error,
        );
      }
    }
  }

  private resetState(): void {
    this.snapshot = noSnapshot;
    this.journal = undefined;
    this.journalHoldsChanges = false;
    this.acceptedRevision = 0;
    this.durableRevision = 0;
    this.queue = [];
    this.repair = undefined;
    this.compaction = undefined;
    this.compactAgainAt = 0;
    this.idempotency = new Map();
    this.writtenSnapshot = undefined;
    // The engine's document, held by the reader: a closed adapter must not keep it.
    this.freezeDocument = undefined;
  }

  private rememberKey(record: IdempotencyRecord): void {
    const known = this.idempotency.get(record.key);
    if (known === undefined || known.revision <= record.revision) this.idempotency.set(record.key, record);
    // Between compactions too, memory holds about the retained count, not every key ever sent.
    if (this.retention !== undefined && this.idempotency.size > 2 * this.retention.count) this.pruneKeys();
  }

  /**
   * Forgets the records outside the retention and returns the rest: what a
   * new journal header carries, and all that is kept in memory.
   */
  private pruneKeys(): IdempotencyRecord[] {
    if (this.retention === undefined) return [...this.idempotency.values()];
    const kept = retainedRecords(this.idempotency.values(), this.retention, Date.now());
    this.idempotency = new Map(kept.map((record) => [record.key, record]));
    return kept;
  }

  // ---- writing ----------------------------------------------------------------------

  commit(change: Change): Promise<void> {
    if (!this.loaded || this.closing) throw new Error('the file storage is not open');
    if (this.settings.readOnly) throw new Error(`the file storage of ${this.path} was opened read-only (option readOnly)`);
    const expected = this.acceptedRevision + 1;
    if (change.revision !== expected) {
      throw new Error(`the file storage expected revision ${expected} next, not ${change.revision}`);
    }
    // Serialized now: the engine may change these values once this returns.
    const line = encodeChange(change.revision, change.ops, change.idempotency);
    this.freezeDocument = frozenDocumentReader(change) ?? this.freezeDocument;
    if (change.idempotencyRetention !== undefined) this.retention = change.idempotencyRetention;
    this.acceptedRevision = change.revision;
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ revision: change.revision, line, idempotency: change.idempotency, resolve, reject });
      this.scheduleFlush();
    });
  }

  private exclusive<T>(task: () => Promise<T>): Promise<T> {
    const run = this.io.then(task);
    this.io = run.then(noop, noop);
    return run;
  }

  /** One flush at a time; it takes every change queued by the time it starts (group commit). */
  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    void this.exclusive(() => {
      this.flushScheduled = false;
      return this.flush(this.queue.splice(0));
    });
  }

  /** Makes a batch durable and settles its changes. Never rejects. */
  private async flush(batch: QueuedChange[]): Promise<void> {
    const last = batch[batch.length - 1];
    if (last === undefined) return;
    const lines = batch.map((item) => item.line);
    const before = this.idempotency;
    try {
      await this.repairJournal();
      if (this.snapshot.exists) {
        await this.appendChanges(batch);
        for (const item of batch) if (item.idempotency !== undefined) this.rememberKey(item.idempotency);
      } else {
        // The first snapshot folds these changes in at once: the new journal's header carries their records.
        this.idempotency = new Map(before);
        for (const item of batch) if (item.idempotency !== undefined) this.rememberKey(item.idempotency);
        const state: DocumentState = { root: {} };
        for (const line of lines) applyOperations(state, decodeOwnChange(line));
        await this.writeFirstSnapshot(state.root, last.revision);
      }
    } catch (error) {
      this.idempotency = before;
      this.refuse(batch, error);
      return;
    }
    this.durableRevision = last.revision;
    this.counters.changes += batch.length;
    for (const item of batch) item.resolve();
    this.maybeCompact();
  }

  /** Refuses a batch and every change queued after it (they were built on it). */
  private refuse(batch: QueuedChange[], error: unknown): void {
    const later = this.queue.splice(0);
    // The engine rolls these back and will send the next change again at this revision.
    this.acceptedRevision = this.durableRevision;
    const chained = new Error('an earlier change could not be saved', { cause: error });
    // A compaction writing out the engine's document holds these changes: the engine undoes them.
    if (this.compaction !== undefined && this.compaction.revision > this.durableRevision) this.compaction.refused = true;
    if (error instanceof UnknownOutcome) {
      // The engine rolls back from the first refusal it sees and tells the
      // changes after it that they were not saved either. For this batch that
      // is not known, so it is refused last change first: each gets its own answer.
      const unknown = unknownOutcomeError(error);
      for (const item of later.reverse()) item.reject(chained);
      for (const item of batch.reverse()) item.reject(unknown);
      return;
    }
    for (const item of batch) item.reject(error);
    for (const item of later) item.reject(chained);
  }

  private async appendChanges(batch: QueuedChange[]): Promise<void> {
    if (this.journal === undefined) await this.createJournal();
    await this.append(batch.map((item) => item.line).join(''), this.settings.fsync === 'always');
    this.journalHoldsChanges = true;
    const compaction = this.compaction;
    // Changes the new snapshot holds stay behind; later ones move into the new journal.
    if (compaction !== undefined) for (const item of batch) if (item.revision > compaction.revision) compaction.tail.push(item.line);
  }

  /** Appends whole lines to the journal; on failure cuts the journal back to where it was. */
  private async append(text: string, durable: boolean): Promise<void> {
    const journal = this.journal;
    if (journal === undefined) throw new Error('the journal is not open');
    const data = Buffer.from(text, 'utf8');
    const start = journal.size;
    try {
      await writeAll(journal.file, data, start);
      if (durable) await this.syncFile(journal.file);
    } catch (error) {
      // Part of this append may be in the file (and a failed fsync leaves its
      // fate unknown): cut it off before anything else is appended.
      this.repair = async () => {
        await journal.file.truncate(start);
        await this.syncFile(journal.file);
      };
      try {
        await this.repairJournal();
      } catch (repairError) {
        // Until the cut succeeds (it is tried again before every append), what a restart would load is unknown.
        throw new UnknownOutcome(`writing the journal ${this.journalPath} failed (${reasonOf(error)}), and ${reasonOf(repairError)}`, { cause: error });
      }
      throw ioFailure('writing the journal', error);
    }
    journal.size = start + data.length;
    this.counters.appends++;
  }

  private async repairJournal(): Promise<void> {
    const repair = this.repair;
    if (repair === undefined) return;
    try {
      await repair();
    } catch (error) {
      throw ioFailure('repairing the journal after an earlier failed write (every change is refused until it succeeds)', error);
    }
    this.repair = undefined;
  }

  private async syncFile(file: FileStorageFile): Promise<void> {
    this.counters.fsyncs++;
    await file.sync();
  }

  private async syncDirectory(): Promise<void> {
    this.counters.fsyncs++;
    await this.fs.syncDirectory(this.directory);
  }

  /** Creates a new, empty file at `path` (for a temporary file: exclusively, never through a link). */
  private async createFile(path: string): Promise<FileStorageFile> {
    // Our own leftover of a write whose clean-up failed goes; a link or anything else planted there is refused.
    const kind = await this.fs.entryKind(path);
    if (kind === 'symlink' || kind === 'other') {
      throw new Error(`${path} is ${kind === 'symlink' ? 'a symbolic link' : 'not a regular file'}; the store does not write through it`);
    }
    if (kind === 'file') await this.fs.removeFile(path);
    return this.fs.open(path, 'wx', this.settings.fileMode);
  }

  /** Writes a new file completely and durably; returns it still open. */
  private async writeNewFile(path: string, data: Uint8Array): Promise<FileStorageFile> {
    const file = await this.createFile(path);
    try {
      await writeAll(file, data, 0);
      await this.syncFile(file);
      return file;
    } catch (error) {
      await file.close().catch(noop);
      await this.fs.removeFile(path).catch(noop);
      throw error;
    }
  }

  /** Starts a journal (header only) for the current snapshot, replacing any journal there. */
  private async createJournal(): Promise<void> {
    const data = Buffer.from(encodeHeader({ revision: this.snapshot.revision, sha256: this.snapshot.sha256 }, this.pruneKeys()), 'utf8');
    try {
      const file = await this.writeNewFile(this.journalTemp, data);
      try {
        await this.fs.rename(this.journalTemp, this.journalPath);
        await this.syncDirectory();
      } catch (error) {
        await file.close().catch(noop);
        throw error;
      }
      this.journal = { file, size: data.length };
      this.journalHoldsChanges = false;
    } catch (error) {
      await this.fs.removeFile(this.journalTemp).catch(noop);
      throw ioFailure('creating the journal', error);
    }
  }

  /**
   * The starting document becomes the snapshot at revision 0, with a journal
   * for it, while the store loads: the first write then appends only its
   * change, instead of writing the whole document (see `StorageAdapter.seed`).
   * The lock makes this process the only one on the files.
   */
  private seedSnapshot(document: JsonValue): Promise<undefined> {
    return this.exclusive(async () => {
      if (!this.loaded || this.closing) throw new Error('the file storage is not open');
      if (this.snapshot.exists || this.acceptedRevision !== 0) throw new Error(`${this.path} was written since it was loaded; it is not seeded`);
      await this.writeFirstSnapshot(document, 0);
      return undefined;
    });
  }

  /** The first write to an empty store (or its seed) creates the snapshot, holding its result, and a journal for it. */
  private async writeFirstSnapshot(document: JsonValue, revision: number): Promise<void> {
    let renamed = false;
    // Refused, so it must not be found after a restart either: returns what to tell.
    const undo = async (failure: Error): Promise<Error> => {
      this.snapshot = noSnapshot;
      if (!renamed) {
        // A temporary file is never loaded, and is removed before the next one is written.
        await this.fs.removeFile(this.snapshotTemp).catch(noop);
        return failure;
      }
      try {
        await this.fs.removeFile(this.path);
        // Until the removal is durable, a power loss could bring the snapshot back.
        await this.syncDirectory();
      } catch (undoError) {
        return new UnknownOutcome(`${failure.message}, and removing the new ${this.path} again failed too (${reasonOf(undoError)})`, { cause: failure });
      }
      return failure;
    };
    try {
      await this.fs.makeDirectory(this.directory, this.settings.folderMode);
      const written = await this.writeSnapshotTemp(document);
      await this.fs.rename(this.snapshotTemp, this.path);
      renamed = true;
      this.snapshot = { exists: true, revision, sha256: written.sha256, size: written.size };
      this.writtenSnapshot = this.seenSnapshot = await fileIdentity(this.path);
      await this.syncDirectory();
    } catch (error) {
      throw await undo(ioFailure('writing the snapshot', error));
    }
    try {
      await this.createJournal();
    } catch (error) {
      throw await undo(error instanceof Error ? error : ioFailure('creating the journal', error));
    }
  }

  /**
   * Writes the snapshot text (`encodeSnapshot`) to the temporary file,
   * durably. Made and written a slice at a time, the event loop free between
   * slices and during each write, so that writing 100 MB blocks nothing for
   * long; `document` must not change meanwhile (the engine's is frozen).
   */
  private async writeSnapshotTemp(document: JsonValue): Promise<{ sha256: string; size: number }> {
    const path = this.snapshotTemp;
    const file = await this.createFile(path);
    try {
      const hash = createHash('sha256');
      // One buffer, reused: each write is waited for before it is filled again.
      const buffer = Buffer.allocUnsafe(snapshotWriteBytes);
      let used = 0;
      let size = 0;
      const write = async (data: Buffer): Promise<void> => {
        hash.update(data);
        await writeAll(file, data, size);
        size += data.length;
      };
      const add = async (text: string): Promise<void> => {
        const bytes = Buffer.byteLength(text, 'utf8');
        if (used + bytes > buffer.length && used > 0) {
          await write(buffer.subarray(0, used));
          used = 0;
        }
        if (bytes > buffer.length) await write(Buffer.from(text, 'utf8'));
        else used += buffer.write(text, used, 'utf8');
      };
      for await (const piece of piecesInSlices(document, { indent: 2 })) await add(piece);
      await add('\n');
      if (used > 0) await write(buffer.subarray(0, used));
      await this.syncFile(file);
      await file.close();
      return { sha256: hash.digest('hex'), size };
    } catch (error) {
      await file.close().catch(noop);
      await this.fs.removeFile(path).catch(noop);
      throw error;
    }
  }

  // ---- compaction -------------------------------------------------------------------

  private compactThreshold(): number {
    return Math.max(this.settings.compactMinSize, this.settings.compactRatio * this.snapshot.size);
  }

  /** Called after each flush, inside the I/O chain, so revision and journal size agree. */
  private maybeCompact(idle = false): void {
    const journal = this.journal;
    if (this.compactionRun || this.closing || journal === undefined || !this.snapshot.exists) return;
    if (!idle && this.settings.watchInterval !== undefined && this.journalHoldsChanges) this.compactWhenIdle();
    if (idle ? !this.journalHoldsChanges || this.queue.length > 0 : journal.size <= this.compactThreshold() || journal.size < this.compactAgainAt) return;
    this.compactionRun = this.compact(this.frozenDocument() ?? { revision: this.durableRevision, offset: journal.size }).then(
      () => {
        this.compactAgainAt = 0;
      },
      (error: unknown) => {
        // The journal is intact and keeps every change; try again once it has doubled.
        const size = this.journal?.size ?? 0;
        this.compactAgainAt = Math.max(2 * size, size + this.compactThreshold());
        process.emitWarning(`could not compact ${this.path}, will try again later: ${reasonOf(error)}`, {
          type: 'JsonStoreWarning',
          code: 'JSONSTORE_COMPACTION_FAILED',
        });
      },
    );
    void this.compactionRun.finally(() => {
      this.compactionRun = undefined;
    });
  }

  /**
   * Watched files are meant to be read and edited by people, so the snapshot
   * should be the whole document: once writes pause, the journal is folded
   * into it (a whole rewrite of the file per pause, as json-server does per write).
   */
  private compactWhenIdle(): void {
    clearTimeout(this.idleCompaction);
    this.idleCompaction = setTimeout(() => {
      if (this.closing || !this.loaded) return;
      void this.exclusive(async () => this.maybeCompact(true));
    }, 2 * (this.settings.watchInterval ?? defaultWatchInterval));
    this.idleCompaction.unref();
  }

  /**
   * The engine's working document, frozen, when it is at the revision the
   * adapter took last; `undefined` without an engine (the adapter used on
   * its own) or when the engine is behind the files (an edit picked up by the
   * watch that it has not applied yet).
   */
  private frozenDocument(): FrozenDocument | undefined {
    const frozen = this.freezeDocument?.();
    return frozen !== undefined && frozen.revision === this.acceptedRevision ? frozen : undefined;
  }

  /**
   * Folds the journal into a new snapshot of one revision: the engine's
   * frozen document (changes not yet durable included: the snapshot is
   * installed once they are, and dropped if one is refused), or without it
   * the document rebuilt from the files (snapshot + journal up to
   * `offset`, a whole parse: for an adapter used without the engine). The
   * snapshot is written a slice at a time while appends go on; only the
   * renames at the end wait for the append in flight.
   */
  private async compact(source: FrozenDocument | { revision: number; offset: number }): Promise<void> {
    const compaction: Compaction = { revision: source.revision, tail: [], refused: false, replaces: this.snapshot.sha256 };
    this.compaction = compaction;
    try {
      const document = 'root' in source ? source.root : await this.rebuild(source);
      const written = await this.writeSnapshotTemp(document);
      // Rebuilt from the files, it was checked then; an edit made by hand must not be overwritten.
      if ('root' in source && !(await this.snapshotUnchanged())) throw snapshotChangedError(this.path);
      await this.exclusive(() => this.installSnapshot(written, compaction));
      this.counters.compactions++;
    } catch (error) {
      await this.fs.removeFile(this.snapshotTemp).catch(noop);
      throw error;
    } finally {
      this.compaction = undefined;
    }
  }

  /**
   * Whether the snapshot file still holds what the store wrote or loaded:
   * the same file as the store last wrote (inode, size, times), else the
   * same bytes (read and hashed a slice at a time). Reading 100 MB back only
   * to find it unchanged would cost a long garbage collection.
   */
  private async snapshotUnchanged(): Promise<boolean> {
    return (await this.snapshotOnDisk()) === 'unchanged';
  }

  /** What became of the snapshot file since the store wrote or loaded it (see `snapshotUnchanged`). */
  private async snapshotOnDisk(): Promise<'unchanged' | 'edited' | 'removed'> {
    // No identity (a file system that is not node's, or no file): unknown, so the bytes decide, read through this.fs.
    const identity = await fileIdentity(this.path);
    if (identity !== undefined && this.writtenSnapshot !== undefined && sameIdentity(this.writtenSnapshot, identity)) return 'unchanged';
    const bytes = await this.fs.readFile(this.path);
    if (bytes === undefined) return 'removed';
    return (await sha256InSlices(bytes)) === this.snapshot.sha256 ? 'unchanged' : 'edited';
  }

  private async rebuild(cut: { revision: number; offset: number }): Promise<JsonValue> {
    const snapshotBytes = await this.fs.readFile(this.path);
    if (snapshotBytes === undefined || sha256Hex(snapshotBytes) !== this.snapshot.sha256) throw snapshotChangedError(this.path);
    const state: DocumentState = { root: parseSnapshot(snapshotBytes, this.path) };
    const journalBytes = await this.fs.readFile(this.journalPath);
    if (journalBytes === undefined || journalBytes.length < cut.offset) {
      throw new Error(`${this.journalPath} was changed or removed by something else while the store had it open`);
    }
    const journal = parseJournal(journalBytes.subarray(0, cut.offset), this.context);
    let revision = this.snapshot.revision;
    for (const record of journal.records) {
      if (record.kind !== 'change' || record.revision <= revision) continue;
      applyOperations(state, record.ops);
      revision = record.revision;
    }
    if (revision !== cut.revision) throw new Error(`the journal replays to revision ${revision}, not ${cut.revision}`);
    return state.root;
  }

  /**
   * Puts the new snapshot in place and starts a new journal. Every step
   * leaves files a restart loads correctly: the marker names the new
   * snapshot before it replaces the old one, and the old journal stays until
   * the new snapshot's name is durable.
   */
  private async installSnapshot(written: { sha256: string; size: number }, compaction: Compaction): Promise<void> {
    const { revision } = compaction;
    if (compaction.refused) throw new Error(`a change the new snapshot holds (revision ${revision} or before) was refused`);
    if (this.snapshot.sha256 !== compaction.replaces) throw snapshotChangedError(this.path);
    // The appends of the changes it holds were queued before it: they ran first.
    if (this.durableRevision < revision) throw new Error(`the new snapshot holds revision ${revision}, but only ${this.durableRevision} is on disk`);
    await this.repairJournal();
    const oldJournal = this.journal;
    if (oldJournal === undefined) throw new Error('the journal is not open');
    const ref: SnapshotRef = { revision, sha256: written.sha256 };
    await this.append(encodeMarker(ref), true);
    await this.fs.rename(this.snapshotTemp, this.path);
    this.snapshot = { exists: true, revision, sha256: written.sha256, size: written.size };
    // The watch too: its own compaction is no edit to read back.
    this.writtenSnapshot = this.seenSnapshot = await fileIdentity(this.path);
    await this.syncDirectory();

    // The records of the changes folded in move to the header (the tail's lines carry their own too).
    const data = Buffer.from(encodeHeader(ref, this.pruneKeys()) + compaction.tail.join(''), 'utf8');
    const file = await this.writeNewFile(this.journalTemp, data);
    try {
      await this.fs.rename(this.journalTemp, this.journalPath);
    } catch (error) {
      await file.close().catch(noop);
      await this.fs.removeFile(this.journalTemp).catch(noop);
      throw error;
    }
    // The name now points at the new journal: append there from now on.
    this.journal = { file, size: data.length };
    this.journalHoldsChanges = compaction.tail.length > 0;
    await oldJournal.file.close().catch(noop);
    try {
      await this.syncDirectory();
    } catch (error) {
      // Until the rename is durable, a power loss could bring the old journal back without the next appends.
      this.repair = () => this.syncDirectory();
      throw error;
    }
  }

  // ---- edits made while the store runs ----------------------------------------------

  /**
   * With the `watch` option: checks the snapshot file every interval, and
   * hands an edit to the engine as a change that replaces the whole document
   * (see checkForEdit). Without it: nothing to watch.
   */
  watch(onChange: (change: Change) => void): Unwatch | undefined {
    const interval = this.settings.watchInterval;
    if (interval === undefined) return undefined;
    let checking = false;
    const timer = setInterval(() => {
      if (checking || !this.loaded || this.closing) return;
      checking = true;
      this.checkForEdit(onChange)
        .catch((error: unknown) => {
          process.emitWarning(`could not pick up an edit of ${this.path}, will try again: ${reasonOf(error)}`, {
            type: 'JsonStoreWarning',
            code: 'JSONSTORE_EDIT_FAILED',
          });
        })
        .finally(() => {
          checking = false;
        });
    }, interval);
    timer.unref();
    return () => clearInterval(timer);
  }

  /**
   * Picks up an edit of the snapshot file. The store's own writes are told
   * apart by content: the SHA-256 of the bytes is that of the snapshot the
   * store wrote (or loaded). An edit becomes the snapshot of the next
   * revision, with a new journal naming it (so a restart loads it as it is),
   * and then reaches the engine like another process' change: ETags and
   * `change` listeners see it. An edit that is not valid JSON is reported
   * once and ignored. Runs in the I/O chain, so no append or compaction of
   * the store is in the middle of it.
   */
  private async checkForEdit(onChange: (change: Change) => void): Promise<void> {
    const seen = await fileIdentity(this.path);
    if (seen === undefined || sameIdentity(seen, this.seenSnapshot)) return;
    await this.exclusive(async () => {
      if (!this.loaded || this.closing) return;
      const bytes = await this.fs.readFile(this.path);
      if (bytes === undefined) return;
      const sha256 = await sha256InSlices(bytes);
      if (sha256 === this.snapshot.sha256 || sha256 === this.refusedEdit) {
        this.seenSnapshot = seen;
        return;
      }
      let document: JsonValue;
      try {
        document = parseSnapshot(bytes, this.path);
      } catch (error) {
        // An editor may be half-way through writing the file: only the same invalid bytes seen twice count.
        if (this.unsettledEdit !== sha256) {
          this.unsettledEdit = sha256;
          return;
        }
        this.refusedEdit = sha256;
        this.seenSnapshot = seen;
        process.emitWarning(`ignored an edit of ${this.path}: ${jsonSyntaxReason(bytes) ?? reasonOf(error)}. The store goes on serving the document it has; save the file again as valid JSON`, {
          type: 'JsonStoreWarning',
          code: 'JSONSTORE_EDIT_IGNORED',
        });
        return;
      }
      // Changes not yet durable were built on the document before the edit: try again once they are.
      if (this.queue.length > 0 || this.acceptedRevision !== this.durableRevision || this.repair !== undefined) return;
      const revision = this.durableRevision + 1;
      // Taken at once: a change the engine sends for this revision now was built on the old document, and is refused.
      this.acceptedRevision = revision;
      const before = { snapshot: this.snapshot, journal: this.journal, holdsChanges: this.journalHoldsChanges };
      this.snapshot = { exists: true, revision, sha256, size: bytes.length };
      if (!this.settings.readOnly) {
        try {
          await this.createJournal();
        } catch (error) {
          this.snapshot = before.snapshot;
          this.journal = before.journal;
          this.journalHoldsChanges = before.holdsChanges;
          this.acceptedRevision = this.durableRevision;
          throw error;
        }
        await before.journal?.file.close().catch(noop);
      }
      this.durableRevision = revision;
      // Read and hashed above: the next compaction need not read it again.
      this.writtenSnapshot = this.seenSnapshot = seen;
      this.refusedEdit = undefined;
      onChange({ revision, ops: [{ op: 'replace', path: '', value: document }] });
    });
  }

  /** Whether the snapshot file holds something other than what the store wrote or loaded. */
  private async snapshotEditedOnDisk(): Promise<boolean> {
    if (!this.snapshot.exists) return false;
    const state = await this.snapshotOnDisk().catch(() => 'removed' as const);
    if (state === 'unchanged') return false;
    process.emitWarning(
      `${this.path} was ${state} while the store had it open, so the journal was not folded into it. ` +
        `The next start ${state === 'removed' ? 'refuses until the snapshot is restored' : 'serves the edit and moves the journal aside'}`,
      { type: 'JsonStoreWarning', code: 'JSONSTORE_COMPACTION_FAILED' },
    );
    return true;
  }

  // ---- closing ----------------------------------------------------------------------

  /** Waits until no flush or compaction is running and nothing is queued. */
  private async settle(): Promise<void> {
    for (;;) {
      const io = this.io;
      const run = this.compactionRun;
      await io;
      if (run) await run.catch(noop);
      if (io === this.io && this.compactionRun === undefined && this.queue.length === 0) return;
    }
  }

  /**
   * Finishes pending writes, folds the journal into the snapshot (so after a
   * clean stop the snapshot alone is the whole document) and releases the lock.
   */
  async close(): Promise<void> {
    const lock = this.lock;
    if (lock === undefined) return;
    this.closing = true;
    clearTimeout(this.idleCompaction);
    try {
      await this.settle();
      await this.repairJournal().catch(noop);
      if (this.repair === undefined && this.journal !== undefined && this.journalHoldsChanges && !(await this.snapshotEditedOnDisk())) {
        try {
          await this.compact(this.frozenDocument() ?? { revision: this.durableRevision, offset: this.journal.size });
        } catch (error) {
          process.emitWarning(`could not fold the journal into ${this.path} on close; it is replayed on the next start: ${reasonOf(error)}`, {
            type: 'JsonStoreWarning',
            code: 'JSONSTORE_COMPACTION_FAILED',
          });
        }
      }
    } finally {
      await this.journal?.file.close().catch(noop);
      this.resetState();
      this.loaded = false;
      this.closing = false;
      this.lock = undefined;
      lock.release();
    }
  }
}
