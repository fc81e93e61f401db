/**
 * `redisStorage()`: one document shared by every process that opens the same
 * key on one Redis. Redis keeps a snapshot of the document plus a stream of
 * the RFC 6902 changes made since, so a write sends only its change; a Lua
 * script appends a change only at the next revision, which is how two
 * processes can never both write revision N. Each process keeps its own copy
 * in memory (the engine's) and follows the stream with a blocking XREAD on a
 * connection of its own; the engine retries stale writes and checks the
 * revision before strong reads. From time to time one process folds the log
 * into a new snapshot (compaction), so loading stays proportional to the
 * document, not to its history.
 *
 * This file holds the adapter, its options and its key names. How it talks
 * to Redis (client shapes, timeouts, reply decoding) is in `redis-client.ts`,
 * following the log in `redis-follower.ts`, the Lua scripts in
 * `redis-scripts.ts`. The `redis` package is an optional peer: these modules
 * only describe the client they are given, they never import it.
 */
import { randomBytes } from 'node:crypto';
import { applyOperations, type DocumentState } from '../document/apply.js';
import type { JsonValue } from '../document/json.js';
import { RevisionConflictError } from '../errors.js';
import { optionChecks, shown } from '../option-checks.js';
import { changesScript, commitBatchScript, commitScript, compactScript, loadScript, seedScript, unlockScript, type LuaScript } from './redis-scripts.js';
import { encodeIdempotencyRecord } from './idempotency.js';
import {
  asArray,
  asInteger,
  asRevision,
  asText,
  connecting,
  decodeEntries,
  decodeRecords,
  describe,
  mayHaveRun,
  noop,
  readRevision,
  runScript,
  senderFor,
  unexpected,
  untilConnected,
  type RedisClientLike,
  type RedisClusterLike,
  type SendCommand,
} from './redis-client.js';
import { LogFollower } from './redis-follower.js';
import type {
  Change,
  IdempotencyRecord,
  OutcomeUnknown,
  StorageAdapter,
  StorageCallOptions,
  RebasedCommit,
  StorageCapabilities,
  StoredDocument,
  Unwatch,
} from './types.js';
import { encodePaths } from '../document/touched-paths.js';

export type { RedisClientLike, RedisClusterLike, RedisCommandOptions } from './redis-client.js';

/** When the change log is folded into a new snapshot. */
export interface RedisCompactionOptions {
  /**
   * Compact once the changes since the snapshot add up to at least this many
   * bytes and to at least `ratio` times the snapshot's size. Default 1 MiB.
   */
  minBytes?: number;
  /** See `minBytes`. Default 1: rewriting the snapshot then costs about as much as the writes it folds in. */
  ratio?: number;
  /** Also compact once this many changes follow the snapshot, whatever their size. Default 100 000. */
  maxChanges?: number;
}

export interface RedisStorageOptions {
  /**
   * A node-redis client (`createClient()`, or `createCluster()`) that the app
   * creates, connects, listens to (`client.on('error', ...)`) and closes. The
   * adapter opens one more connection per store with `client.duplicate()` to
   * follow other processes, and closes it on `close()`.
   */
  client: RedisClientLike | RedisClusterLike;
  /**
   * Names the document. The Redis keys are `{key}:meta`, `{key}:log`,
   * `{key}:snapshot` and `{key}:compaction` (after `prefix`): one hash tag,
   * so one Cluster slot. No `{` or `}`. Default `'jsonstore'`.
   */
  key?: string;
  /**
   * Put before every key name, such as `'app:'` for keys `app:{key}:meta`
   * ..., so an ACL key pattern (`~app:*`) can cover them. No `{` or `}`.
   * Default `''`.
   */
  prefix?: string;
  /**
   * Milliseconds a request may wait for Redis, in all, however many commands
   * it needs (a revision check, a catch-up, a write and its retries), so
   * requests get 503 instead of waiting while Redis is away. Also the limit
   * for each background command. 0 waits as long as the client does.
   * Default 2000.
   */
  commandTimeout?: number;
  /**
   * Milliseconds for the commands that move a whole document: loading it
   * (after a quick check within `commandTimeout` that Redis answers) and
   * compaction. 0 waits as long as the client does. Default 30 000.
   */
  bulkTimeout?: number;
  /**
   * Follow other processes' changes as they are made (one extra connection
   * per store). With `false`, a store sees them only when it checks before a
   * strong read or when a write of its own is refused as stale, and emits
   * `change` events for them only then. Default `true`.
   */
  follow?: boolean;
  /**
   * Milliseconds a process whose change was refused keeps the turn (see
   * docs/redis.md, "How a write works"): its retry is served before other
   * processes' changes unless it takes longer than this. Longer is fairer on
   * slow machines and networks; it is also how long a process that dies (or
   * does not retry) holds up the others' writes. 0 turns the turn off.
   * Default 50.
   */
  turnTimeout?: number;
  /** When to fold the log into a new snapshot; `false` never does (use `compact()`). */
  compaction?: false | RedisCompactionOptions;
  /**
   * Failures that no request sees (a background compaction). Default: one
   * line on the console.
   */
  onError?: (error: unknown) => void;
}

