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
 * The `redis` package is an optional peer: this module only describes the
 * client it is given, it never imports it.
 */
import { randomBytes } from 'node:crypto';
import { applyOperations, type DocumentState } from '../document/apply.js';
import type { JsonValue } from '../document/json.js';
import type { PatchOperation } from '../document/patch-types.js';
import { RevisionConflictError } from '../errors.js';
import { changesScript, commitScript, compactScript, loadScript, unlockScript, type LuaScript } from './redis-scripts.js';
import { asIdempotencyRecord, encodeIdempotencyRecord } from './idempotency.js';
import type {
  Change,
  IdempotencyRecord,
  OutcomeUnknown,
  StorageAdapter,
  StorageCallOptions,
  StorageCapabilities,
  StoredDocument,
  Unwatch,
} from './types.js';

/** Per-command options the adapter passes to node-redis. */
export interface RedisCommandOptions {
  /** Takes the command back while it still waits to be written (node-redis then rejects it with its `AbortError`). */
  abortSignal?: AbortSignal;
}

/**
 * What the adapter uses of a node-redis (v5 or later) client made with
 * `createClient()`. Described by shape, so `redis` stays an optional peer.
 */
export interface RedisClientLike {
  sendCommand(args: string[], options?: RedisCommandOptions): Promise<unknown>;
  duplicate(): RedisClientLike;
  connect(): Promise<unknown>;
  destroy(): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  once(event: 'ready', listener: () => void): unknown;
  removeListener(event: 'ready', listener: () => void): unknown;
  unref(): void;
  readonly isOpen: boolean;
  readonly isReady: boolean;
}

/** The same for a client made with `createCluster()`: commands are routed by their first key. */
export interface RedisClusterLike {
  sendCommand(firstKey: string | undefined, isReadonly: boolean | undefined, args: string[], options?: RedisCommandOptions): Promise<unknown>;
  duplicate(): RedisClusterLike;
  connect(): Promise<unknown>;
  destroy(): void;
  on(event: 'error', listener: (error: Error) => void): unknown;
  readonly isOpen: boolean;
  readonly masters: unknown;
}

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
}

