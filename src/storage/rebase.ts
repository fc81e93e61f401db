/**
 * What the engine needs to let shared storage commit a change made on an
 * older revision (`capabilities.rebase`): the paths a write touches, reading
 * the adapter's answer, and how long a write refused as stale is retried.
 * Pure: no I/O.
 */
import type { PatchOperation } from '../document/patch-types.js';
import { toPointer, type Path } from '../document/path.js';
import { touchedPaths, type TouchedPaths } from '../document/touched-paths.js';
import type { RebasedCommit } from './types.js';

/** Retries of a write refused as stale when neither `maxRetries` nor a request deadline bounds them. */
export const defaultMaxRetries = 10;

/**
 * What a planned write touches: what its operations write, what its `test`
 * operations read (`planned` has them, `applied` has appends at their real
 * index), and the pointer its precondition checked.
 */
export function touchesOf(
  planned: readonly PatchOperation[],
  applied: readonly PatchOperation[],
  guard: { readonly path: Path; readonly precondition?: unknown } | undefined,
): TouchedPaths {
  const checked = guard?.precondition === undefined ? [] : [toPointer(guard.path)];
  return touchedPaths([...planned, ...applied], checked);
}

/** Whether `commit` resolved with a `RebasedCommit`. */
export function isRebasedCommit(value: unknown): value is RebasedCommit {
  return (
    typeof value === 'object' &&
    value !== null &&
    Number.isSafeInteger((value as RebasedCommit).revision) &&
    Array.isArray((value as RebasedCommit).missed)
  );
}

/**
 * Whether a write refused as stale `attempt + 1` times is done again:
 * `maxRetries` times when it is set; else until the request's deadline (a
 * count would refuse writes that only lost races, however healthy storage
 * is), or `defaultMaxRetries` times for storage without a `requestTimeout`.
 */
export function mayRetryConflict(maxRetries: number | undefined, attempt: number, deadline: number | undefined): boolean {
  if (maxRetries !== undefined) return attempt < maxRetries;
  if (deadline !== undefined) return performance.now() < deadline;
  return attempt < defaultMaxRetries;
}