/** The Redis keys holding one document. */
export interface RedisStorageKeys {
  /** Hash: `rev`, `snapshotRev`, `logBytes`, `layout`. */
  readonly meta: string;
  /** Stream: one entry per change, ID `<revision>-0`, field `ops` (RFC 6902, JSON). */
  readonly log: string;
  /** String: the document at `snapshotRev`, as JSON. */
  readonly snapshot: string;
  /** String: held, with an expiry, by the process compacting. */
  readonly compaction: string;
  /** Hash: idempotency key -> the record of the write made with it (JSON); survives compactions. */
  readonly idempotency: string;
  /** Sorted set: idempotency keys by the time of their write, to forget the old ones. */
  readonly idempotencyTimes: string;
  /** String: held briefly, with an expiry, by the process whose refused change is served next. */
  readonly turn: string;
  /** List: the processes waiting for the turn, first in line first (with an expiry). */
  readonly turnQueue: string;
}

export interface RedisStorage extends StorageAdapter {
  readonly name: 'redis';
  readonly capabilities: StorageCapabilities;
  /** `commandTimeout` (absent when that is 0): each request waits for Redis this long in all. */
  readonly requestTimeout?: number;
  /** The Redis keys this document lives in (to inspect, back up or delete it). */
  readonly keys: RedisStorageKeys;
  load(options?: StorageCallOptions): Promise<StoredDocument | undefined>;
  /** Stores `document` at revision 0 if the key is empty; else resolves with what it holds (see `StorageAdapter.seed`). */
  seed(document: JsonValue, options?: StorageCallOptions): Promise<StoredDocument | undefined>;
  /** Rejects with `outcome: 'unknown'` when the change may have been saved although no answer came. */
  /** Resolves with a `RebasedCommit` when the change was appended after others that touch none of its paths. */
  commit(change: Change, options?: StorageCallOptions): Promise<RebasedCommit | undefined>;
  /** Several consecutive changes in one script call, all or none (group commit; see `StorageAdapter.commitBatch`). */
  commitBatch(changes: readonly Change[], options?: StorageCallOptions): Promise<RebasedCommit | undefined>;
  changesSince(revision: number, options?: StorageCallOptions): Promise<readonly Change[] | undefined>;
  currentRevision(options?: StorageCallOptions): Promise<number>;
  /**
   * Folds the log into a new snapshot now. Resolves `true` when this call
   * wrote one, `false` when there was nothing to fold or another process was
   * compacting.
   */
  compact(): Promise<boolean>;
  close(): Promise<void>;
}

interface ResolvedRedisOptions {
  client: RedisClientLike | RedisClusterLike;
  key: string;
  prefix: string;
  commandTimeout: number;
  bulkTimeout: number;
  turnTimeout: number;
  follow: boolean;
  compaction: Required<RedisCompactionOptions> | false;
  onError: (error: unknown) => void;
}

/** A document rebuilt from Redis, with what compaction needs to know. */
interface RebuiltDocument {
  document: JsonValue;
  revision: number;
  snapshotRevision: number;
  /** Bytes of the changes after the snapshot, as counted in `meta`. */
  logBytes: number;
  /** The idempotency records kept in the hash. */
  idempotency: IdempotencyRecord[];
}

