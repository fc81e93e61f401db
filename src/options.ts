/**
 * The options of `jsonStore()`, validated once when the store is created:
 * a bad option is a `TypeError` that names it, never a failing request.
 */
import type { JsonValue } from './document/json.js';
import { inspectJson } from './document/inspect.js';
import { memoryStorage } from './storage/memory.js';
import { normalizeHostName } from './http/host.js';
import { optionChecks } from './option-checks.js';
import type { StorageAdapter } from './storage/types.js';
import { resolveLiveOptions, type LiveOptions, type ResolvedLiveOptions } from './live/options.js';

export interface JsonStoreOptions {
  /** The document a new store starts from (when storage holds none). Default `{}`. Any JSON value. */
  initial?: JsonValue;
  /** Where the document is kept. Default `memoryStorage()`. */
  storage?: StorageAdapter;
  /** Largest request body: bytes, or a string such as `'1mb'` or `'500kb'`. Default `'1mb'`. */
  limit?: number | string;
  /** Answer every write with 405. Default `false`. */
  readOnly?: boolean;
  /**
   * Answer browsers (a GET whose Accept prefers text/html) with the explorer
   * page: the value as a tree, editable through this API. Default `false`.
   */
  explorer?: boolean;
  /** Deepest nesting a write may create (path plus value), and a body may have. Default 100, at most 1000. */
  maxDepth?: number;
  /** Refuse writes without `If-Match` or `If-None-Match` with 428. Default `false`. */
  requirePreconditions?: boolean;
  /**
   * Shared storage: how many times a write refused as stale is retried
   * before 503. Default: no count; retried until the request's time (the
   * storage's `requestTimeout`, Redis' `commandTimeout`) runs out, or 10
   * times for storage without one. Set it only to make writes give up sooner.
   */
  maxRetries?: number;
  /**
   * Shared storage: `'strong'` (default) checks the latest revision before each
   * read, so no client reads older data than it wrote through another process;
   * `'local'` serves the local copy without that round trip.
   */
  readConsistency?: 'strong' | 'local';
  /**
   * Answer only requests whose `Host` is one of these names (any port), and
   * others with 421: the defence against DNS rebinding for a store reachable
   * from a browser. E.g. `['localhost', '127.0.0.1', '[::1]']`. Default: any host.
   */
  allowedHosts?: readonly string[];
  /** Most operations one JSON Patch document may have; more is 413 before any is planned. Default 1000. */
  maxPatchOperations?: number;
  /**
   * Most one write may insert, in bytes of compact JSON: the values it adds or
   * replaces and the values it copies (measured before they are copied); moves
   * and removals insert nothing. Bytes or a size string. Default 4 × `limit`.
   */
  maxWriteGrowth?: number | string;
  /**
   * Largest document, in bytes of compact JSON. A write that would leave the
   * document larger than this, and larger than it was, is 413; writes that
   * shrink an oversized document are accepted. Bytes or a size string. Default `'100mb'`.
   */
  maxDocumentSize?: number | string;
  /**
   * Milliseconds a write's `Idempotency-Key` is remembered: a retry with the
   * same key within this time gets the first answer instead of writing again.
   * Default 86 400 000 (24 hours).
   */
  idempotencyWindow?: number;
  /** Most idempotency keys remembered; beyond it the oldest are forgotten first. Default 10 000. */
  idempotencyKeys?: number;
  /** Live updates over Server-Sent Events (`Accept: text/event-stream`): their limits, or `false` for none. Default on. */
  live?: LiveOptions | boolean;
}

export interface ResolvedOptions {
  initial: JsonValue;
  storage: StorageAdapter;
  limit: number;
  readOnly: boolean;
  explorer: boolean;
  maxDepth: number;
  requirePreconditions: boolean;
  maxRetries: number | undefined;
  readConsistency: 'strong' | 'local';
  /** Normalized names (see normalizeHostName), or undefined for any host. */
  allowedHosts: ReadonlySet<string> | undefined;
  maxPatchOperations: number;
  maxWriteGrowth: number;
  maxDocumentSize: number;
  idempotencyWindow: number;
  idempotencyKeys: number;
  /** `undefined`: streams are off. */
  live: ResolvedLiveOptions | undefined;
}

const known = [
  'initial',
  'storage',
  'limit',
  'readOnly',
  'explorer',
  'maxDepth',
  'requirePreconditions',
  'maxRetries',
  'readConsistency',
  'allowedHosts',
  'maxPatchOperations',
  'maxWriteGrowth',
  'maxDocumentSize',
  'idempotencyWindow',
  'idempotencyKeys',
  'live',
];

