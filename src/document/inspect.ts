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

/** What `inspectJson`'s member check returns for a failure (sizes are never negative). */
const notJson = -1;
const tooDeep = -2;

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
  /** Adds a member to the walk: its size when a scalar, else queued; `notJson` or `tooDeep` when it fails. */
  const member = (child: unknown, depth: number): number => {
    if (typeof child === 'object' && child !== null) {
      if (depth >= maxDepth) return tooDeep;
      if (!Array.isArray(child) && !isPlainObject(child)) return notJson;
      nodes.push(child);
      depths.push(depth + 1);
      return 0;
    }
    if (typeof child === 'string') return stringSize(child);
    if (typeof child === 'number') return Number.isFinite(child) ? numberSize(child) : notJson;
    if (child === null || child === true) return 4;
    return child === false ? 5 : notJson;
  };
  while (nodes.length > 0) {
    const node = nodes.pop() as Record<string, unknown> | unknown[];
    const depth = depths.pop() as number;
    if (Array.isArray(node)) {
      const length = node.length;
      size += length === 0 ? 2 : length + 1;
      for (let i = 0; i < length; i++) {
        const added = member(node[i], depth);
        if (added < 0) return failed(added === tooDeep);
        size += added;
      }
    } else {
      const keys = Object.keys(node);
      size += keys.length === 0 ? 2 : keys.length + 1;
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i] as string;
        const added = member(node[key], depth);
        if (added < 0) return failed(added === tooDeep);
        size += stringSize(key) + 1 + added;
      }
    }
  }
  sizes.set(value, size);
  return { reason: undefined, tooDeep: false, size };
}
