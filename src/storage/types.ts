/**
 * The storage contract. The engine keeps the working document in memory and
 * serves reads from it; an adapter only has to load a document once and make
 * each change durable. Every method may return a value or a Promise.
 *
 * Nothing but the engine depends on this module's shape; adapters are plain
 * objects, so a whole-document adapter is a `load` and a `commit`.
 */
import type { JsonValue } from '../document/json.js';
import type { PatchOperation } from '../document/patch-types.js';
import type { TouchedPaths } from '../document/touched-paths.js';

export type { JsonValue, PatchOperation, TouchedPaths };

export type MaybePromise<T> = T | Promise<T>;

/** A stored document and the revision it is at. */
export interface StoredDocument {
  document: JsonValue;
  /** Number of changes committed so far; 0 for a document nobody wrote yet. */
  revision: number;
  /**
   * Adapters with `capabilities.idempotency`: the idempotency records kept
   * with the changes, at least those still inside their retention (see
   * `Change.idempotency`). The engine drops the ones it no longer needs.
   */
  idempotency?: IdempotencyRecord[];
}

/**
 * What a write sent with an `Idempotency-Key` was answered, remembered so
 * that a retry with the same key gets the same answer instead of writing again.
 */
export interface IdempotencyRecord {
  /** The client's key (1 to 255 printable ASCII characters). */
  readonly key: string;
  /** Identifies the request (method, path, body, preconditions): the same key with another fingerprint is refused. */
  readonly fingerprint: string;
  /** The revision the write made. */
  readonly revision: number;
  /** When it was made, in ms since the epoch (the writing process' clock). */
  readonly at: number;
  /** The answer: HTTP status, and the ETag and Location it carried. */
  readonly status: number;
  readonly etag?: string;
  readonly location?: string;
}

/** How long the engine remembers idempotency records: adapters keep at least these. */
export interface IdempotencyRetention {
  /** Milliseconds after `at`. */
  readonly window: number;
  /** The newest this many (older ones may be dropped). */
  readonly count: number;
}

/** One committed change, as the engine hands it to `commit` and to `change` listeners. */
export interface Change {
  /** The revision after this change: always the previous revision + 1. */
  readonly revision: number;
  /**
   * RFC 6902 operations with pointers from the document root, in order. No
   * `test` operations, and appends carry the real index instead of `-`, so
   * replaying them onto the previous revision gives exactly this revision.
   * The first change to storage whose `load` returned `undefined` starts with
   * `{ op: 'replace', path: '', value: <the starting document> }`, so the
   * stored history is complete without knowing the store's `initial`;
   * unless the adapter has `seed`, which stored that document as revision 0.
   */
  readonly ops: readonly PatchOperation[];
  /**
   * The whole document after the change: present only when the adapter
   * declares `capabilities.wholeDocument`. A fresh copy the adapter may keep.
   */
  readonly document?: JsonValue;
  /**
   * Present when the write carried an idempotency key. An adapter that
   * declares `capabilities.idempotency` stores it atomically with the change,
   * gives it back with the change (`changesSince`, `watch`) and from `load()`
   * (`StoredDocument.idempotency`) for as long as `idempotencyRetention` says.
   */
  readonly idempotency?: IdempotencyRecord;
  /** With `idempotency` on changes the engine commits: what the adapter keeps, and for how long. */
  readonly idempotencyRetention?: IdempotencyRetention;
  /**
   * Adapters with `capabilities.rebase`: the JSON Pointers this change writes
   * and reads (its `test` operations and preconditions included; see
   * `src/document/touched-paths.ts`), so the adapter can tell whether changes
   * committed since its base revision overlap it.
   */
  readonly touches?: TouchedPaths;
}

/**
 * What `commit` resolves with when it appended a change made on an older
 * revision (`capabilities.rebase`): none of the changes committed since
 * (`missed`, revisions `change.revision` to `revision - 1`, oldest first)
 * touches what the change touches, so it was appended after them, at
 * `revision`. The engine applies `missed` and the change again in that order.
 */
export interface RebasedCommit {
  readonly revision: number;
  readonly missed: readonly Change[];
}

/** What an adapter can do. A missing capability is never faked by the engine. */
export interface StorageCapabilities {
  /** Give `commit` the whole resulting document (`change.document`), for adapters that store it whole. */
  readonly wholeDocument?: boolean;
  /**
   * `commit` may be called again before the previous call settles. The
   * adapter must then make changes durable in revision order, fail any change
   * whose revision does not follow the last one it accepted, and copy what it
   * keeps of a change before returning (the engine may mutate the values
   * afterwards). Enables group commit; needs no sharing.
   */
  readonly pipelining?: boolean;
  /**
   * Several processes share the stored document. `commit` throws
   * `RevisionConflictError` when `change.revision` is not the next revision
   * in storage; the engine then catches up (`changesSince`, else `load`) and
   * retries the write on the fresh document. A shared adapter must offer
   * `currentRevision` or `watch` (or both), or other processes' writes would
   * be seen only when a write of this one conflicts.
   */
  readonly shared?: boolean;
  /**
   * Shared adapters: `commit` may append a change made on an older revision
   * when no change committed since overlaps its `touches` (one writes where
   * the other writes or reads, see `src/document/touched-paths.ts`), and then
   * resolves with a `RebasedCommit` instead of throwing
   * `RevisionConflictError`. Never for a change without `touches` or with
   * `idempotency`.
   */
  readonly rebase?: boolean;
  /** Data outlives the process (informational, e.g. for health checks and the CLI). */
  readonly persistent?: boolean;
  /**
   * The adapter keeps `change.idempotency` records with their changes and
   * returns them (see `Change.idempotency`), so idempotency keys survive
   * restarts and are seen by every process. Without it the engine remembers
   * keys in its own memory only.
   */
  readonly idempotency?: boolean;
}

