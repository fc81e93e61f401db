/**
 * src/document/json-patch.ts: RFC 6902 documents as clients send them,
 * validated and rebased onto the request path; and the RFC's appendix A
 * examples, planned and applied at the root and below a base path.
 */
import { describe, expect, test } from 'vitest';
import { applyOperations } from '../../src/document/apply.js';
import { parseJsonPatch, rebaseJsonPatch } from '../../src/document/json-patch.js';
import type { JsonValue } from '../../src/document/json.js';
import { planJsonPatch } from '../../src/document/operations.js';
import { thrownBy } from './thrown.js';

/** A patch checked, then rebased onto `base` (an object member, so `""` keeps its plain meaning). */
function parsedAt(body: JsonValue, base: string[]) {
  return rebaseJsonPatch(parseJsonPatch(body), base, false).ops;
}

/** The 400 a malformed patch document gets, as its message. */
function invalidPatch(body: unknown, base: string[] = []): string {
  const error = thrownBy(() => parsedAt(body as JsonValue, base));
  expect(error.code).toBe('invalid-patch');
  expect(error.status).toBe(400);
  return error.message;
}

describe('parseJsonPatch: the document', () => {
  test('must be an array', () => {
    for (const body of [{}, { op: 'add', path: '/a', value: 1 }, 'add', null, 1]) {
      expect(invalidPatch(body)).toBe(
        'A JSON Patch document must be an array of operations, such as [{"op":"replace","path":"/name","value":"x"}]',
      );
    }
  });

  test('an empty array is an empty patch', () => {
    expect(parseJsonPatch([])).toEqual([]);
    expect(parsedAt([], ['a'])).toEqual([]);
  });

  test('each operation must be an object', () => {
    expect(invalidPatch([{ op: 'test', path: '/a', value: 1 }, 'remove'])).toBe('JSON Patch operation 1: must be an object');
    expect(invalidPatch([null])).toBe('JSON Patch operation 0: must be an object');
    expect(invalidPatch([[]])).toBe('JSON Patch operation 0: must be an object');
  });

  test('"op" must be one of the six names, exactly', () => {
    for (const op of [undefined, 'ADD', 'delete', 'get', '', 1, null, ['add']]) {
      const entry = op === undefined ? { path: '/a' } : { op, path: '/a', value: 1 };
      expect(invalidPatch([entry]), String(op)).toBe('JSON Patch operation 0: "op" must be one of add, remove, replace, move, copy, test');
    }
  });

  test('every operation needs a "path"', () => {
    for (const op of ['add', 'remove', 'replace', 'move', 'copy', 'test']) {
      expect(invalidPatch([{ op, value: 1, from: '/x' }])).toBe(`JSON Patch operation 0: "${op}" needs a "path"`);
    }
  });

  test('"path" must be a valid JSON Pointer', () => {
    expect(invalidPatch([{ op: 'remove', path: 5 }])).toBe('JSON Patch operation 0: "path" must be a JSON Pointer string');
    expect(invalidPatch([{ op: 'remove', path: null }])).toBe('JSON Patch operation 0: "path" must be a JSON Pointer string');
    expect(invalidPatch([{ op: 'remove', path: 'a' }])).toBe(
      'JSON Patch operation 0: "path" "a" is not a JSON Pointer: it must be empty or start with "/"',
    );
    expect(invalidPatch([{ op: 'remove', path: '/a~2' }])).toBe('JSON Patch operation 0: "path" "/a~2" has "~" not followed by 0 or 1');
  });

  test('add, replace and test need a "value"; null is a value', () => {
    for (const op of ['add', 'replace', 'test']) {
      expect(invalidPatch([{ op, path: '/a' }])).toBe(`JSON Patch operation 0: "${op}" needs a "value"`);
      expect(parseJsonPatch([{ op, path: '/a', value: null }])).toEqual([{ op, path: '/a', value: null }]);
    }
  });

  test('move and copy need a valid "from"', () => {
    for (const op of ['move', 'copy']) {
      expect(invalidPatch([{ op, path: '/a' }])).toBe(`JSON Patch operation 0: "${op}" needs a "from"`);
      expect(invalidPatch([{ op, path: '/a', from: 3 }])).toBe('JSON Patch operation 0: "from" must be a JSON Pointer string');
      expect(invalidPatch([{ op, path: '/a', from: 'b' }])).toBe(
        'JSON Patch operation 0: "from" "b" is not a JSON Pointer: it must be empty or start with "/"',
      );
      expect(invalidPatch([{ op, path: '/a', from: '/~' }])).toBe('JSON Patch operation 0: "from" "/~" has "~" not followed by 0 or 1');
    }
  });

  test('the index in the message is the position of the bad operation', () => {
    const body = [
      { op: 'add', path: '/a', value: 1 },
      { op: 'remove', path: '/a' },
      { op: 'copy', path: '/b' },
    ];
    expect(invalidPatch(body)).toBe('JSON Patch operation 2: "copy" needs a "from"');
  });

  test('operations come out with only the members they use (unknown members are ignored)', () => {
    const body: JsonValue = [
      { op: 'add', path: '/a', value: { x: 1 }, from: '/ignored', extra: true },
      { op: 'remove', path: '/b', value: 'ignored' },
      { op: 'replace', path: '/c', value: [1], xyz: 123 },
      { op: 'move', from: '/d', path: '/e', value: 'ignored' },
      { op: 'copy', from: '/f', path: '/g' },
      { op: 'test', path: '/h', value: 'x', from: '/ignored' },
    ];
    expect(parseJsonPatch(body)).toEqual([
      { op: 'add', path: '/a', value: { x: 1 } },
      { op: 'remove', path: '/b' },
      { op: 'replace', path: '/c', value: [1] },
      { op: 'move', from: '/d', path: '/e' },
      { op: 'copy', from: '/f', path: '/g' },
      { op: 'test', path: '/h', value: 'x' },
    ]);
  });

  test('the value is passed on as given (the same reference, not a copy)', () => {
    const value = { deep: [1, 2] };
    const [op] = parseJsonPatch([{ op: 'add', path: '/a', value }]);
    expect((op as { value: JsonValue }).value).toBe(value);
  });
});

