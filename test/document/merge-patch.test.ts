/**
 * src/document/merge-patch.ts: RFC 7396 merge patches as the RFC 6902
 * operations they amount to. Checked both as operations and as the document
 * those operations produce.
 */
import { describe, expect, test } from 'vitest';
import { applyOperations } from '../../src/document/apply.js';
import { getMember, type JsonObject, type JsonValue } from '../../src/document/json.js';
import { mergePatchOperations } from '../../src/document/merge-patch.js';

/** Merges `patch` onto a copy of `target` (a whole document) and returns the result. */
function merged(target: JsonValue, patch: JsonValue): JsonValue {
  const state = { root: structuredClone(target) };
  applyOperations(state, mergePatchOperations(state.root, patch, []));
  return state.root;
}

describe('RFC 7396 appendix A examples', () => {
  const examples: Array<[original: string, patch: string, result: string]> = [
    ['{"a":"b"}', '{"a":"c"}', '{"a":"c"}'],
    ['{"a":"b"}', '{"b":"c"}', '{"a":"b","b":"c"}'],
    ['{"a":"b"}', '{"a":null}', '{}'],
    ['{"a":"b","b":"c"}', '{"a":null}', '{"b":"c"}'],
    ['{"a":["b"]}', '{"a":"c"}', '{"a":"c"}'],
    ['{"a":"c"}', '{"a":["b"]}', '{"a":["b"]}'],
    ['{"a":{"b":"c"}}', '{"a":{"b":"d","c":null}}', '{"a":{"b":"d"}}'],
    ['{"a":[{"b":"c"}]}', '{"a":[1]}', '{"a":[1]}'],
    ['["a","b"]', '["c","d"]', '["c","d"]'],
    ['{"a":"b"}', '["c"]', '["c"]'],
    ['{"a":"foo"}', 'null', 'null'],
    ['{"a":"foo"}', '"bar"', '"bar"'],
    ['{"e":null}', '{"a":1}', '{"e":null,"a":1}'],
    ['[1,2]', '{"a":"b","c":null}', '{"a":"b"}'],
    ['{}', '{"a":{"bb":{"ccc":null}}}', '{"a":{"bb":{}}}'],
  ];
  for (const [original, patch, result] of examples) {
    test(`${original} + ${patch} = ${result}`, () => {
      // Compared as text: the key order is part of the result (existing keys keep their place, new ones go last).
      expect(JSON.stringify(merged(JSON.parse(original), JSON.parse(patch)))).toBe(result);
    });
  }

  test('section 3: the example of a merge patch to a whole document', () => {
    const target = {
      title: 'Goodbye!',
      author: { givenName: 'John', familyName: 'Doe' },
      tags: ['example', 'sample'],
      content: 'This will be unchanged',
    };
    const patch = { title: 'Hello!', phoneNumber: '+01-234-567-8910', author: { familyName: null }, tags: ['example'] };
    const result = merged(target, patch);
    expect(result).toEqual({
      title: 'Hello!',
      author: { givenName: 'John' },
      tags: ['example'],
      content: 'This will be unchanged',
      phoneNumber: '+01-234-567-8910',
    });
    expect(Object.keys(result as JsonObject)).toEqual(['title', 'author', 'tags', 'content', 'phoneNumber']);
  });
});