/**
 * What the engine passes to the calls it makes on behalf of one request, when
 * the adapter declares `requestTimeout`. Adapters may ignore it.
 */
export interface StorageCallOptions {
  /**
   * When the request stops waiting, as a `performance.now()` time: the same
   * for every call made for one request. An adapter that honours it fails a
   * call still unanswered by then, and sends nothing once it has passed,
   * instead of waiting out a timeout of its own for each call.
   */
  readonly deadline?: number;
}

/**
 * A failed `commit` may leave it open whether the change was made durable
 * (the request reached storage, the answer did not come back). The adapter
 * then throws an error with `outcome: 'unknown'`; the engine answers 503
 * saying so, instead of "nothing was changed". Any other failure of `commit`
 * means the change was not made.
 */
export interface OutcomeUnknown {
  readonly outcome: 'unknown';
}

/** Stops a `watch`. */
export type Unwatch = () => MaybePromise<void>;

export interface StorageAdapter {
  /** A short name for messages and logs, such as `"file"`. */
  readonly name?: string;
  readonly capabilities?: StorageCapabilities;
  /**
   * Milliseconds one request may wait for this storage in all, however many
   * calls it needs and however long it waits behind other writes. The engine
   * then answers 503 once they have passed and gives every call it makes for
   * the request the same `deadline` (`StorageCallOptions`). Absent or 0: the
   * engine sets no limit, and calls get no options.
   */
  readonly requestTimeout?: number;
  /**
   * The stored document, or `undefined` when nothing is stored yet (the store
   * then starts from `initial`). Return a fresh value on every call: the
   * engine keeps it and changes it in place.
   */
  load(options?: StorageCallOptions): MaybePromise<StoredDocument | undefined>;
  /**
   * Makes one change durable. Resolve only when it is; throw (or reject) to
   * refuse it, and the engine answers 503 and does not apply it. Throw an
   * error with `outcome: 'unknown'` (`OutcomeUnknown`) when the change may
   * have been made all the same. Without `pipelining`, the engine never calls
   * `commit` again before this settles, and leaves `change` untouched until
   * then. With `capabilities.rebase` it may resolve with a `RebasedCommit`.
   */
  commit(change: Change, options?: StorageCallOptions): MaybePromise<void | RebasedCommit>;
  /**
   * Shared adapters with `capabilities.rebase` (optional): makes several
   * changes durable in one step, all or none. `changes` are consecutive
   * (revisions `n` to `n + k - 1`, each made on the one before), none with
   * `idempotency`; only the first may carry the starting document. Like
   * `commit`: throws `RevisionConflictError` when storage is past `n - 1` and
   * a change since overlaps any of them; resolves with a `RebasedCommit`
   * (`revision`: the one the first change got) when it appended them after
   * such changes. The engine then commits writes that arrive while a call
   * is in flight together in the next one (group commit).
   */
  commitBatch?(changes: readonly Change[], options?: StorageCallOptions): MaybePromise<void | RebasedCommit>;
  /**
   * Stores `document` (the store's `initial`) as revision 0 when storage
   * holds nothing yet, so the first change carries only itself instead of
   * the whole starting document (which could be large). The engine calls it
   * once, while it loads, when `load` returned `undefined`, before the store
   * is ready. Resolves `undefined` when `document` was stored; or with what
   * storage holds when something got there first (another process seeded or
   * wrote it), which the engine then serves. Shared adapters must make it
   * atomic (store only if still empty), so processes starting together on
   * empty storage agree on one document. Copy what you keep: the engine does
   * not copy `document`, and never changes it.
   */
  seed?(document: JsonValue, options?: StorageCallOptions): MaybePromise<StoredDocument | undefined>;
  /**
   * Shared adapters: the changes after `revision`, oldest first, or
   * `undefined` when they are no longer kept (the engine then calls `load`).
   */
  changesSince?(revision: number, options?: StorageCallOptions): MaybePromise<readonly Change[] | undefined>;
  /** Shared adapters: the latest committed revision, cheaply, for reads that must not be stale. */
  currentRevision?(options?: StorageCallOptions): MaybePromise<number>;
  /**
   * Shared adapters: calls `onChange` for changes other processes commit
   * (repeats and gaps are allowed: the engine skips what it has and fills gaps
   * with `changesSince`), and `onError` when the feed broke and the engine
   * should resync. Returns a function that stops watching.
   */
  watch?(onChange: (change: Change) => void, onError: (error: unknown) => void): MaybePromise<Unwatch | void>;
  /** Releases files, connections, locks. Called once by the store's `close()`. */
  close?(): MaybePromise<void>;
}
