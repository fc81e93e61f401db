/**
 * JSON value types and the few object helpers every layer needs. Keys are data,
 * never code: all member access goes through own-property checks, and writes
 * define properties, so `__proto__`, `constructor` and friends are plain keys.
 */

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
 * Nesting depth of a value: scalars are 0, `[]` and `{}` are 1. Iterative, so a
 * hostile body cannot overflow the stack; stops counting past `limit`.
 */
export function depthOf(value: JsonValue, limit = Number.POSITIVE_INFINITY): number {
  if (!isContainer(value)) return 0;
  let max = 0;
  const stack: Array<[JsonValue, number]> = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (depth > max) {
      max = depth;
      if (max > limit) return max;
    }
    const children = Array.isArray(node) ? node : Object.values(node as JsonObject);
    for (const child of children) if (isContainer(child)) stack.push([child, depth + 1]);
  }
  return max;
}

/**
 * Whether a value is plain JSON (what a programmatic caller hands us may not
 * be: `undefined`, functions, NaN, Dates, class instances, cycles).
 */
export function invalidJsonReason(value: unknown, seen = new Set<object>()): string | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : `${value} is not a JSON number`;
  if (typeof value !== 'object') return `${typeof value} is not a JSON value`;
  if (seen.has(value)) return 'the value contains a cycle';
  const proto = Object.getPrototypeOf(value);
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) {
    return `${proto?.constructor?.name ?? 'this object'} is not a plain JSON object`;
  }
  seen.add(value);
  const children = Array.isArray(value) ? value : Object.values(value);
  for (const child of children) {
    const reason = invalidJsonReason(child, seen);
    if (reason !== undefined) return reason;
  }
  seen.delete(value);
  return undefined;
}
