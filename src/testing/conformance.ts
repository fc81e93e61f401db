/**
 * `storageConformance()`: the shared test suite every storage adapter should
 * pass. Runner-agnostic: it registers its cases with the runner's own `test`
 * function and asserts with `node:assert/strict`.
 */
import { caseDefinitions, type CaseDefinition } from './cases/index.js';
import { CaseContext } from './context.js';
import { checkOptions, checkSetup, type ConformanceOptions, type ConformanceSetup } from './options.js';
import type { StorageAdapter } from '../storage/types.js';

/** One case, ready to run: what `storageConformance` hands to `test`. */
export interface ConformanceCase {
  /** The test name, prefixed with the `name` option. */
  readonly name: string;
  /**
   * Runs the case: opens adapters, asserts, then closes every adapter it
   * opened and calls `cleanup`, pass or fail. Rejects when the adapter fails
   * the case, with the assertion that failed.
   */
  run(): Promise<void>;
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function runCase(setup: ConformanceSetup, definition: CaseDefinition): Promise<void> {
  const context = new CaseContext(setup);
  let failure: { error: unknown } | undefined;
  try {
    await definition.run(context);
  } catch (error) {
    failure = { error };
  }
  const teardownErrors = await context.finish();
  if (failure) {
    // What the stores reported (a load that failed, say) often explains the failure.
    if (failure.error instanceof Error && context.storeErrors.length > 0) {
      failure.error.message += `\nThe store also reported: ${context.storeErrors.map(describeError).join('; ')}`;
    }
    throw failure.error;
  }
  if (teardownErrors.length === 1) {
    throw new Error(`Closing the adapters or cleaning up after the case failed: ${describeError(teardownErrors[0])}`, { cause: teardownErrors[0] });
  }
  if (teardownErrors.length > 1) {
    throw new AggregateError(teardownErrors, `Closing the adapters or cleaning up after the case failed: ${teardownErrors.map(describeError).join('; ')}`);
  }
}

/**
 * The suite's cases for these options, each runnable on its own: to run
 * them under a runner `storageConformance` does not fit, or to check that a
 * broken adapter fails one.
 */
export function conformanceCases<Adapter extends StorageAdapter>(setup: ConformanceSetup<Adapter>): ConformanceCase[] {
  // `test` is allowed (and unused) so one options object serves both functions.
  const checked = checkSetup(setup, 'conformanceCases()', ['test']);
  const prefix = checked.name ? `${checked.name}: ` : '';
  return caseDefinitions(checked).map((definition) => ({
    name: prefix + definition.title,
    run: () => runCase(checked, definition),
  }));
}

/**
 * Registers the conformance suite with the runner, one `test` per case:
 *
 * ```ts
 * storageConformance({
 *   test,
 *   name: 'my storage',
 *   factory: () => myStorage(freshPath()),
 *   reopen: (closed) => myStorage(closed.path),
 * });
 * ```
 *
 * Options are checked now: a bad one throws a `TypeError` that names it.
 */
export function storageConformance<Adapter extends StorageAdapter>(options: ConformanceOptions<Adapter>): void {
  const { test, ...setup } = checkOptions(options, 'storageConformance()');
  for (const conformanceCase of conformanceCases(setup)) {
    test(conformanceCase.name, () => conformanceCase.run());
  }
}
