#!/usr/bin/env node
/**
 * `jsonstore`: serves one JSON document over HTTP from the command line, on
 * plain node:http (Express is not needed to run it).
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer, type RequestListener, type Server } from 'node:http';
import { parseArgs } from 'node:util';
import type { JsonValue } from './document/json.js';
import { resolveOptions, type JsonStoreOptions } from './options.js';
import { normalizeOrigin, type CorsPolicy } from './http/cors.js';
import { cliApp } from './cli/app.js';
import { staticFiles, type StaticFiles } from './cli/static-files.js';
import { jsonStore } from './json-store.js';
import { continueWhenRead } from './http/expect-continue.js';
import { normalizeHostName } from './http/host.js';
import type { StorageAdapter } from './storage/types.js';
import { memoryStorage } from './storage/memory.js';
import { fileStorage } from './storage/file.js';
import { redisStorage } from './storage/redis.js';

const usage = `Usage: jsonstore [options]

Serves one JSON document over HTTP: GET, PUT, POST, PATCH and DELETE any path.

Options:
  -p, --port <n>   port to listen on (default 3000; 0 picks a free one)
  -H, --host <addr>
                   address to listen on (default 127.0.0.1)
  --allowed-host <name>
                   also answer requests for this host name (repeatable);
                   by default only localhost, 127.0.0.1, [::1] and the --host
                   address are answered, others get 421; '*' answers any
  --file <path>    keep the document in this JSON file (default ./data/store.json)
  --fsync <mode>   with a file: always (default; acknowledge writes once on
                   disk) or never (once the OS has them)
  --memory         keep the document in memory only (lost on exit)
  --redis <url>    share the document through Redis, e.g. redis://127.0.0.1:6379
  --key <name>     with --redis: the document's name in Redis (default jsonstore)
  --redis-prefix <prefix>
                   with --redis: put before the key names, e.g. app: for
                   app:{jsonstore}:meta (for ACL key patterns such as ~app:*)
  --readonly       answer every write with 405; a file store is only read
                   (no lock file, works on a read-only folder)
  --initial <file> the JSON document to start from when the storage holds
                   none (with --memory: on every start)
  --no-watch       with a file: do not pick up edits of the file made while
                   the server runs (picked up within a second by default)
  -s, --static <dir>
                   also serve the files in this folder (json-server's public/):
                   a GET or HEAD naming a file there gets the file, every
                   other request goes to the store
  --cors [origins] let web pages on other origins use the store: any origin,
                   or only these (comma-separated, e.g.
                   https://a.example,http://localhost:5173)
  --no-explorer    do not answer browsers (Accept: text/html) with the
                   explorer page
  -q, --quiet      do not log a line per request
  --limit <size>   largest request body, e.g. 1mb or 500kb (default 1mb)
  --max-document-size <size>
                   largest document a write may leave (default 100mb)
  --max-write-growth <size>
                   most JSON one write may insert, copies included
                   (default 4 times --limit)
  --max-patch-operations <n>
                   most operations in one JSON Patch (default 1000)
  -v, --version    print the version
  -h, --help       show this help
`;

interface CliOptions {
  port: number;
  /** The request log on stdout. */
  log: boolean;
  /** `--initial FILE`: read at start-up. */
  initialFile: string | undefined;
  staticDir: string | undefined;
  cors: CorsPolicy | undefined;
  explorer: boolean;
  host: string;
  /** Host names answered (normalized), or undefined for any. */
  allowedHosts: string[] | undefined;
  readOnly: boolean;
  limit: string;
  /** Budgets, passed to jsonStore() as given (it validates them); absent means its default. */
  budgets: { maxDocumentSize?: string; maxWriteGrowth?: string; maxPatchOperations?: number };
  storage: () => Promise<OpenedStorage>;
}

interface OpenedStorage {
  adapter: StorageAdapter;
  description: string;
  /** Releases what the CLI opened for the adapter (a Redis connection). */
  release?: () => Promise<void>;
}

export const defaultFile = './data/store.json';

class UsageError extends Error {}

/** `--cors` without origins means any origin; parseArgs wants a value, so it gets '*'. */
function withCorsValue(argv: string[]): string[] {
  return argv.map((arg, i) => (arg === '--cors' && (i + 1 >= argv.length || argv[i + 1]!.startsWith('-')) ? '--cors=*' : arg));
}

/** A port as people write one: decimal digits only (no '', 0x2B0C, 1e3 or 80.0). */
function parsePort(text: string | undefined): number {
  if (text === undefined) return 3000;
  const port = /^\d{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 0 && port <= 65535)) throw new UsageError(`--port must be a whole number from 0 to 65535 (0 picks a free port), got "${text}"`);
  return port;
}