/**
 * The most changes `changesSince` returns; further behind, the engine loads
 * the snapshot instead. Keeps catch-ups within `commandTimeout`: they run
 * while the engine holds its write queue.
 */
const catchUpLimit = 1000;
/**
 * How long a process whose change was refused keeps the turn: its retry
 * normally comes within a round trip; a process that dies, or decides not to
 * retry, holds up the others' writes at most this long.
 */
const defaultTurnMs = 50;
/** How often a write waiting for another process' turn asks again. */
const turnPollMs = 2;
/** The compaction lock expires, so a process that died compacting does not block the next one for long. */
const compactionLockMs = 60_000;
/** After a failed compaction, this process waits this long before claiming another. */
const compactionRetryMs = 30_000;

const checks = optionChecks('redisStorage()');

function fail(message: string): never {
  return checks.fail(message);
}

/** Node's timers take at most 2^31 - 1 ms; a longer one fires at once. */
const timeoutRange = { min: 0, max: 2_147_483_647, unit: 'milliseconds' };

function resolveOptions(options: RedisStorageOptions): ResolvedRedisOptions {
  checks.object(options, ' with a "client"');
  const { client } = options;
  if (
    typeof client !== 'object' ||
    client === null ||
    typeof client.sendCommand !== 'function' ||
    typeof client.duplicate !== 'function'
  ) {
    fail('option "client" must be a node-redis client (createClient() from the "redis" package, v5 or later)');
  }
  const key = options.key ?? 'jsonstore';
  // An empty key would make the hash tag `{}`, which Redis Cluster ignores.
  if (typeof key !== 'string' || key === '') fail(`option "key" must be a non-empty string, got ${shown(options.key)}`);
  // A brace would move or end the hash tag: `}x` gives `{}x}:meta`, whose
  // keys hash apart, and every script then fails with CROSSSLOT on Cluster.
  if (/[{}]/.test(key)) fail(`option "key" must not contain { or }, got ${JSON.stringify(key)}: the key names put it in braces as their Cluster hash tag`);
  const prefix = options.prefix ?? '';
  if (typeof prefix !== 'string') fail(`option "prefix" must be a string, got ${shown(options.prefix)}`);
  if (/[{}]/.test(prefix)) fail(`option "prefix" must not contain { or }, got ${JSON.stringify(prefix)}: Redis Cluster would take its hash tag from the prefix`);
  // Here null has always meant the default, like undefined.
  const commandTimeout = checks.wholeNumber('commandTimeout', options.commandTimeout ?? undefined, 2000, timeoutRange);
  const bulkTimeout = checks.wholeNumber('bulkTimeout', options.bulkTimeout ?? undefined, 30_000, timeoutRange);
  const turnTimeout = checks.wholeNumber('turnTimeout', options.turnTimeout ?? undefined, defaultTurnMs, timeoutRange);
  const follow = checks.boolean('follow', options.follow, true);
  const onError =
    options.onError === undefined
      ? (error: unknown) => console.error('express-jsonstore (redis):', error instanceof Error ? error.message : error)
      : checks.func<(error: unknown) => void>('onError', options.onError);

  let compaction: Required<RedisCompactionOptions> | false = false;
  if (options.compaction !== false) {
    const given = options.compaction ?? {};
    if (typeof given !== 'object' || given === null) fail(`option "compaction" must be false or an object, got ${shown(given)}`);
    const minBytes = checks.wholeNumber('compaction.minBytes', given.minBytes ?? undefined, 1024 * 1024, { min: 0, unit: 'bytes' });
    const ratio = given.ratio ?? 1;
    if (typeof ratio !== 'number' || !Number.isFinite(ratio) || ratio < 0) fail(`option "compaction.ratio" must be a number, 0 or more, got ${shown(given.ratio)}`);
    const maxChanges = checks.wholeNumber('compaction.maxChanges', given.maxChanges ?? undefined, 100_000);
    compaction = { minBytes, ratio, maxChanges };
  }

  return {
    client,
    key,
    prefix,
    commandTimeout,
    bulkTimeout,
    turnTimeout,
    follow,
    compaction,
    onError,
  };
}