export interface RedisStorage extends StorageAdapter {
  readonly name: 'redis';
  readonly capabilities: StorageCapabilities;
  /** `commandTimeout` (absent when that is 0): each request waits for Redis this long in all. */
  readonly requestTimeout?: number;
  /** The Redis keys this document lives in (to inspect, back up or delete it). */
  readonly keys: RedisStorageKeys;
  load(options?: StorageCallOptions): Promise<StoredDocument | undefined>;
  /** Rejects with `outcome: 'unknown'` when the change may have been saved although no answer came. */
  commit(change: Change, options?: StorageCallOptions): Promise<void>;
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
 * Sends one command, failing it after `timeout` ms (0: no limit of its own)
 * or at `deadline` (a `performance.now()` time: the request's), whichever
 * comes first.
 */
type SendCommand = (args: string[], timeout: number, deadline?: number) => Promise<unknown>;

/** How long a blocking XREAD waits before asking again; also bounds how long a dead connection goes unnoticed. */
const followBlockMs = 5000;
/** Changes delivered per XREAD. */
const followBatch = 1000;
/**
 * The most changes `changesSince` returns; further behind, the engine loads
 * the snapshot instead. Keeps catch-ups within `commandTimeout`: they run
 * while the engine holds its write queue.
 */
const catchUpLimit = 1000;
const followRetryMs = { first: 100, max: 2000 };
/** The compaction lock expires, so a process that died compacting does not block the next one for long. */
const compactionLockMs = 60_000;
/** After a failed compaction, this process waits this long before claiming another. */
const compactionRetryMs = 30_000;

const noop = () => {};

function fail(message: string): never {
  throw new TypeError(`redisStorage(): ${message}`);
}

/** Node's timers take at most 2^31 - 1 ms; a longer one fires at once. */
const maxTimeout = 2_147_483_647;

function isTimeout(ms: unknown): ms is number {
  return typeof ms === 'number' && Number.isSafeInteger(ms) && ms >= 0 && ms <= maxTimeout;
}

function resolveOptions(options: RedisStorageOptions): ResolvedRedisOptions {
  if (typeof options !== 'object' || options === null) fail('options must be an object with a "client"');
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
  if (typeof key !== 'string' || key === '') fail('option "key" must be a non-empty string');
  // A brace would move or end the hash tag: `}x` gives `{}x}:meta`, whose
  // keys hash apart, and every script then fails with CROSSSLOT on Cluster.
  if (/[{}]/.test(key)) fail(`option "key" must not contain { or }, got ${JSON.stringify(key)}: the key names put it in braces as their Cluster hash tag`);
  const prefix = options.prefix ?? '';
  if (typeof prefix !== 'string') fail('option "prefix" must be a string');
  if (/[{}]/.test(prefix)) fail(`option "prefix" must not contain { or }, got ${JSON.stringify(prefix)}: Redis Cluster would take its hash tag from the prefix`);
  const commandTimeout = options.commandTimeout ?? 2000;
  if (!isTimeout(commandTimeout)) fail(`option "commandTimeout" must be a whole number of milliseconds (0 to ${maxTimeout}), got ${String(options.commandTimeout)}`);
  const bulkTimeout = options.bulkTimeout ?? 30_000;
  if (!isTimeout(bulkTimeout)) fail(`option "bulkTimeout" must be a whole number of milliseconds (0 to ${maxTimeout}), got ${String(options.bulkTimeout)}`);
  if (options.follow !== undefined && typeof options.follow !== 'boolean') fail('option "follow" must be true or false');
  if (options.onError !== undefined && typeof options.onError !== 'function') fail('option "onError" must be a function');

  let compaction: Required<RedisCompactionOptions> | false = false;
  if (options.compaction !== false) {
    const given = options.compaction ?? {};
    if (typeof given !== 'object' || given === null) fail('option "compaction" must be false or an object');
    compaction = { minBytes: given.minBytes ?? 1024 * 1024, ratio: given.ratio ?? 1, maxChanges: given.maxChanges ?? 100_000 };
    if (!Number.isSafeInteger(compaction.minBytes) || compaction.minBytes < 0) fail('option "compaction.minBytes" must be a non-negative whole number');
    if (typeof compaction.ratio !== 'number' || !Number.isFinite(compaction.ratio) || compaction.ratio < 0) {
      fail('option "compaction.ratio" must be a non-negative number');
    }
    if (!Number.isSafeInteger(compaction.maxChanges) || compaction.maxChanges < 1) fail('option "compaction.maxChanges" must be a positive whole number');
  }

  return {
    client,
    key,
    prefix,
    commandTimeout,
    bulkTimeout,
    follow: options.follow ?? true,
    compaction,
    onError: options.onError ?? ((error) => console.error('express-jsonstore (redis):', error instanceof Error ? error.message : error)),
  };
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
  };
}

/**
 * Stores one JSON document in Redis, shared by every process that uses the
 * same `key`. Needs Redis 6.2 or later.
 */
export function redisStorage(options: RedisStorageOptions): RedisStorage {
  return new RedisDocumentStorage(resolveOptions(options));
}

// ---- talking to Redis ---------------------------------------------------------

function isCluster(client: RedisClientLike | RedisClusterLike): client is RedisClusterLike {
  return 'masters' in client;
}

/**
 * Redis did not answer in time. `mayHaveRun`: the command had been written
 * to the connection (or may have been), so Redis may still run it.
 */
class RedisTimeoutError extends Error {
  readonly mayHaveRun: boolean;

