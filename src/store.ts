/**
 * The engine: one working document in memory, reads served from it, writes
 * serialized, planned as RFC 6902 operations, applied in place and sent to
 * the storage adapter before anyone is told they succeeded.
 *
 * Reads never see a change the adapter has not confirmed: a read that finds
 * changes in flight waits for them, and retries if they were rolled back.
 */
import { EventEmitter } from 'node:events';
import { applyOperations, valueAt, type DocumentState } from './document/apply.js';
import { cloneJson, depthOf, invalidJsonReason, type JsonValue } from './document/json.js';
import type { PatchOperation } from './document/patch-types.js';
import { displayPath, parsePointer, toPath, type Path } from './document/path.js';
import {
  checkWritePath,
  planDelete,
  planJsonPatch,
  planMergePatch,
  planPost,
  planPut,
  valueAfterWrite,
  type WritePlan,
} from './document/operations.js';
import { contentTag, formatEtag } from './document/etag.js';
import { JsonStoreError, RevisionConflictError, StorageError } from './errors.js';
import type { Change, StorageAdapter, StoredDocument, Unwatch } from './storage/types.js';
import { isThenable } from './is-thenable.js';

/** What the `change` event says: what changed, where, and who changed it. */
export interface ChangeEvent {
  /** The document's revision after the change. */
  revision: number;
  /** RFC 6902 operations with pointers from the root. Read-only: copy what you keep. */
  ops: readonly PatchOperation[];
  /** `local`: written through this store; `remote`: another process, via shared storage. */
  origin: 'local' | 'remote';
}

export interface DocumentStoreOptions {
  initial: JsonValue;
  storage: StorageAdapter;
  maxDepth: number;
  /** Shared storage: how often a write refused as stale is retried on fresh data. */
  maxRetries: number;
  /** Shared storage: `strong` checks the latest revision before each read; `local` reads the local copy. */
  readConsistency: 'strong' | 'local';
}

/** Preconditions a caller may attach to a write; evaluated atomically with it. */
export type Precondition = (current: JsonValue | undefined) => void;

export interface WriteOptions {
  /** Called with the current value at the path inside the write's critical section; throw to refuse. */
  precondition?: Precondition;
}

export interface WriteResult {
  /** Whether the write created the member (HTTP 201). */
  created: boolean;
  /** Where the written value lives (an append's real index included). */
  path: string[];
  /** The value there after the write (`undefined` after a DELETE). */
  value: JsonValue | undefined;
  /** Its strong ETag, or `undefined` if nothing is there. */
  etag: string | undefined;
  /** The document revision after the write. */
  revision: number;
}

interface Pending {
  revision: number;
  undo: () => void;
  event: ChangeEvent;
  carriedBase: JsonValue | undefined;
  done: boolean;
  error: unknown;
  settled: Promise<boolean>;
  resolve: (ok: boolean) => void;
}

const noop = () => {};