/**
 * The commit script's last arguments: what the change touches (for a
 * rebase), what it writes (kept with it for later rebases), and whether a
 * refusal takes the turn. A change without `touches` writes everything. One
 * with an idempotency key never rebases (another process may have made the
 * same write meanwhile, under another path), and neither takes the turn
 * when it reads (a `test`, a precondition): refused, such a change usually
 * fails its check on the fresh document and is not retried, which would
 * leave the turn unused until it expires.
 */
function turnArgs(change: Change, token: string, ms: number): string[] {
  const touches = change.touches;
  const writes = encodePaths(touches === undefined ? [''] : touches.writes);
  const rebase = touches === undefined || change.idempotency !== undefined ? '' : encodePaths([...touches.writes, ...touches.reads]);
  const claim = ms > 0 && touches !== undefined && touches.reads.length === 0 && change.idempotency === undefined;
  return [rebase, writes, token, claim ? '1' : '0', String(ms)];
}

/** The keys for a document name: the prefix, then the hash tag `{name}`, shared by all four. */
function redisKeys(prefix: string, key: string): RedisStorageKeys {
  const start = `${prefix}{${key}}`;
  return {
    meta: `${start}:meta`,
    log: `${start}:log`,
    snapshot: `${start}:snapshot`,
    compaction: `${start}:compaction`,
    idempotency: `${start}:idempotency`,
    idempotencyTimes: `${start}:idempotency-times`,
    turn: `${start}:turn`,
    turnQueue: `${start}:turn-queue`,
  };
}

/**
 * Stores one JSON document in Redis, shared by every process that uses the
 * same `key`. Needs Redis 6.2 or later.
 */
export function redisStorage(options: RedisStorageOptions): RedisStorage {
  return new RedisDocumentStorage(resolveOptions(options));
}
/**
 * A commit that failed after it may have reached Redis: the change may be in
 * the log all the same. The engine tells the client so, and picks the change
 * up from the log if it is there.
 */
class CommitOutcomeUnknownError extends Error implements OutcomeUnknown {
  readonly outcome = 'unknown' as const;

  constructor(key: string, revision: number, cause: unknown) {
    super(`revision ${revision} of "${key}" may or may not have been saved (${describe(cause)})`, { cause });
    this.name = 'CommitOutcomeUnknownError';
  }
}

// ---- the adapter ------------------------------------------------------------------

class RedisDocumentStorage implements RedisStorage {
  readonly name = 'redis' as const;
  readonly capabilities: StorageCapabilities = { shared: true, persistent: true, idempotency: true, rebase: true };
  readonly keys: RedisStorageKeys;
  readonly requestTimeout?: number;
  /** Absent with `follow: false`, so the engine does not wait for a feed. */
  readonly watch?: (onChange: (change: Change) => void, onError: (error: unknown) => void) => Unwatch;

  private readonly options: ResolvedRedisOptions;
  private readonly send: SendCommand;
  /** Marks this process' hold on the compaction lock. */
  private readonly lockToken = randomBytes(12).toString('base64url');
  /** The revision of the last document loaded: following starts there, so nothing after it is missed. */
  private loadedRevision = 0;
  private readonly followers = new Set<LogFollower>();
  private compaction: Promise<boolean> | undefined;
  private compactionPausedUntil = 0;
  /**
   * The changes a refused commit came back with. The engine's next step is
   * `changesSince` from the same revision, which they answer without a round
   * trip; any other call discards them, so no later read gets them stale.
   */
  private missed: { after: number; changes: Change[] } | undefined;
  /** This process's commit calls with Redis, and what settles once there are none (see `LogFollower`). */
  private commitsInFlight = 0;
  private commitsDone: { promise: Promise<void>; resolve: () => void } | undefined;
  private closed = false;

  constructor(options: ResolvedRedisOptions) {
    this.options = options;
    this.keys = redisKeys(options.prefix, options.key);
    this.send = senderFor(options.client, this.keys.meta);
    if (options.commandTimeout > 0) this.requestTimeout = options.commandTimeout;
    if (options.follow) this.watch = (onChange, onError) => this.follow(onChange, onError);
  }

