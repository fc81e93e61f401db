/**
 * The options of `jsonStore()`, validated once when the store is created:
 * a bad option is a `TypeError` that names it, never a failing request.
 */
import bytes from 'bytes';
import { depthOf, invalidJsonReason, type JsonValue } from './document/json.js';
import { memoryStorage } from './storage/memory.js';
import type { StorageAdapter } from './storage/types.js';

export interface JsonStoreOptions {
  /** The document a new store starts from (when storage holds none). Default `{}`. Any JSON value. */
  initial?: JsonValue;
  /** Where the document is kept. Default `memoryStorage()`. */
  storage?: StorageAdapter;
  /** Largest request body: bytes, or a string such as `'1mb'` or `'500kb'`. Default `'1mb'`. */
  limit?: number | string;
  /** Answer every write with 405. Default `false`. */
  readOnly?: boolean;
  /** Deepest nesting a write may create (path plus value), and a body may have. Default 100, at most 1000. */
  maxDepth?: number;
  /** Refuse writes without `If-Match` or `If-None-Match` with 428. Default `false`. */
  requirePreconditions?: boolean;
  /** Shared storage: how many times a write refused as stale is retried before 503. Default 10. */
  maxRetries?: number;
  /**
   * Shared storage: `'strong'` (default) checks the latest revision before each
   * read, so no client reads older data than it wrote through another process;
   * `'local'` serves the local copy without that round trip.
   */
  readConsistency?: 'strong' | 'local';
}

export interface ResolvedOptions {
  initial: JsonValue;
  storage: StorageAdapter;
  limit: number;
  readOnly: boolean;
  maxDepth: number;
  requirePreconditions: boolean;
  maxRetries: number;
  readConsistency: 'strong' | 'local';
}

const known = ['initial', 'storage', 'limit', 'readOnly', 'maxDepth', 'requirePreconditions', 'maxRetries', 'readConsistency'];

const maxMaxDepth = 1000;

const sizePattern = /^\s*\d+(?:\.\d+)?\s*(?:b|kb|mb|gb|tb|pb)?\s*$/i;

function fail(message: string): never {
  throw new TypeError(`jsonStore(): ${message}`);
}

function isNonNegativeInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

export function resolveOptions(options: JsonStoreOptions | undefined): ResolvedOptions {
  if (options === undefined) options = {};
  if (typeof options !== 'object' || options === null || Array.isArray(options)) fail('options must be an object');
  for (const key of Object.keys(options)) {
    if (!known.includes(key)) fail(`unknown option "${key}"; the options are ${known.join(', ')}`);
  }

  const maxDepth = options.maxDepth === undefined ? 100 : options.maxDepth;
  // Past about 1500 levels V8 cannot copy or serialize a value (stack overflow), so deeper is never safe.
  if (!isNonNegativeInteger(maxDepth) || maxDepth < 1 || maxDepth > maxMaxDepth) {
    fail(`option "maxDepth" must be an integer from 1 to ${maxMaxDepth}, got ${String(options.maxDepth)}`);
  }

  // `null` is a JSON value like any other; only a missing `initial` means `{}`.
  const initial = options.initial === undefined ? {} : options.initial;
  const reason = invalidJsonReason(initial);
  if (reason !== undefined) fail(`option "initial" must be a JSON value: ${reason}`);
  if (depthOf(initial, maxDepth) > maxDepth) fail(`option "initial" nests deeper than maxDepth (${maxDepth})`);

  const storage = options.storage === undefined ? memoryStorage() : options.storage;
  if (typeof storage !== 'object' || storage === null || typeof storage.load !== 'function' || typeof storage.commit !== 'function') {
    fail('option "storage" must be a storage adapter: an object with load() and commit() methods');
  }

  let limit: number;
  if (options.limit === undefined) limit = 1024 * 1024;
  else if (typeof options.limit === 'number') limit = options.limit;
  // bytes.parse() reads '12xyz' as 12 and '1kb2' as 1; accept only a number and a unit.
  else if (typeof options.limit === 'string') limit = sizePattern.test(options.limit) ? (bytes.parse(options.limit.trim()) ?? Number.NaN) : Number.NaN;
  else limit = Number.NaN;
  if (!isNonNegativeInteger(limit) || limit < 1) {
    fail(`option "limit" must be a positive number of bytes or a size such as '1mb', got ${JSON.stringify(options.limit)}`);
  }

  for (const flag of ['readOnly', 'requirePreconditions'] as const) {
    if (options[flag] !== undefined && typeof options[flag] !== 'boolean') fail(`option "${flag}" must be true or false`);
  }
  const maxRetries = options.maxRetries === undefined ? 10 : options.maxRetries;
  if (!isNonNegativeInteger(maxRetries)) fail(`option "maxRetries" must be a non-negative integer, got ${String(options.maxRetries)}`);
  const readConsistency = options.readConsistency === undefined ? 'strong' : options.readConsistency;
  if (readConsistency !== 'strong' && readConsistency !== 'local') fail(`option "readConsistency" must be 'strong' or 'local'`);

  return {
    initial,
    storage,
    limit,
    readOnly: options.readOnly ?? false,
    maxDepth,
    requirePreconditions: options.requirePreconditions ?? false,
    maxRetries,
    readConsistency,
  };
}
