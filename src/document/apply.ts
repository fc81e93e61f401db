/**
 * Applies RFC 6902 operations to the working document in place, keeping an
 * undo log, so a change costs time in proportion to its size (plus, once, the
 * size of each object it removes keys from) and a failed or refused change
 * can be rolled back exactly.
 */
import { JsonStoreError } from '../errors.js';
import { cloneJson, describeType, getMember, hasMember, isObject, jsonEqual, setMember, type JsonObject, type JsonValue } from './json.js';
import type { PatchOperation } from './patch-types.js';
import { displayPath, isArrayIndex, parsePointer, toPointer } from './path.js';
import { invalidate } from './value-cache.js';

/** Holder for the document, so that replacing the root is an ordinary write. */
export interface DocumentState {
  root: JsonValue;
  /**
   * Copy-on-write: when set, the document shares containers with someone
   * else (the caller's `initial`), which must never change. Only the
   * containers in this set are the store's own; any other container on a
   * step's path is copied (shallowly: its members stay shared) and the copy
   * put in its place before the step changes it.
   */
  owned?: WeakSet<object>;
}

/**
 * The undo steps of one `applyOperations` call, run last to first. An object
 * whose key set changes is saved whole the first time (its entries, in order)
 * and put back whole, because re-inserting one removed key in its place means
 * re-inserting every key after it: k removals from an object of n keys then
 * cost O(k + n) to apply and to undo, not O(k * n). Later changes to the
 * members of a saved object need no step of their own: restoring it undoes them.
 */
class UndoLog {
  private readonly steps: Array<() => void> = [];
  private readonly saved = new Set<JsonObject>();

  push(step: () => void): void {
    this.steps.push(step);
  }

  /** Whether `object` is saved whole, so a change to one of its members needs no step. */
  covers(object: JsonObject): boolean {
    return this.saved.has(object);
  }

  /** Saves `object`'s entries, in order, to be restored exactly on undo (key order shows in output and ETags). */
  saveWhole(object: JsonObject): void {
    if (this.saved.has(object)) return;
    this.saved.add(object);
    const keys = Object.keys(object);
    const values = keys.map((key) => object[key] as JsonValue);
    this.steps.push(() => {
      for (const key of Object.keys(object)) delete object[key];
      for (let i = 0; i < keys.length; i++) setMember(object, keys[i] as string, values[i] as JsonValue);
    });
  }

  run(): void {
    for (let i = this.steps.length - 1; i >= 0; i--) (this.steps[i] as () => void)();
  }
}

/**
 * Told of each step of a change just before it is made, on the document as it
 * is at that moment (the engine measures sizes and enforces budgets with it).
 * It may throw to refuse the change: the steps before are then undone.
 */
export interface ApplyObserver {
  /**
   * `value` is about to be added at `path` (inserted into an array, or set as
   * an object member, replacing one). `source`: from the patch, a copy of a
   * value in the document (not made yet), or a value moved within it.
   */
  adding(root: JsonValue, path: readonly string[], value: JsonValue, source: 'patch' | 'copy' | 'move', where: string): void;
  /** The value at `path` is about to be replaced by `value` from the patch. */
  replacing(root: JsonValue, path: readonly string[], value: JsonValue, where: string): void;
  /** The value at `path` is about to be removed, or moved away. */
  removing(root: JsonValue, path: readonly string[], source: 'remove' | 'move', where: string): void;
}

export interface AppliedChange {
  /** The operations as applied: no `test`, `-` replaced by the real index. */
  ops: PatchOperation[];
  /** Undo steps, in the order they must run. */
  undo: () => void;
}

interface Slot {
  parent: JsonValue[] | Record<string, JsonValue> | null;
  key: string;
  /** Parent as seen by the path, for messages. */
  parentPath: string[];
}

/** Reads the value at a path; `undefined` when any step is missing. */
export function valueAt(root: JsonValue, path: readonly string[]): JsonValue | undefined {
  let node: JsonValue | undefined = root;
  for (const segment of path) {
    if (Array.isArray(node)) {
      if (!isArrayIndex(segment)) return undefined;
      node = node[Number(segment)];
    } else if (isObject(node)) {
      node = getMember(node, segment);
    } else {
      return undefined;
    }
    if (node === undefined) return undefined;
  }
  return node;
}

function conflict(where: string, detail: string): JsonStoreError {
  return new JsonStoreError('conflict', `${where}: ${detail}`);
}

/** Finds the container that holds the last segment of `path`. */
function slotFor(root: JsonValue, path: string[], where: string): Slot {
  if (path.length === 0) return { parent: null, key: '', parentPath: [] };
  const parentPath = path.slice(0, -1);
  const parent = valueAt(root, parentPath);
  if (parent === undefined) throw conflict(where, `${displayPath(parentPath)} does not exist`);
  if (parent === null || typeof parent !== 'object') {
    throw conflict(where, `${displayPath(parentPath)} is ${describeType(parent)}, which has no members`);
  }
  return { parent, key: path[path.length - 1] as string, parentPath };
}