  /** `limit`: how the time was set, such as `2000 ms` or `the 40 ms left of the request's time`. */
  constructor(limit: string, mayHaveRun: boolean) {
    super(`Redis did not answer within ${limit}${mayHaveRun ? '' : '; the command was not sent'}`);
    this.name = 'RedisTimeoutError';
    this.mayHaveRun = mayHaveRun;
  }
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

/** Whether `error` is one of node-redis' error classes, known by name: `redis` is not imported here. */
function isRedisError(error: unknown, names: readonly string[]): boolean {
  if (!(error instanceof Error)) return false;
  for (let proto: unknown = Object.getPrototypeOf(error); proto !== null && proto !== Error.prototype; proto = Object.getPrototypeOf(proto)) {
    const name = (proto as { constructor?: { name?: unknown } }).constructor?.name;
    if (typeof name === 'string' && names.includes(name)) return true;
  }
  return false;
}

/**
 * Whether a command that failed may have run in Redis all the same. Only
 * failures known to have left Redis untouched say no; anything unforeseen
 * (a lost connection, a renamed error class) counts as "may have".
 */
function mayHaveRun(error: unknown): boolean {
  if (error instanceof RedisTimeoutError) return error.mayHaveRun;
  // Redis answered with an error. The scripts check everything before their
  // first write, and Redis refuses a script for lack of memory only there.
  if (isRedisError(error, ['ErrorReply'])) return false;
  // Refused before it was queued (client closed, or offline with
  // disableOfflineQueue), or taken off the queue before it was written.
  return !isRedisError(error, ['ClientClosedError', 'ClientOfflineError', 'AbortError']);
}

/**
 * A command sender for a client, with the adapter's timeouts and error
 * messages. A command still waiting to be written when its time is up is
 * taken back (node-redis' `abortSignal`), so it is never sent late and is
 * known not to have run; one already written may still run when a Redis
 * that stopped answering comes back, which `mayHaveRun` then says.
 */
function senderFor(client: RedisClientLike | RedisClusterLike, routingKey: string): SendCommand {
  const cluster = isCluster(client);
  const call = (args: string[], options: RedisCommandOptions | undefined): Promise<unknown> =>
    cluster ? client.sendCommand(routingKey, false, args, options) : (client as RedisClientLike).sendCommand(args, options);
  return (args, timeout, deadline) => {
    let wait = timeout > 0 ? timeout : Number.POSITIVE_INFINITY;
    let limit = `${timeout} ms`;
    const left = deadline === undefined ? Number.POSITIVE_INFINITY : deadline - performance.now();
    if (left < wait) {
      wait = left;
      // A request's first command has all but a moment of commandTimeout left.
      if (Math.round(left) < timeout || timeout === 0) limit = `the ${Math.max(0, Math.round(left))} ms left of the request's time`;
    }
    if (wait === Number.POSITIVE_INFINITY) {
      try {
        return call(args, undefined).catch((error: unknown) => Promise.reject(explain(error)));
      } catch (error) {
        return Promise.reject(error);
      }
    }
    // The request's time is up: sending now could only fail it later.
    if (wait <= 0) return Promise.reject(new RedisTimeoutError(limit, false));
    const abort = new AbortController();
    let reply: Promise<unknown>;
    try {
      reply = call(args, { abortSignal: abort.signal });
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise((resolve, reject) => {
      let taken = false;
      const timer = setTimeout(() => {
        abort.abort();
        // node-redis rejects a command it took back at once; give that
        // rejection a turn of the event loop to arrive before deciding.
        setImmediate(() => reject(new RedisTimeoutError(limit, !taken)));
      }, wait);
      reply.then(
        (value) => {
          clearTimeout(timer);
          resolve(value);
        },
        (error: unknown) => {
          clearTimeout(timer);
          if (abort.signal.aborted && isRedisError(error, ['AbortError'])) taken = true;
          else reject(explain(error));
        },
      );
    });
  };
}

/** node-redis' own TimeoutError (a `timeout` in the app's `commandOptions`) has no message; say what happened. */
function explain(error: unknown): unknown {
  return isRedisError(error, ['TimeoutError']) ? new Error('Redis did not answer in time (the client\'s own command timeout)', { cause: error }) : error;
}

/** Whether the client's connection is being opened (commands then wait, or fail with disableOfflineQueue). */
function connecting(client: RedisClientLike | RedisClusterLike): client is RedisClientLike {
  return !isCluster(client) && client.isOpen && !client.isReady;
}

/**
 * Waits, at most `ms` (undefined: no limit), for a client whose connection
 * is being opened: a store is usually made right after `client.connect()`
 * was called but not awaited, and its first load should not fail for that.
 * Resolves `false` when the client is still connecting after all.
 */
function untilConnected(client: RedisClientLike | RedisClusterLike, ms: number | undefined): Promise<boolean> {
  if (!connecting(client)) return Promise.resolve(true);
  if (ms !== undefined && ms <= 0) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = () => {
      if (timer !== undefined) clearTimeout(timer);
      client.removeListener('ready', done);
      resolve(client.isReady);
    };
    const timer = ms !== undefined ? setTimeout(done, ms) : undefined;
    client.once('ready', done);
  });
}

async function runScript(send: SendCommand, script: LuaScript, keys: string[], args: string[], timeout: number, deadline?: number): Promise<unknown> {
  const tail = [String(keys.length), ...keys, ...args];
  try {
    return await send(['EVALSHA', script.sha1, ...tail], timeout, deadline);
  } catch (error) {
    // Redis forgets scripts when it restarts; EVAL sends the source and caches it again.
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return send(['EVAL', script.source, ...tail], timeout, deadline);
  }
}

function unexpected(what: string, reply: unknown): Error {
  let shown: string;
  try {
    shown = JSON.stringify(reply)?.slice(0, 80) ?? String(reply);
  } catch {
    shown = String(reply);
  }
  return new Error(`unexpected reply from Redis for ${what}: ${shown}`);
}

/** Bulk strings arrive as strings, or as Buffers when the app maps them so. */
function asText(reply: unknown, what: string): string {
  if (typeof reply === 'string') return reply;
  if (reply instanceof Uint8Array) return Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength).toString('utf8');
  throw unexpected(what, reply);
}

