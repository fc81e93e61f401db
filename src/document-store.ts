/**
 * The engine: one working document in memory, reads served from it, writes
 * serialized, planned as RFC 6902 operations, applied in place and sent to
 * the storage adapter before anyone is told they succeeded.
 *
 * Reads never see a change the adapter has not confirmed: a read that finds
 * changes in flight waits for them, and retries if they were rolled back.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { applyOperations, valueAt, type DocumentState } from './document/apply.js';
import { cloneJson, invalidJsonReason, type JsonValue } from './document/json.js';
import { budgetExceeded, jsonSize, SizeMeter } from './document/size.js';
import { DepthGuard } from './document/depth-guard.js';
import type { PatchOperation } from './document/patch-types.js';
import { parseUrlPath, toPath, urlPath, type Path } from './document/path.js';
import { isRebasedCommit, mayRetryConflict, touchesOf } from './storage/rebase.js';
import { checkWritePath, planWrite, valueAfterWrite, type WriteKind, type WritePlan } from './document/operations.js';
import { etagOf } from './document/etag.js';
import { JsonStoreError, RevisionConflictError, StorageError } from './errors.js';
import type {
  Change,
  IdempotencyRecord,
  IdempotencyRetention,
  RebasedCommit,
  StorageAdapter,
  StorageCallOptions,
  StoredDocument,
  TouchedPaths,
  Unwatch,
} from './storage/types.js';
import { asIdempotencyRecord, idempotencyKeyPattern, retainedRecords } from './storage/idempotency.js';
import { isThenable } from './is-thenable.js';
import { foldsWorkingDocumentOf, keepsWorkingDocumentOf, withFrozenDocument, withWorkingDocument, type FrozenDocument } from './storage/working-document.js';
import { inspectJson, knownSize } from './document/inspect.js';

/** Deeper than this a loaded document is refused (a cycle shows as endless depth). */
const loadedDepthLimit = 100_000;

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
  /**
   * Shared storage: how often a write refused as stale is retried on fresh
   * data. `undefined`: until the request's deadline (the adapter's
   * `requestTimeout`), or 10 times when it has none.
   */
  maxRetries: number | undefined;
  /** Shared storage: `strong` checks the latest revision before each read; `local` reads the local copy. */
  readConsistency: 'strong' | 'local';
  /** Most operations in one JSON Patch document. */
  maxPatchOperations: number;
  /** Most bytes of JSON one write may insert (added, replaced and copied values). */
  maxWriteGrowth: number;
  /** Largest document, in bytes of compact JSON, that a write may leave (unless it shrinks it). */
  maxDocumentSize: number;
  /** Milliseconds an idempotency key is remembered after its write. */
  idempotencyWindow: number;
  /** Most idempotency keys remembered; the oldest are forgotten first. */
  idempotencyKeys: number;
}

/** Preconditions a caller may attach to a write; evaluated atomically with it. */
export type Precondition = (current: JsonValue | undefined) => void;

export interface WriteOptions {
  /**
   * Called with the current value at the path inside the write's critical
   * section, once the write is planned (one refused as 404 or 409 never gets
   * here); throw to refuse.
   */
  precondition?: Precondition;
  /**
   * An idempotency key: a repeat of this write with the same key (same method,
   * path and value) is not applied again but resolves with the first result
   * (`replayed: true`); the same key with another write rejects with 422.
   * 1 to 255 printable ASCII characters. Remembered for `idempotencyWindow`.
   */
  idempotencyKey?: string;
}

/** Where a write goes and what must hold there, checked inside the write's critical section. */
export interface WriteGuard {
  /** The write's path: checked against `maxDepth` before planning, and where `precondition` looks. */
  path: Path;
  /** Called with the current value at `path` once the write is planned; throw to refuse. */
  precondition?: Precondition | undefined;
}

/** What is remembered of an answer to a write sent with an idempotency key. */
export interface IdempotentOutcome {
  status: number;
  etag?: string | undefined;
  location?: string | undefined;
}

/** An idempotency key given with `write`, and how to remember and replay its answer. */
export interface IdempotentWrite<T> {
  key: string;
  /** Identifies the request; the same key with another fingerprint is refused with 422. */
  fingerprint: string;
  /** What to remember of `respond`'s result. */
  remember(result: T): IdempotentOutcome;
  /** The answer to a repeat, from the record and the current document. */
  replay(record: IdempotencyRecord, root: JsonValue): T;
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
  /** The document revision after the write (for a replay: the revision the first write made). */
  revision: number;
  /**
   * A repeat of a write sent with the same `idempotencyKey`: nothing was
   * written. `value` is then the current value only if it is still the one
   * the first write left (same ETag), else `undefined`.
   */
  replayed?: boolean;
}

interface Pending {
  revision: number;
  undo: () => void;
  /** The document's size before this change, restored when it is rolled back. */
  sizeBefore: number;
  event: ChangeEvent;
  carriedBase: JsonValue | undefined;
  done: boolean;
  error: unknown;
  /** The idempotency record committed with this change, if any. */
  idempotency: IdempotencyRecord | undefined;
  settled: Promise<boolean>;
  resolve: (ok: boolean) => void;
  /** Group commit: the change handed to storage, and the write's answer computed again after a rebase. */
  change?: Change;
  replay?: () => unknown;
  rebasedResult?: unknown;
  /** Group commit: the writes planned right after this change that changed nothing, answered again after it on a rebase. */
  followers?: (() => void)[];
}

const noop = () => {};

/**
 * A write waiting for group commit (see `drainWrites`): planned when its
 * batch is formed, on the document as the writes before it left it.
 */
interface WriteJob {
  plan: (root: JsonValue) => WritePlan;
  respond: (root: JsonValue, plan: WritePlan, revision: number) => unknown;
  guard: WriteGuard | undefined;
  deadline: number | undefined;
  attempt: number;
  resolve: (result: unknown) => void;
  reject: (error: unknown) => void;
}

/** The most writes one group commit sends to storage in one call. */
const maxBatchWrites = 64;

/**
 * How long after another process's change (or a group refused as stale)
 * group answers are made as the group lands: while others write, a group is
 * likely to land after their changes and would be answered twice.
 */
const othersWritingMs = 1000;

/** A group write's answer not made yet: it is made once storage has said at which revision the change landed. */
const unanswered: unique symbol = Symbol('unanswered');


/** What a client is told when storage cannot say whether a write was saved. */
const outcomeUnknownDetail =
  'The storage stopped answering before it confirmed the change, so it may or may not have been saved; read the document (GET) to see which before trying again';