describe('parseJsonPatch: rebasing onto the request path', () => {
  test('pointers are prefixed with the base path, escaped', () => {
    expect(
      parsedAt(
        [
          { op: 'replace', path: '/x/0', value: 1 },
          { op: 'move', from: '/a~1b', path: '/m~0n' },
          { op: 'copy', from: '/', path: '/-' },
        ],
        ['users', 'a/b', 'm~n'],
      ),
    ).toEqual([
      { op: 'replace', path: '/users/a~1b/m~0n/x/0', value: 1 },
      { op: 'move', from: '/users/a~1b/m~0n/a~1b', path: '/users/a~1b/m~0n/m~0n' },
      { op: 'copy', from: '/users/a~1b/m~0n/', path: '/users/a~1b/m~0n/-' },
    ]);
  });

  test('at the root the pointers are unchanged, "" included', () => {
    expect(parseJsonPatch([{ op: 'replace', path: '', value: [] }, { op: 'test', path: '/', value: 0 }])).toEqual([
      { op: 'replace', path: '', value: [] },
      { op: 'test', path: '/', value: 0 },
    ]);
  });

  test('an empty key in the base is kept', () => {
    expect(parsedAt([{ op: 'remove', path: '/k' }], ['', 'x'])).toEqual([{ op: 'remove', path: '//x/k' }]);
  });
});

/**
 * RFC 6902 appendix A. `patch` pointers are relative to the target; each
 * example runs with the target at the root and nested below a base path.
 */
interface Example {
  name: string;
  target: JsonValue;
  patch: JsonValue;
  /** The result, as compact JSON: key order included (new members go last). */
  result?: string;
  /** For the examples that must fail: a piece of the 409 message. */
  error?: string;
}