function arrayIndex(slot: Slot, array: JsonValue[], where: string, allowEnd: boolean): number {
  if (allowEnd && slot.key === '-') return array.length;
  if (!isArrayIndex(slot.key)) {
    throw conflict(where, `"${slot.key}" is not an index into the array at ${displayPath(slot.parentPath)}`);
  }
  const index = Number(slot.key);
  const max = allowEnd ? array.length : array.length - 1;
  if (index > max) {
    throw conflict(where, `index ${index} is out of range for the array at ${displayPath(slot.parentPath)} (length ${array.length})`);
  }
  return index;
}

/**
 * Applies `ops` to `state`. On the first operation that cannot apply, undoes
 * the earlier ones and throws a 409 `JsonStoreError` naming the operation.
 */
export function applyOperations(
  state: DocumentState,
  ops: readonly PatchOperation[],
  describe?: (index: number) => string,
  observer?: ApplyObserver,
): AppliedChange {
  const undo = new UndoLog();
  const applied: PatchOperation[] = [];
  // Containers whose JSON the change alters: their cached JSON is dropped
  // before each step and again after an undo (a read may have cached the changed state).
  const touched: object[] = [];
  const rollback = () => {
    undo.run();
    for (const container of touched) invalidate(container);
  };
  try {
    ops.forEach((op, index) => {
      const where = describe ? describe(index) : `Operation ${index} (${op.op} ${op.path})`;
      applyOne(state, op, where, undo, applied, observer, touched);
    });
  } catch (error) {
    rollback();
    throw error;
  }
  return { ops: applied, undo: rollback };
}

/** A shallow copy: same members in the same order (`__proto__` stays an own key). */
function shallowCopy(container: JsonValue[] | JsonObject): JsonValue[] | JsonObject {
  if (Array.isArray(container)) return container.slice();
  const copy: JsonObject = {};
  for (const key of Object.keys(container)) setMember(copy, key, container[key] as JsonValue);
  return copy;
}

/**
 * Before a step at `path`: drops the cached JSON of the containers from the
 * root down to the target's parent (the values the step changes), and under
 * copy-on-write makes each of them the store's own first. A copy has the
 * same JSON as what it replaces, so nothing needs undoing.
 */
function touchPath(state: DocumentState, path: readonly string[], touched: object[]): void {
  let node = state.root;
  if (typeof node !== 'object' || node === null) return;
  const owned = state.owned;
  if (owned !== undefined && !owned.has(node)) {
    node = shallowCopy(node);
    owned.add(node);
    state.root = node;
  }
  invalidate(node);
  touched.push(node);
  for (let i = 0; i < path.length - 1; i++) {
    const segment = path[i] as string;
    let child: JsonValue | undefined;
    if (Array.isArray(node)) child = isArrayIndex(segment) ? node[Number(segment)] : undefined;
    else child = getMember(node as JsonObject, segment);
    if (typeof child !== 'object' || child === null) return;
    if (owned !== undefined && !owned.has(child)) {
      child = shallowCopy(child);
      owned.add(child);
      if (Array.isArray(node)) node[Number(segment)] = child;
      else setMember(node as JsonObject, segment, child);
    }
    invalidate(child);
    touched.push(child);
    node = child;
  }
}

/** A copy the document gets of a value put in: the store's own under copy-on-write. */
function ownCopy(state: DocumentState, value: JsonValue): JsonValue {
  const copy = cloneJson(value);
  if (state.owned !== undefined && typeof copy === 'object' && copy !== null) state.owned.add(copy);
  return copy;
}

