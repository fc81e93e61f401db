/**
 * `LogFollower`: how a Redis store hears of the changes other processes
 * make. It reads the document's log with a blocking XREAD on a connection of
 * its own, reconnects with backoff, and tells the engine when the feed broke,
 * when it is back, and when Redis went back to a lower revision.
 */
import type { Change } from './types.js';
import {
  RedisTimeoutError,
  describe,
  entriesOfStreamRead,
  isCluster,
  noop,
  readRevision,
  senderFor,
  type RedisClientLike,
  type RedisClusterLike,
  type SendCommand,
} from './redis-client.js';

/** How long a blocking XREAD waits before asking again; also bounds how long a dead connection goes unnoticed. */
const followBlockMs = 5000;
/** Changes delivered per XREAD. */
const followBatch = 1000;
const followRetryMs = { first: 100, max: 2000 };

interface FollowerSettings {
  client: RedisClientLike | RedisClusterLike;
  /** The document's `meta` and `log` keys (see `RedisStorageKeys`). */
  keys: { readonly meta: string; readonly log: string };
  /** The revision the engine has; changes after it are delivered. */
  from: number;
  commandTimeout: number;
  onChange: (change: Change) => void;
  onError: (error: unknown) => void;
  /**
   * While this process has commits with Redis: settles once none is left.
   * Their replies bring the engine every change made before them, so the
   * follower waits instead of being woken by its own process's entries.
   */
  committing?: () => Promise<unknown> | undefined;
}

interface FollowerConnection {
  client: RedisClientLike | RedisClusterLike;
  send: SendCommand;
  ready: Promise<unknown>;
  /** The handshake finished (`ready` resolved). */
  connected: boolean;
  /**
   * The first error the client reported since the loop last looked: the
   * connection broke (and the client is reconnecting), perhaps while no
   * XREAD was waiting on it to fail.
   */
  failed: unknown;
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
export class LogFollower {
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
        // The connection broke while no XREAD was waiting (this process was committing): changes may have been lost with Redis.
        if (connection.failed !== undefined) this.broken(connection.failed);
        connection.failed = undefined;
        if (this.brokenBy !== undefined) await this.resume(connection);
        if (await this.waitedForCommits()) continue;
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
        this.broken(error);
        // A command that timed out may sit on a dead socket: start afresh.
        if (error instanceof RedisTimeoutError) this.dropConnection();
        await this.sleep(retryMs);
        retryMs = Math.min(retryMs * 2, followRetryMs.max);
      }
    }
    this.dropConnection();
  }

  /** The feed broke: the engine hears it once, and again once it works (`resume`). */
  private broken(error: unknown): void {
    if (this.brokenBy !== undefined) return;
    this.brokenBy = error;
    this.report(new Error(`lost the Redis connection that follows changes to "${this.settings.keys.meta}" (${describe(error)})`, { cause: error }));
  }

  /**
   * After a break: Redis may have restarted with less data, so reading
   * resumes from what it holds, and the engine resyncs from the log.
   */
  private async resume(connection: FollowerConnection): Promise<void> {
    const seen = this.revision;
    const revision = await readRevision(connection.send, this.settings.keys.meta, this.settings.commandTimeout);
    // (A commit of this process's that landed meanwhile raised this.revision: Redis has that much.)
    if (revision < seen && this.revision === seen) this.revision = revision;
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
    const seen = this.revision;
    const latest = await readRevision(connection.send, meta, this.settings.commandTimeout);
    // A commit of this process's that landed meanwhile raised this.revision: Redis is not behind.
    if (latest >= seen || this.revision !== seen) return;
    this.revision = latest;
    this.report(new Error(`Redis holds revision ${latest} of "${meta}" but this process has seen revision ${seen} (the keys were deleted, or Redis lost data); reloading from Redis`));
  }

  /**
   * A commit of this process's, planned at revision `planned`, landed at
   * `landed` (`count` changes), after `missed`: the changes other processes
   * made since `planned - 1`, which its reply brought (decoded afresh for
   * each follower: the engine keeps the values it was given). When this
   * follower has delivered everything before `planned`, it delivers those
   * now and skips the commit's own changes; otherwise it reads them all from
   * the log as usual. Its watcher thus gets every other process's change, once.
   */
  heard(planned: number, landed: number, count: number, missed: () => readonly Change[]): void {
    if (this.revision < planned - 1) return;
    if (landed > planned) this.deliver(missed());
    if (this.revision >= landed - 1 && landed + count - 1 > this.revision) this.revision = landed + count - 1;
  }

  /**
   * Waits while this process's commits are with Redis, then one turn of the
   * event loop, in which the engine sends its next group if it has one.
   * True when it waited (the caller asks again).
   */
  private async waitedForCommits(): Promise<boolean> {
    const committing = this.settings.committing?.();
    if (committing === undefined) return false;
    await this.until(committing, 0);
    await new Promise((resolve) => setImmediate(resolve));
    return true;
  }

  private deliver(changes: readonly Change[]): void {
    for (const change of changes) {
      // Heard already with a commit of this process's.
      if (change.revision <= this.revision) continue;
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
      const connection: FollowerConnection = { client, send: senderFor(client, this.settings.keys.log), ready: Promise.resolve(), connected: false, failed: undefined };
      client.on('error', (error: unknown) => (connection.failed ??= error));
      // Following is background work: it must never keep a process alive
      // (the app's own client and server decide that).
      if (!isCluster(client)) client.unref();
      connection.ready = client.connect();
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
