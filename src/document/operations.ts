/**
 * What each write does to the document, planned as RFC 6902 operations
 * against the current value. Planning never mutates; the engine applies the
 * plan. Every refusal names the request and the step that stopped it.
 */
import { JsonStoreError } from '../errors.js';
import { describeType, getMember, isObject, setMember, type JsonObject, type JsonValue } from './json.js';
import { mergePatchOperations } from './merge-patch.js';
import { describeOperation, parseJsonPatch, rebaseJsonPatch } from './json-patch.js';
import type { PatchOperation } from './patch-types.js';
import { displayPath, isArrayIndex, toPointer, type Path } from './path.js';
import { pushId } from './push-id.js';
import { valueAt } from './apply.js';


/** A write as the engine plans it: the method, and for PATCH which kind of patch. */
export type WriteKind = 'PUT' | 'POST' | 'PATCH merge' | 'PATCH json-patch' | 'DELETE';

export interface WritePlan {
  ops: PatchOperation[];
  /** Whether the write creates the member it targets (201). */
  created: boolean;
  /** Where the written value lives afterwards (an append's real index included). */
  resultPath: string[];
  /** The write removes its target, so nothing of it is left at `resultPath` (a DELETE, a JSON Patch ending in `remove ""`). */
  removesTarget?: boolean;
  /** Names JSON Patch operations as the client wrote them, for 409 messages. */
  describe?: (index: number) => string;
}

function cannot(method: string, path: Path, detail: string, code: 'conflict' | 'not-found' = 'conflict'): JsonStoreError {
  return new JsonStoreError(code, `Cannot ${method} ${displayPath(path)}: ${detail}`);
}

/**
 * Refuses a write at a path deeper than `maxDepth`, before planning: such a
 * write could only be refused later, after building (and copying) a value
 * nested as deep as the path, which for thousands of segments overflows the stack.
 */
export function checkWritePath(path: Path, maxDepth: number): void {
  if (path.length > maxDepth) {
    throw new JsonStoreError('too-deep', `The path has ${path.length} segments, more than the ${maxDepth} levels a write may reach (the maxDepth option)`);
  }
}

/** Wraps `value` in objects for the segments that do not exist yet. */
function nest(segments: readonly string[], value: JsonValue): JsonValue {
  let out = value;
  for (let i = segments.length - 1; i >= 0; i--) {
    const wrapper: JsonObject = {};
    setMember(wrapper, segments[i] as string, out);
    out = wrapper;
  }
  return out;
}

/**
 * PUT: store `value` at `path`, creating missing parent objects (never
 * arrays). In an array, index == length or `-` appends.
 */
export function planPut(root: JsonValue, path: Path, value: JsonValue, method = 'PUT'): WritePlan {
  if (path.length === 0) return { ops: [{ op: 'replace', path: '', value }], created: false, resultPath: [] };
  let node: JsonValue = root;
  for (let i = 0; i < path.length; i++) {
    const segment = path[i] as string;
    const here = path.slice(0, i);
    const last = i === path.length - 1;
    if (Array.isArray(node)) {
      const append = segment === '-' || (isArrayIndex(segment) && Number(segment) === node.length);
      if (append) {
        const at = [...here, String(node.length)];
        return { ops: [{ op: 'add', path: toPointer(at), value: nest(path.slice(i + 1), value) }], created: true, resultPath: [...at, ...path.slice(i + 1)] };
      }
      if (!isArrayIndex(segment)) {
        throw cannot(method, path, `${displayPath(here)} is an array, and "${segment}" is not an index (use 0, 1, ... or - to append)`);
      }
      if (Number(segment) > node.length) {
        throw cannot(method, path, `index ${segment} is past the end of the array at ${displayPath(here)} (length ${node.length}); use ${node.length} or - to append`);
      }
      if (last) return { ops: [{ op: 'replace', path: toPointer(path), value }], created: false, resultPath: [...path] };
      node = node[Number(segment)] as JsonValue;
    } else if (isObject(node)) {
      const child = getMember(node, segment);
      if (child === undefined) {
        const at = path.slice(0, i + 1);
        return { ops: [{ op: 'add', path: toPointer(at), value: nest(path.slice(i + 1), value) }], created: true, resultPath: [...path] };
      }
      if (last) return { ops: [{ op: 'replace', path: toPointer(path), value }], created: false, resultPath: [...path] };
      node = child;
    } else {
      throw cannot(method, path, `${displayPath(here)} is ${describeType(node)}`);
    }
  }
  /* c8 ignore next */
  throw new Error('unreachable');
}

