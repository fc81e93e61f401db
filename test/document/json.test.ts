/**
 * src/document/json.ts: JSON value helpers. Keys are data: inherited names
 * are not members and `__proto__` is an ordinary own key.
 */
import { describe, expect, test } from 'vitest';
import {
  cloneJson,
  depthOf,
  describeType,
  getMember,
  hasMember,
  invalidJsonReason,
  isContainer,
  isObject,
  jsonEqual,
  setMember,
  type JsonObject,
  type JsonValue,
} from '../../src/document/json.js';

/** An object with `__proto__` as an own member, as JSON.parse makes it. */
function withProtoKey(): JsonObject {
  return JSON.parse('{"a":1,"__proto__":{"polluted":true},"b":2}') as JsonObject;
}

describe('isObject and isContainer', () => {
  test('isObject is true for plain and null-prototype objects only', () => {
    expect(isObject({})).toBe(true);
    expect(isObject({ a: 1 })).toBe(true);
    expect(isObject(Object.create(null))).toBe(true);
    for (const value of [[], null, undefined, 0, '', 'x', true]) expect(isObject(value), String(value)).toBe(false);
  });

  test('isContainer is true for objects and arrays', () => {
    expect(isContainer({})).toBe(true);
    expect(isContainer([])).toBe(true);
    for (const value of [null, undefined, 0, 'x', false]) expect(isContainer(value), String(value)).toBe(false);
  });
});

describe('hasMember and getMember', () => {
  test('own members are found, including ones whose value is null or falsy', () => {
    const object: JsonObject = { a: null, b: 0, c: '', d: false };
    for (const key of ['a', 'b', 'c', 'd']) expect(hasMember(object, key)).toBe(true);
    expect(getMember(object, 'a')).toBeNull();
    expect(getMember(object, 'b')).toBe(0);
    expect(getMember(object, 'c')).toBe('');
    expect(getMember(object, 'd')).toBe(false);
  });

  test('inherited names are not members', () => {
    const object: JsonObject = { a: 1 };
    for (const key of ['toString', 'constructor', 'hasOwnProperty', '__proto__', 'valueOf']) {
      expect(hasMember(object, key), key).toBe(false);
      expect(getMember(object, key), key).toBeUndefined();
    }
    expect(getMember(object, 'missing')).toBeUndefined();
  });

  test('an own "__proto__" key is a member with its own value', () => {
    const object = withProtoKey();
    expect(hasMember(object, '__proto__')).toBe(true);
    expect(getMember(object, '__proto__')).toEqual({ polluted: true });
  });

  test('a member named "hasOwnProperty" does not break the lookup', () => {
    const object: JsonObject = { hasOwnProperty: 'shadowed', x: 1 };
    expect(hasMember(object, 'x')).toBe(true);
    expect(hasMember(object, 'y')).toBe(false);
  });

  test('works on null-prototype objects', () => {
    const object = Object.create(null) as JsonObject;
    object['k'] = 'v';
    expect(hasMember(object, 'k')).toBe(true);
    expect(getMember(object, 'k')).toBe('v');
  });
});

describe('setMember', () => {
  test('sets an ordinary key, appending new keys and keeping existing ones in place', () => {
    const object: JsonObject = { a: 1, b: 2 };
    setMember(object, 'c', 3);
    setMember(object, 'a', 10);
    expect(JSON.stringify(object)).toBe('{"a":10,"b":2,"c":3}');
  });

  test('"__proto__" becomes an own, enumerable data key; the prototype is untouched', () => {
    const object: JsonObject = { a: 1 };
    setMember(object, '__proto__', { polluted: true });
    expect(Object.getPrototypeOf(object)).toBe(Object.prototype);
    expect(Object.keys(object)).toEqual(['a', '__proto__']);
    expect(JSON.stringify(object)).toBe('{"a":1,"__proto__":{"polluted":true}}');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    // It stays writable, so a later set replaces the value in place.
    setMember(object, '__proto__', 5);
    expect(JSON.stringify(object)).toBe('{"a":1,"__proto__":5}');
    expect(Object.getPrototypeOf(object)).toBe(Object.prototype);
  });
});