function corsPolicyOf(value: string | undefined): CorsPolicy | undefined {
  if (value === undefined) return undefined;
  if (value === '*') return { origins: '*' };
  const origins = value.split(',').map((origin) => origin.trim());
  return {
    origins: origins.map((origin) => {
      const normalized = normalizeOrigin(origin);
      if (normalized === undefined) throw new UsageError(`--cors "${origin}" is not an origin; give scheme://host[:port] such as https://app.example or http://localhost:5173, several separated by commas, or --cors alone for any origin`);
      return normalized;
    }),
  };
}

export function parseCli(argv: string[]): CliOptions | 'help' | 'version' {
  let values;
  try {
    ({ values } = parseArgs({
      args: withCorsValue(argv),
      strict: true,
      allowPositionals: false,
      options: {
        // The short names are json-server's.
        port: { type: 'string', short: 'p' },
        host: { type: 'string', short: 'H' },
        'allowed-host': { type: 'string', multiple: true },
        memory: { type: 'boolean' },
        file: { type: 'string' },
        fsync: { type: 'string' },
        redis: { type: 'string' },
        key: { type: 'string' },
        'redis-prefix': { type: 'string' },
        readonly: { type: 'boolean' },
        limit: { type: 'string' },
        'max-document-size': { type: 'string' },
        'max-write-growth': { type: 'string' },
        'max-patch-operations': { type: 'string' },
        initial: { type: 'string' },
        watch: { type: 'boolean' },
        static: { type: 'string', short: 's' },
        cors: { type: 'string' },
        explorer: { type: 'boolean' },
        quiet: { type: 'boolean', short: 'q' },
        version: { type: 'boolean', short: 'v' },
        help: { type: 'boolean', short: 'h' },
      },
      allowNegative: true,
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  if (values.version) return 'version';
  const port = parsePort(values.port);
  if (values.initial === '') throw new UsageError('--initial needs a file');
  if (values.static === '') throw new UsageError('--static needs a folder');
  const readOnly = values.readonly ?? false;
  const host = values.host ?? '127.0.0.1';
  if (host === '') throw new UsageError('--host must not be empty');
  const allowedHosts = allowedHostsOf(host, values['allowed-host'] ?? []);
  const chosen = [values.memory && '--memory', values.file !== undefined && '--file', values.redis !== undefined && '--redis'].filter(Boolean);
  if (chosen.length > 1) throw new UsageError(`choose one storage: ${chosen.join(' or ')}`);
  if (values.key !== undefined && values.redis === undefined) throw new UsageError('--key goes with --redis');
  if (values['redis-prefix'] !== undefined && values.redis === undefined) throw new UsageError('--redis-prefix goes with --redis');
  if (values.file === '') throw new UsageError('--file needs a path');
  const fsync = values.fsync;
  if (fsync !== undefined && fsync !== 'always' && fsync !== 'never') throw new UsageError(`--fsync must be always or never, got "${fsync}"`);
  if (fsync !== undefined && (values.memory || values.redis !== undefined)) throw new UsageError('--fsync goes with file storage');
  let storage: () => Promise<OpenedStorage>;
  if (values.memory) {
    storage = async () => ({ adapter: memoryStorage(), description: 'memory storage (lost on exit)' });
  } else if (values.redis !== undefined) {
    const url = values.redis;
    if (!/^rediss?:\/\//.test(url)) throw new UsageError(`--redis needs a URL such as redis://127.0.0.1:6379, got "${url}"`);
    const key = values.key ?? 'jsonstore';
    if (key === '') throw new UsageError('--key must not be empty');
    // The key names put the key in braces (its Redis Cluster hash tag).
    if (/[{}]/.test(key)) throw new UsageError(`--key must not contain { or }, got "${key}"`);
    const prefix = values['redis-prefix'] ?? '';
    if (/[{}]/.test(prefix)) throw new UsageError(`--redis-prefix must not contain { or }, got "${prefix}"`);
    storage = () => openRedis(url, key, prefix);
  } else {
    const path = values.file ?? defaultFile;
    const watch = values.watch ?? true;
    storage = async () => ({
      adapter: fileStorage(path, { ...(fsync === undefined ? {} : { fsync }), readOnly, watch }),
      description: `file ${path}${fsync === 'never' ? ' (no fsync)' : ''}${watch ? ', watching it for edits' : ''}`,
    });
  }
  if (values.watch !== undefined && (values.memory || values.redis !== undefined)) throw new UsageError('--watch and --no-watch go with file storage');
  const budgets: CliOptions['budgets'] = {};
  if (values['max-document-size'] !== undefined) budgets.maxDocumentSize = values['max-document-size'];
  if (values['max-write-growth'] !== undefined) budgets.maxWriteGrowth = values['max-write-growth'];
  const operations = values['max-patch-operations'];
  if (operations !== undefined) {
    if (!/^\d+$/.test(operations) || Number(operations) < 1 || !Number.isSafeInteger(Number(operations))) {
      throw new UsageError(`--max-patch-operations must be a whole number of at least 1, got "${operations}"`);
    }
    budgets.maxPatchOperations = Number(operations);
  }
  return {
    port,
    host,
    allowedHosts,
    readOnly,
    limit: values.limit ?? '1mb',
    budgets,
    storage,
    log: !(values.quiet ?? false),
    initialFile: values.initial,
    staticDir: values.static,
    cors: corsPolicyOf(values.cors),
    explorer: values.explorer ?? true,
  };
}

/** Addresses that mean "every interface": not a name any client puts in Host. */
const unspecified = new Set(['0.0.0.0', '[::]']);

/**
 * The Host names the server answers (against DNS rebinding): loopback names,
 * the address it listens on, and those given; undefined when '*' is given.
 */
function allowedHostsOf(host: string, given: string[]): string[] | undefined {
  if (given.includes('*')) return undefined;
  const names = new Set(['localhost', '127.0.0.1', '[::1]']);
  const bound = normalizeHostName(host);
  if (bound !== undefined && !unspecified.has(bound)) names.add(bound);
  for (const name of given) {
    const normalized = normalizeHostName(name);
    if (normalized === undefined) throw new UsageError(`--allowed-host "${name}" is not a host name; give one without scheme or port, such as example.com, or '*' for any`);
    names.add(normalized);
  }
  return [...names];
}

/** Connects with the app-level `redis` package, which is an optional peer dependency. */
async function openRedis(url: string, key: string, prefix: string): Promise<OpenedStorage> {
  let createClient: (options: object) => {
    connect(): Promise<unknown>;
    on(event: 'error', listener: (error: Error) => void): unknown;
    destroy(): void;
  };
  try {
    ({ createClient } = (await import('redis')) as unknown as { createClient: typeof createClient });
  } catch {
    throw new UsageError('--redis needs the "redis" package: npm install redis');
  }
  // Fail fast while Redis is away (503s), rather than queueing requests.
  const client = createClient({ url, disableOfflineQueue: true });
  let lastError = '';
  client.on('error', (error) => {
    if (error.message !== lastError) process.stderr.write(`jsonstore: redis: ${error.message}\n`);
    lastError = error.message;
  });
  // Not awaited: while Redis is away the store answers 503 and recovers by
  // itself once the client connects, with no restart.
  client.connect().catch(() => {});
  return {
    adapter: redisStorage({ client: client as never, key, prefix }),
    description: `Redis document "${key}"${prefix === '' ? '' : ` (keys ${prefix}{${key}}:*)`} at ${url.replace(/\/\/[^@/]*@/, '//***@')}`,
    release: async () => {
      client.destroy();
    },
  };
}

/** Exits with a start-up error, printed once. */
function fail(message: string, code: 1 | 2): never {
  process.stderr.write(`jsonstore: ${message}\n`);
  if (code === 2) process.stderr.write('Run "jsonstore --help" to see the options.\n');
  process.exit(code);
}

function versionOf(): string {
  // dist/cli.js, like src/cli.ts, sits one folder below package.json.
  const text = readFileSync(new URL('../package.json', import.meta.url), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}

async function readInitial(path: string): Promise<JsonValue> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`--initial ${path}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message}`);
  }
  try {
    return JSON.parse(text) as JsonValue;
  } catch (error) {
    throw new UsageError(`--initial ${path} is not valid JSON (${(error as Error).message})`);
  }
}

/** Binds the port before any storage is opened, so a port in use leaves no ./data behind. */
function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolveListen, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolveListen();
    });
  });
}