  async load(options?: StorageCallOptions): Promise<StoredDocument | undefined> {
    this.missed = undefined;
    // A small command first, so that when Redis is away this fails within
    // commandTimeout (or the request's time) rather than bulkTimeout; waiting
    // for a connection being opened shares that time with it.
    const { client, commandTimeout } = this.options;
    let deadline = options?.deadline;
    if (connecting(client)) {
      let limit = "the request's time";
      if (commandTimeout > 0 && performance.now() + commandTimeout <= (deadline ?? Number.POSITIVE_INFINITY)) {
        deadline = performance.now() + commandTimeout;
        limit = `${commandTimeout} ms`;
      }
      const connected = await untilConnected(client, deadline === undefined ? undefined : deadline - performance.now());
      // (A timer may fire a moment before the clock reaches the deadline.)
      if (!connected) {
        throw new Error(`Redis did not answer within ${limit}: the client is offline, still connecting`);
      }
    }
    // No `rev` at all: nothing stored (a seeded key holds revision 0).
    const revision = await this.send(['HGET', this.keys.meta, 'rev'], this.options.commandTimeout, deadline);
    if (revision === null || revision === undefined) return undefined;
    // Moving the whole document has bulkTimeout, whatever is left of the request's time.
    const rebuilt = await this.rebuild();
    if (rebuilt === undefined) return undefined;
    this.loadedRevision = rebuilt.revision;
    const stored: StoredDocument = { document: rebuilt.document, revision: rebuilt.revision };
    if (rebuilt.idempotency.length > 0) stored.idempotency = rebuilt.idempotency;
    return stored;
  }

  /**
   * Stores the starting document as the snapshot at revision 0 unless the
   * key holds something already (SET-if-absent, in one script): then loads
   * that instead. The document moves once, at start-up, within bulkTimeout,
   * rather than with the first write.
   */
  async seed(document: JsonValue, options?: StorageCallOptions): Promise<StoredDocument | undefined> {
    this.missed = undefined;
    const json = JSON.stringify(document);
    const reply = await runScript(this.send, seedScript, [this.keys.meta, this.keys.snapshot], [json], this.options.bulkTimeout);
    if (asInteger(reply, 'the seed script') === 1) {
      this.loadedRevision = 0;
      return undefined;
    }
    const stored = await this.load(options);
    if (stored === undefined) throw new Error(`"${this.options.key}" was stored by another process and deleted again while this one started`);
    return stored;
  }

  async commit(change: Change, options?: StorageCallOptions): Promise<RebasedCommit | undefined> {
    // Serialized before the first await: the engine owns the values afterwards.
    const ops = JSON.stringify(change.ops);
    const record = change.idempotency;
    const retention = change.idempotencyRetention;
    const idempotencyArgs =
      record === undefined
        ? ['', '', '0', '0', '0']
        : [
            encodeIdempotencyRecord(record),
            record.key,
            String(record.at),
            String(retention === undefined ? 0 : record.at - retention.window),
            String(retention === undefined ? Number.MAX_SAFE_INTEGER : retention.count),
          ];
    this.missed = undefined;
    const compactionArgs = this.compactionArgs();
    const args = [
      String(change.revision),
      ops,
      ...compactionArgs,
      this.lockToken,
      String(compactionLockMs),
      String(catchUpLimit),
      ...idempotencyArgs,
      ...turnArgs(change, this.lockToken, this.options.turnTimeout),
    ];
    const { meta, log, snapshot, compaction: lock, idempotency, idempotencyTimes, turn, turnQueue } = this.keys;
    const keys = [meta, log, snapshot, lock, idempotency, idempotencyTimes, turn, turnQueue];
    return this.runCommit(commitScript, 'the commit script', keys, args, change.revision, 1, options?.deadline);
  }

  /** The commit scripts' compaction arguments: none while closing or after a failed compaction (paused). */
  private compactionArgs(): string[] {
    const { compaction } = this.options;
    return compaction === false || this.closed || Date.now() < this.compactionPausedUntil
      ? ['', '0', '0']
      : [String(compaction.minBytes), String(compaction.ratio), String(compaction.maxChanges)];
  }