describe('describeType', () => {
  test('names each kind of value as a message would', () => {
    expect(describeType(undefined)).toBe('missing');
    expect(describeType(null)).toBe('null');
    expect(describeType([])).toBe('an array');
    expect(describeType({})).toBe('an object');
    expect(describeType('x')).toBe('a string');
    expect(describeType(0)).toBe('a number');
    expect(describeType(false)).toBe('a boolean');
  });
});

describe('jsonEqual', () => {
  test('scalars compare by value and type', () => {
    expect(jsonEqual(1, 1)).toBe(true);
    expect(jsonEqual('a', 'a')).toBe(true);
    expect(jsonEqual(null, null)).toBe(true);
    expect(jsonEqual(1, '1' as JsonValue)).toBe(false);
    expect(jsonEqual(0, false)).toBe(false);
    expect(jsonEqual(null, false)).toBe(false);
    expect(jsonEqual('', null)).toBe(false);
  });

  test('objects are equal whatever the member order', () => {
    expect(jsonEqual({ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1 })).toBe(true);
  });

  test('objects with different members are not equal', () => {
    expect(jsonEqual({ a: 1 }, { b: 1 })).toBe(false);
    expect(jsonEqual({ a: 1, b: 2 }, { a: 1 })).toBe(false);
    expect(jsonEqual({ a: 1 }, { a: 1, b: 2 })).toBe(false);
    expect(jsonEqual({ a: 1 }, { a: 2 })).toBe(false);
    expect(jsonEqual({ a: null }, {})).toBe(false);
  });

  test('arrays compare element by element, in order', () => {
    expect(jsonEqual([1, [2, { x: 3 }]], [1, [2, { x: 3 }]])).toBe(true);
    expect(jsonEqual([1, 2], [2, 1])).toBe(false);
    expect(jsonEqual([1, 2], [1, 2, 3])).toBe(false);
    expect(jsonEqual([], [])).toBe(true);
  });

  test('an array is never equal to an object, nor null to a container', () => {
    expect(jsonEqual([], {})).toBe(false);
    expect(jsonEqual({}, [])).toBe(false);
    expect(jsonEqual({ 0: 'a' }, ['a'])).toBe(false);
    expect(jsonEqual(null, {})).toBe(false);
    expect(jsonEqual([], null)).toBe(false);
  });

  test('inherited names do not count as members; an own "__proto__" does', () => {
    expect(jsonEqual(withProtoKey(), withProtoKey())).toBe(true);
    expect(jsonEqual(withProtoKey(), { a: 1, b: 2, c: 3 })).toBe(false);
    expect(jsonEqual({ a: 1, b: 2, toString: 3 }, withProtoKey())).toBe(false);
  });
});

describe('cloneJson', () => {
  test('scalars come back as they are', () => {
    for (const value of [null, 0, 'x', true]) expect(cloneJson(value)).toBe(value);
  });

  test('containers are copied deeply, keeping key order', () => {
    const original: JsonObject = { z: 1, a: [{ m: 1 }, 2], k: { n: null } };
    const copy = cloneJson(original);
    expect(JSON.stringify(copy)).toBe(JSON.stringify(original));
    expect(copy).not.toBe(original);
    ((copy['a'] as JsonValue[])[0] as JsonObject)['m'] = 99;
    (copy['k'] as JsonObject)['n'] = 'changed';
    expect(JSON.stringify(original)).toBe('{"z":1,"a":[{"m":1},2],"k":{"n":null}}');
  });

  test('an own "__proto__" key stays an own key in the copy', () => {
    const copy = cloneJson(withProtoKey());
    expect(Object.keys(copy)).toEqual(['a', '__proto__', 'b']);
    expect(Object.getPrototypeOf(copy)).toBe(Object.prototype);
    expect(getMember(copy, '__proto__')).toEqual({ polluted: true });
  });
});

