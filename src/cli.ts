#!/usr/bin/env node
/**
 * `jsonstore`: serves one JSON document over HTTP from the command line, on
 * plain node:http (Express is not needed to run it).
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
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
  --port <n>       port to listen on (default 3000; 0 picks a free one)
  --host <addr>    address to listen on (default 127.0.0.1)
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
  --readonly       answer every write with 405
  --limit <size>   largest request body, e.g. 1mb or 500kb (default 1mb)
  --max-document-size <size>
                   largest document a write may leave (default 100mb)
  --max-write-growth <size>
                   most JSON one write may insert, copies included
                   (default 4 times --limit)
  --max-patch-operations <n>
                   most operations in one JSON Patch (default 1000)
  -h, --help       show this help
`;

interface CliOptions {
  port: number;
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

export function parseCli(argv: string[]): CliOptions | 'help' {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
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
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (values.help) return 'help';
  const port = values.port === undefined ? 3000 : Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError(`--port must be a whole number from 0 to 65535, got "${values.port}"`);
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
    storage = async () => ({
      adapter: fileStorage(path, fsync === undefined ? {} : { fsync }),
      description: `file ${path}${fsync === 'never' ? ' (no fsync)' : ''}`,
    });
  }
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
  return { port, host, allowedHosts, readOnly: values.readonly ?? false, limit: values.limit ?? '1mb', budgets, storage };
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

async function main(): Promise<void> {
  let options: CliOptions | 'help';
  try {
    options = parseCli(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`jsonstore: ${error.message}\nRun "jsonstore --help" to see the options.\n`);
    process.exit(2);
  }
  if (options === 'help') {
    process.stdout.write(usage);
    return;
  }
  let opened: OpenedStorage;
  try {
    opened = await options.storage();
  } catch (error) {
    process.stderr.write(`jsonstore: ${(error as Error).message}\n`);
    process.exit(error instanceof UsageError ? 2 : 1);
  }
  const { adapter, description } = opened;
  let store;
  try {
    store = jsonStore({
      storage: adapter,
      readOnly: options.readOnly,
      limit: options.limit,
      ...(options.allowedHosts === undefined ? {} : { allowedHosts: options.allowedHosts }),
      ...options.budgets,
    });
  } catch (error) {
    process.stderr.write(`jsonstore: ${(error as Error).message.replace(/^jsonStore\(\): /, '')}\n`);
    process.exit(2);
  }
  try {
    await store.ready();
  } catch (error) {
    process.stderr.write(`jsonstore: ${(error as Error).message}\n`);
    // A broken file will not mend itself; a shared server that is away may
    // come back, and the store recovers without a restart (503 meanwhile).
    if (!adapter.capabilities?.shared) process.exit(1);
    process.stderr.write('jsonstore: serving anyway; requests get 503 until the storage answers\n');
  }
  const server = createServer(store);
  // Refusals (413 over --limit, 415, 405) go out before any 100 Continue.
  server.on('checkContinue', continueWhenRead(store));
  server.on('error', (error) => {
    process.stderr.write(`jsonstore: ${error.message}\n`);
    process.exit(1);
  });
  server.listen(options.port, options.host, () => {
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : options.port;
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    process.stdout.write(`jsonstore: serving ${description} at http://${host}:${port}/${options.readOnly ? ' (read-only)' : ''}\n`);
    if (options.allowedHosts !== undefined && unspecified.has(normalizeHostName(options.host) ?? '')) {
      process.stderr.write(`jsonstore: answering only requests for ${options.allowedHosts.join(', ')}; add the names clients use with --allowed-host NAME\n`);
    }
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`jsonstore: ${signal}, finishing pending writes\n`);
    server.close();
    server.closeAllConnections?.();
    store
      .close()
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