  /**
   * Runs a commit script until it is this process's turn: status 3 means
   * another process has the turn (its change was refused and is being done
   * again), nothing was written, so it asks again shortly, or when the turn
   * expires.
   */
  private async runInTurn(
    script: LuaScript,
    what: string,
    keys: string[],
    args: string[],
    revision: number,
    deadline: number | undefined,
  ): Promise<{ status: number; reply: unknown[] }> {
    for (;;) {
      let reply: unknown[];
      let status: number;
      try {
        reply = asArray(await runScript(this.send, script, keys, args, this.options.commandTimeout, deadline), what);
        status = asInteger(reply[0], what);
        if (status < 0 || status > 3) throw unexpected(what, reply);
      } catch (error) {
        // Sent and unanswered, or answered with something we cannot read: the
        // script may have appended the change(s). Later commits stay safe (the
        // script takes only the next revision); the engine learns which it
        // was from the log.
        if (mayHaveRun(error)) throw new CommitOutcomeUnknownError(this.options.key, revision, error);
        throw error;
      }
      if (status !== 3) return { status, reply };
      await this.waitForTurn(asInteger(reply[2], what), deadline);
    }
  }

  /**
   * Runs a commit script for `count` changes from `revision` on, and says
   * what its reply means (`commitOutcome`). Counted as in flight until then
   * (see `committing`).
   */
  private async runCommit(
    script: LuaScript,
    what: string,
    keys: string[],
    args: string[],
    revision: number,
    count: number,
    deadline: number | undefined,
  ): Promise<RebasedCommit | undefined> {
    this.commitsInFlight += 1;
    try {
      const { status, reply } = await this.runInTurn(script, what, keys, args, revision, deadline);
      return this.commitOutcome(status, reply, revision, count);
    } finally {
      this.commitsInFlight -= 1;
      if (this.commitsInFlight === 0) {
        this.commitsDone?.resolve();
        this.commitsDone = undefined;
      }
    }
  }

  /** While commits of this process are with Redis: settles once none is left (see `LogFollower`). */
  private committing(): Promise<void> | undefined {
    if (this.commitsInFlight === 0) return undefined;
    if (this.commitsDone === undefined) {
      let resolve = noop;
      const promise = new Promise<void>((r) => (resolve = r));
      this.commitsDone = { promise, resolve };
    }
    return this.commitsDone.promise;
  }

  /** What a commit script's reply means for `count` changes from `revision` on: conflict (thrown), appended, or rebased. */
  private commitOutcome(status: number, reply: unknown[], revision: number, count: number): RebasedCommit | undefined {
    if (status === 0) {
      const current = asRevision(reply[1], 'the commit script');
      const after = revision - 1;
      const missed = decodeEntries(reply[2], this.keys.log);
      if (missed.length > 0 && missed.length === current - after && missed[0]?.revision === after + 1) this.missed = { after, changes: missed };
      throw new RevisionConflictError(
        `Redis holds revision ${current} of "${this.options.key}", so revision ${revision} was made on a stale copy`,
        current,
      );
    }
    // The change is saved; a garbled compaction claim must not say otherwise (the lock expires).
    if (reply[1] === 1 || reply[1] === '1') this.compactInBackground();
    if (status === 1) {
      this.heard(revision, revision, count, () => []);
      return undefined;
    }
    const landed = asRevision(reply[2], 'the commit script');
    const missed = decodeEntries(reply[3], this.keys.log);
    if (missed.length !== landed - revision || missed[0]?.revision !== revision) {
      // Cannot happen with the script as written; the change is saved, so
      // the engine is told it conflicted with nothing it can use and catches up.
      throw new CommitOutcomeUnknownError(this.options.key, revision, unexpected('the commit script', reply.slice(0, 3)));
    }
    this.heard(revision, landed, count, () => decodeEntries(reply[3], this.keys.log));
    return { revision: landed, missed };
  }

  /** A commit landed: the followers need not read it, nor the changes its reply brought, from the log (see `LogFollower.heard`). */
  private heard(planned: number, landed: number, count: number, missed: () => readonly Change[]): void {
    for (const follower of this.followers) follower.heard(planned, landed, count, missed);
  }

