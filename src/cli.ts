#!/usr/bin/env node
/**
 * `jsonstore`: serves one JSON document over HTTP from the command line, on
 * plain node:http (Express is not needed to run it).
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { jsonStore } from './json-store.js';
import type { StorageAdapter } from './storage/types.js';
import { memoryStorage } from './storage/memory.js';

const usage = `Usage: jsonstore [options]

Serves one JSON document over HTTP: GET, PUT, POST, PATCH and DELETE any path.

Options:
  --port <n>       port to listen on (default 3000; 0 picks a free one)
  --host <addr>    address to listen on (default 127.0.0.1)
  --memory         keep the document in memory only
  --readonly       answer every write with 405
  --limit <size>   largest request body, e.g. 1mb or 500kb (default 1mb)
  -h, --help       show this help
`;

interface CliOptions {
  port: number;
  host: string;
  readOnly: boolean;
  limit: string;
  storage: () => Promise<{ adapter: StorageAdapter; description: string }>;
}

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
        memory: { type: 'boolean' },
        readonly: { type: 'boolean' },
        limit: { type: 'string' },
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
  return {
    port,
    host,
    readOnly: values.readonly ?? false,
    limit: values.limit ?? '1mb',
    storage: async () => ({ adapter: memoryStorage(), description: 'memory storage' }),
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
  const { adapter, description } = await options.storage();
  let store;
  try {
    store = jsonStore({ storage: adapter, readOnly: options.readOnly, limit: options.limit });
  } catch (error) {
    process.stderr.write(`jsonstore: ${(error as Error).message.replace(/^jsonStore\(\): /, '')}\n`);
    process.exit(2);
  }
  try {
    await store.ready();
  } catch (error) {
    process.stderr.write(`jsonstore: ${(error as Error).message}\n`);
    process.exit(1);
  }
  const server = createServer(store);
  server.on('error', (error) => {
    process.stderr.write(`jsonstore: ${error.message}\n`);
    process.exit(1);
  });
  server.listen(options.port, options.host, () => {
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : options.port;
    const host = options.host.includes(':') ? `[${options.host}]` : options.host;
    process.stdout.write(`jsonstore: serving ${description} at http://${host}:${port}/${options.readOnly ? ' (read-only)' : ''}\n`);
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`jsonstore: ${signal}, finishing pending writes\n`);
    server.close();
    server.closeAllConnections?.();
    store.close().then(
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
