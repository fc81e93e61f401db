/**
 * Shared by the Redis tests: finding a Redis to test against, private
 * `redis-server` processes for tests that stop or restart Redis, child
 * processes that serve a store over HTTP, and cleanup of every key a run made.
 *
 * Discovery: `REDIS_URL` when set; else redis://127.0.0.1:6379 if it answers;
 * else a private `redis-server` on a free port if the binary is installed.
 * Without any, the suites are skipped with the reason in their name and on
 * the console, unless JSONSTORE_REQUIRE_REDIS=1, which makes them fail.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createClient } from 'redis';
import { afterAll, describe, test } from 'vitest';
export { eventually } from '../support/wait.js';

export type TestRedisClient = ReturnType<typeof createClient>;

const requireRedis = process.env.JSONSTORE_REQUIRE_REDIS === '1';

/** A unique prefix for every key this test run creates. */
export const runPrefix = `jsonstore-test:${process.pid}:${randomUUID().slice(0, 8)}`;

// ---- plumbing --------------------------------------------------------------------

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (address === null || typeof address === 'string') throw new Error('no TCP port');
  return address.port;
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether a Redis answers PING at `url`, without retrying. */
export async function redisAnswers(url: string): Promise<boolean> {
  const client = createClient({ url, socket: { connectTimeout: 1000, reconnectStrategy: false } });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.sendCommand<string>(['PING'], { timeout: 1000 })) === 'PONG';
  } catch {
    return false;
  } finally {
    if (client.isOpen) client.destroy();
  }
}

export function redisServerInstalled(): boolean {
  const result = spawnSync('redis-server', ['--version'], { stdio: 'ignore' });
  return result.error === undefined && result.status === 0;
}

// ---- private redis-server -----------------------------------------------------------

export interface PrivateRedisOptions {
  /** Append-only file with an fsync per write, in a temporary directory (what docs/redis.md recommends for durability). */
  persistent?: boolean;
  /** Extra `redis-server` arguments, such as `['--cluster-enabled', 'yes']`. */
  args?: string[];
  /** Start now (default) or only reserve the port and directory. */
  start?: boolean;
}

/** A `redis-server` of the test's own, on a free port; never the shared one. */
export class PrivateRedis {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  private readonly args: string[];
  private child: ChildProcess | undefined;
  private output = '';

  private constructor(port: number, dir: string, args: string[]) {
    this.port = port;
    this.url = `redis://127.0.0.1:${port}`;
    this.dir = dir;
    this.args = args;
  }