function asArray(reply: unknown, what: string): unknown[] {
  if (Array.isArray(reply)) return reply;
  throw unexpected(what, reply);
}

function asRevision(reply: unknown, what: string): number {
  const value = typeof reply === 'number' ? reply : Number(asText(reply, what));
  if (!Number.isSafeInteger(value) || value < 0) throw unexpected(what, reply);
  return value;
}

function asInteger(reply: unknown, what: string): number {
  const value = typeof reply === 'number' ? reply : Number(asText(reply, what));
  if (!Number.isSafeInteger(value)) throw unexpected(what, reply);
  return value;
}

/** Stream entries (`[id, [field, value, ...]]`) to changes. */
function decodeEntries(reply: unknown, logKey: string): Change[] {
  return asArray(reply, `XRANGE ${logKey}`).map((raw) => {
    const [rawId, rawFields] = asArray(raw, `an entry of ${logKey}`);
    const id = asText(rawId, `an entry ID in ${logKey}`);
    const revision = Number(id.slice(0, -2));
    if (!id.endsWith('-0') || !Number.isSafeInteger(revision) || revision < 1) {
      throw new Error(`${logKey} holds entry ${id}, which is not a revision ID such as 12-0`);
    }
    const fields = asArray(rawFields, `entry ${id} of ${logKey}`);
    let ops: unknown;
    let idempotency: IdempotencyRecord | undefined;
    for (let i = 0; i + 1 < fields.length; i += 2) {
      const field = asText(fields[i], `a field of entry ${id}`);
      // A damaged record is dropped (a retry then writes again), never fatal.
      if (field === 'idem') idempotency = decodeRecord(fields[i + 1]);
      if (field !== 'ops') continue;
      try {
        ops = JSON.parse(asText(fields[i + 1], `the ops of entry ${id}`));
      } catch (error) {
        throw new Error(`entry ${id} of ${logKey} is not valid JSON: ${(error as Error).message}`);
      }
    }
    if (!Array.isArray(ops)) throw new Error(`entry ${id} of ${logKey} has no list of operations`);
    return idempotency === undefined ? { revision, ops: ops as PatchOperation[] } : { revision, ops: ops as PatchOperation[], idempotency };
  });
}