function applyOne(
  state: DocumentState,
  op: PatchOperation,
  where: string,
  undo: UndoLog,
  applied: PatchOperation[],
  observer: ApplyObserver | undefined,
  touched: object[],
): void {
  const path = parsePointer(op.path);
  if (op.op !== 'test') touchPath(state, path, touched);
  switch (op.op) {
    case 'test': {
      const actual = valueAt(state.root, path);
      if (actual === undefined) throw conflict(where, `${displayPath(path)} does not exist`);
      if (!jsonEqual(actual, op.value)) throw conflict(where, `the value at ${displayPath(path)} is not the expected one`);
      return;
    }
    case 'add': {
      observer?.adding(state.root, path, op.value, 'patch', where);
      // The document gets its own copy: `op.value` travels with the change to
      // storage and listeners, and later operations mutate the document in place.
      const pointer = insert(state, path, ownCopy(state, op.value), where, undo);
      applied.push({ op: 'add', path: pointer, value: op.value });
      return;
    }
    case 'remove': {
      observer?.removing(state.root, path, 'remove', where);
      remove(state, path, where, undo);
      applied.push(op);
      return;
    }
    case 'replace': {
      observer?.replacing(state.root, path, op.value, where);
      replace(state, path, ownCopy(state, op.value), where, undo);
      applied.push(op);
      return;
    }
    case 'move': {
      const from = parsePointer(op.from, 'from');
      if (op.path.startsWith(op.from + '/')) throw conflict(where, `cannot move ${displayPath(from)} into its own child`);
      const value = valueAt(state.root, from);
      // "from" must exist even when the move is onto itself (RFC 6902 4.4).
      if (value === undefined) throw conflict(where, `${displayPath(from)} does not exist`);
      if (op.from === op.path) return;
      touchPath(state, from, touched);
      observer?.removing(state.root, from, 'move', where);
      remove(state, from, where, undo);
      // Removing from an array shifts its later members: `path` may now lead through other containers.
      touchPath(state, path, touched);
      observer?.adding(state.root, path, value, 'move', where);
      const pointer = insert(state, path, value, where, undo);
      applied.push({ op: 'move', from: op.from, path: pointer });
      return;
    }
    case 'copy': {
      const from = parsePointer(op.from, 'from');
      const value = valueAt(state.root, from);
      if (value === undefined) throw conflict(where, `${displayPath(from)} does not exist`);
      // Told before the copy is made: a budget can refuse it before memory is spent.
      observer?.adding(state.root, path, value, 'copy', where);
      const pointer = insert(state, path, ownCopy(state, value), where, undo);
      applied.push({ op: 'copy', from: op.from, path: pointer });
      return;
    }
  }
}

function setRoot(state: DocumentState, value: JsonValue, undo: UndoLog): void {
  const previous = state.root;
  state.root = value;
  undo.push(() => {
    state.root = previous;
  });
}

/** RFC 6902 `add`: returns the pointer actually written (with a real index). */
function insert(state: DocumentState, path: string[], value: JsonValue, where: string, undo: UndoLog): string {
  const slot = slotFor(state.root, path, where);
  const { parent, key } = slot;
  if (parent === null) {
    setRoot(state, value, undo);
    return '';
  }
  if (Array.isArray(parent)) {
    const index = arrayIndex(slot, parent, where, true);
    parent.splice(index, 0, value);
    undo.push(() => {
      parent.splice(index, 1);
    });
    return toPointer([...slot.parentPath, String(index)]);
  }
  if (hasMember(parent, key)) {
    const previous = parent[key] as JsonValue;
    parent[key] = value;
    if (!undo.covers(parent)) {
      undo.push(() => {
        parent[key] = previous;
      });
    }
  } else {
    setMember(parent, key, value);
    // A new key goes last, so deleting it restores the order (O(1), which
    // keeps a POST to a large collection cheap).
    if (!undo.covers(parent)) {
      undo.push(() => {
        delete parent[key];
      });
    }
  }
  return toPointer(path);
}

function remove(state: DocumentState, path: string[], where: string, undo: UndoLog): void {
  const slot = slotFor(state.root, path, where);
  const { parent, key } = slot;
  if (parent === null) {
    // RFC 6902 lets `remove` target the root; this store's empty document is `{}`.
    setRoot(state, {}, undo);
    return;
  }
  if (Array.isArray(parent)) {
    const index = arrayIndex(slot, parent, where, false);
    const [previous] = parent.splice(index, 1) as [JsonValue];
    undo.push(() => {
      parent.splice(index, 0, previous);
    });
    return;
  }
  if (!hasMember(parent, key)) throw conflict(where, `${displayPath(path)} does not exist`);
  // Undo must put the key back where it was: key order shows in every GET
  // and in the ETag, and a rolled-back change must leave no trace.
  undo.saveWhole(parent);
  delete parent[key];
}

/** RFC 6902 `replace`: the member keeps its place in its object. */
function replace(state: DocumentState, path: string[], value: JsonValue, where: string, undo: UndoLog): void {
  const slot = slotFor(state.root, path, where);
  const { parent, key } = slot;
  if (parent === null) {
    setRoot(state, value, undo);
    return;
  }
  if (Array.isArray(parent)) {
    const index = arrayIndex(slot, parent, where, false);
    const previous = parent[index] as JsonValue;
    parent[index] = value;
    undo.push(() => {
      parent[index] = previous;
    });
    return;
  }
  if (!hasMember(parent, key)) throw conflict(where, `${displayPath(path)} does not exist, so it cannot be replaced`);
  const previous = parent[key] as JsonValue;
  parent[key] = value;
  if (!undo.covers(parent)) {
    undo.push(() => {
      parent[key] = previous;
    });
  }
}
