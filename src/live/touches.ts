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

/** How many elements operations from `from` on added to the container at `parent` (removals count -1). */
function growthFrom(ops: readonly PatchOperation[], from: number, parent: string): number {
  let growth = 0;
  for (let i = from; i < ops.length; i++) {
    const op = ops[i] as PatchOperation;
    if (op.op === 'add' || op.op === 'copy') {
      if (parentPointer(op.path) === parent) growth++;
    } else if (op.op === 'remove') {
      if (parentPointer(op.path) === parent) growth--;
    } else if (op.op === 'move' && op.from !== op.path) {
      if (parentPointer(op.path) === parent) growth++;
      if (parentPointer(op.from) === parent) growth--;
    }
  }
  return growth;
}

function slotTouch(after: JsonValue, ops: readonly PatchOperation[], index: number, how: 'insert' | 'remove'): Path {
  const op = ops[index] as PatchOperation;
  const path = parsePointer(op.path);
  if (path.length === 0) return path;
  const parentPath = path.slice(0, -1);
  const parent = valueAt(after, parentPath);
  if (!Array.isArray(parent)) return path;
  const key = path[path.length - 1] as string;
  const lengthBefore = parent.length - growthFrom(ops, index, parentPointer(op.path));
  if (how === 'insert') {
    const at = key === '-' ? lengthBefore : isArrayIndex(key) ? Number(key) : -1;
    return at === lengthBefore ? [...parentPath, String(at)] : parentPath;
  }
  return isArrayIndex(key) && Number(key) === lengthBefore - 1 ? path : parentPath;
}

/** The paths `ops` touched, in order; `after` is the document right after all of them. */
export function touchedByChange(after: JsonValue, ops: readonly PatchOperation[]): Path[] {
  const touched: Path[] = [];
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as PatchOperation;
    switch (op.op) {
      case 'test':
        break;
      case 'replace':
        touched.push(parsePointer(op.path));
        break;
      case 'add':
      case 'copy':
        touched.push(slotTouch(after, ops, i, 'insert'));
        break;
      case 'remove':
        touched.push(slotTouch(after, ops, i, 'remove'));
        break;
      case 'move':
        // Rare: both ends counted wide, as on the copy.
        if (op.from !== op.path) touched.push(...touchesOf(after, op, false));
        break;
    }
  }
  return touched;
}