function decodeRecord(reply: unknown): IdempotencyRecord | undefined {
  if (typeof reply !== 'string' && !Buffer.isBuffer(reply)) return undefined;
  try {
    return asIdempotencyRecord(JSON.parse(String(reply)));
  } catch {
    return undefined;
  }
}

/** HGETALL of the idempotency hash, as the load script returns it: key, record, key, record, ... */
function decodeRecords(reply: unknown): IdempotencyRecord[] {
  if (!Array.isArray(reply)) return [];
  const records: IdempotencyRecord[] = [];
  for (let i = 1; i < reply.length; i += 2) {
    const record = decodeRecord(reply[i]);
    if (record !== undefined) records.push(record);
  }
  return records;
}

/** XREAD answers `[[key, entries]]` over RESP2 and `{ key: entries }` over RESP3. */
function entriesOfStreamRead(reply: unknown, logKey: string): Change[] {
  if (reply === null || reply === undefined) return [];
  if (Array.isArray(reply)) {
    const [stream] = reply;
    return stream === undefined ? [] : decodeEntries(asArray(stream, `XREAD ${logKey}`)[1], logKey);
  }
  if (reply instanceof Map) return [...reply.values()].flatMap((entries) => decodeEntries(entries, logKey));
  if (typeof reply === 'object') return Object.values(reply).flatMap((entries) => decodeEntries(entries, logKey));
  throw unexpected(`XREAD ${logKey}`, reply);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message || error.name : String(error);
}

// ---- the adapter ------------------------------------------------------------------

class RedisDocumentStorage implements RedisStorage {
  readonly name = 'redis' as const;
  readonly capabilities: StorageCapabilities = { shared: true, persistent: true, idempotency: true };
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
    if ((await this.currentRevision({ deadline })) === 0) return undefined;
    // Moving the whole document has bulkTimeout, whatever is left of the request's time.
    const rebuilt = await this.rebuild();
    if (rebuilt === undefined) return undefined;
    this.loadedRevision = rebuilt.revision;
    const stored: StoredDocument = { document: rebuilt.document, revision: rebuilt.revision };
    if (rebuilt.idempotency.length > 0) stored.idempotency = rebuilt.idempotency;
    return stored;
  }

  async commit(change: Change, options?: StorageCallOptions): Promise<void> {
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
    const { compaction } = this.options;
    const compactionArgs =
      compaction === false || this.closed || Date.now() < this.compactionPausedUntil
        ? ['', '0', '0']
        : [String(compaction.minBytes), String(compaction.ratio), String(compaction.maxChanges)];
    let reply: unknown[];
    let appended: boolean;
    try {
      reply = asArray(
        await runScript(
          this.send,
          commitScript,
          [this.keys.meta, this.keys.log, this.keys.snapshot, this.keys.compaction, this.keys.idempotency, this.keys.idempotencyTimes],
          [String(change.revision), ops, ...compactionArgs, this.lockToken, String(compactionLockMs), String(catchUpLimit), ...idempotencyArgs],
          this.options.commandTimeout,
          options?.deadline,
        ),
        'the commit script',
      );
      const status = asInteger(reply[0], 'the commit script');
      if (status !== 0 && status !== 1) throw unexpected('the commit script', reply);
      appended = status === 1;
    } catch (error) {
      // Sent and unanswered, or answered with something we cannot read: the
      // script may have appended the change. Later commits stay safe (the
      // script takes only the next revision); the engine learns which it
      // was from the log.
      if (mayHaveRun(error)) throw new CommitOutcomeUnknownError(this.options.key, change.revision, error);
      throw error;
    }
    if (!appended) {
      const current = asRevision(reply[1], 'the commit script');
      const after = change.revision - 1;
      const missed = decodeEntries(reply[2], this.keys.log);
      if (missed.length > 0 && missed.length === current - after && missed[0]?.revision === after + 1) this.missed = { after, changes: missed };
      throw new RevisionConflictError(
        `Redis holds revision ${current} of "${this.options.key}", so revision ${change.revision} was made on a stale copy`,
        current,
      );
    }
    // The change is saved; a garbled compaction claim must not say otherwise (the lock expires).
    if (reply[1] === 1 || reply[1] === '1') this.compactInBackground();
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
    const reply = await this.send(['HGET', this.keys.meta, 'rev'], this.options.commandTimeout, options?.deadline);
    return reply === null || reply === undefined ? 0 : asRevision(reply, `HGET ${this.keys.meta} rev`);
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
    if (snapshotRevision > 0) {
      const json = asText(reply[2], 'the load script');
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
    });
    this.followers.add(follower);
    return async () => {
      this.followers.delete(follower);
      await follower.stop();
    };
  }
}

