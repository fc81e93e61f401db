/**
 * src/document/apply.ts: RFC 6902 operations applied in place with an undo
 * log. What each operation does, what it refuses, and that undo (explicit or
 * after a failure) restores the document exactly, key order included.
 */
import { describe, expect, test } from 'vitest';
import { applyOperations, valueAt, type DocumentState } from '../../src/document/apply.js';
import { getMember, isObject, type JsonObject, type JsonValue } from '../../src/document/json.js';
import type { PatchOperation } from '../../src/document/patch-types.js';
import { parsePointer, toPointer } from '../../src/document/path.js';
import { JsonStoreError } from '../../src/errors.js';
import { randomSource } from '../support/random.js';

function stateOf(root: JsonValue): DocumentState {
  return { root: structuredClone(root) };
}

/** Applies `ops` to a copy of `root` and returns the new document as compact JSON. */
function applied(root: JsonValue, ops: PatchOperation[]): string {
  const state = stateOf(root);
  applyOperations(state, ops);
  return JSON.stringify(state.root);
}

/** Applies `ops`, expecting a 409; checks nothing changed and returns the message. */
function refused(root: JsonValue, ops: PatchOperation[], describe?: (index: number) => string): string {
  const state = stateOf(root);
  const before = JSON.stringify(state.root);
  let caught: unknown;
  try {
    applyOperations(state, ops, describe);
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(JsonStoreError);
  expect((caught as JsonStoreError).code).toBe('conflict');
  expect((caught as JsonStoreError).status).toBe(409);
  expect(JSON.stringify(state.root)).toBe(before);
  return (caught as JsonStoreError).message;
}

describe('valueAt', () => {
  const document = JSON.parse('{"a":{"b":[10,{"c":null}]},"":{"":"empty"},"__proto__":{"own":true},"n":0}') as JsonValue;

  test('the empty path is the whole document', () => {
    expect(valueAt(document, [])).toBe(document);
    expect(valueAt(5, [])).toBe(5);
  });

  test('walks objects and arrays', () => {
    expect(valueAt(document, ['a', 'b', '0'])).toBe(10);
    expect(valueAt(document, ['a', 'b', '1', 'c'])).toBeNull();
    expect(valueAt(document, ['n'])).toBe(0);
    expect(valueAt(document, ['', ''])).toBe('empty');
  });

  test('an own "__proto__" key is found; inherited names are missing', () => {
    expect(valueAt(document, ['__proto__'])).toEqual({ own: true });
    expect(valueAt({ a: 1 }, ['__proto__'])).toBeUndefined();
    expect(valueAt({ a: 1 }, ['toString'])).toBeUndefined();
    expect(valueAt({ a: 1 }, ['constructor', 'name'])).toBeUndefined();
  });

  test('array steps must be canonical indexes in range', () => {
    const list = ['x', 'y'];
    expect(valueAt(list, ['1'])).toBe('y');
    for (const segment of ['2', '01', '-', '-1', '1.0', 'length', '', ' 1']) {
      expect(valueAt(list, [segment]), segment).toBeUndefined();
    }
  });

  test('a step through a scalar or a missing member is missing', () => {
    expect(valueAt(document, ['n', 'x'])).toBeUndefined();
    expect(valueAt(document, ['a', 'b', '1', 'c', 'd'])).toBeUndefined();
    expect(valueAt(document, ['missing', 'x'])).toBeUndefined();
    expect(valueAt('text', ['length'])).toBeUndefined();
    expect(valueAt(null, ['x'])).toBeUndefined();
  });
});

describe('add', () => {
  test('a new object member goes last', () => {
    expect(applied({ b: 1, a: 2 }, [{ op: 'add', path: '/c', value: 3 }])).toBe('{"b":1,"a":2,"c":3}');
  });

  test('an existing member is replaced where it is', () => {
    expect(applied({ a: 1, b: 2, c: 3 }, [{ op: 'add', path: '/b', value: 'new' }])).toBe('{"a":1,"b":"new","c":3}');
  });

  test('into an array: at an index it inserts, at the length or "-" it appends', () => {
    expect(applied([1, 2, 3], [{ op: 'add', path: '/0', value: 0 }])).toBe('[0,1,2,3]');
    expect(applied([1, 2, 3], [{ op: 'add', path: '/1', value: 'x' }])).toBe('[1,"x",2,3]');
    expect(applied([1, 2, 3], [{ op: 'add', path: '/3', value: 4 }])).toBe('[1,2,3,4]');
    expect(applied([1, 2, 3], [{ op: 'add', path: '/-', value: 4 }])).toBe('[1,2,3,4]');
    expect(applied([], [{ op: 'add', path: '/0', value: 'only' }])).toBe('["only"]');
  });

  test('array indexes past the end or not canonical are refused', () => {
    expect(refused({ list: [1, 2] }, [{ op: 'add', path: '/list/3', value: 0 }])).toBe(
      'Operation 0 (add /list/3): index 3 is out of range for the array at /list (length 2)',
    );
    expect(refused({ list: [1, 2] }, [{ op: 'add', path: '/list/01', value: 0 }])).toBe(
      'Operation 0 (add /list/01): "01" is not an index into the array at /list',
    );
    expect(refused({ list: [] }, [{ op: 'add', path: '/list/-1', value: 0 }])).toContain('"-1" is not an index into the array at /list');
    expect(refused({ list: [] }, [{ op: 'add', path: '/list/x', value: 0 }])).toContain('"x" is not an index');
  });

  test('to the root replaces the document', () => {
    expect(applied({ a: 1 }, [{ op: 'add', path: '', value: [1] }])).toBe('[1]');
  });

  test('the parent must exist and be a container', () => {
    expect(refused({ a: 1 }, [{ op: 'add', path: '/missing/x', value: 1 }])).toBe('Operation 0 (add /missing/x): /missing does not exist');
    expect(refused({ a: 1 }, [{ op: 'add', path: '/a/x', value: 1 }])).toBe('Operation 0 (add /a/x): /a is a number, which has no members');
    expect(refused({ a: null }, [{ op: 'add', path: '/a/x', value: 1 }])).toContain('/a is null, which has no members');
    expect(refused({ a: 'str' }, [{ op: 'add', path: '/a/0', value: 1 }])).toContain('/a is a string, which has no members');
  });

  test('keys with "/", "~", "%" and empty keys', () => {
    expect(applied({}, [{ op: 'add', path: '/a~1b', value: 1 }, { op: 'add', path: '/m~0n', value: 2 }, { op: 'add', path: '/', value: 3 }, { op: 'add', path: '/100%', value: 4 }])).toBe(
      '{"a/b":1,"m~n":2,"":3,"100%":4}',
    );
  });

  test('the document gets its own copy of the value', () => {
    const value = { nested: [1] };
    const state = stateOf({});
    applyOperations(state, [{ op: 'add', path: '/a', value }]);
    value.nested.push(2);
    expect(JSON.stringify(state.root)).toBe('{"a":{"nested":[1]}}');
  });

  test('"__proto__" is added as an own key, never as the prototype', () => {
    const state = stateOf({ a: 1 });
    applyOperations(state, [{ op: 'add', path: '/__proto__', value: { polluted: true } }]);
    const root = state.root as JsonObject;
    expect(Object.getPrototypeOf(root)).toBe(Object.prototype);
    expect(JSON.stringify(root)).toBe('{"a":1,"__proto__":{"polluted":true}}');
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  test('inherited names are new members, not existing ones', () => {
    expect(applied({ a: 1 }, [{ op: 'add', path: '/toString', value: 't' }, { op: 'add', path: '/constructor', value: 'c' }])).toBe(
      '{"a":1,"toString":"t","constructor":"c"}',
    );
  });
});

describe('remove', () => {
  test('an object member; the others keep their order', () => {
    expect(applied({ a: 1, b: 2, c: 3 }, [{ op: 'remove', path: '/b' }])).toBe('{"a":1,"c":3}');
  });

  test('an array element; later ones shift down', () => {
    expect(applied([1, 2, 3], [{ op: 'remove', path: '/0' }])).toBe('[2,3]');
    expect(applied([1, 2, 3], [{ op: 'remove', path: '/2' }])).toBe('[1,2]');
  });

  test('a missing member, an index past the end, or "-" is refused', () => {
    expect(refused({ a: 1 }, [{ op: 'remove', path: '/b' }])).toBe('Operation 0 (remove /b): /b does not exist');
    expect(refused({ a: 1 }, [{ op: 'remove', path: '/toString' }])).toBe('Operation 0 (remove /toString): /toString does not exist');
    expect(refused([1, 2], [{ op: 'remove', path: '/2' }])).toBe('Operation 0 (remove /2): index 2 is out of range for the array at / (length 2)');
    expect(refused([1, 2], [{ op: 'remove', path: '/-' }])).toBe('Operation 0 (remove /-): "-" is not an index into the array at /');
    expect(refused([], [{ op: 'remove', path: '/0' }])).toContain('index 0 is out of range');
  });

  test('an own "__proto__" member', () => {
    const state = stateOf(JSON.parse('{"a":1,"__proto__":{"x":1},"b":2}') as JsonValue);
    applyOperations(state, [{ op: 'remove', path: '/__proto__' }]);
    expect(JSON.stringify(state.root)).toBe('{"a":1,"b":2}');
    expect(Object.getPrototypeOf(state.root)).toBe(Object.prototype);
  });
});

describe('replace', () => {
  test('an object member keeps its place', () => {
    expect(applied({ a: 1, b: 2, c: 3 }, [{ op: 'replace', path: '/a', value: { x: 1 } }])).toBe('{"a":{"x":1},"b":2,"c":3}');
  });

  test('an array element', () => {
    expect(applied([1, 2, 3], [{ op: 'replace', path: '/1', value: null }])).toBe('[1,null,3]');
  });

  test('the root', () => {
    expect(applied({ a: 1 }, [{ op: 'replace', path: '', value: 'scalar' }])).toBe('"scalar"');
  });

  test('the target must exist: a missing member, an index at the end, and "-" are refused', () => {
    expect(refused({ a: 1 }, [{ op: 'replace', path: '/b', value: 1 }])).toBe(
      'Operation 0 (replace /b): /b does not exist, so it cannot be replaced',
    );
    expect(refused([1], [{ op: 'replace', path: '/1', value: 1 }])).toContain('index 1 is out of range for the array at / (length 1)');
    expect(refused([1], [{ op: 'replace', path: '/-', value: 1 }])).toContain('"-" is not an index');
  });

  test('the document gets its own copy of the value', () => {
    const value = { list: [1] };
    const state = stateOf({ a: 0 });
    applyOperations(state, [{ op: 'replace', path: '/a', value }]);
    value.list.push(2);
    expect(JSON.stringify(state.root)).toBe('{"a":{"list":[1]}}');
  });
});

describe('move', () => {
  test('an object member to another object goes last there', () => {
    expect(applied({ a: { x: 1, y: 2 }, b: { z: 3 } }, [{ op: 'move', from: '/a/x', path: '/b/x' }])).toBe('{"a":{"y":2},"b":{"z":3,"x":1}}');
  });

  test('within one object, a renamed member goes last', () => {
    expect(applied({ a: 1, b: 2, c: 3 }, [{ op: 'move', from: '/a', path: '/d' }])).toBe('{"b":2,"c":3,"d":1}');
  });

  test('onto an existing member replaces it', () => {
    expect(applied({ a: 1, b: 2 }, [{ op: 'move', from: '/a', path: '/b' }])).toBe('{"b":1}');
  });

  test('within an array, the index is read after the removal', () => {
    expect(applied([0, 1, 2, 3], [{ op: 'move', from: '/0', path: '/3' }])).toBe('[1,2,3,0]');
    expect(applied([0, 1, 2, 3], [{ op: 'move', from: '/3', path: '/0' }])).toBe('[3,0,1,2]');
    expect(applied([0, 1, 2, 3], [{ op: 'move', from: '/1', path: '/-' }])).toBe('[0,2,3,1]');
  });

  test('onto itself changes nothing, but "from" must still exist', () => {
    const state = stateOf({ a: 1, b: 2 });
    const change = applyOperations(state, [{ op: 'move', from: '/a', path: '/a' }]);
    expect(JSON.stringify(state.root)).toBe('{"a":1,"b":2}');
    expect(change.ops).toEqual([]);
    expect(refused({ a: 1 }, [{ op: 'move', from: '/x', path: '/x' }])).toBe('Operation 0 (move /x): /x does not exist');
  });

  test('a missing "from" is refused', () => {
    expect(refused({ a: 1 }, [{ op: 'move', from: '/b', path: '/c' }])).toBe('Operation 0 (move /c): /b does not exist');
  });

  test('into its own child is refused', () => {
    expect(refused({ a: { b: {} } }, [{ op: 'move', from: '/a', path: '/a/b/c' }])).toBe(
      'Operation 0 (move /a/b/c): cannot move /a into its own child',
    );
  });

  test('a sibling whose name starts with the same text is not a child', () => {
    expect(applied({ a: 1, ab: {} }, [{ op: 'move', from: '/a', path: '/ab/x' }])).toBe('{"ab":{"x":1}}');
  });

  test('a failed insert after the removal puts the value back', () => {
    expect(refused({ a: 1, b: 2, c: 3 }, [{ op: 'move', from: '/a', path: '/missing/x' }])).toBe(
      'Operation 0 (move /missing/x): /missing does not exist',
    );
  });
});

describe('copy', () => {
  test('copies deeply: changing the copy leaves the source alone', () => {
    const state = stateOf({ a: { list: [1] } });
    applyOperations(state, [
      { op: 'copy', from: '/a', path: '/b' },
      { op: 'add', path: '/b/list/-', value: 2 },
    ]);
    expect(JSON.stringify(state.root)).toBe('{"a":{"list":[1]},"b":{"list":[1,2]}}');
  });

  test('into an array, and into its own child', () => {
    expect(applied({ a: [1, 2] }, [{ op: 'copy', from: '/a/0', path: '/a/-' }])).toBe('{"a":[1,2,1]}');
    expect(applied({ a: { x: 1 } }, [{ op: 'copy', from: '/a', path: '/a/self' }])).toBe('{"a":{"x":1,"self":{"x":1}}}');
  });

  test('a missing "from" is refused', () => {
    expect(refused({ a: 1 }, [{ op: 'copy', from: '/b', path: '/c' }])).toBe('Operation 0 (copy /c): /b does not exist');
    expect(refused([1], [{ op: 'copy', from: '/1', path: '/-' }])).toBe('Operation 0 (copy /-): /1 does not exist');
  });
});

describe('test', () => {
  test('passes on an equal value, whatever the key order, and changes nothing', () => {
    const state = stateOf({ a: { x: 1, y: [1, 2] } });
    const change = applyOperations(state, [{ op: 'test', path: '/a', value: { y: [1, 2], x: 1 } }]);
    expect(change.ops).toEqual([]);
    expect(JSON.stringify(state.root)).toBe('{"a":{"x":1,"y":[1,2]}}');
  });

  test('fails on a different value or type', () => {
    expect(refused({ a: 1 }, [{ op: 'test', path: '/a', value: '1' }])).toBe('Operation 0 (test /a): the value at /a is not the expected one');
    expect(refused({ a: [1, 2] }, [{ op: 'test', path: '/a', value: [2, 1] }])).toContain('is not the expected one');
    expect(refused({ a: null }, [{ op: 'test', path: '/a', value: {} }])).toContain('is not the expected one');
  });

  test('fails on a missing path, even when testing for null', () => {
    expect(refused({ a: 1 }, [{ op: 'test', path: '/b', value: null }])).toBe('Operation 0 (test /b): /b does not exist');
    expect(refused([1], [{ op: 'test', path: '/-', value: 1 }])).toBe('Operation 0 (test /-): /- does not exist');
  });

  test('the root can be tested', () => {
    expect(applied([1, 2], [{ op: 'test', path: '', value: [1, 2] }])).toBe('[1,2]');
  });
});

describe('messages', () => {
  test('the default names the failing operation by index, op and path', () => {
    const message = refused({ a: 1 }, [
      { op: 'add', path: '/b', value: 2 },
      { op: 'remove', path: '/c' },
    ]);
    expect(message).toBe('Operation 1 (remove /c): /c does not exist');
  });

  test('describe() names the operation instead', () => {
    const message = refused({ a: 1 }, [{ op: 'add', path: '/b', value: 2 }, { op: 'remove', path: '/c' }], (index) => `step #${index}`);
    expect(message).toBe('step #1: /c does not exist');
  });

  test('paths in messages are shown URL-style, with "/" and "%" in keys escaped', () => {
    expect(refused({ 'a/b': 1 }, [{ op: 'add', path: '/a~1b/100%/x', value: 1 }])).toBe(
      'Operation 0 (add /a~1b/100%/x): /a%2Fb/100%25 does not exist',
    );
  });
});

describe('the applied change', () => {
  test('lists the operations as applied: no tests, "-" resolved to the real index', () => {
    const state = stateOf({ list: ['a'], obj: {} });
    const change = applyOperations(state, [
      { op: 'test', path: '/list/0', value: 'a' },
      { op: 'add', path: '/list/-', value: 'b' },
      { op: 'copy', from: '/list/0', path: '/list/-' },
      { op: 'move', from: '/list/0', path: '/list/-' },
      { op: 'remove', path: '/list/0' },
      { op: 'replace', path: '/obj', value: 1 },
      { op: 'add', path: '/obj2', value: null },
    ]);
    expect(change.ops).toEqual([
      { op: 'add', path: '/list/1', value: 'b' },
      { op: 'copy', from: '/list/0', path: '/list/2' },
      { op: 'move', from: '/list/0', path: '/list/2' },
      { op: 'remove', path: '/list/0' },
      { op: 'replace', path: '/obj', value: 1 },
      { op: 'add', path: '/obj2', value: null },
    ]);
    expect(JSON.stringify(state.root)).toBe('{"list":["a","a"],"obj":1,"obj2":null}');
  });

  test('replaying the applied operations on the old document gives the new one', () => {
    const start = { list: [1, 2, 3], o: { k: 'v' } };
    const state = stateOf(start);
    const change = applyOperations(state, [
      { op: 'add', path: '/list/-', value: 4 },
      { op: 'move', from: '/list/0', path: '/list/-' },
      { op: 'copy', from: '/o', path: '/list/1' },
    ]);
    expect(applied(start, change.ops)).toBe(JSON.stringify(state.root));
  });

  test('an empty list of operations changes nothing and undoes to nothing', () => {
    const state = stateOf({ a: 1 });
    const change = applyOperations(state, []);
    expect(change.ops).toEqual([]);
    change.undo();
    expect(JSON.stringify(state.root)).toBe('{"a":1}');
  });
});

describe('undo', () => {
  test('a failing operation undoes the ones before it, key order included', () => {
    const start = { a: 1, b: { x: 1, y: 2, z: 3 }, c: [1, 2, 3], d: 4 };
    expect(
      refused(start, [
        { op: 'remove', path: '/a' },
        { op: 'remove', path: '/b/y' },
        { op: 'add', path: '/a', value: 'back, but last' },
        { op: 'add', path: '/b/w', value: 0 },
        { op: 'remove', path: '/b/x' },
        { op: 'move', from: '/c/0', path: '/c/-' },
        { op: 'replace', path: '/d', value: 5 },
        { op: 'add', path: '/c/1', value: 'inserted' },
        { op: 'test', path: '/d', value: 4 },
      ]),
    ).toBe('Operation 8 (test /d): the value at /d is not the expected one');
  });

  test('undo() after success restores the document exactly, root object included', () => {
    const state = stateOf({ k1: 1, k2: { n: [1, { deep: true }] }, k3: 'x' });
    const root = state.root;
    const before = JSON.stringify(state.root);
    const change = applyOperations(state, [
      { op: 'remove', path: '/k1' },
      { op: 'remove', path: '/k2/n/1/deep' },
      { op: 'add', path: '/k1', value: 'new' },
      { op: 'move', from: '/k2', path: '/k4' },
      { op: 'copy', from: '/k4', path: '/k2' },
    ]);
    expect(JSON.stringify(state.root)).toBe('{"k3":"x","k1":"new","k4":{"n":[1,{}]},"k2":{"n":[1,{}]}}');
    change.undo();
    expect(JSON.stringify(state.root)).toBe(before);
    expect(state.root).toBe(root);
  });

  test('undo of a root replacement brings back the same root object', () => {
    const state = stateOf({ a: 1 });
    const root = state.root;
    const change = applyOperations(state, [
      { op: 'replace', path: '', value: [1] },
      { op: 'add', path: '/-', value: 2 },
    ]);
    expect(state.root).toEqual([1, 2]);
    change.undo();
    expect(state.root).toBe(root);
    expect(JSON.stringify(state.root)).toBe('{"a":1}');
  });

  test('a removed own "__proto__" member comes back as an own key in its place', () => {
    const state = stateOf(JSON.parse('{"a":1,"__proto__":{"x":1},"b":2}') as JsonValue);
    const change = applyOperations(state, [
      { op: 'remove', path: '/__proto__' },
      { op: 'remove', path: '/a' },
    ]);
    change.undo();
    expect(JSON.stringify(state.root)).toBe('{"a":1,"__proto__":{"x":1},"b":2}');
    expect(Object.getPrototypeOf(state.root)).toBe(Object.prototype);
    expect(getMember(state.root as JsonObject, '__proto__')).toEqual({ x: 1 });
  });

  test('a removed member comes back in its place among integer-like keys too', () => {
    // JavaScript lists integer-like keys first in ascending order whatever the
    // insertion order; undo must give back what JSON.stringify showed before.
    const state = stateOf(JSON.parse('{"b":1,"2":2,"a":3,"1":4}') as JsonValue);
    const before = JSON.stringify(state.root);
    const change = applyOperations(state, [
      { op: 'remove', path: '/b' },
      { op: 'remove', path: '/1' },
      { op: 'add', path: '/0', value: 0 },
    ]);
    change.undo();
    expect(JSON.stringify(state.root)).toBe(before);
  });
});

/**
 * Random operation sequences: each sequence is valid when built (so it
 * applies), then undone; the document must read exactly as before. A second
 * run appends an operation that fails, so the rollback path is checked too.
 */
describe('undo is exact for random operation sequences', () => {
  const random = randomSource;

  const keyPool = ['a', 'b', 'c', 'd', 'z', '', '__proto__', 'constructor', 'a/b', 'm~n', '100%', '0', '7', '10'];

  function randomValue(next: () => number, depth: number): JsonValue {
    const roll = next();
    if (depth > 2 || roll < 0.45) {
      const scalars: JsonValue[] = [null, true, false, 0, -1.5, 42, '', 'text', 'é😀'];
      return scalars[Math.floor(next() * scalars.length)] as JsonValue;
    }
    if (roll < 0.7) {
      const list: JsonValue[] = [];
      const length = Math.floor(next() * 4);
      for (let i = 0; i < length; i++) list.push(randomValue(next, depth + 1));
      return list;
    }
    const object: JsonObject = {};
    const size = Math.floor(next() * 5);
    for (let i = 0; i < size; i++) {
      const key = keyPool[Math.floor(next() * keyPool.length)] as string;
      Object.defineProperty(object, key, { value: randomValue(next, depth + 1), writable: true, enumerable: true, configurable: true });
    }
    return object;
  }

  /** Every path in the document, containers first. */
  function pathsOf(value: JsonValue, prefix: string[] = [], out: string[][] = []): string[][] {
    out.push(prefix);
    if (Array.isArray(value)) value.forEach((child, i) => pathsOf(child, [...prefix, String(i)], out));
    else if (isObject(value)) for (const key of Object.keys(value)) pathsOf(value[key] as JsonValue, [...prefix, key], out);
    return out;
  }

  function pick<T>(next: () => number, list: readonly T[]): T {
    return list[Math.floor(next() * list.length)] as T;
  }

  /** A place `add` can write to in `root`: a new or existing key, an index, or "-". */
  function addTarget(next: () => number, root: JsonValue, avoid?: string[]): string[] | undefined {
    const containers = pathsOf(root).filter((path) => {
      const value = valueAt(root, path);
      const inside = avoid !== undefined && path.length >= avoid.length && avoid.every((segment, i) => path[i] === segment);
      return !inside && value !== null && typeof value === 'object';
    });
    if (containers.length === 0) return undefined;
    const parent = pick(next, containers);
    const container = valueAt(root, parent);
    if (Array.isArray(container)) {
      const roll = next();
      return [...parent, roll < 0.3 ? '-' : String(Math.floor(next() * (container.length + 1)))];
    }
    return [...parent, pick(next, keyPool)];
  }

  /** One operation that applies to `root`, or undefined when the pick does not fit. */
  function randomOperation(next: () => number, root: JsonValue): PatchOperation | undefined {
    const members = pathsOf(root).filter((path) => path.length > 0);
    const kind = pick(next, ['add', 'add', 'remove', 'remove', 'replace', 'move', 'copy', 'test'] as const);
    switch (kind) {
      case 'add': {
        const target = addTarget(next, root);
        return target && { op: 'add', path: toPointer(target), value: randomValue(next, 1) };
      }
      case 'remove': {
        if (members.length === 0) return undefined;
        return { op: 'remove', path: toPointer(pick(next, members)) };
      }
      case 'replace': {
        const target = next() < 0.05 ? [] : members.length > 0 ? pick(next, members) : undefined;
        return target && { op: 'replace', path: toPointer(target), value: randomValue(next, 1) };
      }
      case 'move':
      case 'copy': {
        if (members.length === 0) return undefined;
        const from = pick(next, members);
        const target = addTarget(next, root, kind === 'move' ? from : undefined);
        return target && { op: kind, from: toPointer(from), path: toPointer(target) };
      }
      case 'test': {
        const target = pick(next, [[], ...members]);
        return { op: 'test', path: toPointer(target), value: structuredClone(valueAt(root, target) as JsonValue) };
      }
    }
  }

  /** A sequence that applies cleanly to `start`, built one operation at a time. */
  function randomSequence(next: () => number, start: JsonValue, length: number): { ops: PatchOperation[]; end: string } {
    const scratch = stateOf(start);
    const ops: PatchOperation[] = [];
    while (ops.length < length) {
      const op = randomOperation(next, scratch.root);
      if (op === undefined) continue;
      try {
        applyOperations(scratch, [op]);
      } catch (error) {
        // A move within one array reads its target index after the removal,
        // so an index that was the length no longer fits: pick another.
        if (error instanceof JsonStoreError && op.op === 'move') continue;
        throw error;
      }
      ops.push(op);
    }
    return { ops, end: JSON.stringify(scratch.root) };
  }

  function randomDocument(next: () => number): JsonValue {
    const root: JsonObject = {};
    for (const key of ['b', '10', 'a', '__proto__', 'list', 'z', '2']) {
      Object.defineProperty(root, key, { value: randomValue(next, 0), writable: true, enumerable: true, configurable: true });
    }
    Object.defineProperty(root, 'list', { value: [1, { x: 1, y: 2 }, [3]], writable: true, enumerable: true, configurable: true });
    return root;
  }

  test('apply, then undo(): the document reads as before', () => {
    for (let seed = 1; seed <= 300; seed++) {
      const next = random(seed);
      const start = randomDocument(next);
      const { ops, end } = randomSequence(next, start, 1 + Math.floor(next() * 12));
      const state = stateOf(start);
      const before = JSON.stringify(state.root);
      const change = applyOperations(state, ops);
      // Applying the whole sequence at once gives what applying it step by step gave.
      expect(JSON.stringify(state.root), `seed ${seed}`).toBe(end);
      change.undo();
      expect(JSON.stringify(state.root), `seed ${seed}: ${JSON.stringify(ops)}`).toBe(before);
      expect(Object.getPrototypeOf(state.root)).toBe(Object.prototype);
    }
  });

  test('apply with a failing last operation: the rollback leaves the document as before', () => {
    for (let seed = 1001; seed <= 1300; seed++) {
      const next = random(seed);
      const start = randomDocument(next);
      const { ops } = randomSequence(next, start, 1 + Math.floor(next() * 12));
      const failing: PatchOperation = { op: 'remove', path: '/no such member/x' };
      const message = refused(start, [...ops, failing]);
      expect(message, `seed ${seed}`).toBe(`Operation ${ops.length} (remove /no such member/x): /no such member does not exist`);
    }
  });

  test('the generated sequences exercise every kind of operation', () => {
    const seen = new Set<string>();
    let arrayAppends = 0;
    let protoWrites = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const next = random(seed);
      const start = randomDocument(next);
      for (const op of randomSequence(next, start, 1 + Math.floor(next() * 12)).ops) {
        seen.add(op.op);
        if (op.path.endsWith('/-')) arrayAppends++;
        if (parsePointer(op.path).includes('__proto__')) protoWrites++;
      }
    }
    expect([...seen].sort()).toEqual(['add', 'copy', 'move', 'remove', 'replace', 'test']);
    expect(arrayAppends).toBeGreaterThan(10);
    expect(protoWrites).toBeGreaterThan(10);
  });
});
