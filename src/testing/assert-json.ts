/**
 * Exact JSON comparison for stored documents: same types, same members in the
 * same order, own keys only (`__proto__` is data). Numbers compare with `===`
 * because JSON has no `-0`. Failures name the first place that differs
 * without printing megabytes.
 */
import assert from 'node:assert/strict';
import type { JsonValue } from '../document/json.js';
import { toPointer } from '../document/path.js';

function preview(value: unknown): string {
  if (value === undefined) return 'nothing';
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function kind(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function where(path: string[]): string {
  return path.length === 0 ? 'the root' : JSON.stringify(toPointer(path));
}

function firstDifference(actual: unknown, expected: JsonValue, path: string[]): string | undefined {
  if (kind(actual) !== kind(expected)) {
    return `at ${where(path)} expected ${kind(expected)} ${preview(expected)}, got ${kind(actual)} ${preview(actual)}`;
  }
  if (typeof expected === 'string') {
    const text = actual as string;
    if (text === expected) return undefined;
    let index = 0;
    while (index < text.length && text[index] === expected[index]) index++;
    return `at ${where(path)} the strings differ from character ${index} (lengths ${expected.length} expected, ${text.length} got): expected ${preview(expected.slice(index, index + 20))}, got ${preview(text.slice(index, index + 20))}`;
  }
  if (expected === null || typeof expected !== 'object') {
    return actual === expected ? undefined : `at ${where(path)} expected ${preview(expected)}, got ${preview(actual)}`;
  }
  if (Array.isArray(expected)) {
    const array = actual as unknown[];
    if (array.length !== expected.length) {
      return `at ${where(path)} expected an array of ${expected.length} elements, got ${array.length}`;
    }
    for (let i = 0; i < expected.length; i++) {
      const difference = firstDifference(array[i], expected[i] as JsonValue, [...path, String(i)]);
      if (difference !== undefined) return difference;
    }
    return undefined;
  }
  const object = actual as Record<string, unknown>;
  const expectedKeys = Object.keys(expected);
  const actualKeys = Object.keys(object);
  if (expectedKeys.length !== actualKeys.length || expectedKeys.some((key, i) => key !== actualKeys[i])) {
    return `at ${where(path)} expected the keys ${preview(expectedKeys)} in this order, got ${preview(actualKeys)}`;
  }
  for (const key of expectedKeys) {
    if (!Object.prototype.hasOwnProperty.call(object, key)) return `at ${where([...path, key])} the member is not an own property`;
    const difference = firstDifference(object[key], expected[key] as JsonValue, [...path, key]);
    if (difference !== undefined) return difference;
  }
  return undefined;
}

/** Fails with an `AssertionError` saying where `actual` first differs from `expected`. */
export function assertSameJson(actual: unknown, expected: JsonValue, what: string): void {
  const difference = firstDifference(actual, expected, []);
  if (difference !== undefined) assert.fail(`${what}: ${difference}`);
}

/** A fingerprint of the built-in prototypes, to prove no key reached them. */
export function prototypeFingerprint(): string {
  const describe = (target: object) =>
    Reflect.ownKeys(target)
      .map((key) => String(key))
      .sort()
      .join(',');
  return [describe(Object.prototype), describe(Array.prototype), String(Object.getPrototypeOf(Object.prototype))].join('|');
}