/** An adapter's (or the engine's) word that a failed write may have been saved all the same. */
function isOutcomeUnknown(error: unknown): boolean {
  return typeof error === 'object' && error !== null && (error as { outcome?: unknown }).outcome === 'unknown';
}

function toStorageError(error: unknown, what: string): StorageError {
  if (error instanceof StorageError) return error;
  const reason = error instanceof Error ? error.message : String(error);
  if (isOutcomeUnknown(error)) {
    return new StorageError(`${outcomeUnknownDetail} (${reason})`, { cause: error, publicDetail: outcomeUnknownDetail, outcome: 'unknown' });
  }
  const publicDetail = `The storage could not ${what}, so nothing was changed; try again later`;
  return new StorageError(`${publicDetail} (${reason})`, { cause: error, publicDetail });
}

/** A request ran out of its storage's `requestTimeout` before anything was sent for it. */
function outOfTime(why: string, ms: number): StorageError {
  const publicDetail = `${why}, so nothing was changed; try again later`;
  return new StorageError(`${publicDetail} (the storage's requestTimeout of ${ms} ms ran out)`, { publicDetail });
}

/** `promise`, or `failure()` once `deadline` (a `performance.now()` time) has passed, whichever comes first. */
function beforeDeadline<T>(promise: Promise<T>, deadline: number, failure: () => Error): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(failure()), Math.max(0, deadline - performance.now()));
    promise.then(
      (value) => {
        clearTimeout(timer);
        resolve(value);
      },
      (error: unknown) => {
        clearTimeout(timer);
        reject(error);
      },
    );
  });
}

/**
 * Identifies a request for its idempotency key: SHA-256 (base64url) of what
 * makes it this request (method, path, body, preconditions) as JSON.
 */
export function idempotencyFingerprint(parts: JsonValue): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('base64url');
}

export class DocumentStore extends EventEmitter {
  private readonly options: DocumentStoreOptions;
  private readonly adapter: StorageAdapter;
  private readonly pipelining: boolean;
  private readonly state: DocumentState = { root: {} };
  private revisionNumber = 0;
  /** The working document's size in bytes of compact JSON, kept up to date change by change. */
  private size = 0;
  /** Starting document to send with the first commit, while storage holds nothing. */
  private base: JsonValue | undefined;
  private pending: Pending[] = [];
  private queue: Promise<unknown> = Promise.resolve();
  private loaded = false;
  private loading: Promise<void> | undefined;
  private lastLoadError: { at: number; error: StorageError } | undefined;
  private unwatch: Unwatch | undefined;
  private closing: Promise<void> | undefined;
  /** The adapter's `requestTimeout`: how long one request may wait for storage in all. */
  private readonly requestTimeout: number | undefined;
  /** Tasks queued or running; a task queued when this is 0 starts at once. */
  private queued = 0;
  /**
   * Writes whose outcome storage could not tell since the last check of the
   * latest revision: until one succeeds, every read checks first (even with
   * `readConsistency: 'local'`, then as far as storage answers), so a client
   * told to read before retrying sees the write if it was saved.
   */
  private unknownOutcomes = 0;
  /** Idempotency records by key, oldest first (a Map keeps insertion order). */
  private readonly idempotency = new Map<string, IdempotencyRecord>();
  /** Keys whose change is handed to the adapter and not yet confirmed: a repeat waits for it. */
  private readonly keysInFlight = new Map<string, Pending>();
  private readonly retention: IdempotencyRetention;
  /** The adapter keeps this working document rather than a copy (the memory adapter). */
  private readonly keepsWorkingDocument: boolean;
  private readonly workingDocument = (): JsonValue => this.state.root;
  /** Writes waiting for the next group commit, oldest first. */
  private jobs: WriteJob[] = [];
  private drainQueued = false;
  /** A batch was refused as stale: the next one catches up first. */
  private behindAfterConflict = false;
  /**
   * When a change of another process's was last applied here, or a group
   * refused as stale. A group answered as planned that lands after other
   * processes' changes (rebased) is answered twice; so while others write
   * (`othersWritingMs`), a group's answers are made only once it has landed
   * (an undo and a replay of its changes, much cheaper than serializing
   * answers). Such a write's answer can no longer fail before its change is
   * saved: if making it throws, the client is told the revision the change
   * was saved as.
   */
  private othersWroteAt = Number.NEGATIVE_INFINITY;
  /** Bumped each time `rebaseBatch` undoes and replays changes in place: a read whose view ran before looks again. */
  private replays = 0;
  /** Other processes' changes heard from the feed, applied by one queued task. */
  private inbox: Change[] = [];
  /** The adapter writes the document out itself, slice by slice (file compaction): it asks for it frozen. */
  private readonly foldsWorkingDocument: boolean;
  private readonly frozenDocument = (): FrozenDocument => {
    this.freeze();
    return { root: this.state.root, revision: this.revisionNumber };
  };

  constructor(options: DocumentStoreOptions) {
    super();
    this.options = options;
    this.adapter = options.storage;
    const { requestTimeout } = this.adapter;
    // Node's timers take at most 2^31 - 1 ms.
    if (requestTimeout !== undefined && (typeof requestTimeout !== 'number' || !(requestTimeout >= 0 && requestTimeout <= 2_147_483_647))) {
      throw new TypeError(`the storage adapter's requestTimeout must be a number of milliseconds from 0 to 2147483647, got ${String(requestTimeout)}`);
    }
    this.requestTimeout = requestTimeout === undefined || requestTimeout === 0 ? undefined : requestTimeout;
    const capabilities = this.adapter.capabilities ?? {};
    // A shared adapter retries on conflicts, which needs one commit at a time.
    this.pipelining = capabilities.pipelining === true && capabilities.shared !== true;
    this.retention = { window: options.idempotencyWindow, count: options.idempotencyKeys };
    this.keepsWorkingDocument = keepsWorkingDocumentOf(this.adapter);
    this.foldsWorkingDocument = foldsWorkingDocumentOf(this.adapter);
    this.ensureLoaded().catch(noop);
  }

  /** The revision of the working document (changes committed or in flight). */
  get revision(): number {
    return this.revisionNumber;
  }

  /**
   * Whether several changes may be in flight to storage at once (pipelining,
   * or group commit): then, when a `change` event goes out, the working
   * document may already hold later changes. Without it, the working document is at the event's revision
   * while its listeners run.
   */
  get pipelinesWrites(): boolean {
    // A group commit applies several writes before storage takes them: when
    // their `change` events go out, the document holds the whole group.
    return this.pipelining || this.groupCommits();
  }

