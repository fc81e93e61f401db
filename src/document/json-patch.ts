/**
 * RFC 6902 JSON Patch documents as clients send them: validated here (400 for
 * a malformed document), then rebased onto the request path.
 */
import { JsonStoreError } from '../errors.js';
import { hasMember, isObject, type JsonValue } from './json.js';
import type { PatchOperation } from './patch-types.js';
import { displayPath, parsePointer, toPointer, type Path } from './path.js';

const opNames = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

function invalid(index: number, detail: string): JsonStoreError {
  return new JsonStoreError('invalid-patch', `JSON Patch operation ${index}: ${detail}`);
}

/**
 * Checks a parsed JSON Patch document and returns its operations, pointers as
 * written. Unknown members are ignored, as RFC 6902 section 4 requires.
 */
export function parseJsonPatch(body: JsonValue): PatchOperation[] {
  if (!Array.isArray(body)) {
    throw new JsonStoreError('invalid-patch', 'A JSON Patch document must be an array of operations, such as [{"op":"replace","path":"/name","value":"x"}]');
  }
  return body.map((entry, index) => {
    if (!isObject(entry)) throw invalid(index, 'must be an object');
    const op = entry['op'];
    if (typeof op !== 'string' || !hasMember(entry, 'op') || !opNames.has(op)) {
      throw invalid(index, `"op" must be one of add, remove, replace, move, copy, test`);
    }
    if (!hasMember(entry, 'path')) throw invalid(index, `"${op}" needs a "path"`);
    const path = entry['path'];
    try {
      parsePointer(path, 'path');
    } catch (error) {
      throw invalid(index, (error as Error).message);
    }
    switch (op) {
      case 'add':
      case 'replace':
      case 'test': {
        if (!hasMember(entry, 'value')) throw invalid(index, `"${op}" needs a "value"`);
        return { op, path: path as string, value: entry['value'] as JsonValue };
      }
      case 'remove':
        return { op, path: path as string };
      default: {
        // move, copy
        if (!hasMember(entry, 'from')) throw invalid(index, `"${op}" needs a "from"`);
        try {
          parsePointer(entry['from'], 'from');
        } catch (error) {
          throw invalid(index, (error as Error).message);
        }
        return { op: op as 'move' | 'copy', from: entry['from'] as string, path: path as string };
      }
    }
  });
}

/** Names an operation as the client wrote it, for messages. */
export function describeOperation(ops: readonly PatchOperation[], index: number): string {
  const op = ops[index];
  return `JSON Patch operation ${index} (${op?.op} ${JSON.stringify(op?.path)})`;
}

export interface RebasedPatch {
  /** The operations with pointers from the document root. */
  ops: PatchOperation[];
  /** For each of `ops`, the index of the operation the client wrote (one may become two). */
  source: number[];
  /** Whether the patch ends by removing the value it was sent to. */
  removesTarget: boolean;
}

/**
 * Makes the pointers of `ops` (relative to the value at `target`) absolute.
 *
 * RFC 6902 reads `""` as the whole document; here the whole document is the
 * target, so writing at `""` replaces the target. Prefixing would instead
 * insert beside it when it is an array element (`add` at `/a/0` shifts
 * `/a/0` to `/a/1`), so `add ""` becomes a `replace`, and a `copy` or `move`
 * onto `""` in an array is followed by removing the old target, which the
 * insertion shifted one place on.
 *
 * `remove ""` removes the target itself. Any operation after it would address
 * what took the target's place (a sibling, or nothing), so it is refused.
 * At the root nothing of this applies: `remove ""` leaves `{}`, and later
 * operations apply to that.
 */
export function rebaseJsonPatch(ops: readonly PatchOperation[], target: Path, targetIsArrayElement: boolean): RebasedPatch {
  if (target.length === 0) return { ops: [...ops], source: ops.map((_, index) => index), removesTarget: false };
  const prefix = toPointer(target);
  // The old target after an insertion before it, in its parent array.
  const shifted = targetIsArrayElement ? toPointer([...target.slice(0, -1), String(Number(target[target.length - 1]) + 1)]) : '';
  const out: PatchOperation[] = [];
  const source: number[] = [];
  let removedBy = -1;
  ops.forEach((op, index) => {
    if (removedBy !== -1) {
      throw new JsonStoreError(
        'conflict',
        `${describeOperation(ops, index)}: operation ${removedBy} removed ${displayPath(target)}, the value this patch was sent to, so no operation may follow it`,
      );
    }
    const emit = (rebased: PatchOperation) => {
      out.push(rebased);
      source.push(index);
    };
    if (op.path !== '') {
      if (op.op === 'move' || op.op === 'copy') emit({ op: op.op, from: prefix + op.from, path: prefix + op.path });
      else emit({ ...op, path: prefix + op.path });
      return;
    }
    switch (op.op) {
      case 'remove':
        removedBy = index;
        emit({ op: 'remove', path: prefix });
        return;
      case 'add':
        emit({ op: 'replace', path: prefix, value: op.value });
        return;
      case 'move':
      case 'copy':
        emit({ op: op.op, from: prefix + op.from, path: prefix });
        // A move onto itself changes nothing; anything else inserted a value before the old target.
        if (targetIsArrayElement && !(op.op === 'move' && op.from === '')) emit({ op: 'remove', path: shifted });
        return;
      default:
        emit({ ...op, path: prefix });
    }
  });
  return { ops: out, source, removesTarget: removedBy !== -1 };
}
