/**
 * The paths a committed change touched, read from the document *after* it
 * (the engine's working document at the change's revision), so the hub
 * needs no copy of its own. Same answers as following the change on a copy
 * (copy.ts): an append to an array, or removing its last element, touches
 * only that element; any other insertion or removal touches the array.
 *
 * An array's length before operation i is its length after the change minus
 * what operations i and later added to it (same parent pointer). A later
 * operation that replaced, moved or shifted the array itself touches the
 * array or one of its ancestors, and that wider touch covers whatever was
 * said for operation i (events.ts `coverOf`).
 */
import { valueAt } from '../document/apply.js';
import type { JsonValue } from '../document/json.js';
import type { PatchOperation } from '../document/patch-types.js';
import { isArrayIndex, parsePointer, type Path } from '../document/path.js';
import { touchesOf } from './events.js';

function parentPointer(pointer: string): string {
  return pointer.slice(0, pointer.lastIndexOf('/'));
}

/** Per parent pointer, how many elements the operations seen so far added (removals count -1). */
type Growth = Map<string, number>;

function grow(growth: Growth, pointer: string, by: number): void {
  const parent = parentPointer(pointer);
  growth.set(parent, (growth.get(parent) ?? 0) + by);
}

/** Counts operation `op` into `growth` (walked last to first, so it then holds what ops i and later added). */
function countGrowth(growth: Growth, op: PatchOperation): void {
  if (op.op === 'add' || op.op === 'copy') grow(growth, op.path, 1);
  else if (op.op === 'remove') grow(growth, op.path, -1);
  else if (op.op === 'move' && op.from !== op.path) {
    grow(growth, op.path, 1);
    grow(growth, op.from, -1);
  }
}

function slotTouch(after: JsonValue, op: PatchOperation, growth: Growth, how: 'insert' | 'remove'): Path {
  const path = parsePointer(op.path);
  if (path.length === 0) return path;
  const parentPath = path.slice(0, -1);
  const parent = valueAt(after, parentPath);
  if (!Array.isArray(parent)) return path;
  const key = path[path.length - 1] as string;
  const lengthBefore = parent.length - (growth.get(parentPointer(op.path)) ?? 0);
  if (how === 'insert') {
    const at = key === '-' ? lengthBefore : isArrayIndex(key) ? Number(key) : -1;
    return at === lengthBefore ? [...parentPath, String(at)] : parentPath;
  }
  return isArrayIndex(key) && Number(key) === lengthBefore - 1 ? path : parentPath;
}

/**
 * The paths `ops` touched, in order; `after` is the document right after all of them.
 * One pass from the last operation to the first, so the growth per parent is
 * known without rescanning later operations (linear, not quadratic, in ops).
 */
export function touchedByChange(after: JsonValue, ops: readonly PatchOperation[]): Path[] {
  const growth: Growth = new Map();
  const touchedBy: Path[][] = new Array(ops.length);
  for (let i = ops.length - 1; i >= 0; i--) {
    const op = ops[i] as PatchOperation;
    countGrowth(growth, op);
    touchedBy[i] = touchesOfOne(after, op, growth);
  }
  return touchedBy.flat(1);
}

function touchesOfOne(after: JsonValue, op: PatchOperation, growth: Growth): Path[] {
  switch (op.op) {
    case 'test':
      return [];
    case 'replace':
      return [parsePointer(op.path)];
    case 'add':
    case 'copy':
      return [slotTouch(after, op, growth, 'insert')];
    case 'remove':
      return [slotTouch(after, op, growth, 'remove')];
    case 'move':
      // Rare: both ends counted wide, as on the copy.
      return op.from !== op.path ? touchesOf(after, op, false) : [];
  }
}