describe('the operations a merge patch amounts to', () => {
  test('a member set to a new value is a replace; a new member is an add', () => {
    expect(mergePatchOperations({ a: 'b' }, { a: 'c', n: 1 }, [])).toEqual([
      { op: 'replace', path: '/a', value: 'c' },
      { op: 'add', path: '/n', value: 1 },
    ]);
  });

  test('null removes a member that exists and does nothing for one that does not', () => {
    expect(mergePatchOperations({ a: 1, b: 2 }, { a: null, missing: null }, [])).toEqual([{ op: 'remove', path: '/a' }]);
    expect(mergePatchOperations({}, { a: null }, [])).toEqual([]);
  });

  test('an empty object patch changes nothing', () => {
    expect(mergePatchOperations({ a: 1 }, {}, [])).toEqual([]);
    expect(mergePatchOperations({ a: { b: 1 } }, { a: {} }, [])).toEqual([]);
  });

  test('nested objects are merged member by member, so only the changed leaves are written', () => {
    const target = { big: { keep1: 1, keep2: 2, keep3: 3, change: 'old' }, other: [1, 2, 3] };
    expect(mergePatchOperations(target, { big: { change: 'new', gone: null, add: { x: 1 } } }, [])).toEqual([
      { op: 'replace', path: '/big/change', value: 'new' },
      { op: 'add', path: '/big/add', value: { x: 1 } },
    ]);
  });

  test('a non-object patch replaces the target whole, nulls and all', () => {
    expect(mergePatchOperations({ a: 1 }, [1, null], [])).toEqual([{ op: 'replace', path: '', value: [1, null] }]);
    expect(mergePatchOperations({ a: 1 }, null, [])).toEqual([{ op: 'replace', path: '', value: null }]);
    expect(mergePatchOperations('text', 5, [])).toEqual([{ op: 'replace', path: '', value: 5 }]);
  });

  test('an object patch onto a non-object replaces it with the patch minus its nulls', () => {
    expect(mergePatchOperations([1, 2], { a: 'b', c: null, d: { e: null, f: 1 } }, [])).toEqual([
      { op: 'replace', path: '', value: { a: 'b', d: { f: 1 } } },
    ]);
    expect(mergePatchOperations({ a: 5 }, { a: { x: null, y: 2 } }, [])).toEqual([{ op: 'replace', path: '/a', value: { y: 2 } }]);
  });

  test('nulls inside arrays are data, not deletions', () => {
    expect(mergePatchOperations({}, { a: [null, { b: null }] }, [])).toEqual([{ op: 'add', path: '/a', value: [null, { b: null }] }]);
  });

  test('a missing target is added, with the patch minus its nulls', () => {
    expect(mergePatchOperations(undefined, { a: 1, b: null, c: { d: null } }, ['x'])).toEqual([
      { op: 'add', path: '/x', value: { a: 1, c: {} } },
    ]);
    expect(mergePatchOperations(undefined, 'v', ['x'])).toEqual([{ op: 'add', path: '/x', value: 'v' }]);
  });

  test('pointers start at the given path, with keys escaped', () => {
    expect(mergePatchOperations({ 'm~n': 1, 'a/b': { c: 1 } }, { 'm~n': 2, 'a/b': { c: null } }, ['x', 'y/z'])).toEqual([
      { op: 'replace', path: '/x/y~1z/m~0n', value: 2 },
      { op: 'remove', path: '/x/y~1z/a~1b/c' },
    ]);
    expect(mergePatchOperations(1, 2, ['', 'k'])).toEqual([{ op: 'replace', path: '//k', value: 2 }]);
  });

  test('planning does not change the target or the patch', () => {
    const target = { a: { b: 1, c: 2 }, d: [1] };
    const patch = { a: { b: null, e: { f: null } }, d: null };
    const targetBefore = JSON.stringify(target);
    const patchBefore = JSON.stringify(patch);
    mergePatchOperations(target, patch, []);
    expect(JSON.stringify(target)).toBe(targetBefore);
    expect(JSON.stringify(patch)).toBe(patchBefore);
  });
});

describe('"__proto__" and other inherited names are ordinary keys', () => {
  test('a "__proto__" member of the patch is merged as data', () => {
    const patch = JSON.parse('{"__proto__":{"polluted":true,"gone":null}}') as JsonValue;
    const result = merged({ a: 1 }, patch) as JsonObject;
    expect(Object.keys(result)).toEqual(['a', '__proto__']);
    expect(getMember(result, '__proto__')).toEqual({ polluted: true });
    expect(Object.getPrototypeOf(result)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  test('stripping nulls keeps a nested "__proto__" key as an own key', () => {
    const patch = JSON.parse('{"a":{"__proto__":{"x":1,"y":null}}}') as JsonValue;
    const [op] = mergePatchOperations(undefined, patch, []);
    const value = (op as { value: JsonObject }).value;
    const inner = value['a'] as JsonObject;
    expect(Object.getPrototypeOf(inner)).toBe(Object.prototype);
    expect(Object.keys(inner)).toEqual(['__proto__']);
    expect(getMember(inner, '__proto__')).toEqual({ x: 1 });
  });

  test('an existing own "__proto__" member is merged into, not replaced', () => {
    const target = JSON.parse('{"__proto__":{"keep":1,"change":1}}') as JsonValue;
    expect(mergePatchOperations(target, JSON.parse('{"__proto__":{"change":2}}'), [])).toEqual([
      { op: 'replace', path: '/__proto__/change', value: 2 },
    ]);
  });

  test('inherited names on the target are not members: "toString": null removes nothing', () => {
    expect(mergePatchOperations({ a: 1 }, { toString: null, constructor: { x: 1 } }, [])).toEqual([
      { op: 'add', path: '/constructor', value: { x: 1 } },
    ]);
  });
});
