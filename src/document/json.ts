/**
 * JSON value types and the few object helpers every layer needs. Keys are data,
 * never code: all member access goes through own-property checks, and writes
 * define properties, so `__proto__`, `constructor` and friends are plain keys.
 */
import { displayPath } from './path.js';

export type JsonPrimitive = null | boolean | number | string;
export type JsonArray = JsonValue[];
export interface JsonObject {
  [key: string]: JsonValue;
}
export type JsonValue = JsonPrimitive | JsonArray | JsonObject;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function isContainer(value: unknown): value is JsonObject | JsonArray {
  return typeof value === 'object' && value !== null;
}

/** Own-member lookup: inherited names such as `toString` are not members. */
export function hasMember(object: JsonObject, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(object, key);
}

export function getMember(object: JsonObject, key: string): JsonValue | undefined {
  return hasMember(object, key) ? object[key] : undefined;
}

/** Sets an own data property; for `__proto__` plain assignment would change the prototype. */
export function setMember(object: JsonObject, key: string, value: JsonValue): void {
  if (key === '__proto__') {
    Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
  } else {
    object[key] = value;
  }
}

/** What a value is, in the words an error message uses. */
export function describeType(value: JsonValue | undefined): string {
  if (value === undefined) return 'missing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}

/**
 * Structural equality as JSON Patch `test` defines it: objects equal when they
 * have the same members regardless of order, arrays element by element.
 */
export function jsonEqual(a: JsonValue, b: JsonValue): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i] as JsonValue, b[i] as JsonValue)) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const keys = Object.keys(a);
  if (keys.length !== Object.keys(b).length) return false;
  for (const key of keys) {
    if (!hasMember(b, key) || !jsonEqual(a[key] as JsonValue, b[key] as JsonValue)) return false;
  }
  return true;
}

/** A deep copy that keeps `__proto__` an own key (structuredClone does). */
export function cloneJson<T extends JsonValue>(value: T): T {
  return typeof value === 'object' && value !== null ? structuredClone(value) : value;
}

/**
 * The children of a container, in order. For large objects `Object.keys` and
 * a lookup per key is several times faster than `Object.values` in V8.
 */
function forEachChild(node: JsonObject | JsonArray, visit: (child: JsonValue, key: string | number) => boolean | void): boolean {
  if (Array.isArray(node)) {
    for (let i = 0; i < node.length; i++) if (visit(node[i] as JsonValue, i) === true) return true;
    return false;
  }
  const keys = Object.keys(node);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i] as string;
    if (visit(node[key] as JsonValue, key) === true) return true;
  }
  return false;
}

/**
 * Nesting depth of a value: scalars are 0, `[]` and `{}` are 1. Iterative, so a
 * hostile body cannot overflow the stack; stops counting past `limit`.
 */
export function depthOf(value: JsonValue, limit = Number.POSITIVE_INFINITY): number {
  if (!isContainer(value)) return 0;
  let max = 0;
  const stack: Array<[JsonObject | JsonArray, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (depth > max) {
      max = depth;
      if (max > limit) return max;
    }
    forEachChild(node, (child) => {
      if (isContainer(child)) stack.push([child, depth + 1]);
    });
  }
  return max;
}

/** What makes a parsed body unfit to store, found by `faultOf`. */
export type JsonFault =
  | { kind: 'too-deep' }
  /** A number JSON.parse read as ±Infinity (`1e400`): JSON has no such value, and it would be stored as `null`. */
  | { kind: 'not-finite'; path: string[]; value: number };

interface Frame {
  node: JsonObject | JsonArray;
  depth: number;
  parent: Frame | undefined;
  /** Where `node` is in its parent. */
  key: string | number;
}

function pathOf(frame: Frame, last: string | number): string[] {
  const path = [String(last)];
  for (let at: Frame = frame; at.parent !== undefined; at = at.parent) path.unshift(String(at.key));
  return path;
}

/**
 * One walk over a parsed value for what JSON.parse lets through but the store
 * must refuse: nesting deeper than `maxDepth` (as `depthOf` counts), and
 * numbers outside the double range. Iterative, so a hostile body cannot
 * overflow the stack; cheaper than a JSON.parse reviver on big bodies.
 */
export function faultOf(value: JsonValue, maxDepth: number): JsonFault | undefined {
  if (!isContainer(value)) {
    return typeof value === 'number' && !Number.isFinite(value) ? { kind: 'not-finite', path: [], value } : undefined;
  }
  const stack: Frame[] = [{ node: value, depth: 1, parent: undefined, key: '' }];
  let fault: JsonFault | undefined;
  while (stack.length > 0 && fault === undefined) {
    const frame = stack.pop() as Frame;
    if (frame.depth > maxDepth) return { kind: 'too-deep' };
    forEachChild(frame.node, (child, key) => {
      if (isContainer(child)) {
        stack.push({ node: child, depth: frame.depth + 1, parent: frame, key });
      } else if (typeof child === 'number' && !Number.isFinite(child)) {
        fault = { kind: 'not-finite', path: pathOf(frame, key), value: child };
        return true;
      }
      return false;
    });
  }
  return fault;
}

/**
 * Whether a value is plain JSON (what a programmatic caller hands us may not
 * be: `undefined`, functions, NaN, Dates, class instances, cycles). The
 * reason names the member when it is not the value itself.
 */
export function invalidJsonReason(value: unknown, seen = new Set<object>(), path: string[] = []): string | undefined {
  const at = path.length === 0 ? '' : ` at ${displayPath(path)}`;
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : `${value}${at} is not a JSON number`;
  if (typeof value !== 'object') return `${typeof value}${at} is not a JSON value`;
  if (seen.has(value)) return `the value contains a cycle${at}`;
  const proto = Object.getPrototypeOf(value);
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) {
    return `${proto?.constructor?.name ?? 'this object'}${at} is not a plain JSON object`;
  }
  seen.add(value);
  // By index for arrays: Object.keys skips holes, and a hole reads as undefined.
  const keys = Array.isArray(value) ? Array.from({ length: value.length }, (_, i) => String(i)) : Object.keys(value);
  for (const key of keys) {
    path.push(key);
    const reason = invalidJsonReason((value as Record<string, unknown>)[key], seen, path);
    path.pop();
    if (reason !== undefined) return reason;
  }
  seen.delete(value);
  return undefined;
}