const appendixA: Example[] = [
  {
    name: 'A.1 adding an object member',
    target: { foo: 'bar' },
    patch: [{ op: 'add', path: '/baz', value: 'qux' }],
    result: '{"foo":"bar","baz":"qux"}',
  },
  {
    name: 'A.2 adding an array element',
    target: { foo: ['bar', 'baz'] },
    patch: [{ op: 'add', path: '/foo/1', value: 'qux' }],
    result: '{"foo":["bar","qux","baz"]}',
  },
  {
    name: 'A.3 removing an object member',
    target: { baz: 'qux', foo: 'bar' },
    patch: [{ op: 'remove', path: '/baz' }],
    result: '{"foo":"bar"}',
  },
  {
    name: 'A.4 removing an array element',
    target: { foo: ['bar', 'qux', 'baz'] },
    patch: [{ op: 'remove', path: '/foo/1' }],
    result: '{"foo":["bar","baz"]}',
  },
  {
    name: 'A.5 replacing a value',
    target: { baz: 'qux', foo: 'bar' },
    patch: [{ op: 'replace', path: '/baz', value: 'boo' }],
    result: '{"baz":"boo","foo":"bar"}',
  },
  {
    name: 'A.6 moving a value',
    target: { foo: { bar: 'baz', waldo: 'fred' }, qux: { corge: 'grault' } },
    patch: [{ op: 'move', from: '/foo/waldo', path: '/qux/thud' }],
    result: '{"foo":{"bar":"baz"},"qux":{"corge":"grault","thud":"fred"}}',
  },
  {
    name: 'A.7 moving an array element',
    target: { foo: ['all', 'grass', 'cows', 'eat'] },
    patch: [{ op: 'move', from: '/foo/1', path: '/foo/3' }],
    result: '{"foo":["all","cows","eat","grass"]}',
  },
  {
    name: 'A.8 testing a value: success',
    target: { baz: 'qux', foo: ['a', 2, 'c'] },
    patch: [
      { op: 'test', path: '/baz', value: 'qux' },
      { op: 'test', path: '/foo/1', value: 2 },
    ],
    result: '{"baz":"qux","foo":["a",2,"c"]}',
  },
  {
    name: 'A.9 testing a value: error',
    target: { baz: 'qux' },
    patch: [{ op: 'test', path: '/baz', value: 'bar' }],
    error: 'is not the expected one',
  },
  {
    name: 'A.10 adding a nested member object',
    target: { foo: 'bar' },
    patch: [{ op: 'add', path: '/child', value: { grandchild: {} } }],
    result: '{"foo":"bar","child":{"grandchild":{}}}',
  },
  {
    name: 'A.11 ignoring unrecognized elements',
    target: { foo: 'bar' },
    patch: [{ op: 'add', path: '/baz', value: 'qux', xyz: 123 }],
    result: '{"foo":"bar","baz":"qux"}',
  },
  {
    name: 'A.12 adding to a nonexistent target',
    target: { foo: 'bar' },
    patch: [{ op: 'add', path: '/baz/bat', value: 'qux' }],
    error: '/baz does not exist',
  },
  {
    name: 'A.14 ~ escape ordering',
    target: { '/': 9, '~1': 10 },
    patch: [{ op: 'test', path: '/~01', value: 10 }],
    result: '{"/":9,"~1":10}',
  },
  {
    name: 'A.15 comparing strings and numbers',
    target: { '/': 9, '~1': 10 },
    patch: [{ op: 'test', path: '/~01', value: '10' }],
    error: 'is not the expected one',
  },
  {
    name: 'A.16 adding an array value',
    target: { foo: ['bar'] },
    patch: [{ op: 'add', path: '/foo/-', value: ['abc', 'def'] }],
    result: '{"foo":["bar",["abc","def"]]}',
  },
];

/** Where each example's target sits: at the root, and below a base with escaped keys. */
const bases: string[][] = [[], ['wrap', 'in/side', 'm~n']];

/** A whole document holding `target` at `base`. */
function documentWith(base: string[], target: JsonValue): JsonValue {
  let root = structuredClone(target);
  for (let i = base.length - 1; i >= 0; i--) root = { [base[i] as string]: root, sibling: i };
  return root;
}

describe('RFC 6902 appendix A, planned with planJsonPatch and applied', () => {
  for (const base of bases) {
    for (const example of appendixA) {
      test(`${example.name} (target at ${base.length === 0 ? 'the root' : JSON.stringify(base)})`, () => {
        const state = { root: documentWith(base, example.target) };
        const before = JSON.stringify(state.root);
        const plan = planJsonPatch(state.root, base, example.patch);
        expect(plan.created).toBe(false);
        expect(plan.resultPath).toEqual(base);
        if (example.error !== undefined) {
          const error = thrownBy(() => applyOperations(state, plan.ops, plan.describe));
          expect(error.code).toBe('conflict');
          expect(error.status).toBe(409);
          expect(error.message).toContain(example.error);
          expect(error.message.startsWith('JSON Patch operation 0 (')).toBe(true);
          expect(JSON.stringify(state.root)).toBe(before);
        } else {
          applyOperations(state, plan.ops, plan.describe);
          expect(JSON.stringify(state.root)).toBe(before.replace(JSON.stringify(example.target), example.result as string));
          // Nothing outside the target moved.
          expect(JSON.stringify(state.root)).toBe(JSON.stringify(documentWith(base, JSON.parse(example.result as string))));
        }
      });
    }
  }

  test('A.13 an operation with two "op" members: JSON.parse keeps the last one', () => {
    // RFC 6902 says such a document is an error; a parsed body can no longer
    // show the duplicate, so the operation is read as its last "op".
    const body = JSON.parse('[{"op":"add","path":"/baz","value":"qux","op":"remove"}]') as JsonValue;
    expect(parseJsonPatch(body)).toEqual([{ op: 'remove', path: '/baz' }]);
  });
});