  /**
   * The working document itself, changes in flight included, for a caller
   * that knows none are (a `change` listener of a store that does not
   * pipeline, or `revision` equal to the last event's). Must not be mutated,
   * nor kept past the current task: later writes change it in place.
   */
  peekWorkingDocument(): JsonValue {
    return this.state.root;
  }

  /** The working document's size in bytes of compact JSON (what `GET /` sends), changes in flight included. */
  get documentSize(): number {
    return this.size;
  }

  /** Resolves once the document is loaded from storage; rejects with a `StorageError` if it cannot be. */
  ready(): Promise<void> {
    return this.ensureLoaded();
  }

  // ---- reads -------------------------------------------------------------

  /**
   * `view`'s result on the document now, when a read has nothing to wait
   * for (loaded, no change in flight, no revision to check with shared
   * storage); `undefined` when it must go through `read`. Spares the hot
   * path a promise per request. `view` must not mutate the document.
   */
  readNow<T>(view: (root: JsonValue) => T): { result: T } | undefined {
    if (!this.loaded || this.closing !== undefined || this.pending.length > 0) return undefined;
    if (this.adapter.currentRevision && (this.options.readConsistency === 'strong' || this.unknownOutcomes > 0)) return undefined;
    return { result: view(this.state.root) };
  }

  /**
   * Runs `view` on the document and returns what it returned, once every
   * change it saw is durable. `view` must not mutate the document.
   */
  async read<T>(view: (root: JsonValue) => T): Promise<T> {
    const deadline = this.deadline();
    await this.whenLoaded(deadline);
    this.assertOpen();
    if (this.adapter.currentRevision) {
      if (this.options.readConsistency === 'strong') await this.syncToLatest(deadline);
      // Local reads are answered from memory while storage is away, even then.
      else if (this.unknownOutcomes > 0) await this.syncToLatest(deadline).catch(noop);
    }
    for (;;) {
      const result = view(this.state.root);
      const last = this.pending[this.pending.length - 1];
      if (last === undefined) return result;
      // Rebased after other processes' changes (they come before it), or replayed
      // to answer as it landed (undone in place meanwhile): view again.
      const revisionSeen = last.revision;
      const replaysSeen = this.replays;
      if ((await last.settled) && last.revision === revisionSeen && this.replays === replaysSeen) return result;
    }
  }

