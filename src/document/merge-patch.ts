/**
 * RFC 7396 JSON Merge Patch, expressed as the RFC 6902 operations it amounts
 * to, so a merge patch costs (and is logged) in proportion to the patch, not
 * to the value it patches.
 */
import { getMember, hasMember, isObject, type JsonObject, type JsonValue } from './json.js';
import type { PatchOperation } from './patch-types.js';
import { toPointer } from './path.js';

/** The value a merge patch produces when the target is missing or not an object. */
function stripNulls(patch: JsonValue): JsonValue {
  if (!isObject(patch)) return patch;
  const out: JsonObject = {};
  for (const key of Object.keys(patch)) {
    const value = patch[key] as JsonValue;
    if (value !== null) Object.defineProperty(out, key, { value: stripNulls(value), writable: true, enumerable: true, configurable: true });
  }
  return out;
}

/**
 * Operations that turn `target` (undefined when missing) at `path` into the
 * merge of `patch` onto it.
 */
export function mergePatchOperations(target: JsonValue | undefined, patch: JsonValue, path: string[]): PatchOperation[] {
  const ops: PatchOperation[] = [];
  collect(target, patch, toPointer(path), ops);
  return ops;
}

/** `pointer` is where `target` is; it grows by one segment per level (a patch may name tens of thousands of keys). */
function collect(target: JsonValue | undefined, patch: JsonValue, pointer: string, ops: PatchOperation[]): void {
  if (!isObject(patch) || !isObject(target)) {
    const value = stripNulls(patch);
    if (target === undefined) ops.push({ op: 'add', path: pointer, value });
    else ops.push({ op: 'replace', path: pointer, value });
    return;
  }
  for (const key of Object.keys(patch)) {
    const value = patch[key] as JsonValue;
    if (value === null) {
      if (hasMember(target, key)) ops.push({ op: 'remove', path: pointer + toPointer([key]) });
      continue;
    }
    collect(getMember(target, key), value, pointer + toPointer([key]), ops);
  }
}