// ---- following the log --------------------------------------------------------------

interface FollowerSettings {
  client: RedisClientLike | RedisClusterLike;
  keys: RedisStorageKeys;
  /** The revision the engine has; changes after it are delivered. */
  from: number;
  commandTimeout: number;
  onChange: (change: Change) => void;
  onError: (error: unknown) => void;
}

interface FollowerConnection {
  client: RedisClientLike | RedisClusterLike;
  send: SendCommand;
  ready: Promise<unknown>;
  /** The handshake finished (`ready` resolved). */
  connected: boolean;
}

/**
 * How long a follower connection that is still being opened may finish its
 * handshake before it is destroyed anyway (see `dropConnection`).
 */
const handshakeGraceMs = 5000;

function destroyQuietly(client: RedisClientLike | RedisClusterLike): void {
  try {
    if (client.isOpen) client.destroy();
  } catch {
    // Already closed.
  }
}

class StoppedError extends Error {}

/**
 * Delivers every change appended to the log, in order, from a connection of
 * its own (a blocking XREAD would hold up the app's client). When the
 * connection breaks, the engine hears it at once (`onError`), and again once
 * it works again so that it resyncs from the log; reading then resumes
 * after the last change delivered.
 */
class LogFollower {
  private readonly settings: FollowerSettings;
  private connection: FollowerConnection | undefined;
  private revision: number;
  /** What broke the feed, until it works again. */
  private brokenBy: unknown;
  private stopped = false;
  private wake: (() => void) | undefined;
  private readonly running: Promise<void>;

  constructor(settings: FollowerSettings) {
    this.settings = settings;
    this.revision = settings.from;
    this.running = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    // Destroying rejects the XREAD that is waiting, so the loop ends now.
    this.dropConnection();
    await this.running;
  }

  private async run(): Promise<void> {
    const { keys, commandTimeout } = this.settings;
    // The reply is at most `followBatch` changes, like a catch-up.
    const readTimeout = commandTimeout > 0 ? followBlockMs + commandTimeout : 0;
    let retryMs = followRetryMs.first;
    while (!this.stopped) {
      try {
        const connection = await this.connect();
        if (this.brokenBy !== undefined) await this.resume(connection);
        const reply = await connection.send(
          ['XREAD', 'COUNT', String(followBatch), 'BLOCK', String(followBlockMs), 'STREAMS', keys.log, `${this.revision}-0`],
          readTimeout,
        );
        retryMs = followRetryMs.first;
        if (this.stopped) break;
        const changes = entriesOfStreamRead(reply, keys.log);
        if (changes.length > 0) this.deliver(changes);
        else await this.checkNotBehind(connection);
      } catch (error) {
        if (this.stopped) break;
        if (this.brokenBy === undefined) {
          this.brokenBy = error;
          this.report(new Error(`lost the Redis connection that follows changes to "${keys.meta}" (${describe(error)})`, { cause: error }));
        }
        // A command that timed out may sit on a dead socket: start afresh.
        if (error instanceof RedisTimeoutError) this.dropConnection();
        await this.sleep(retryMs);
        retryMs = Math.min(retryMs * 2, followRetryMs.max);
      }
    }
    this.dropConnection();
  }