function toStorageError(error: unknown, what: string): StorageError {
  if (error instanceof StorageError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  const publicDetail = `The storage could not ${what}, so nothing was changed; try again later`;
  return new StorageError(`${publicDetail} (${reason})`, { cause: error, publicDetail });
}

/** The strong ETag of a value (compact JSON hashed). */
export function etagOf(value: JsonValue): string {
  return formatEtag(contentTag(JSON.stringify(value)));
}

export class DocumentStore extends EventEmitter {
  private readonly options: DocumentStoreOptions;
  private readonly adapter: StorageAdapter;
  private readonly pipelining: boolean;
  private readonly state: DocumentState = { root: {} };
  private revisionNumber = 0;
  /** Starting document to send with the first commit, while storage holds nothing. */
  private base: JsonValue | undefined;
  private pending: Pending[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private loaded = false;
  private loading: Promise<void> | undefined;
  private lastLoadError: { at: number; error: StorageError } | undefined;
  private unwatch: Unwatch | undefined;
  private closing: Promise<void> | undefined;

  constructor(options: DocumentStoreOptions) {
    super();
    this.options = options;
    this.adapter = options.storage;
    const capabilities = this.adapter.capabilities ?? {};
    // A shared adapter retries on conflicts, which needs one commit at a time.
    this.pipelining = capabilities.pipelining === true && capabilities.shared !== true;
    this.ensureLoaded().catch(noop);
  }

  /** The revision of the working document (changes committed or in flight). */
  get revision(): number {
    return this.revisionNumber;
  }

  /** Resolves once the document is loaded from storage; rejects with a `StorageError` if it cannot be. */
  ready(): Promise<void> {
    return this.ensureLoaded();
  }

  // ---- reads -------------------------------------------------------------

  /**
   * Runs `view` on the document and returns what it returned, once every
   * change it saw is durable. `view` must not mutate the document.
   */
  async read<T>(view: (root: JsonValue) => T): Promise<T> {
    await this.ensureLoaded();
    this.assertOpen();
    if (this.options.readConsistency === 'strong' && this.adapter.currentRevision) await this.syncToLatest();
    for (;;) {
      const result = view(this.state.root);
      const last = this.pending[this.pending.length - 1];
      if (last === undefined || (await last.settled)) return result;
    }
  }

  /** The value at `path` (a copy), or `undefined` when there is none. */
  async get(path?: string | readonly string[]): Promise<JsonValue | undefined> {
    const segments = toPath(path);
    return this.read((root) => {
      const value = valueAt(root, segments);
      return value === undefined ? undefined : cloneJson(value);
    });
  }

  // ---- writes ------------------------------------------------------------

  /**
   * Plans a write on the current document, applies it, commits it and
   * resolves with `respond`'s result computed on the new document.
   */
  async write<T>(
    plan: (root: JsonValue) => WritePlan,
    respond: (root: JsonValue, plan: WritePlan, revision: number) => T,
  ): Promise<T> {
    this.assertOpen();
    // Queued at once (no await before), so a close() called after this write
    // started waits for it instead of refusing it.
    const outcome = await this.enqueue(async () => {
      await this.ensureLoaded();
      for (let attempt = 0; ; attempt++) {
        const planned = plan(this.state.root);
        if (planned.ops.length === 0) {
          return { result: respond(this.state.root, planned, this.revisionNumber), entry: this.pending[this.pending.length - 1] };
        }
        const applied = applyOperations(this.state, planned.ops, planned.describe);
        if (applied.ops.length === 0) {
          // Only `test` operations (or a move onto itself): nothing to commit.
          return { result: respond(this.state.root, planned, this.revisionNumber), entry: this.pending[this.pending.length - 1] };
        }
        try {
          this.checkDepth(applied.ops);
        } catch (error) {
          applied.undo();
          throw error;
        }
        const result = respond(this.state.root, planned, this.revisionNumber + 1);
        const entry = this.commit(applied.ops, applied.undo, 'local');
        if (entry === undefined || this.pipelining) return { result, entry };
        if (await entry.settled) return { result, entry: undefined };
        if (entry.error instanceof RevisionConflictError && attempt < this.options.maxRetries) {
          await this.catchUp();
          continue;
        }
        throw this.failure(entry.error);
      }
    });
    // Pipelined commits (and no-op writes behind them) settle outside the queue.
    if (outcome.entry !== undefined && !(await outcome.entry.settled)) throw this.failure(outcome.entry.error);
    return outcome.result;
  }

  private failure(error: unknown): JsonStoreError {
    if (error instanceof RevisionConflictError) {
      return new StorageError('Other processes kept changing the document, so this write could not be applied; try again', { cause: error });
    }
    return toStorageError(error, 'save the change');
  }

  /** Store `value` at `path`, creating missing parent objects. */
  put(path: string | readonly string[] | undefined, value: JsonValue, options?: WriteOptions): Promise<WriteResult> {
    const segments = toPath(path);
    const body = this.checkValue(value);
    return this.write(this.guarded(segments, options, (root) => planPut(root, segments, body)), resultOf);
  }

  /** Append to the array at `path`, or add under a new unique key to the object there. */
  post(path: string | readonly string[] | undefined, value: JsonValue, options?: WriteOptions): Promise<WriteResult> {
    const segments = toPath(path);
    const body = this.checkValue(value);
    return this.write(this.guarded(segments, options, (root) => planPost(root, segments, body)), resultOf);
  }

  /**
   * Patch the value at `path`: an RFC 7396 merge patch by default, or an
   * RFC 6902 JSON Patch (pointers relative to `path`) with `type: 'json-patch'`.
   */
  patch(
    path: string | readonly string[] | undefined,
    patch: JsonValue,
    options?: WriteOptions & { type?: 'merge' | 'json-patch' },
  ): Promise<WriteResult> {
    const segments = toPath(path);
    const body = this.checkValue(patch);
    const planner = options?.type === 'json-patch' ? planJsonPatch : planMergePatch;
    return this.write(this.guarded(segments, options, (root) => planner(root, segments, body)), resultOf);
  }

  /** Remove the member at `path`; on the root, leaves `{}`. */
  delete(path?: string | readonly string[], options?: WriteOptions): Promise<WriteResult> {
    const segments = toPath(path);
    // Nothing is left at the path (after an array element, its successor is).
    const deleted = (root: JsonValue, plan: WritePlan, revision: number): WriteResult => ({ ...resultOf(root, plan, revision), value: undefined, etag: undefined });
    return this.write(this.guarded(segments, options, (root) => planDelete(root, segments)), deleted);
  }

  /**
   * Wraps a planner so the precondition runs inside the write's critical
   * section, after the path is checked against `maxDepth`.
   */
  guarded(path: Path, options: WriteOptions | undefined, planner: (root: JsonValue) => WritePlan): (root: JsonValue) => WritePlan {
    const precondition = options?.precondition;
    const { maxDepth } = this.options;
    return (root) => {
      checkWritePath(path, maxDepth);
      precondition?.(valueAt(root, path));
      return planner(root);
    };
  }

  /** Programmatic values must be plain JSON within the depth limit. */
  private checkValue(value: unknown): JsonValue {
    const reason = invalidJsonReason(value);
    if (reason !== undefined) throw new TypeError(`value is not JSON: ${reason}`);
    // The store must not share objects the caller may go on changing.
    return cloneJson(value as JsonValue);
  }

  /** Refuses changes that would nest the document deeper than `maxDepth`. */
  private checkDepth(ops: readonly PatchOperation[]): void {
    const { maxDepth } = this.options;
    for (const op of ops) {
      if (op.op === 'remove' || op.op === 'test') continue;
      const path = parsePointer(op.path);
      const value = valueAt(this.state.root, path);
      if (value !== undefined && path.length + depthOf(value, maxDepth) > maxDepth) {
        throw new JsonStoreError(
          'too-deep',
          `The value written at ${displayPath(path)} would nest the document more than ${maxDepth} levels deep (the maxDepth option)`,
        );
      }
    }
  }

  /**
   * Hands a change that is already applied to the adapter. Returns undefined
   * when it is durable at once, else the pending entry.
   */
  private commit(ops: PatchOperation[], undo: () => void, origin: 'local'): Pending | undefined {
    const revision = this.revisionNumber + 1;
    const carriedBase = this.base;
    const committedOps = carriedBase === undefined ? ops : [{ op: 'replace' as const, path: '', value: carriedBase }, ...ops];
    const change: Change = this.adapter.capabilities?.wholeDocument
      ? { revision, ops: committedOps, document: cloneJson(this.state.root) }
      : { revision, ops: committedOps };
    const event: ChangeEvent = { revision, ops, origin };
    this.revisionNumber = revision;
    this.base = undefined;

    let outcome: unknown;
    try {
      outcome = this.adapter.commit(change);
    } catch (error) {
      outcome = Promise.reject(error);
    }
    if (!isThenable(outcome) && this.pending.length === 0) {
      this.emitChange(event);
      return undefined;
    }
    let resolve: (ok: boolean) => void = noop;
    const settled = new Promise<boolean>((r) => (resolve = r));
    const entry: Pending = { revision, undo, event, carriedBase, done: false, error: undefined, settled, resolve };
    this.pending.push(entry);
    Promise.resolve(outcome).then(
      () => {
        entry.done = true;
        this.advance();
      },
      (error: unknown) => this.rollback(entry, error),
    );
    return entry;
  }

  /** Publishes the confirmed prefix of the pending changes, in order. */
  private advance(): void {
    while (this.pending.length > 0 && (this.pending[0] as Pending).done) {
      const entry = this.pending.shift() as Pending;
      this.emitChange(entry.event);
      entry.resolve(true);
    }
  }

  /** Undoes a refused change and every change planned on top of it. */
  private rollback(entry: Pending, error: unknown): void {
    const index = this.pending.indexOf(entry);
    if (index === -1) return;
    for (let i = this.pending.length - 1; i >= index; i--) {
      const undone = this.pending[i] as Pending;
      undone.undo();
      undone.error = i === index ? error : new StorageError('An earlier change it was built on could not be saved, so this one was not saved either', { cause: error });
    }
    const undone = this.pending.splice(index);
    this.revisionNumber = entry.revision - 1;
    if (entry.carriedBase !== undefined) this.base = entry.carriedBase;
    if (!(error instanceof RevisionConflictError)) this.report(toStorageError(error, 'save a change'));
    for (const item of undone) item.resolve(false);
  }

  private emitChange(event: ChangeEvent): void {
    if (this.listenerCount('change') === 0) return;
    try {
      this.emit('change', event);
    } catch (error) {
      this.report(error);
    }
  }

  /** Errors the store cannot hand to a caller: to `error` listeners, else the console. */
  private report(error: unknown): void {
    if (this.listenerCount('error') > 0) {
      this.emit('error', error);
    } else {
      console.error('express-jsonstore:', error instanceof Error ? error.message : error);
    }
  }

  // ---- shared storage: following other processes ---------------------------

  /** Catches up with the adapter's latest revision when it is ahead of ours. */
  private async syncToLatest(): Promise<void> {
    let latest: number;
    try {
      latest = await (this.adapter.currentRevision as () => number | Promise<number>)();
    } catch (error) {
      throw toStorageError(error, 'tell the latest revision');
    }
    // Behind: catch up. Ahead of storage (it lost data or was reset): the catch-up reloads.
    if (latest !== this.revisionNumber) await this.enqueue(() => this.catchUp());
  }

  /** Brings the working document up to the adapter's latest revision. Runs in the queue. */
  private async catchUp(): Promise<void> {
    let changes: readonly Change[] | undefined;
    try {
      changes = this.adapter.changesSince ? await this.adapter.changesSince(this.revisionNumber) : undefined;
    } catch (error) {
      throw toStorageError(error, 'read the latest changes');
    }
    if (changes !== undefined && this.applyRemote(changes)) return;
    await this.reload();
  }

  /** Applies changes from other processes; false when they leave a gap or do not apply. */
  private applyRemote(changes: readonly Change[]): boolean {
    for (const change of changes) {
      if (change.revision <= this.revisionNumber) continue;
      if (change.revision !== this.revisionNumber + 1) return false;
      try {
        applyOperations(this.state, change.ops);
      } catch {
        return false;
      }
      this.revisionNumber = change.revision;
      this.base = undefined;
      this.emitChange({ revision: change.revision, ops: change.ops, origin: 'remote' });
    }
    return true;
  }

  private async reload(): Promise<void> {
    const stored = await this.loadStored();
    this.install(stored);
    this.emitChange({ revision: this.revisionNumber, ops: [{ op: 'replace', path: '', value: this.state.root }], origin: 'remote' });
  }

  private onRemoteChange = (change: Change): void => {
    this.enqueue(async () => {
      if (!this.applyRemote([change])) await this.catchUp();
    }).catch((error: unknown) => this.report(error));
  };

  private onWatchError = (error: unknown): void => {
    const reason = error instanceof Error ? error.message : String(error);
    this.report(new StorageError(`Following other processes' changes was interrupted; catching up from storage (${reason})`, { cause: error }));
    this.enqueue(() => this.catchUp()).catch((e: unknown) => this.report(e));
  };

  // ---- loading and closing --------------------------------------------------

  private async loadStored(): Promise<StoredDocument | undefined> {
    let stored: StoredDocument | undefined;
    try {
      stored = await this.adapter.load();
    } catch (error) {
      throw toStorageError(error, 'load the document');
    }
    if (stored === undefined || stored === null) return undefined;
    const reason = invalidJsonReason(stored.document);
    if (reason !== undefined || !Number.isSafeInteger(stored.revision) || stored.revision < 0) {
      throw new StorageError(`The storage returned an invalid document: ${reason ?? `revision ${String(stored.revision)} is not a non-negative integer`}`);
    }
    return stored;
  }

  private install(stored: StoredDocument | undefined): void {
    if (stored === undefined) {
      this.state.root = cloneJson(this.options.initial);
      this.revisionNumber = 0;
      this.base = cloneJson(this.options.initial);
    } else {
      this.state.root = stored.document;
      this.revisionNumber = stored.revision;
      this.base = undefined;
    }
  }

  private ensureLoaded(): Promise<void> {
    if (this.loaded) return Promise.resolve();
    if (this.loading) return this.loading;
    // After a failure, try again at most once a second rather than per request.
    if (this.lastLoadError && Date.now() - this.lastLoadError.at < 1000) return Promise.reject(this.lastLoadError.error);
    this.loading = (async () => {
      try {
        this.install(await this.loadStored());
        if (this.adapter.watch) {
          try {
            this.unwatch = (await this.adapter.watch(this.onRemoteChange, this.onWatchError)) ?? undefined;
          } catch (error) {
            throw toStorageError(error, 'follow changes from other processes');
          }
        }
        this.loaded = true;
        this.lastLoadError = undefined;
      } catch (error) {
        const failure = toStorageError(error, 'load the document');
        this.lastLoadError = { at: Date.now(), error: failure };
        this.report(failure);
        throw failure;
      } finally {
        this.loading = undefined;
      }
    })();
    return this.loading;
  }

  private enqueue<T>(task: () => Promise<T> | T): Promise<T> {
    const run = this.queue.then(task);
    this.queue = run.then(noop, noop);
    return run;
  }

  private assertOpen(): void {
    if (this.closing) throw new StorageError('The store is closed');
  }

  /**
   * Stops taking requests, waits for writes in flight to be saved, then
   * releases the storage. Safe to call more than once.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await this.queue;
      const last = this.pending[this.pending.length - 1];
      if (last) await last.settled;
      if (this.loading) await this.loading.catch(noop);
      await this.unwatch?.();
      await this.adapter.close?.();
    })();
    return this.closing;
  }
}

function resultOf(root: JsonValue, plan: WritePlan, revision: number): WriteResult {
  const value = valueAfterWrite(root, plan);
  return {
    created: plan.created,
    path: plan.resultPath,
    value: value === undefined ? undefined : cloneJson(value),
    etag: value === undefined ? undefined : etagOf(value),
    revision,
  };
}