  /**
   * Appends consecutive changes in one script call, all or none (group
   * commit); one change goes through `commit`. Replies as `commit` does,
   * the `RebasedCommit` naming the revision the first change got.
   */
  async commitBatch(changes: readonly Change[], options?: StorageCallOptions): Promise<RebasedCommit | undefined> {
    const [first] = changes;
    if (first === undefined) return undefined;
    if (changes.length === 1) return this.commit(first, options);
    const perChange: string[] = [];
    let claim = this.options.turnTimeout > 0;
    for (const change of changes) {
      if (change.idempotency !== undefined) throw new Error('commitBatch takes no change with an idempotency key');
      // Serialized before the first await: the engine owns the values afterwards.
      const [rebase, writes, , claims] = turnArgs(change, this.lockToken, this.options.turnTimeout);
      perChange.push(JSON.stringify(change.ops), rebase as string, writes as string);
      claim &&= claims === '1';
    }
    this.missed = undefined;
    const compactionArgs = this.compactionArgs();
    const args = [
      String(first.revision),
      ...compactionArgs,
      this.lockToken,
      String(compactionLockMs),
      String(catchUpLimit),
      this.lockToken,
      claim ? '1' : '0',
      String(this.options.turnTimeout),
      ...perChange,
    ];
    const { meta, log, snapshot, compaction: lock, turn, turnQueue } = this.keys;
    const keys = [meta, log, snapshot, lock, turn, turnQueue];
    return this.runCommit(commitBatchScript, 'the commit-batch script', keys, args, first.revision, changes.length, options?.deadline);
  }

  /** Waits while another process has the turn: polls briefly, never past the turn's expiry or the request's deadline. */
  private async waitForTurn(turnLeft: number, deadline: number | undefined): Promise<void> {
    const wait = Math.min(Math.max(turnLeft, 1), turnPollMs);
    if (deadline !== undefined && performance.now() + wait >= deadline) {
      throw new Error(`other processes held their turn to write "${this.options.key}" until this request ran out of time`);
    }
    await new Promise((resolve) => setTimeout(resolve, wait));
  }

  async changesSince(revision: number, options?: StorageCallOptions): Promise<readonly Change[] | undefined> {
    const missed = this.missed;
    this.missed = undefined;
    if (missed !== undefined && missed.after === revision) return missed.changes;
    const reply = asArray(
      await runScript(
        this.send,
        changesScript,
        [this.keys.meta, this.keys.log],
        [`${revision + 1}-0`, String(revision), String(catchUpLimit)],
        this.options.commandTimeout,
        options?.deadline,
      ),
      'the changes script',
    );
    const latest = asRevision(reply[0], 'the changes script');
    // Redis holds less than the caller has seen (deleted, or restarted without
    // persistence): only a fresh load tells the truth.
    if (latest < revision) return undefined;
    if (latest === revision) return [];
    // Too far behind: loading the snapshot is cheaper.
    if (reply.length < 2) return undefined;
    const changes = decodeEntries(reply[1], this.keys.log);
    // Compaction dropped some of them: the caller loads the snapshot instead.
    if (changes.length !== latest - revision || changes[0]?.revision !== revision + 1) return undefined;
    return changes;
  }

  async currentRevision(options?: StorageCallOptions): Promise<number> {
    this.missed = undefined;
    return readRevision(this.send, this.keys.meta, this.options.commandTimeout, options?.deadline);
  }