  /**
   * Keeps every value in the document as it is now, for a caller that goes
   * on reading one after its view returns (a large GET serialized in
   * slices): from now on a write copies each container it changes
   * (copy-on-write, see `DocumentState.owned`) instead of changing it in
   * place. Costs nothing now; the next write to each path copies the
   * containers on it once. Call it from a `read` view, so the values are those the read answers with (it views again when storage placed a change elsewhere or it was replayed)
   * (the file adapter's compaction calls it from a commit, and drops what it
   * wrote if a change it holds is refused: undoing that change is in place).
   */
  freeze(): void {
    this.state.owned = new WeakSet();
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
   * resolves with `respond`'s result computed on the new document. With
   * `guard`, the path is checked against `maxDepth` and the precondition run
   * as part of planning.
   *
   * Atomic: whatever throws once the change is applied (a budget, the depth
   * check, `respond`, preparing the change for the adapter, the adapter
   * refusing it) undoes it exactly, and the adapter is handed only changes
   * the store keeps. One exception: while other processes write to shared
   * storage, a group's answers are made only once it has landed
   * (see `othersWroteAt`), so a `respond` that throws then
   * finds its change saved, and the write is rejected with an error that
   * says so and names the revision.
   */
  async write<T>(
    plan: (root: JsonValue) => WritePlan,
    respond: (root: JsonValue, plan: WritePlan, revision: number) => T,
    idempotent?: IdempotentWrite<T>,
    guard?: WriteGuard,
  ): Promise<T> {
    const planner = guard === undefined ? plan : this.guarded(guard, plan);
    if (idempotent !== undefined && !idempotencyKeyPattern.test(idempotent.key)) {
      throw new JsonStoreError('bad-request', 'An idempotency key must be 1 to 255 printable ASCII characters');
    }
    this.assertOpen();
    const deadline = this.deadline();
    if (idempotent === undefined && this.groupCommits()) {
      return new Promise<T>((resolve, reject) => {
        this.jobs.push({ plan: planner, respond, guard, deadline, attempt: 0, resolve: resolve as (result: unknown) => void, reject });
        this.queueDrain();
      });
    }
    // Queued at once (no await before), so a close() called after this write
    // started waits for it instead of refusing it.
    const outcome = await this.enqueue(async () => {
      await this.whenLoaded(deadline);
      for (let attempt = 0; ; attempt++) {
        // Checked again after each catch-up: another process may have made this write meanwhile.
        if (idempotent !== undefined) {
          const repeat = await this.recall(idempotent);
          if (repeat !== undefined) return { result: repeat.result, entry: undefined };
        }
        // A precondition or planner that throws has changed nothing.
        const planned = planner(this.state.root);
        if (planned.ops.length === 0) {
          return { result: respond(this.state.root, planned, this.revisionNumber), entry: this.pending[this.pending.length - 1] };
        }
        const meter = new SizeMeter(this.options.maxWriteGrowth, planned.describe !== undefined);
        // An operation that fails, a value nested past maxDepth, or a copy over
        // the growth budget undoes the ones before it.
        const applied = applyOperations(this.state, planned.ops, planned.describe, new DepthGuard(this.options.maxDepth, meter));
        let result: T;
        let entry: Pending | undefined;
        try {
          if (applied.ops.length === 0) {
            // Only `test` operations (or a move onto itself): nothing to commit.
            return { result: respond(this.state.root, planned, this.revisionNumber), entry: this.pending[this.pending.length - 1] };
          }
          const sizeBefore = this.size;
          const sizeAfter = meter.sizeAfter(sizeBefore) ?? jsonSize(this.state.root);
          this.checkSize(sizeBefore, sizeAfter);
          result = respond(this.state.root, planned, this.revisionNumber + 1);
          const record = idempotent === undefined ? undefined : this.recordOf(idempotent, result, this.revisionNumber + 1);
          const touches = this.adapter.capabilities?.rebase ? touchesOf(planned.ops, applied.ops, guard) : undefined;
          entry = this.commit(applied.ops, applied.undo, sizeBefore, sizeAfter, deadline, record, touches);
        } catch (error) {
          // Nothing was handed to the adapter: the change is undone as if never made.
          applied.undo();
          throw error;
        }
        if (entry === undefined || this.pipelining) return { result, entry };
        const plannedRevision = entry.revision;
        if (await entry.settled) {
          // Rebased after other processes' changes: answer as of the revision it got.
          if (entry.revision !== plannedRevision) result = this.respondAgain(respond, planned, entry.revision, result);
          return { result, entry: undefined };
        }
        if (entry.error instanceof RevisionConflictError && mayRetryConflict(this.options.maxRetries, attempt, deadline)) {
          await this.catchUp(deadline);
          continue;
        }
        throw this.failure(entry.error);
      }
    }, deadline);
    // Pipelined commits (and no-op writes behind them) settle outside the queue.
    if (outcome.entry !== undefined && !(await outcome.entry.settled)) throw this.failure(outcome.entry.error);
    return outcome.result;
  }

  // ---- group commit (shared storage with commitBatch) ---------------------------

  /**
   * Writes to shared storage that can append several changes in one call
   * (`commitBatch`) are committed in groups: the writes that arrive while a
   * group is with storage wait, then go together in the next call, so each
   * costs a fraction of a round trip. Writes with an idempotency key go
   * alone (the usual path).
   */
  private groupCommits(): boolean {
    const capabilities = this.adapter.capabilities;
    return (
      typeof this.adapter.commitBatch === 'function' &&
      capabilities?.shared === true &&
      capabilities.rebase === true &&
      capabilities.wholeDocument !== true &&
      !this.keepsWorkingDocument &&
      !this.pipelining
    );
  }

  private queueDrain(): void {
    if (this.drainQueued) return;
    this.drainQueued = true;
    this.enqueue(() => this.drainWrites()).catch((error: unknown) => this.report(error));
  }

  /**
   * Plans the waiting writes one after the other on the document (each sees
   * the ones before it; one whose precondition or plan fails is answered
   * alone and the others go on), commits their changes in one call, and
   * answers each as of the revision its change got. A group refused as stale
   * is undone whole and its writes planned again in the next group, after a
   * catch-up. Runs in the queue.
   */
  private async drainWrites(): Promise<void> {
    this.drainQueued = false;
    // Only a group's first change can carry the starting document (planJob clears it), as commitBatch allows.
    const jobs = this.jobs.splice(0, maxBatchWrites);
    if (this.jobs.length > 0) this.queueDrain();
    if (jobs.length === 0) return;
    const deadline = earliest(jobs.map((job) => job.deadline));
    try {
      await this.whenLoaded(deadline);
      if (this.behindAfterConflict) {
        await this.catchUp(deadline);
        // Cleared only once caught up: a failed catch-up is tried again by the next group.
        this.behindAfterConflict = false;
      }
    } catch (error) {
      for (const job of jobs) job.reject(error);
      return;
    }
    const planned: { job: WriteJob; plan: WritePlan; result: unknown; entry: Pending | undefined }[] = [];
    const answerLater = performance.now() - this.othersWroteAt < othersWritingMs;
    for (const job of jobs) {
      if (job.deadline !== undefined && performance.now() >= job.deadline) {
        job.reject(outOfTime('The storage did not finish the requests before this one in time', this.requestTimeout as number));
        continue;
      }
      try {
        planned.push({ job, ...this.planJob(job, answerLater) });
      } catch (error) {
        // Nothing of it is left applied: the writes before and after it are unaffected.
        job.reject(error);
      }
    }
    const entries = planned.flatMap((item) => (item.entry === undefined ? [] : [item.entry]));
    let failure: unknown;
    if (entries.length > 0) {
      // A write that changes nothing is answered again, on a rebase, where it was planned: after the change before it.
      const leading: (() => void)[] = [];
      let previous: Pending | undefined;
      for (const item of planned) {
        if (item.entry !== undefined) previous = item.entry;
        else {
          const reanswer = () => (item.result = this.respondAgain(item.job.respond, item.plan, this.revisionNumber, item.result));
          if (previous === undefined) leading.push(reanswer);
          else (previous.followers ??= []).push(reanswer);
        }
      }
      let rebased = false;
      let committed: RebasedCommit | void | undefined;
      // Only the call is undone on failure: once storage has the changes, they stay.
      try {
        committed = await this.adapter.commitBatch?.(entries.map((entry) => entry.change as Change), callOptions(deadline));
      } catch (error) {
        failure = error;
        // Refused as stale: another process is writing too, so the retry is likely to land behind it.
        if (error instanceof RevisionConflictError) this.othersWroteAt = performance.now();
        this.rollback(entries[0] as Pending, error);
      }
      if (failure === undefined) {
        if (isRebasedCommit(committed)) {
          this.othersWroteAt = performance.now();
          this.rebaseBatch(entries, committed, leading);
          rebased = true;
        } else if (answerLater) {
          // Landed as planned: the same pass with nothing missed, to answer each write at its revision.
          this.rebaseBatch(entries, { revision: (entries[0] as Pending).revision, missed: [] }, leading);
          rebased = true;
        }
        for (const entry of entries) entry.done = true;
        this.advance();
      }
      // Rebased after other processes' changes: answers as of the revisions the changes got.
      if (rebased) {
        // Set only when answering again succeeded (an answer may itself be undefined).
        for (const item of planned) if (item.entry !== undefined && 'rebasedResult' in item.entry) item.result = item.entry.rebasedResult;
      }
    }
    const retried: WriteJob[] = [];
    for (const { job, result, entry } of planned) {
      if (failure === undefined) {
        if (result !== unanswered) job.resolve(result);
        else job.reject(new JsonStoreError('internal-error', `The change was saved as revision ${(entry as Pending).revision}, but its answer could not be made; read the document (GET) to see it`));
      } else if (failure instanceof RevisionConflictError && mayRetryConflict(this.options.maxRetries, job.attempt, job.deadline)) {
        job.attempt += 1;
        retried.push(job);
      } else job.reject(this.failure(failure));
    }
    if (retried.length > 0) {
      this.behindAfterConflict = true;
      // Ahead of the writes that came meanwhile, in their first order.
      this.jobs.unshift(...retried);
      this.queueDrain();
    }
  }

  /**
   * Plans and applies one job of a group; its pending entry, or none when it
   * changes nothing. Throws with nothing applied. With `answerLater` a change's
   * answer is left `unanswered`, for `rebaseBatch` to make as it lands.
   */
  private planJob(job: WriteJob, answerLater = false): { plan: WritePlan; result: unknown; entry: Pending | undefined } {
    const plan = (job.guard === undefined ? job.plan : this.guarded(job.guard, job.plan))(this.state.root);
    if (plan.ops.length === 0) return { plan, result: job.respond(this.state.root, plan, this.revisionNumber), entry: undefined };
    const meter = new SizeMeter(this.options.maxWriteGrowth, plan.describe !== undefined);
    const applied = applyOperations(this.state, plan.ops, plan.describe, new DepthGuard(this.options.maxDepth, meter));
    try {
      if (applied.ops.length === 0) return { plan, result: job.respond(this.state.root, plan, this.revisionNumber), entry: undefined };
      const sizeBefore = this.size;
      const sizeAfter = meter.sizeAfter(sizeBefore) ?? jsonSize(this.state.root);
      this.checkSize(sizeBefore, sizeAfter);
      const result = answerLater ? unanswered : job.respond(this.state.root, plan, this.revisionNumber + 1);
      const revision = this.revisionNumber + 1;
      // After a load of empty storage the first change carries the starting document, and then writes everything.
      const carriedBase = this.base;
      const change: Change =
        carriedBase === undefined
          ? { revision, ops: applied.ops, touches: touchesOf(plan.ops, applied.ops, job.guard) }
          : { revision, ops: [{ op: 'replace', path: '', value: carriedBase }, ...applied.ops], touches: { writes: [''], reads: [] } };
      let resolve: (ok: boolean) => void = noop;
      const settled = new Promise<boolean>((r) => (resolve = r));
      const entry: Pending = {
        revision,
        undo: applied.undo,
        sizeBefore,
        event: { revision, ops: applied.ops, origin: 'local' },
        carriedBase,
        done: false,
        error: undefined,
        idempotency: undefined,
        settled,
        resolve,
        change,
        replay: () => job.respond(this.state.root, plan, entry.revision),
      };
      this.revisionNumber = revision;
      this.base = undefined;
      this.size = sizeAfter;
      this.pending.push(entry);
      return { plan, result, entry };
    } catch (error) {
      applied.undo();
      throw error;
    }
  }

  /**
   * Storage appended the change, or group of changes, after changes this
   * store had not seen, none touching its paths: replays those, then the
   * group in order, answering
   * each write again right after its change (the document is then at its revision).
   */
  private rebaseBatch(entries: Pending[], committed: RebasedCommit, leading: readonly (() => void)[]): void {
    this.replays += 1;
    for (let i = entries.length - 1; i >= 0; i--) (entries[i] as Pending).undo();
    const first = entries[0] as Pending;
    this.size = first.sizeBefore;
    this.revisionNumber = first.revision - 1;
    let replayed = this.applyRemote(committed.missed) && this.revisionNumber === committed.revision - 1;
    // The revisions storage gave them, even when the missed changes could not all be replayed here.
    this.revisionNumber = committed.revision - 1;
    if (replayed) for (const reanswer of leading) reanswer();
    for (const entry of entries) {
      entry.sizeBefore = this.size;
      if (replayed) {
        try {
          const meter = new SizeMeter();
          entry.undo = applyOperations(this.state, entry.event.ops, undefined, meter).undo;
          this.size = meter.sizeAfter(this.size) ?? jsonSize(this.state.root);
        } catch {
          replayed = false;
        }
      }
      this.revisionNumber += 1;
      entry.revision = this.revisionNumber;
      entry.event.revision = this.revisionNumber;
      if (replayed && entry.replay !== undefined) {
        try {
          entry.rebasedResult = entry.replay();
        } catch {
          // The first answer stands (the change is committed either way).
        }
      }
      // Otherwise their first answers stand (never one read from a half-undone document).
      if (replayed) for (const reanswer of entry.followers ?? []) reanswer();
    }
    // Cannot happen when storage checked the paths; if it does, storage has the truth.
    if (!replayed) {
      const revisions = entries.length === 1 ? `Revision ${committed.revision} was` : `Revisions ${committed.revision} to ${this.revisionNumber} were`;
      this.report(new StorageError(`${revisions} committed after changes ${entries.length === 1 ? 'it' : 'they'} could not be replayed with here; reloading the document`));
      this.enqueue(() => this.reload()).catch((error: unknown) => this.report(error));
    }
  }

  // ---- idempotency keys ---------------------------------------------------------

  /**
   * The answer to a repeat of a write made with this key, `undefined` when
   * the key is new, or 422 when it was used for another request. Waits for a
   * change with the key still in flight, then decides again.
   */
  private async recall<T>(idempotent: IdempotentWrite<T>): Promise<{ result: T } | undefined> {
    for (;;) {
      const inFlight = this.keysInFlight.get(idempotent.key);
      if (inFlight !== undefined) {
        await inFlight.settled;
        continue;
      }
      const record = this.idempotency.get(idempotent.key);
      if (record === undefined) return undefined;
      if (record.at < Date.now() - this.retention.window) {
        this.idempotency.delete(record.key);
        return undefined;
      }
      if (record.fingerprint !== idempotent.fingerprint) {
        throw new JsonStoreError(
          'idempotency-key-reused',
          'This Idempotency-Key was already used for a different request (another method, path, body or preconditions); ' +
            'send a new key for a new request, or repeat the first request exactly',
        );
      }
      return { result: idempotent.replay(record, this.state.root) };
    }
  }

  private recordOf<T>(idempotent: IdempotentWrite<T>, result: T, revision: number): IdempotencyRecord {
    const { status, etag, location } = idempotent.remember(result);
    const record: { -readonly [K in keyof IdempotencyRecord]: IdempotencyRecord[K] } = {
      key: idempotent.key,
      fingerprint: idempotent.fingerprint,
      revision,
      at: Date.now(),
      status,
    };
    if (etag !== undefined) record.etag = etag;
    if (location !== undefined) record.location = location;
    return record;
  }

  /** Adds a record as the newest, forgetting expired ones and the oldest beyond `idempotencyKeys`. */
  private rememberKey(record: IdempotencyRecord): void {
    this.idempotency.delete(record.key);
    this.idempotency.set(record.key, record);
    const oldest = Date.now() - this.retention.window;
    for (const [key, kept] of this.idempotency) {
      if (this.idempotency.size <= this.retention.count && kept.at >= oldest) break;
      this.idempotency.delete(key);
    }
  }

  private forgetKey(record: IdempotencyRecord): void {
    if (this.idempotency.get(record.key) === record) this.idempotency.delete(record.key);
  }

  /** A record that came from storage (a load, another process' change), if it is one. */
  private rememberStored(value: unknown): void {
    const record = asIdempotencyRecord(value);
    if (record !== undefined) this.rememberKey(record);
  }

  private failure(error: unknown): JsonStoreError {
    if (error instanceof RevisionConflictError) {
      return new StorageError('Other processes kept changing the document, so this write could not be applied; try again', { cause: error });
    }
    return toStorageError(error, 'save the change');
  }

  /** Store `value` at `path`, creating missing parent objects. */
  put(path: string | readonly string[] | undefined, value: JsonValue, options?: WriteOptions): Promise<WriteResult> {
    return this.writeAt('PUT', toPath(path), this.checkValue(value), options);
  }

  /** Append to the array at `path`, or add under a new unique key to the object there. */
  post(path: string | readonly string[] | undefined, value: JsonValue, options?: WriteOptions): Promise<WriteResult> {
    return this.writeAt('POST', toPath(path), this.checkValue(value), options);
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
    const kind = options?.type === 'json-patch' ? 'PATCH json-patch' : 'PATCH merge';
    if (kind === 'PATCH json-patch') {
      try {
        this.checkPatchLength(body);
      } catch (error) {
        return Promise.reject(error);
      }
    }
    return this.writeAt(kind, segments, body, options);
  }

  /** Remove the member at `path`; on the root, leaves `{}`. */
  delete(path?: string | readonly string[], options?: WriteOptions): Promise<WriteResult> {
    return this.writeAt('DELETE', toPath(path), null, options);
  }

  /** A write through the programmatic API: planned, guarded by `options.precondition`, keyed by `options.idempotencyKey`. */
  private writeAt(
    kind: WriteKind,
    segments: string[],
    body: JsonValue,
    options: WriteOptions | undefined,
    respond: (root: JsonValue, plan: WritePlan, revision: number) => WriteResult = resultOf,
  ): Promise<WriteResult> {
    return this.write(planWrite(kind, segments, body), respond, this.keyed(options, kind, segments, body), { path: segments, precondition: options?.precondition });
  }

  /**
   * Wraps a planner so the precondition runs inside the write's critical
   * section, after the path is checked against `maxDepth`. It runs after
   * planning (which never mutates): a write the planner refuses (404, 409) is
   * refused for that reason, as RFC 9110 section 13.2.1 asks, whatever its
   * preconditions say.
   */
  private guarded({ path, precondition }: WriteGuard, planner: (root: JsonValue) => WritePlan): (root: JsonValue) => WritePlan {
    const { maxDepth } = this.options;
    return (root) => {
      checkWritePath(path, maxDepth);
      const plan = planner(root);
      precondition?.(valueAt(root, path));
      return plan;
    };
  }

  /** The programmatic API's idempotency key, when `options` has one: fingerprinted by method, path and value. */
  private keyed(options: WriteOptions | undefined, method: WriteKind, segments: string[], body: JsonValue): IdempotentWrite<WriteResult> | undefined {
    const key = options?.idempotencyKey;
    if (key === undefined) return undefined;
    if (typeof key !== 'string' || !idempotencyKeyPattern.test(key)) {
      throw new TypeError(`idempotencyKey must be a string of 1 to 255 printable ASCII characters, got ${JSON.stringify(key)}`);
    }
    return {
      key,
      fingerprint: idempotencyFingerprint(['api', method, segments, body]),
      remember: (result) => ({
        status: result.etag === undefined ? 204 : result.created ? 201 : 200,
        etag: result.etag,
        location: result.created ? urlPath(result.path) : undefined,
      }),
      replay(record, root) {
        const path = record.location === undefined ? segments : parseUrlPath(record.location);
        const value = valueAt(root, path);
        // The value only while it is still what the first write left.
        const same = value !== undefined && record.etag !== undefined && etagOf(value) === record.etag;
        return { created: record.status === 201, path, value: same ? cloneJson(value) : undefined, etag: record.etag, revision: record.revision, replayed: true };
      },
    };
  }

  /** Refuses a JSON Patch with more operations than `maxPatchOperations`; called before it is planned. */
  checkPatchLength(patch: JsonValue): void {
    const { maxPatchOperations } = this.options;
    if (Array.isArray(patch) && patch.length > maxPatchOperations) {
      throw budgetExceeded('maxPatchOperations', `This JSON Patch has ${patch.length} operations; the limit is ${maxPatchOperations}`);
    }
  }

  /** Refuses a change that would leave the document over `maxDocumentSize`, unless it does not grow it. */
  private checkSize(before: number, after: number): void {
    const { maxDocumentSize } = this.options;
    if (after > maxDocumentSize && after > before) {
      throw budgetExceeded('maxDocumentSize', `This write would make the document ${after} bytes of JSON; the limit is ${maxDocumentSize} bytes`);
    }
  }

  /** Programmatic values must be plain JSON (their depth is checked where they go in, by the depth guard). */
  private checkValue(value: unknown): JsonValue {
    const reason = invalidJsonReason(value);
    if (reason !== undefined) throw new TypeError(`value is not JSON: ${reason}`);
    // The store must not share objects the caller may go on changing.
    return cloneJson(value as JsonValue);
  }

  /**
   * Hands a change that is already applied to the adapter. Returns undefined
   * when it is durable at once, else the pending entry. Throws only before
   * the adapter is called (the change could not be prepared), with nothing
   * counted: the caller then undoes the change.
   */
  private commit(
    ops: PatchOperation[],
    undo: () => void,
    sizeBefore: number,
    sizeAfter: number,
    deadline: number | undefined,
    idempotency: IdempotencyRecord | undefined,
    touches?: TouchedPaths,
  ): Pending | undefined {
    const revision = this.revisionNumber + 1;
    const carriedBase = this.base;
    const committedOps = carriedBase === undefined ? ops : [{ op: 'replace' as const, path: '', value: carriedBase }, ...ops];
    const change: { -readonly [K in keyof Change]: Change[K] } = { revision, ops: committedOps };
    if (this.keepsWorkingDocument) withWorkingDocument(change, this.workingDocument);
    if (this.foldsWorkingDocument) withFrozenDocument(change, this.frozenDocument);
    if (this.adapter.capabilities?.wholeDocument) change.document = cloneJson(this.state.root);
    if (idempotency !== undefined) {
      change.idempotency = idempotency;
      change.idempotencyRetention = this.retention;
    }
    // The starting document goes with this change: it writes everything.
    if (touches !== undefined) change.touches = carriedBase === undefined ? touches : { writes: [''], reads: [] };
    const event: ChangeEvent = { revision, ops, origin: 'local' };
    // From here on nothing throws: the change is the adapter's to keep or refuse.
    this.revisionNumber = revision;
    this.base = undefined;
    this.size = sizeAfter;
    // Known from now on, so a repeat arriving meanwhile waits for this change instead of writing again.
    if (idempotency !== undefined) this.rememberKey(idempotency);

    let outcome: unknown;
    try {
      outcome = this.adapter.commit(change, callOptions(deadline));
    } catch (error) {
      outcome = Promise.reject(error);
    }
    if (!isThenable(outcome) && this.pending.length === 0 && !isRebasedCommit(outcome)) {
      this.emitChange(event);
      return undefined;
    }
    let resolve: (ok: boolean) => void = noop;
    const settled = new Promise<boolean>((r) => (resolve = r));
    const entry: Pending = { revision, undo, sizeBefore, event, carriedBase, done: false, error: undefined, idempotency, settled, resolve };
    this.pending.push(entry);
    if (idempotency !== undefined) this.keysInFlight.set(idempotency.key, entry);
    Promise.resolve(outcome).then(
      (committed) => {
        if (isRebasedCommit(committed)) this.rebaseBatch([entry], committed, []);
        entry.done = true;
        this.advance();
      },
      (error: unknown) => this.rollback(entry, error),
    );
    return entry;
  }

  /**
   * Storage appended `entry` after changes this store had not seen, which
   * touch none of its paths: replays them and then the entry, in revision
   * order, so this copy is the one every other process rebuilds from the log
   * (same values, same member order). Shared storage never pipelines, so
   * `entry` is the only change in flight.
   */
  /** `respond` again after a rebase; the first answer stands if it throws (the change is committed either way). */
  private respondAgain<T>(respond: (root: JsonValue, plan: WritePlan, revision: number) => T, planned: WritePlan, revision: number, first: T): T {
    try {
      return respond(this.state.root, planned, revision);
    } catch {
      return first;
    }
  }

  /** Publishes the confirmed prefix of the pending changes, in order. */
  private advance(): void {
    while (this.pending.length > 0 && (this.pending[0] as Pending).done) {
      const entry = this.pending.shift() as Pending;
      if (entry.idempotency !== undefined) this.keysInFlight.delete(entry.idempotency.key);
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
      if (undone.idempotency !== undefined) {
        this.keysInFlight.delete(undone.idempotency.key);
        this.forgetKey(undone.idempotency);
      }
      undone.error = i === index ? error : new StorageError('An earlier change it was built on could not be saved, so this one was not saved either', { cause: error });
    }
    const undone = this.pending.splice(index);
    this.revisionNumber = entry.revision - 1;
    this.size = entry.sizeBefore;
    if (entry.carriedBase !== undefined) this.base = entry.carriedBase;
    // The change may be in storage after all: it arrives like another process' change.
    if (isOutcomeUnknown(error)) this.unknownOutcomes += 1;
    if (!(error instanceof RevisionConflictError)) this.report(toStorageError(error, 'save a change'));
    for (const item of undone) item.resolve(false);
  }

  private emitChange(event: ChangeEvent): void {
    // Each listener on its own: one that throws neither undoes a committed
    // change nor keeps the others from hearing of it; it is reported.
    for (const listener of this.rawListeners('change')) {
      try {
        (listener as (event: ChangeEvent) => void).call(this, event);
      } catch (error) {
        this.report(error);
      }
    }
  }

  /** Errors the store cannot hand to a caller: to `error` listeners, else the console. Never throws. */
  private report(error: unknown): void {
    if (this.listenerCount('error') > 0) {
      try {
        this.emit('error', error);
        return;
      } catch (thrown) {
        console.error('express-jsonstore: an error listener threw:', thrown instanceof Error ? thrown.message : thrown);
      }
    }
    console.error('express-jsonstore:', error instanceof Error ? error.message : error);
  }

  // ---- shared storage: following other processes ---------------------------

  /** Catches up with the adapter's latest revision when it is ahead of ours. */
  private async syncToLatest(deadline: number | undefined): Promise<void> {
    const unknownBefore = this.unknownOutcomes;
    let latest: number;
    try {
      latest = await (this.adapter.currentRevision as NonNullable<StorageAdapter['currentRevision']>)(callOptions(deadline));
    } catch (error) {
      throw toStorageError(error, 'tell the latest revision');
    }
    // Behind: catch up. Ahead of storage (it lost data or was reset): the catch-up reloads.
    if (latest !== this.revisionNumber) await this.enqueue(() => this.catchUp(deadline), deadline);
    if (this.unknownOutcomes === unknownBefore) this.unknownOutcomes = 0;
  }

  /** Brings the working document up to the adapter's latest revision. Runs in the queue. */
  private async catchUp(deadline?: number): Promise<void> {
    let changes: readonly Change[] | undefined;
    try {
      changes = this.adapter.changesSince ? await this.adapter.changesSince(this.revisionNumber, callOptions(deadline)) : undefined;
    } catch (error) {
      throw toStorageError(error, 'read the latest changes');
    }
    if (changes !== undefined && this.applyRemote(changes)) return;
    await this.reload(deadline);
  }

  /** Applies changes from other processes; false when they leave a gap or do not apply. */
  private applyRemote(changes: readonly Change[]): boolean {
    for (const change of changes) {
      if (change.revision <= this.revisionNumber) continue;
      if (change.revision !== this.revisionNumber + 1) return false;
      // Committed elsewhere already: measured to keep the size right, never refused.
      const meter = new SizeMeter();
      try {
        applyOperations(this.state, change.ops, undefined, meter);
      } catch {
        return false;
      }
      this.size = meter.sizeAfter(this.size) ?? jsonSize(this.state.root);
      this.revisionNumber = change.revision;
      this.othersWroteAt = performance.now();
      this.base = undefined;
      if (change.idempotency !== undefined) this.rememberStored(change.idempotency);
      this.emitChange({ revision: change.revision, ops: change.ops, origin: 'remote' });
    }
    return true;
  }

  private async reload(deadline?: number): Promise<void> {
    const stored = await this.loadStored(deadline);
    this.install(stored);
    this.emitChange({ revision: this.revisionNumber, ops: [{ op: 'replace', path: '', value: this.state.root }], origin: 'remote' });
  }

  /** One queued task applies every change heard until it runs (not one task per change). */
  private onRemoteChange = (change: Change): void => {
    this.inbox.push(change);
    if (this.inbox.length > 1) return;
    this.enqueue(async () => {
      const changes = this.inbox;
      this.inbox = [];
      if (!this.applyRemote(changes)) await this.catchUp();
    }).catch((error: unknown) => this.report(error));
  };

  private onWatchError = (error: unknown): void => {
    const reason = error instanceof Error ? error.message : String(error);
    this.report(new StorageError(`Following other processes' changes was interrupted; catching up from storage (${reason})`, { cause: error }));
    this.enqueue(() => this.catchUp()).catch((e: unknown) => this.report(e));
  };

  // ---- loading and closing --------------------------------------------------

  private async loadStored(deadline?: number): Promise<StoredDocument | undefined> {
    let stored: StoredDocument | undefined;
    try {
      stored = await this.adapter.load(callOptions(deadline));
    } catch (error) {
      throw toStorageError(error, 'load the document');
    }
    if (stored === undefined || stored === null) return undefined;
    return checkedStored(stored);
  }

  /**
   * Storage is empty: stores `initial` there as revision 0 when the adapter
   * can (`seed`), so the first write sends only its change. `seeded` tells
   * `install` that storage holds `initial` (no starting document to carry);
   * `stored` is what another process stored first.
   */
  private async seedStorage(): Promise<{ stored: StoredDocument | undefined; seeded: boolean }> {
    const { seed } = this.adapter;
    if (seed === undefined || this.keepsWorkingDocument) return { stored: undefined, seeded: false };
    let stored: StoredDocument | undefined | null;
    try {
      stored = await seed.call(this.adapter, this.options.initial);
    } catch (error) {
      throw toStorageError(error, 'store the starting document');
    }
    if (stored === undefined || stored === null) return { stored: undefined, seeded: true };
    return { stored: checkedStored(stored), seeded: false };
  }

  private install(stored: StoredDocument | undefined, seeded = false): void {
    if (stored === undefined) {
      // Not copied: `initial` is shared copy-on-write (see DocumentState.owned), so
      // the store never changes it and it can stand as the base as it is.
      this.state.root = this.options.initial;
      this.state.owned = new WeakSet();
      this.revisionNumber = 0;
      // An adapter that keeps the working document, or that storage seeded, needs no starting document.
      this.base = this.keepsWorkingDocument || seeded ? undefined : this.options.initial;
    } else {
      this.state.root = stored.document;
      this.state.owned = undefined;
      this.revisionNumber = stored.revision;
      this.base = undefined;
    }
    // One walk per load (none for an `initial` measured by the option checks); from then on each change adds and subtracts what it touched.
    this.size = knownSize(this.state.root) ?? jsonSize(this.state.root);
    // Storage that keeps the records is the truth about them; otherwise this process' memory is all there is.
    if (this.adapter.capabilities?.idempotency) {
      this.idempotency.clear();
      const kept = Array.isArray(stored?.idempotency) ? stored.idempotency : [];
      const records = kept.map(asIdempotencyRecord).filter((record): record is IdempotencyRecord => record !== undefined);
      for (const record of retainedRecords(records, this.retention, Date.now())) this.rememberKey(record);
    }
  }

  private ensureLoaded(): Promise<void> {
    if (this.loaded) return Promise.resolve();
    if (this.loading) return this.loading;
    // After a failure, try again at most once a second rather than per request.
    if (this.lastLoadError && Date.now() - this.lastLoadError.at < 1000) return Promise.reject(this.lastLoadError.error);
    this.loading = (async () => {
      try {
        const stored = await this.loadStored();
        if (stored !== undefined) this.install(stored);
        else {
          const seeding = await this.seedStorage();
          this.install(seeding.stored, seeding.seeded);
        }
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

  /** When a request that starts now must have its answer, or `undefined` without a `requestTimeout`. */
  private deadline(): number | undefined {
    return this.requestTimeout === undefined ? undefined : performance.now() + this.requestTimeout;
  }

  /** The document loaded, waiting for a load in progress no later than `deadline`. */
  private whenLoaded(deadline: number | undefined): Promise<void> {
    const loading = this.ensureLoaded();
    if (this.loaded || deadline === undefined) return loading;
    return beforeDeadline(loading, deadline, () => outOfTime('The storage did not load the document in time', this.requestTimeout as number));
  }

  /**
   * Runs `task` after the tasks queued before it. With a `deadline`, a task
   * still waiting for its turn then is dropped and the caller told nothing
   * was changed; once started, a task runs to its end.
   */
  private enqueue<T>(task: () => Promise<T> | T, deadline?: number): Promise<T> {
    const waits = deadline !== undefined && this.queued > 0;
    let state: 'waiting' | 'started' | 'dropped' = 'waiting';
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = this.queue.then(() => {
      if (state === 'dropped') return undefined as T;
      state = 'started';
      if (timer !== undefined) clearTimeout(timer);
      return task();
    });
    this.queued += 1;
    const finished = () => {
      this.queued -= 1;
    };
    this.queue = run.then(finished, finished);
    if (!waits) return run;
    return new Promise<T>((resolve, reject) => {
      timer = setTimeout(() => {
        if (state !== 'waiting') return;
        state = 'dropped';
        reject(outOfTime('The storage did not finish the requests before this one in time', this.requestTimeout as number));
      }, Math.max(0, deadline - performance.now()));
      run.then(resolve, reject);
    });
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
      // A group commit may queue another for writes it retries.
      do await this.queue;
      while (this.queued > 0);
      const last = this.pending[this.pending.length - 1];
      if (last) await last.settled;
      if (this.loading) await this.loading.catch(noop);
      await this.unwatch?.();
      await this.adapter.close?.();
    })();
    return this.closing;
  }
}

/** The earliest of some deadlines (`undefined`: none). */
function earliest(deadlines: readonly (number | undefined)[]): number | undefined {
  let first: number | undefined;
  for (const deadline of deadlines) if (deadline !== undefined && (first === undefined || deadline < first)) first = deadline;
  return first;
}

/** A document storage returned, checked and measured in one walk (install takes the size from it). */
function checkedStored(stored: StoredDocument): StoredDocument {
  const inspected = inspectJson(stored.document, loadedDepthLimit);
  const reason = inspected.reason ?? (inspected.tooDeep ? `it nests deeper than ${loadedDepthLimit} levels` : undefined);
  if (reason !== undefined || !Number.isSafeInteger(stored.revision) || stored.revision < 0) {
    throw new StorageError(`The storage returned an invalid document: ${reason ?? `revision ${String(stored.revision)} is not a non-negative integer`}`);
  }
  return stored;
}

/** The options for an adapter call made for a request: none without a deadline. */
function callOptions(deadline: number | undefined): StorageCallOptions | undefined {
  return deadline === undefined ? undefined : { deadline };
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

