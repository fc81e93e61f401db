/**
 * RFC 6902 JSON Patch documents as clients send them: validated here (400 for
 * a malformed document), then rebased onto the request path.
 */
import { JsonStoreError } from '../errors.js';
import { hasMember, isObject, type JsonValue } from './json.js';
import type { PatchOperation } from './patch-types.js';
import { parsePointer, toPointer, type Path } from './path.js';

const opNames = new Set(['add', 'remove', 'replace', 'move', 'copy', 'test']);

function invalid(index: number, detail: string): JsonStoreError {
  return new JsonStoreError('invalid-patch', `JSON Patch operation ${index}: ${detail}`);
}

/**
 * Checks a parsed JSON Patch document and returns its operations with
 * pointers made absolute by prefixing `base`. Unknown members are ignored, as
 * RFC 6902 section 4 requires.
 */
export function parseJsonPatch(body: JsonValue, base: Path): PatchOperation[] {
  if (!Array.isArray(body)) {
    throw new JsonStoreError('invalid-patch', 'A JSON Patch document must be an array of operations, such as [{"op":"replace","path":"/name","value":"x"}]');
  }
  const prefix = toPointer(base);
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
    const absolutePath = prefix + (path as string);
    switch (op) {
      case 'add':
      case 'replace':
      case 'test': {
        if (!hasMember(entry, 'value')) throw invalid(index, `"${op}" needs a "value"`);
        return { op, path: absolutePath, value: entry['value'] as JsonValue };
      }
      case 'remove':
        return { op, path: absolutePath };
      default: {
        // move, copy
        if (!hasMember(entry, 'from')) throw invalid(index, `"${op}" needs a "from"`);
        try {
          parsePointer(entry['from'], 'from');
        } catch (error) {
          throw invalid(index, (error as Error).message);
        }
        return { op: op as 'move' | 'copy', from: prefix + (entry['from'] as string), path: absolutePath };
      }
    }
  });
}