  /**
   * After a break: Redis may have restarted with less data, so reading
   * resumes from what it holds, and the engine resyncs from the log.
   */
  private async resume(connection: FollowerConnection): Promise<void> {
    const latest = await connection.send(['HGET', this.settings.keys.meta, 'rev'], this.settings.commandTimeout);
    const revision = latest === null || latest === undefined ? 0 : asRevision(latest, `HGET ${this.settings.keys.meta} rev`);
    if (revision < this.revision) this.revision = revision;
    const cause = this.brokenBy;
    this.brokenBy = undefined;
    this.report(new Error(`the Redis connection that follows changes to "${this.settings.keys.meta}" is back; catching up from the log`, { cause }));
  }

  /**
   * The log was quiet for a while: make sure Redis did not go back to a lower
   * revision (keys deleted, data lost), whose new changes the XREAD, waiting
   * for IDs above ours, would never see.
   */
  private async checkNotBehind(connection: FollowerConnection): Promise<void> {
    const { meta } = this.settings.keys;
    const reply = await connection.send(['HGET', meta, 'rev'], this.settings.commandTimeout);
    const latest = reply === null || reply === undefined ? 0 : asRevision(reply, `HGET ${meta} rev`);
    if (latest >= this.revision) return;
    const seen = this.revision;
    this.revision = latest;
    this.report(new Error(`Redis holds revision ${latest} of "${meta}" but this process has seen revision ${seen} (the keys were deleted, or Redis lost data); reloading from Redis`));
  }

  private deliver(changes: readonly Change[]): void {
    for (const change of changes) {
      this.revision = change.revision;
      try {
        this.settings.onChange(change);
      } catch (error) {
        this.report(error);
      }
    }
  }

  private report(error: unknown): void {
    try {
      this.settings.onError(error);
    } catch {
      // The engine's handler does not throw; a broken one must not stop the feed.
    }
  }

  /** The follower's own connection, opened on first use and after the client gave up reconnecting. */
  private async connect(): Promise<FollowerConnection> {
    if (this.connection !== undefined && !this.connection.client.isOpen) this.dropConnection();
    if (this.connection === undefined) {
      const client = this.settings.client.duplicate();
      // Ours to own: an unhandled 'error' event would end the process. The
      // loop notices the failures through its commands.
      client.on('error', noop);
      // Following is background work: it must never keep a process alive
      // (the app's own client and server decide that).
      if (!isCluster(client)) client.unref();
      const connection: FollowerConnection = { client, send: senderFor(client, this.settings.keys.log), ready: client.connect(), connected: false };
      connection.ready.then(() => (connection.connected = true), noop);
      this.connection = connection;
    }
    const connection = this.connection;
    await this.until(connection.ready, this.settings.commandTimeout);
    return connection;
  }

  private dropConnection(): void {
    const connection = this.connection;
    this.connection = undefined;
    if (connection === undefined) return;
    if (connection.connected) {
      destroyQuietly(connection.client);
      return;
    }
    // node-redis (5.12) loses track of a socket destroyed during its
    // handshake, leaving it open: let the handshake finish first, or give up
    // on it after a while (Redis away, the client still retrying).
    const { client, ready } = connection;
    const timer = setTimeout(() => destroyQuietly(client), handshakeGraceMs);
    timer.unref();
    const finish = () => {
      clearTimeout(timer);
      destroyQuietly(client);
    };
    ready.then(finish, finish);
  }

  /** Waits for `promise`, at most `ms` milliseconds (0: no limit), and no longer than until `stop()`. */
  private until(promise: Promise<unknown>, ms: number): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const timer = ms > 0 ? setTimeout(() => reject(new Error(`could not connect to Redis within ${ms} ms`)), ms) : undefined;
      const done = () => {
        if (timer !== undefined) clearTimeout(timer);
        this.wake = undefined;
      };
      this.wake = () => {
        done();
        reject(new StoppedError('stopped'));
      };
      promise.then(
        (value) => {
          done();
          resolve(value);
        },
        (error: unknown) => {
          done();
          reject(error);
        },
      );
    });
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(finish, ms);
      function finish() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = finish;
    });
  }
}
