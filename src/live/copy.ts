/**
 * Follows committed changes on the live copy of the document: the light
 * version of document/apply.ts for operations already validated and saved
 * (no undo log, no budgets). Also says which paths each operation touched,
 * read from the copy just before the operation (see events.ts).
 */
import { valueAt } from '../document/apply.js';
import { cloneJson, isObject, setMember, type JsonValue } from '../document/json.js';
import type { PatchOperation } from '../document/patch-types.js';
import { isArrayIndex, parsePointer, type Path } from '../document/path.js';

export interface LiveCopy {
  root: JsonValue;
}

/** Thrown when an operation does not fit the copy: the copy has lost track of the document. */
export class CopyOutOfStep extends Error {}

function parentOf(copy: LiveCopy, path: Path): JsonValue {
  const parent = valueAt(copy.root, path.slice(0, -1));
  if (parent === null || typeof parent !== 'object') throw new CopyOutOfStep(`no container at ${JSON.stringify(path.slice(0, -1))}`);
  return parent;
}

function indexIn(array: JsonValue[], key: string, allowEnd: boolean): number {
  const index = key === '-' ? array.length : isArrayIndex(key) ? Number(key) : -1;
  if (index < 0 || index > (allowEnd ? array.length : array.length - 1)) throw new CopyOutOfStep(`index ${key} out of range`);
  return index;
}

function insert(copy: LiveCopy, path: Path, value: JsonValue, touched: Path[]): void {
  if (path.length === 0) {
    copy.root = value;
    touched.push(path);
    return;
  }
  const parent = parentOf(copy, path);
  const key = path[path.length - 1] as string;
  if (Array.isArray(parent)) {
    const index = indexIn(parent, key, true);
    // Only an append leaves the other elements where they were.
    touched.push(index === parent.length ? [...path.slice(0, -1), String(index)] : path.slice(0, -1));
    parent.splice(index, 0, value);
    return;
  }
  setMember(parent as Record<string, JsonValue>, key, value);
  touched.push(path);
}

function take(copy: LiveCopy, path: Path, touched: Path[]): JsonValue {
  if (path.length === 0) {
    // As the engine does: removing the root leaves the empty document.
    const value = copy.root;
    copy.root = {};
    touched.push(path);
    return value;
  }
  const parent = parentOf(copy, path);
  const key = path[path.length - 1] as string;
  if (Array.isArray(parent)) {
    const index = indexIn(parent, key, false);
    touched.push(index === parent.length - 1 ? path : path.slice(0, -1));
    return parent.splice(index, 1)[0] as JsonValue;
  }
  if (!isObject(parent) || !Object.hasOwn(parent, key)) throw new CopyOutOfStep(`nothing at ${JSON.stringify(path)}`);
  const value = parent[key] as JsonValue;
  delete parent[key];
  touched.push(path);
  return value;
}

/** Applies one committed operation to the copy and appends the paths it touched to `touched`. */
export function followOperation(copy: LiveCopy, op: PatchOperation, touched: Path[]): void {
  const path = parsePointer(op.path);
  switch (op.op) {
    case 'test':
      return;
    case 'add':
      insert(copy, path, cloneJson(op.value), touched);
      return;
    case 'replace': {
      if (path.length === 0) {
        copy.root = cloneJson(op.value);
      } else {
        const parent = parentOf(copy, path);
        const key = path[path.length - 1] as string;
        if (Array.isArray(parent)) parent[indexIn(parent, key, false)] = cloneJson(op.value);
        else if (isObject(parent) && Object.hasOwn(parent, key)) setMember(parent, key, cloneJson(op.value));
        else throw new CopyOutOfStep(`nothing to replace at ${op.path}`);
      }
      touched.push(path);
      return;
    }
    case 'remove':
      take(copy, path, touched);
      return;
    case 'move': {
      if (op.from === op.path) return;
      const from = parsePointer(op.from);
      const before = touched.length;
      const value = take(copy, from, touched);
      insert(copy, path, value, touched);
      // Both ends counted wide: the removal may have shifted where the insertion lands.
      for (let i = before; i < touched.length; i++) {
        const end = touched[i] as Path;
        const parent = end.length === 0 ? undefined : valueAt(copy.root, end.slice(0, -1));
        if (Array.isArray(parent)) touched[i] = end.slice(0, -1);
      }
      return;
    }
    case 'copy': {
      const value = valueAt(copy.root, parsePointer(op.from));
      if (value === undefined) throw new CopyOutOfStep(`nothing to copy at ${op.from}`);
      insert(copy, path, cloneJson(value), touched);
      return;
    }
  }
}