  async compact(): Promise<boolean> {
    if (this.compaction) return this.compaction;
    const taken = await this.send(['SET', this.keys.compaction, this.lockToken, 'NX', 'PX', String(compactionLockMs)], this.options.commandTimeout);
    if (taken === null || taken === undefined) return false;
    return this.trackCompaction(this.compactHoldingLock());
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.followers].map((follower) => follower.stop()));
    await this.compaction?.catch(noop);
  }

  // ---- internals --------------------------------------------------------------

  /** Reads the snapshot and the changes after it, and applies them. */
  private async rebuild(): Promise<RebuiltDocument | undefined> {
    const { meta, log, snapshot, idempotency } = this.keys;
    const reply = asArray(await runScript(this.send, loadScript, [meta, log, snapshot, idempotency], [], this.options.bulkTimeout), 'the load script');
    if (reply.length === 0) return undefined;
    const revision = asRevision(reply[0], 'the load script');
    const snapshotRevision = asRevision(reply[1], 'the load script');
    const logBytes = asInteger(reply[3], 'the load script');
    const state: DocumentState = { root: {} };
    const json = asText(reply[2], 'the load script');
    // Revision 0 without a snapshot: nothing stored (meta alone, left by an older version).
    if (revision === 0 && json === '') return undefined;
    // At snapshot revision 0 the snapshot is the seeded starting document, if any.
    if (snapshotRevision > 0 || json !== '') {
      if (json === '') throw new Error(`${meta} names snapshot revision ${snapshotRevision} but ${snapshot} is missing`);
      try {
        state.root = JSON.parse(json) as JsonValue;
      } catch (error) {
        throw new Error(`${snapshot} is not valid JSON: ${describe(error)}`);
      }
    }
    let at = snapshotRevision;
    for (const change of decodeEntries(reply[4], log)) {
      if (change.revision !== at + 1) throw new Error(`${log} jumps from revision ${at} to ${change.revision}; changes are missing`);
      try {
        applyOperations(state, change.ops);
      } catch (error) {
        throw new Error(`revision ${change.revision} in ${log} does not apply to revision ${at}: ${describe(error)}`);
      }
      at = change.revision;
    }
    if (at !== revision) throw new Error(`${meta} is at revision ${revision} but ${log} ends at revision ${at}`);
    return { document: state.root, revision, snapshotRevision, logBytes, idempotency: decodeRecords(reply[5]) };
  }

  /** Called once the commit script handed this process the compaction lock. */
  private compactInBackground(): void {
    if (this.compaction || this.closed) {
      this.unlock().catch(noop);
      return;
    }
    this.trackCompaction(this.compactHoldingLock()).catch((error: unknown) => {
      this.compactionPausedUntil = Date.now() + compactionRetryMs;
      this.options.onError(new Error(`compacting "${this.options.key}" failed; the log keeps growing until a later try (${describe(error)})`, { cause: error }));
    });
  }

  private trackCompaction(run: Promise<boolean>): Promise<boolean> {
    const tracked = run.finally(() => {
      if (this.compaction === tracked) this.compaction = undefined;
    });
    this.compaction = tracked;
    return tracked;
  }

  /**
   * Rebuilds the latest document here (Lua never parses JSON) and installs
   * it as the snapshot, unless another process got there first.
   */
  private async compactHoldingLock(): Promise<boolean> {
    let released = false;
    try {
      const rebuilt = await this.rebuild();
      if (rebuilt === undefined || rebuilt.revision === rebuilt.snapshotRevision) return false;
      const json = JSON.stringify(rebuilt.document);
      const { meta, log, snapshot, compaction } = this.keys;
      const reply = await runScript(
        this.send,
        compactScript,
        [meta, log, snapshot, compaction],
        [String(rebuilt.snapshotRevision), String(rebuilt.revision), json, String(-rebuilt.logBytes), this.lockToken],
        this.options.bulkTimeout,
      );
      released = true;
      return asInteger(reply, 'the compact script') === 1;
    } finally {
      if (!released) await this.unlock().catch(noop);
    }
  }

  private async unlock(): Promise<void> {
    await runScript(this.send, unlockScript, [this.keys.compaction], [this.lockToken], this.options.commandTimeout);
  }

  private follow(onChange: (change: Change) => void, onError: (error: unknown) => void): Unwatch {
    if (this.closed) throw new Error('the Redis storage is closed');
    const follower = new LogFollower({
      client: this.options.client,
      keys: this.keys,
      from: this.loadedRevision,
      commandTimeout: this.options.commandTimeout,
      onChange,
      onError,
      committing: () => this.committing(),
    });
    this.followers.add(follower);
    return async () => {
      this.followers.delete(follower);
      await follower.stop();
    };
  }
}

