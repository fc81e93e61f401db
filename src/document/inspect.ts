/**
 * One walk over a value handed to the store whole (`initial`, a loaded
 * document) that checks it is plain JSON, finds whether it nests deeper than
 * a limit and measures its size as compact JSON: three walks before, which
 * on a large document cost more than parsing it.
 *
 * The size is remembered for the value (`knownSize`), so the engine does
 * not measure the same document again when it installs it.
 */
import { invalidJsonReason, type JsonValue } from './json.js';
import { numberSize, scalarSize, stringSize } from './size.js';

export interface JsonInspection {
  /** Why the value is not plain JSON (a cycle, `undefined`, NaN, a class instance…), or `undefined`. */
  reason: string | undefined;
  /** It nests deeper than `maxDepth` (scalars are 0, `[]` and `{}` are 1). */
  tooDeep: boolean;
  /** Bytes of compact JSON (meaningful only when the value is fine). */
  size: number;
}

const sizes = new WeakMap<object, number>();

/** The size `inspectJson` measured for this container, if it did. */
export function knownSize(value: JsonValue): number | undefined {
  if (typeof value !== 'object' || value === null) return scalarSize(value);
  return sizes.get(value);
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Checks and measures `value` in one iterative walk. A cycle shows as depth
 * past any limit; the precise reason, when there is one, comes from
 * `invalidJsonReason`, run only on the way out of a failure.
 */
export function inspectJson(value: unknown, maxDepth: number): JsonInspection {
  const failed = (tooDeep: boolean): JsonInspection => ({ reason: invalidJsonReason(value), tooDeep, size: 0 });
  if (typeof value !== 'object' || value === null) {
    const reason = invalidJsonReason(value);
    return { reason, tooDeep: false, size: reason === undefined ? scalarSize(value as string) : 0 };
  }
  if (!Array.isArray(value) && !isPlainObject(value)) return failed(false);
  if (maxDepth < 1) return failed(true);
  let size = 0;
  const nodes: object[] = [value];
  const depths: number[] = [1];
  while (nodes.length > 0) {
    const node = nodes.pop() as Record<string, unknown> | unknown[];
    const depth = depths.pop() as number;
    if (Array.isArray(node)) {
      const length = node.length;
      size += length === 0 ? 2 : length + 1;
      for (let i = 0; i < length; i++) {
        const child = node[i];
        if (typeof child === 'object' && child !== null) {
          if (depth >= maxDepth) return failed(true);
          if (!Array.isArray(child) && !isPlainObject(child)) return failed(false);
          nodes.push(child);
          depths.push(depth + 1);
        } else if (typeof child === 'string') size += stringSize(child);
        else if (typeof child === 'number') {
          if (!Number.isFinite(child)) return failed(false);
          size += numberSize(child);
        } else if (child === null || child === true) size += 4;
        else if (child === false) size += 5;
        else return failed(false);
      }
    } else {
      const keys = Object.keys(node);
      size += keys.length === 0 ? 2 : keys.length + 1;
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string;
        size += stringSize(key) + 1;
        const child = node[key];
        if (typeof child === 'object' && child !== null) {
          if (depth >= maxDepth) return failed(true);
          if (!Array.isArray(child) && !isPlainObject(child)) return failed(false);
          nodes.push(child);
          depths.push(depth + 1);
        } else if (typeof child === 'string') size += stringSize(child);
        else if (typeof child === 'number') {
          if (!Number.isFinite(child)) return failed(false);
          size += numberSize(child);
        } else if (child === null || child === true) size += 4;
        else if (child === false) size += 5;
        else return failed(false);
      }
    }
  }
  sizes.set(value, size);
  return { reason: undefined, tooDeep: false, size };
}