/** POST: append to an array, or add under a new push key to an object. */
export function planPost(root: JsonValue, path: Path, value: JsonValue): WritePlan {
  const target = valueAt(root, path);
  if (target === undefined) throw cannot('POST to', path, 'it does not exist; create it first with PUT', 'not-found');
  if (Array.isArray(target)) {
    const at = [...path, String(target.length)];
    return { ops: [{ op: 'add', path: toPointer(at), value }], created: true, resultPath: at };
  }
  if (isObject(target)) {
    let key = pushId();
    while (Object.prototype.hasOwnProperty.call(target, key)) key = pushId();
    const at = [...path, key];
    return { ops: [{ op: 'add', path: toPointer(at), value }], created: true, resultPath: at };
  }
  throw cannot('POST to', path, `it is ${describeType(target)}; POST adds to an array or an object`);
}

/** DELETE: remove the member; on the root, leave the empty document `{}`. */
export function planDelete(root: JsonValue, path: Path): WritePlan {
  // Nothing is left at the path to answer with (in an array, the next element moved in).
  if (path.length === 0) return { ops: [{ op: 'replace', path: '', value: {} }], created: false, resultPath: [], removesTarget: true };
  if (valueAt(root, path) === undefined) throw cannot('DELETE', path, 'it does not exist', 'not-found');
  return { ops: [{ op: 'remove', path: toPointer(path) }], created: false, resultPath: [...path], removesTarget: true };
}

/** RFC 7396 merge patch at `path`; a missing target counts as null, so it is created. */
export function planMergePatch(root: JsonValue, path: Path, patch: JsonValue): WritePlan {
  const target = valueAt(root, path);
  if (target === undefined) {
    const value = mergePatchOperations(undefined, patch, [])[0] as { value: JsonValue };
    return planPut(root, path, value.value, 'PATCH');
  }
  return { ops: mergePatchOperations(target, patch, [...path]), created: false, resultPath: [...path] };
}

/** RFC 6902 JSON Patch with pointers relative to `path`; the target must exist. */
export function planJsonPatch(root: JsonValue, path: Path, patch: JsonValue): WritePlan {
  const relative = parseJsonPatch(patch);
  if (valueAt(root, path) === undefined) throw cannot('PATCH', path, 'it does not exist', 'not-found');
  // The target's parent is outside the patch's reach, so what it is now it stays.
  const inArray = path.length > 0 && Array.isArray(valueAt(root, path.slice(0, -1)));
  const { ops, source, removesTarget } = rebaseJsonPatch(relative, path, inArray);
  return {
    ops,
    created: false,
    resultPath: [...path],
    removesTarget,
    describe: (index) => describeOperation(relative, source[index] as number),
  };
}

/**
 * The planner for a write of `kind` at `path` with `body` (ignored by
 * DELETE): the one place a write's kind picks what it does.
 */
export function planWrite(kind: WriteKind, path: Path, body: JsonValue): (root: JsonValue) => WritePlan {
  switch (kind) {
    case 'PUT':
      return (root) => planPut(root, path, body);
    case 'POST':
      return (root) => planPost(root, path, body);
    case 'PATCH merge':
      return (root) => planMergePatch(root, path, body);
    case 'PATCH json-patch':
      return (root) => planJsonPatch(root, path, body);
    case 'DELETE':
      return (root) => planDelete(root, path);
  }
}

/** The value a write leaves at its result path, `undefined` when nothing is there. */
export function valueAfterWrite(root: JsonValue, plan: WritePlan): JsonValue | undefined {
  return plan.removesTarget ? undefined : valueAt(root, plan.resultPath);
}