describe('depthOf', () => {
  test('scalars are 0, empty containers 1, each level adds 1', () => {
    expect(depthOf(1)).toBe(0);
    expect(depthOf(null)).toBe(0);
    expect(depthOf([])).toBe(1);
    expect(depthOf({})).toBe(1);
    expect(depthOf([1, 'x'])).toBe(1);
    expect(depthOf([[[]]])).toBe(3);
    expect(depthOf({ a: [{}] })).toBe(3);
  });

  test('the deepest branch counts, wherever it is', () => {
    expect(depthOf({ a: 1, b: { c: { d: [] } }, e: [] })).toBe(4);
    expect(depthOf([[], [[[[]]]], {}])).toBe(5);
  });

  test('an own "__proto__" member counts like any other', () => {
    expect(depthOf(JSON.parse('{"__proto__":{"a":[{}]}}') as JsonValue)).toBe(4);
  });

  test('a very deep value is measured without overflowing the stack', () => {
    let deep: JsonValue = [];
    for (let i = 1; i < 100_000; i++) deep = [deep];
    expect(depthOf(deep)).toBe(100_000);
  });

  test('counting stops just past the limit', () => {
    let deep: JsonValue = {};
    for (let i = 1; i < 50; i++) deep = { x: deep };
    expect(depthOf(deep, 5)).toBe(6);
    expect(depthOf(deep, 49)).toBe(50);
    expect(depthOf(deep, 50)).toBe(50);
  });
});

describe('invalidJsonReason', () => {
  test('plain JSON values have no reason', () => {
    const values: unknown[] = [null, 0, -1.5, 'x', true, [], {}, Object.create(null), { a: [1, { b: null }] }, withProtoKey()];
    for (const value of values) expect(invalidJsonReason(value)).toBeUndefined();
  });

  test('values JSON cannot hold are named', () => {
    expect(invalidJsonReason(undefined)).toBe('undefined is not a JSON value');
    expect(invalidJsonReason(() => 1)).toBe('function is not a JSON value');
    expect(invalidJsonReason(Symbol('s'))).toBe('symbol is not a JSON value');
    expect(invalidJsonReason(10n)).toBe('bigint is not a JSON value');
    expect(invalidJsonReason(Number.NaN)).toBe('NaN is not a JSON number');
    expect(invalidJsonReason(Number.POSITIVE_INFINITY)).toBe('Infinity is not a JSON number');
    expect(invalidJsonReason(Number.NEGATIVE_INFINITY)).toBe('-Infinity is not a JSON number');
  });

  test('objects that are not plain are named by their class', () => {
    class Point {
      x = 1;
    }
    expect(invalidJsonReason(new Date(0))).toBe('Date is not a plain JSON object');
    expect(invalidJsonReason(new Map())).toBe('Map is not a plain JSON object');
    expect(invalidJsonReason(new Point())).toBe('Point is not a plain JSON object');
  });

  test('a bad value deep inside is found', () => {
    // The message names the member, as a path.
    expect(invalidJsonReason({ a: [1, { b: undefined }] })).toBe('undefined at /a/1/b is not a JSON value');
    expect(invalidJsonReason([1, [2, [Number.NaN]]])).toBe('NaN at /1/1/0 is not a JSON number');
    // A hole in an array reads as undefined.
    expect(invalidJsonReason([1, , 3])).toBe('undefined at /1 is not a JSON value');
  });

  test('a cycle is refused, but the same object twice is not a cycle', () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic['self'] = { back: cyclic };
    expect(invalidJsonReason(cyclic)).toBe('the value contains a cycle at /self/back');
    const list: unknown[] = [];
    list.push(list);
    expect(invalidJsonReason(list)).toBe('the value contains a cycle at /0');

    const shared = { s: 1 };
    expect(invalidJsonReason({ a: shared, b: shared, c: [shared, shared] })).toBeUndefined();
  });
});
