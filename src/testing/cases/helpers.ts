/** What the cases share: their shape, and assertions about what storage holds. */
import assert from 'node:assert/strict';
import type { JsonValue } from '../../document/json.js';
import type { PatchOperation } from '../../document/patch-types.js';
import { RevisionConflictError } from '../../errors.js';
import type { JsonStore } from '../../json-store.js';
import type { Change, StorageAdapter, StoredDocument } from '../../storage/types.js';
import { assertSameJson } from '../assert-json.js';
import type { CaseContext } from '../context.js';
import { isThenable } from '../../is-thenable.js';

export interface CaseDefinition {
  /** The test name, without the suite's prefix. */
  readonly title: string;
  run(context: CaseContext): Promise<void>;
}

/** Asserts that `stored` is `document` at `revision`. */
export function assertStoredDocument(stored: StoredDocument | undefined | null, document: JsonValue, revision: number, what: string): void {
  assert.ok(stored !== undefined && stored !== null, `${what}: load() returned nothing after ${revision} committed change(s)`);
  assert.equal(stored.revision, revision, `${what}: load() says revision ${String(stored.revision)} after ${revision} committed change(s)`);
  assertSameJson(stored.document, document, `${what}: the stored document differs`);
}

/**
 * Asserts that the store holds `expected` and that storage, read back
 * through a reopened adapter (or the live one), holds it too at the store's
 * revision. With `reopen` this closes `store`.
 */
export async function assertReadBack(context: CaseContext, store: JsonStore, expected: JsonValue, what: string): Promise<void> {
  assertSameJson(await store.get(), expected, `${what}: the store's own document (before reading back) differs`);
  const revision = store.store.revision;
  assertStoredDocument(await context.readBack(store), expected, revision, what);
}

/** A change for calling `commit` directly, with the whole document when the adapter asks for it. */
export function changeFor(adapter: StorageAdapter, revision: number, ops: PatchOperation[], document: JsonValue): Change {
  return adapter.capabilities?.wholeDocument ? { revision, ops, document } : { revision, ops };
}

/** Runs a call that may throw or reject, as a promise. */
export function attempt<T>(call: () => T | Promise<T>): Promise<T> {
  return Promise.resolve().then(call);
}

/**
 * An adapter that forwards everything to `adapter` (called on it, so class
 * instances keep their `this`) but commits through `commit`.
 */
export function forwardingAdapter(adapter: StorageAdapter, commit: (change: Change) => ReturnType<StorageAdapter['commit']>): StorageAdapter {
  const { changesSince, currentRevision, watch } = adapter;
  return {
    ...(adapter.name === undefined ? {} : { name: adapter.name }),
    ...(adapter.capabilities === undefined ? {} : { capabilities: adapter.capabilities }),
    load: () => adapter.load(),
    commit,
    ...(changesSince && { changesSince: (revision: number) => changesSince.call(adapter, revision) }),
    ...(currentRevision && { currentRevision: () => currentRevision.call(adapter) }),
    ...(watch && { watch: (onChange: (change: Change) => void, onError: (error: unknown) => void) => watch.call(adapter, onChange, onError) }),
    close: () => adapter.close?.(),
  };
}


/** Changes what a change held, the way the engine may once the adapter is done with it. */
function scramble(change: Change): void {
  const ops = change.ops as PatchOperation[];
  for (const op of ops) {
    if (!('value' in op)) continue;
    const value: unknown = op.value;
    if (Array.isArray(value)) value.push('changed after commit');
    else if (typeof value === 'object' && value !== null) (value as Record<string, JsonValue>)['changedAfterCommit'] = true;
    op.value = { changedAfterCommit: true };
  }
  ops.length = 0;
}

/**
 * Hands the adapter its own copy of each change and scrambles that copy as
 * soon as the contract allows: once `commit` settles, or, for pipelining
 * adapters, once it returns. An adapter that kept references then stores
 * garbage. (`change.document` is left alone: the adapter may keep it.)
 */
export function scramblingAdapter(adapter: StorageAdapter): StorageAdapter {
  const pipelining = adapter.capabilities?.pipelining === true;
  return forwardingAdapter(adapter, (change) => {
    const handed = structuredClone(change);
    const outcome = adapter.commit(handed);
    if (pipelining || !isThenable(outcome)) {
      scramble(handed);
      return outcome;
    }
    return Promise.resolve(outcome).then((result) => {
      scramble(handed);
      return result;
    });
  });
}

/** Calls `commit` right now (not in a later tick), its outcome as a promise. */
export function commitNow(adapter: StorageAdapter, change: Change): Promise<Awaited<ReturnType<StorageAdapter['commit']>>> {
  try {
    return Promise.resolve(adapter.commit(change));
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Resolves with what `promise` rejected with; fails if it resolved. */
export async function rejection(promise: Promise<unknown>, what: string): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  assert.fail(`${what} succeeded, but should have been refused`);
}

export function assertRevisionConflict(error: unknown, what: string): void {
  if (error instanceof RevisionConflictError) return;
  const described = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  assert.fail(
    `${what} must throw RevisionConflictError (import it from express-jsonstore) so the engine catches up and retries; it threw ${described}`,
  );
}

/** Resolves once `store` has reached `revision` (through its watch, for a peer's writes). */
export function untilRevision(store: JsonStore, revision: number): Promise<void> {
  if (store.store.revision >= revision) return Promise.resolve();
  return new Promise((resolve) => {
    const listener = (event: { revision: number }) => {
      if (event.revision < revision) return;
      store.off('change', listener);
      resolve();
    };
    store.on('change', listener);
  });
}
