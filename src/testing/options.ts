/**
 * The options of the storage conformance suite, checked when the suite is
 * set up so a mistake is a `TypeError` naming the option, not 40 failing tests.
 */
import { optionChecks, shown } from '../option-checks.js';
import type { StorageAdapter } from '../storage/types.js';

type MaybePromise<T> = T | Promise<T>;

/**
 * What every case needs to open, reopen and clean up storage. `Adapter` is
 * what `factory` returns, so `reopen`, `peer` and `cleanup` see its own
 * properties (such as a `path`) without a cast.
 */
export interface ConformanceSetup<Adapter extends StorageAdapter = StorageAdapter> {
  /** Prefix for test names, e.g. 'file storage'. */
  name?: string;
  /** A new adapter on fresh, empty storage (each call independent). */
  factory: () => MaybePromise<Adapter>;
  /**
   * A new adapter on the same stored data as `closed`, which the suite has
   * closed (close() awaited). Omit for storage that does not outlive its
   * adapter; persistence cases are then reported as skipped via a test whose
   * name says so.
   */
  reopen?: (closed: Adapter) => MaybePromise<Adapter>;
  /** Shared adapters only: a second adapter on the same data, open at the same time (another process's view). */
  peer?: (adapter: Adapter) => MaybePromise<Adapter>;
  /** Called after each case with every adapter the case opened (already closed), to delete files/keys. */
  cleanup?: (adapters: Adapter[]) => MaybePromise<void>;
}

export interface ConformanceOptions<Adapter extends StorageAdapter = StorageAdapter> extends ConformanceSetup<Adapter> {
  /** The runner's test function: vitest/bun `test`, node:test `test`, mocha `it`. */
  test: (name: string, fn: () => void | Promise<void>) => unknown;
}

const setupKeys = ['name', 'factory', 'reopen', 'peer', 'cleanup'];

/** Checks everything but `test`; `caller` names the function in messages. */
export function checkSetup(options: unknown, caller: string, extraKeys: readonly string[] = []): ConformanceSetup {
  const checks = optionChecks(caller);
  const record = checks.knownOptions(options, [...extraKeys, ...setupKeys], ' such as { test, factory }');
  checks.func('factory', record['factory'], 'a function returning a new adapter on fresh, empty storage');
  if (record['name'] !== undefined && typeof record['name'] !== 'string') {
    checks.fail(`option "name" must be a string, the prefix of every test name, got ${shown(record['name'])}`);
  }
  for (const key of ['reopen', 'peer', 'cleanup'] as const) {
    if (record[key] !== undefined) checks.func(key, record[key]);
  }
  return record as unknown as ConformanceSetup;
}

export function checkOptions(options: unknown, caller: string): ConformanceOptions {
  if (typeof options === 'object' && options !== null) {
    optionChecks(caller).func('test', (options as { test?: unknown }).test, "the test runner's test function (vitest or bun `test`, node:test `test`, mocha `it`)");
  }
  return checkSetup(options, caller, ['test']) as ConformanceOptions;
}