const maxMaxDepth = 1000;

const checks = optionChecks('jsonStore()');

function fail(message: string): never {
  return checks.fail(message);
}

/** What one write may insert by default, per byte of `limit`: a full-size body with room to spare, and no doubling. */
const growthPerLimitByte = 4;
const defaultMaxDocumentSize = 100 * 1024 * 1024;
const defaultIdempotencyWindow = 24 * 60 * 60 * 1000;
const maxIdempotencyKeys = 1_000_000;

export function resolveOptions(options: JsonStoreOptions | undefined): ResolvedOptions {
  if (options === undefined) options = {};
  checks.knownOptions(options, known);
  // Past about 1500 levels V8 cannot copy or serialize a value (stack overflow), so deeper is never safe.
  const maxDepth = checks.wholeNumber('maxDepth', options.maxDepth, 100, { max: maxMaxDepth });

  // `null` is a JSON value like any other; only a missing `initial` means `{}`.
  const initial = options.initial === undefined ? {} : options.initial;
  // One walk: plain JSON, depth and size (the store takes the size from it, and does not copy `initial`).
  const inspected = inspectJson(initial, maxDepth);
  if (inspected.reason !== undefined) fail(`option "initial" must be a JSON value: ${inspected.reason}`);
  if (inspected.tooDeep) fail(`option "initial" nests deeper than maxDepth (${maxDepth})`);

  const storage = options.storage === undefined ? memoryStorage() : options.storage;
  if (typeof storage !== 'object' || storage === null || typeof storage.load !== 'function' || typeof storage.commit !== 'function') {
    fail('option "storage" must be a storage adapter: an object with load() and commit() methods');
  }

  const limit = checks.size('limit', options.limit, 1024 * 1024);
  const readOnly = checks.boolean('readOnly', options.readOnly, false);
  const explorer = checks.boolean('explorer', options.explorer, false);
  const requirePreconditions = checks.boolean('requirePreconditions', options.requirePreconditions, false);
  // No default count: see DocumentStoreOptions.maxRetries.
  const maxRetries = options.maxRetries === undefined ? undefined : checks.wholeNumber('maxRetries', options.maxRetries, 0, { min: 0 });
  const readConsistency = checks.oneOf('readConsistency', options.readConsistency, ['strong', 'local'] as const, 'strong');

  let allowedHosts: Set<string> | undefined;
  if (options.allowedHosts !== undefined) {
    if (!Array.isArray(options.allowedHosts) || options.allowedHosts.length === 0) {
      fail(`option "allowedHosts" must be a non-empty array of host names such as ['localhost', 'example.com']; leave it out to answer any host`);
    }
    allowedHosts = new Set();
    for (const name of options.allowedHosts as unknown[]) {
      const normalized = typeof name === 'string' ? normalizeHostName(name) : undefined;
      if (normalized === undefined) {
        const hint = name === '*' ? '; leave the option out to answer any host' : ' without a scheme, port or path, such as example.com or [::1]';
        fail(`option "allowedHosts": ${JSON.stringify(name)} is not a host name${hint}`);
      }
      allowedHosts.add(normalized);
    }
  }

  const maxPatchOperations = checks.wholeNumber('maxPatchOperations', options.maxPatchOperations, 1000);
  const maxWriteGrowth = checks.size('maxWriteGrowth', options.maxWriteGrowth, growthPerLimitByte * limit);
  const maxDocumentSize = checks.size('maxDocumentSize', options.maxDocumentSize, defaultMaxDocumentSize);
  // Checked once here, like maxDepth; a stored document over the limit still loads (only growing writes are refused).
  if (inspected.size > maxDocumentSize) {
    fail(`option "initial" is larger than maxDocumentSize (${maxDocumentSize} bytes of JSON)`);
  }

  const idempotencyWindow = checks.wholeNumber('idempotencyWindow', options.idempotencyWindow, defaultIdempotencyWindow, {
    unit: 'milliseconds',
    example: 'such as 86400000 for 24 hours',
  });
  // Each key costs a few hundred bytes in memory and in storage.
  const idempotencyKeys = checks.wholeNumber('idempotencyKeys', options.idempotencyKeys, 10_000, { max: maxIdempotencyKeys });

  return {
    initial,
    storage,
    limit,
    readOnly,
    explorer,
    maxDepth,
    requirePreconditions,
    maxRetries,
    readConsistency,
    allowedHosts,
    maxPatchOperations,
    maxWriteGrowth,
    maxDocumentSize,
    idempotencyWindow,
    idempotencyKeys,
    live: resolveLiveOptions(options.live),
  };
}
