/**
 * How `redisStorage()` talks to Redis: the client shapes it accepts (by
 * shape, so the optional `redis` peer is never imported), a command sender
 * with the adapter's timeouts and its verdict on whether a failed command may
 * have run, running the Lua scripts, and decoding replies (revisions, log
 * entries, idempotency records). Shared by the adapter (`redis.ts`) and its
 * log follower (`redis-follower.ts`).
 */
import type { PatchOperation } from '../document/patch-types.js';
import { asIdempotencyRecord } from './idempotency.js';
import type { LuaScript } from './redis-scripts.js';
import type { Change, IdempotencyRecord } from './types.js';

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

/**
 * Sends one command, failing it after `timeout` ms (0: no limit of its own)
 * or at `deadline` (a `performance.now()` time: the request's), whichever
 * comes first.
 */
export type SendCommand = (args: string[], timeout: number, deadline?: number) => Promise<unknown>;

export const noop = () => {};

export function isCluster(client: RedisClientLike | RedisClusterLike): client is RedisClusterLike {
  return 'masters' in client;
}

/**
 * Redis did not answer in time. `mayHaveRun`: the command had been written
 * to the connection (or may have been), so Redis may still run it.
 */
export class RedisTimeoutError extends Error {
  readonly mayHaveRun: boolean;

  /** `limit`: how the time was set, such as `2000 ms` or `the 40 ms left of the request's time`. */
  constructor(limit: string, mayHaveRun: boolean) {
    super(`Redis did not answer within ${limit}${mayHaveRun ? '' : '; the command was not sent'}`);
    this.name = 'RedisTimeoutError';
    this.mayHaveRun = mayHaveRun;
  }
}

/** Whether `error` is one of node-redis' error classes, known by name: `redis` is not imported here. */
export function isRedisError(error: unknown, names: readonly string[]): boolean {
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
export function mayHaveRun(error: unknown): boolean {
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
export function senderFor(client: RedisClientLike | RedisClusterLike, routingKey: string): SendCommand {
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
export function explain(error: unknown): unknown {
  return isRedisError(error, ['TimeoutError']) ? new Error('Redis did not answer in time (the client\'s own command timeout)', { cause: error }) : error;
}

/** Whether the client's connection is being opened (commands then wait, or fail with disableOfflineQueue). */
export function connecting(client: RedisClientLike | RedisClusterLike): client is RedisClientLike {
  return !isCluster(client) && client.isOpen && !client.isReady;
}

/**
 * Waits, at most `ms` (undefined: no limit), for a client whose connection
 * is being opened: a store is usually made right after `client.connect()`
 * was called but not awaited, and its first load should not fail for that.
 * Resolves `false` when the client is still connecting after all.
 */
export function untilConnected(client: RedisClientLike | RedisClusterLike, ms: number | undefined): Promise<boolean> {
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

export async function runScript(send: SendCommand, script: LuaScript, keys: string[], args: string[], timeout: number, deadline?: number): Promise<unknown> {
  const tail = [String(keys.length), ...keys, ...args];
  try {
    return await send(['EVALSHA', script.sha1, ...tail], timeout, deadline);
  } catch (error) {
    // Redis forgets scripts when it restarts; EVAL sends the source and caches it again.
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return send(['EVAL', script.source, ...tail], timeout, deadline);
  }
}

export function unexpected(what: string, reply: unknown): Error {
  let shown: string;
  try {
    shown = JSON.stringify(reply)?.slice(0, 80) ?? String(reply);
  } catch {
    shown = String(reply);
  }
  return new Error(`unexpected reply from Redis for ${what}: ${shown}`);
}

/** Bulk strings arrive as strings, or as Buffers when the app maps them so. */
export function asText(reply: unknown, what: string): string {
  if (typeof reply === 'string') return reply;
  if (reply instanceof Uint8Array) return Buffer.from(reply.buffer, reply.byteOffset, reply.byteLength).toString('utf8');
  throw unexpected(what, reply);
}

export function asArray(reply: unknown, what: string): unknown[] {
  if (Array.isArray(reply)) return reply;
  throw unexpected(what, reply);
}

export function asRevision(reply: unknown, what: string): number {
  const value = asInteger(reply, what);
  if (value < 0) throw unexpected(what, reply);
  return value;
}

/** The document's revision as `meta` holds it; 0 when there is none yet (or no longer). */
export async function readRevision(send: SendCommand, metaKey: string, timeout: number, deadline?: number): Promise<number> {
  const reply = await send(['HGET', metaKey, 'rev'], timeout, deadline);
  return reply === null || reply === undefined ? 0 : asRevision(reply, `HGET ${metaKey} rev`);
}

export function asInteger(reply: unknown, what: string): number {
  const value = typeof reply === 'number' ? reply : Number(asText(reply, what));
  if (!Number.isSafeInteger(value)) throw unexpected(what, reply);
  return value;
}

/** Stream entries (`[id, [field, value, ...]]`) to changes. */
export function decodeEntries(reply: unknown, logKey: string): Change[] {
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

export function decodeRecord(reply: unknown): IdempotencyRecord | undefined {
  if (typeof reply !== 'string' && !Buffer.isBuffer(reply)) return undefined;
  try {
    return asIdempotencyRecord(JSON.parse(String(reply)));
  } catch {
    return undefined;
  }
}

/** HGETALL of the idempotency hash, as the load script returns it: key, record, key, record, ... */
export function decodeRecords(reply: unknown): IdempotencyRecord[] {
  if (!Array.isArray(reply)) return [];
  const records: IdempotencyRecord[] = [];
  for (let i = 1; i < reply.length; i += 2) {
    const record = decodeRecord(reply[i]);
    if (record !== undefined) records.push(record);
  }
  return records;
}

/** XREAD answers `[[key, entries]]` over RESP2 and `{ key: entries }` over RESP3. */
export function entriesOfStreamRead(reply: unknown, logKey: string): Change[] {
  if (reply === null || reply === undefined) return [];
  if (Array.isArray(reply)) {
    const [stream] = reply;
    return stream === undefined ? [] : decodeEntries(asArray(stream, `XREAD ${logKey}`)[1], logKey);
  }
  if (reply instanceof Map) return [...reply.values()].flatMap((entries) => decodeEntries(entries, logKey));
  if (typeof reply === 'object') return Object.values(reply).flatMap((entries) => decodeEntries(entries, logKey));
  throw unexpected(`XREAD ${logKey}`, reply);
}

export function describe(error: unknown): string {
  return error instanceof Error ? error.message || error.name : String(error);
}