  static async create(options: PrivateRedisOptions = {}): Promise<PrivateRedis> {
    const dir = await mkdtemp(join(tmpdir(), 'jsonstore-redis-'));
    const durability = options.persistent
      ? ['--appendonly', 'yes', '--appendfsync', 'always', '--save', '']
      : ['--appendonly', 'no', '--save', ''];
    // A port found free can be taken by another test before redis-server binds it: then try another.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      const args = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--daemonize', 'no', ...durability, ...(options.args ?? [])];
      const redis = new PrivateRedis(port, dir, args);
      if (options.start === false) return redis;
      try {
        await redis.start();
        return redis;
      } catch (error) {
        if (attempt >= 5 || !/Address already in use/.test(redis.output)) throw error;
      }
    }
  }

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  async start(): Promise<void> {
    if (this.running) return;
    this.output = '';
    const child = spawn('redis-server', this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString()));
    child.on('error', (error) => (this.output += `\n${error.message}`));
    this.child = child;
    const deadline = Date.now() + 15_000;
    while (!(await redisAnswers(this.url))) {
      if (!this.running || Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not start:\n${this.output.slice(-2000)}`);
      await delay(50);
    }
  }

  /** Ends the server: SIGKILL models a crash (nothing flushed beyond what appendfsync wrote). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (child === undefined || !this.running) return;
    const exited = once(child, 'exit');
    child.kill(signal);
    await exited;
  }

  /** Freezes or thaws the server, which keeps its connections open but stops answering. */
  pause(paused: boolean): void {
    this.child?.kill(paused ? 'SIGSTOP' : 'SIGCONT');
  }

  async destroy(): Promise<void> {
    if (this.running) this.child?.kill('SIGCONT');
    await this.stop('SIGKILL');
    await rm(this.dir, { recursive: true, force: true });
  }
}

// ---- discovery ------------------------------------------------------------------------

type Discovery = { url: string; source: string; server?: PrivateRedis } | { skip: string };

async function discover(): Promise<Discovery> {
  const fromEnv = process.env.REDIS_URL;
  if (fromEnv) {
    if (await redisAnswers(fromEnv)) return { url: fromEnv, source: 'REDIS_URL' };
    return { skip: `REDIS_URL=${fromEnv} does not answer` };
  }
  const local = 'redis://127.0.0.1:6379';
  if (await redisAnswers(local)) return { url: local, source: 'local' };
  if (!redisServerInstalled()) return { skip: 'no Redis answers on 127.0.0.1:6379, REDIS_URL is not set and redis-server is not installed' };
  try {
    const server = await PrivateRedis.create();
    return { url: server.url, source: 'private redis-server', server };
  } catch (error) {
    return { skip: `no Redis answers on 127.0.0.1:6379 and a private redis-server did not start (${(error as Error).message})` };
  }
}

const discovery = await discover();
let discoveryCleanupRegistered = false;

/** Whether tests that start their own redis-server can run. */
export const canStartRedis = redisServerInstalled();

/**
 * Declares a suite that needs Redis. Skipped (with the reason in its name)
 * when none is available, failed instead when JSONSTORE_REQUIRE_REDIS=1.
 * `needsServerBinary`: the suite starts its own redis-server processes.
 */
export function describeRedis(name: string, body: (env: RedisTestEnv) => void, options: { needsServerBinary?: boolean } = {}): void {
  let reason = 'skip' in discovery ? discovery.skip : undefined;
  if (reason === undefined && options.needsServerBinary && !canStartRedis) reason = 'redis-server is not installed, and this suite starts its own';
  if (reason !== undefined) {
    const why = reason;
    if (requireRedis) {
      describe(name, () => {
        test(`Redis is required (JSONSTORE_REQUIRE_REDIS=1) but ${why}`, () => {
          throw new Error(`JSONSTORE_REQUIRE_REDIS=1 but ${why}`);
        });
      });
    } else {
      console.log(`[redis tests] "${name}" skipped: ${why}`);
      describe.skip(`${name} (skipped: ${why})`, () => {
        test(`needs Redis: ${why}`, () => {});
      });
    }
    return;
  }
  const found = discovery as { url: string; source: string; server?: PrivateRedis };
  if (!discoveryCleanupRegistered && found.server) {
    discoveryCleanupRegistered = true;
    afterAll(() => found.server?.destroy());
  }
  describe(name, () => {
    const env = new RedisTestEnv(found.url);
    afterAll(() => env.cleanup());
    body(env);
  });
}

// ---- per-suite resources -----------------------------------------------------------------

export interface ServerOptions {
  redisUrl?: string;
  key: string;
  initial?: unknown;
  readConsistency?: 'strong' | 'local';
  maxRetries?: number;
  commandTimeout?: number;
  /** Create the client with `disableOfflineQueue: true` (what docs/redis.md recommends). */
  disableOfflineQueue?: boolean;
}

export interface ServerProcess {
  readonly url: string;
  readonly pid: number;
  /** What the process wrote to stderr so far. */
  log(): string;
  stop(): Promise<void>;
}

const fixture = fileURLToPath(new URL('./fixtures/server.mjs', import.meta.url));
const cliPath = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

/** Keys, clients, private servers and child processes of one suite, all released by `cleanup()`. */
export class RedisTestEnv {
  readonly url: string;
  private counter = 0;
  private readonly clients: TestRedisClient[] = [];
  private readonly closers: Array<() => Promise<unknown>> = [];
  private readonly servers: PrivateRedis[] = [];

  constructor(url: string) {
    this.url = url;
  }

  /** A fresh document name under this run's prefix. */
  key(label = 'doc'): string {
    this.counter += 1;
    return `${runPrefix}:${label}:${this.counter}`;
  }

  /** A connected client (to `url`, default the discovered Redis), destroyed at cleanup. */
  async client(url = this.url, options: { disableOfflineQueue?: boolean } = {}): Promise<TestRedisClient> {
    const client = createClient({ url, disableOfflineQueue: options.disableOfflineQueue ?? false });
    client.on('error', () => {});
    this.clients.push(client);
    await client.connect();
    return client;
  }

  /** A client that is not connected yet (for Redis that is down); connection attempts run in the background. */
  lazyClient(url: string, options: { disableOfflineQueue?: boolean } = {}): TestRedisClient {
    const client = createClient({ url, disableOfflineQueue: options.disableOfflineQueue ?? false });
    client.on('error', () => {});
    this.clients.push(client);
    client.connect().catch(() => {});
    return client;
  }

  /** Runs `close` at cleanup (stores, adapters). */
  defer(close: () => Promise<unknown>): void {
    this.closers.push(close);
  }

  async privateRedis(options?: PrivateRedisOptions): Promise<PrivateRedis> {
    const server = await PrivateRedis.create(options);
    this.servers.push(server);
    return server;
  }

  /** A child process serving a store over HTTP (test/redis/fixtures/server.mjs, using the built dist/). */
  async server(options: ServerOptions): Promise<ServerProcess> {
    const child = spawn(process.execPath, [fixture], {
      env: { ...process.env, JSONSTORE_FIXTURE: JSON.stringify({ redisUrl: this.url, ...options }) },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const stop = this.stopper(child);
    const port = await readiness(child, /listening (\d+)/, (why) => `server fixture ${why}:\n${stderr}`);
    return { url: `http://127.0.0.1:${port}`, pid: child.pid ?? 0, log: () => stderr, stop };
  }

  /** The jsonstore command (the built dist/cli.js) with `args`; resolves once it serves. */
  async cli(args: string[]): Promise<ServerProcess> {
    const child = spawn(process.execPath, [cliPath, '--port', '0', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const stop = this.stopper(child);
    const url = await readiness(child, /at (http:\/\/\S+?)\/?(?:\s|$)/, (why) => `jsonstore ${args.join(' ')} ${why}:\n${output}`);
    return { url, pid: child.pid ?? 0, log: () => output, stop };
  }

  /** Stops `child` at cleanup (or earlier): SIGTERM, then SIGKILL if it lingers. */
  private stopper(child: ChildProcess): () => Promise<void> {
    const stop = async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    };
    this.closers.push(stop);
    return stop;
  }

  async cleanup(): Promise<void> {
    for (const close of this.closers.reverse()) await close().catch(() => {});
    for (const client of this.clients) if (client.isOpen) client.destroy();
    for (const server of this.servers) await server.destroy();
    await deleteRunKeys(this.url);
  }
}

/**
 * Resolves with the first group of `pattern` once the child's stdout matches
 * it (its readiness line); rejects if the child exits first, or after a
 * generous guard against a hang.
 */
function readiness(child: ChildProcess, pattern: RegExp, failure: (why: string) => string): Promise<string> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    // 60 s: on a 2-core machine shared with other jobs, starting four Node processes at once has taken more than 15 s.
    const timer = setTimeout(() => reject(new Error(failure('did not start'))), 60_000);
    child.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = pattern.exec(stdout);
      if (match) {
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(failure(`exited with code ${code}`)));
    });
  });
}

/** Deletes every key this run created on the Redis at `url`, with or without a prefix. */
export async function deleteRunKeys(url: string): Promise<void> {
  const client = createClient({ url, socket: { reconnectStrategy: false } });
  client.on('error', () => {});
  try {
    await client.connect();
    const pattern = `*{${runPrefix}:*`;
    let cursor = '0';
    do {
      const [next, keys] = (await client.sendCommand(['SCAN', cursor, 'MATCH', pattern, 'COUNT', '1000'])) as [string, string[]];
      cursor = next;
      if (keys.length > 0) await client.sendCommand(['DEL', ...keys]);
    } while (cursor !== '0');
  } catch {
    // The server may be gone already (private servers); nothing to clean then.
  } finally {
    if (client.isOpen) client.destroy();
  }
}

/** Reads a response as JSON, with its status and content type. */
export async function fetchJson(url: string, init?: RequestInit): Promise<{ status: number; type: string; etag: string | null; body: unknown }> {
  const response = await fetch(url, init);
  const text = await response.text();
  let body: unknown = text;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    // Not JSON: keep the text for the assertion message.
  }
  return { status: response.status, type: response.headers.get('content-type') ?? '', etag: response.headers.get('etag'), body };
}