function listenError(error: NodeJS.ErrnoException, port: number, host: string): string {
  const where = `${host.includes(':') ? `[${host}]` : host}:${port}`;
  if (error.code === 'EADDRINUSE') return `port ${port} is in use on ${host} (another jsonstore or server?); stop it, or choose another port with --port N (--port 0 picks a free one)`;
  if (error.code === 'EACCES') return `not allowed to listen on ${where} (ports below 1024 need privileges); choose another port with --port N`;
  if (error.code === 'EADDRNOTAVAIL') return `cannot listen on ${host}: this machine has no such address; see --host`;
  return `cannot listen on ${where}: ${error.message}`;
}

async function main(): Promise<void> {
  let options: CliOptions | 'help' | 'version';
  try {
    options = parseCli(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    fail(error.message, 2);
  }
  if (options === 'help') {
    process.stdout.write(usage);
    return;
  }
  if (options === 'version') {
    process.stdout.write(`${versionOf()}\n`);
    return;
  }
  const cli = options;
  let initial: JsonValue | undefined;
  let files: StaticFiles | undefined;
  try {
    if (cli.initialFile !== undefined) initial = await readInitial(cli.initialFile);
    if (cli.staticDir !== undefined) files = await staticFiles(cli.staticDir).catch((error: Error) => {
      throw new UsageError(`--static ${cli.staticDir}: ${(error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such folder' : error.message.replace(/^--static \S+ /, '')}`);
    });
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    fail(error.message, 2);
  }
  const storeOptions: JsonStoreOptions = {
    readOnly: cli.readOnly,
    explorer: cli.explorer,
    limit: cli.limit,
    ...(initial === undefined ? {} : { initial }),
    ...(cli.allowedHosts === undefined ? {} : { allowedHosts: cli.allowedHosts }),
    ...cli.budgets,
  };
  // Checked before anything is opened: a bad option is a usage error, not a half-started server.
  try {
    resolveOptions({ ...storeOptions, storage: memoryStorage() });
  } catch (error) {
    fail((error as Error).message.replace(/^jsonStore\(\): /, ''), 2);
  }

  // Requests that arrive while the storage opens wait for it.
  let resolveHandler!: (handler: RequestListener) => void;
  const handlerReady = new Promise<RequestListener>((resolveReady) => (resolveHandler = resolveReady));
  const server = createServer((req, res) => {
    void handlerReady.then((handler) => handler(req, res));
  });
  try {
    await listen(server, cli.port, cli.host);
  } catch (error) {
    fail(listenError(error as NodeJS.ErrnoException, cli.port, cli.host), 1);
  }
  server.on('error', (error) => {
    process.stderr.write(`jsonstore: ${error.message}\n`);
  });

  let opened: OpenedStorage;
  try {
    opened = await cli.storage();
  } catch (error) {
    fail((error as Error).message, error instanceof UsageError ? 2 : 1);
  }
  const { adapter, description } = opened;
  const store = jsonStore({ ...storeOptions, storage: adapter });
  // Errors of the running store, once each, without a stack (the store's own
  // fallback would print them with console.error); the start-up one is printed below.
  let starting = true;
  store.on('error', (error) => {
    if (!starting) process.stderr.write(`jsonstore: ${error instanceof Error ? error.message : String(error)}\n`);
  });
  try {
    await store.ready();
  } catch (error) {
    // A broken file will not mend itself; a shared server that is away may
    // come back, and the store recovers without a restart (503 meanwhile).
    if (!adapter.capabilities?.shared) {
      server.close();
      fail((error as Error).message, 1);
    }
    process.stderr.write(`jsonstore: ${(error as Error).message}\njsonstore: serving anyway; requests get 503 until the storage answers\n`);
  }
  starting = false;
  // Refusals (413 over --limit, 415, 405) go out before any 100 Continue.
  server.on('checkContinue', continueWhenRead(store));
  const allowed = cli.allowedHosts === undefined ? undefined : new Set(cli.allowedHosts);
  const app = cliApp({ store, files, cors: cli.cors, log: cli.log ? (line) => process.stdout.write(line) : undefined, allowedHosts: allowed });
  resolveHandler(app);

  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : cli.port;
  const host = cli.host.includes(':') ? `[${cli.host}]` : cli.host;
  const extras = [cli.readOnly && 'read-only', cli.cors && `CORS for ${cli.cors.origins === '*' ? 'any origin' : cli.cors.origins.join(', ')}`, files && `files from ${cli.staticDir}`].filter(Boolean);
  process.stdout.write(`jsonstore: serving ${description} at http://${host}:${port}/${extras.length > 0 ? ` (${extras.join('; ')})` : ''}\n`);
  if (cli.allowedHosts !== undefined && unspecified.has(normalizeHostName(cli.host) ?? '')) {
    process.stderr.write(`jsonstore: answering only requests for ${cli.allowedHosts.join(', ')}; add the names clients use with --allowed-host NAME\n`);
  }

  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`jsonstore: ${signal}, finishing pending writes\n`);
    // Closing the store first ends live streams with `cancel` (and lets
    // pending writes finish); only then are the remaining connections cut.
    const closed = new Promise<void>((resolveClosed) => server.close(() => resolveClosed()));
    store
      .close()
      .then(() => {
        server.closeIdleConnections?.();
        const grace = setTimeout(() => server.closeAllConnections?.(), 1000);
        return closed.finally(() => clearTimeout(grace));
      })
      .then(() => opened.release?.())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          process.stderr.write(`jsonstore: ${(error as Error).message}\n`);
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
}

main().catch((error: unknown) => {
  process.stderr.write(`jsonstore: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
