/**
 * src/document/operations.ts: each write method planned as RFC 6902
 * operations against the current document, without changing it.
 */
import { describe, expect, test } from 'vitest';
import { applyOperations } from '../../src/document/apply.js';
import { getMember, type JsonObject, type JsonValue } from '../../src/document/json.js';
import { planDelete, planJsonPatch, planMergePatch, planPost, planPut, type WritePlan } from '../../src/document/operations.js';
import { thrownBy } from './thrown.js';

/** Freezes a value all the way down, so a planner that writes to it throws. */
function deepFreeze<T extends JsonValue>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const child of Object.values(value)) deepFreeze(child as JsonValue);
    Object.freeze(value);
  }
  return value;
}

/** Applies a plan to a copy of `root` and returns the result as compact JSON. */
function afterPlan(root: JsonValue, plan: WritePlan): string {
  const state = { root: structuredClone(root) };
  applyOperations(state, plan.ops, plan.describe);
  return JSON.stringify(state.root);
}

const sample = deepFreeze({
  sniffles: [{ name: 'Whiskers' }, { name: 'Socks' }],
  settings: { theme: 'dark', 'a/b': { 'm~n': 1 } },
  count: 3,
  nothing: null,
} as JsonValue);

describe('planPut', () => {
  test('the root is replaced', () => {
    expect(planPut(sample, [], [1])).toEqual({ ops: [{ op: 'replace', path: '', value: [1] }], created: false, resultPath: [] });
  });

  test('an existing member is replaced where it is', () => {
    const plan = planPut(sample, ['settings', 'theme'], 'light');
    expect(plan).toEqual({ ops: [{ op: 'replace', path: '/settings/theme', value: 'light' }], created: false, resultPath: ['settings', 'theme'] });
    expect(afterPlan(sample, plan)).toContain('"settings":{"theme":"light","a/b"');
  });

  test('a null member exists, so it is replaced, not created', () => {
    expect(planPut(sample, ['nothing'], 1)).toEqual({ ops: [{ op: 'replace', path: '/nothing', value: 1 }], created: false, resultPath: ['nothing'] });
  });

  test('a new member is added (201)', () => {
    expect(planPut(sample, ['fresh'], true)).toEqual({ ops: [{ op: 'add', path: '/fresh', value: true }], created: true, resultPath: ['fresh'] });
  });

  test('missing parents are created as objects, in one add at the first missing step', () => {
    expect(planPut(sample, ['settings', 'new', 'deeper', 'leaf'], 1)).toEqual({
      ops: [{ op: 'add', path: '/settings/new', value: { deeper: { leaf: 1 } } }],
      created: true,
      resultPath: ['settings', 'new', 'deeper', 'leaf'],
    });
  });

  test('a missing parent named like an index is still an object, never an array', () => {
    const plan = planPut({}, ['list', '0'], 'x');
    expect(plan.ops).toEqual([{ op: 'add', path: '/list', value: { '0': 'x' } }]);
    expect(Array.isArray((plan.ops[0] as { value: JsonObject }).value)).toBe(false);
  });

  test('keys are escaped in pointers', () => {
    expect(planPut(sample, ['settings', 'a/b', 'm~n'], 2).ops).toEqual([{ op: 'replace', path: '/settings/a~1b/m~0n', value: 2 }]);
    expect(planPut(sample, ['x/y', '~'], 2).ops).toEqual([{ op: 'add', path: '/x~1y', value: { '~': 2 } }]);
  });

  describe('in arrays', () => {
    test('an existing index is replaced', () => {
      expect(planPut(sample, ['sniffles', '1'], 'Tom')).toEqual({
        ops: [{ op: 'replace', path: '/sniffles/1', value: 'Tom' }],
        created: false,
        resultPath: ['sniffles', '1'],
      });
    });

    test('an index below the length is walked into', () => {
      expect(planPut(sample, ['sniffles', '0', 'name'], 'Tom').ops).toEqual([{ op: 'replace', path: '/sniffles/0/name', value: 'Tom' }]);
      expect(planPut(sample, ['sniffles', '0', 'age'], 2).ops).toEqual([{ op: 'add', path: '/sniffles/0/age', value: 2 }]);
    });

    test('the length or "-" appends, and the result path names the real index', () => {
      for (const segment of ['2', '-']) {
        expect(planPut(sample, ['sniffles', segment], { name: 'New' })).toEqual({
          ops: [{ op: 'add', path: '/sniffles/2', value: { name: 'New' } }],
          created: true,
          resultPath: ['sniffles', '2'],
        });
      }
    });

    test('appending with more segments after it nests the value in objects', () => {
      expect(planPut(sample, ['sniffles', '-', 'name'], 'Nested')).toEqual({
        ops: [{ op: 'add', path: '/sniffles/2', value: { name: 'Nested' } }],
        created: true,
        resultPath: ['sniffles', '2', 'name'],
      });
    });

    test('an index past the end is refused, saying what to use', () => {
      const error = thrownBy(() => planPut(sample, ['sniffles', '5'], 1));
      expect(error.code).toBe('conflict');
      expect(error.status).toBe(409);
      expect(error.message).toBe('Cannot PUT /sniffles/5: index 5 is past the end of the array at /sniffles (length 2); use 2 or - to append');
    });

    test('a segment that is not a canonical index is refused', () => {
      for (const segment of ['01', '-1', 'name', '1.0', '']) {
        const error = thrownBy(() => planPut(sample, ['sniffles', segment], 1));
        expect(error.code).toBe('conflict');
        expect(error.message).toBe(`Cannot PUT /sniffles/${segment}: /sniffles is an array, and "${segment}" is not an index (use 0, 1, ... or - to append)`);
      }
    });

    test('an array at the root', () => {
      expect(planPut([1, 2], ['-'], 3).ops).toEqual([{ op: 'add', path: '/2', value: 3 }]);
      expect(thrownBy(() => planPut([1, 2], ['3'], 3)).message).toBe(
        'Cannot PUT /3: index 3 is past the end of the array at / (length 2); use 2 or - to append',
      );
    });
  });

  test('writing below a scalar or null is refused, naming what is there', () => {
    expect(thrownBy(() => planPut(sample, ['count', 'x'], 1)).message).toBe('Cannot PUT /count/x: /count is a number');
    expect(thrownBy(() => planPut(sample, ['nothing', 'x', 'y'], 1)).message).toBe('Cannot PUT /nothing/x/y: /nothing is null');
    expect(thrownBy(() => planPut(sample, ['settings', 'theme', '0'], 1)).message).toBe('Cannot PUT /settings/theme/0: /settings/theme is a string');
    expect(thrownBy(() => planPut('scalar', ['x'], 1)).message).toBe('Cannot PUT /x: / is a string');
    expect(thrownBy(() => planPut(sample, ['count', 'x'], 1)).code).toBe('conflict');
  });

  test('the method named in messages can be chosen', () => {
    expect(thrownBy(() => planPut(sample, ['count', 'x'], 1, 'PATCH')).message).toBe('Cannot PATCH /count/x: /count is a number');
  });

  test('paths in messages escape "/" and "%" in keys', () => {
    expect(thrownBy(() => planPut({ 'a/b': { '100%': 1 } }, ['a/b', '100%', 'x'], 1)).message).toBe(
      'Cannot PUT /a%2Fb/100%25/x: /a%2Fb/100%25 is a number',
    );
  });

  test('"__proto__" and inherited names are ordinary keys', () => {
    const plan = planPut({}, ['__proto__', 'x'], 1);
    expect(plan.ops).toEqual([{ op: 'add', path: '/__proto__', value: { x: 1 } }]);
    expect(planPut({ a: 1 }, ['toString'], 1).ops).toEqual([{ op: 'add', path: '/toString', value: 1 }]);
    // A missing parent named __proto__ is nested as an own key, not as a prototype.
    const nested = (planPut({}, ['a', '__proto__', 'b'], 1).ops[0] as { value: JsonObject }).value;
    expect(Object.keys(nested)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(nested)).toBe(Object.prototype);
    expect(getMember(nested, '__proto__')).toEqual({ b: 1 });
    expect(afterPlan({}, planPut({}, ['a', '__proto__', 'b'], 1))).toBe('{"a":{"__proto__":{"b":1}}}');
  });

  test('an existing own "__proto__" member is walked into', () => {
    const root = JSON.parse('{"__proto__":{"x":1}}') as JsonValue;
    expect(planPut(root, ['__proto__', 'x'], 2).ops).toEqual([{ op: 'replace', path: '/__proto__/x', value: 2 }]);
  });
});

describe('planPost', () => {
  test('to an array: appends at the real index', () => {
    expect(planPost(sample, ['sniffles'], { name: 'New' })).toEqual({
      ops: [{ op: 'add', path: '/sniffles/2', value: { name: 'New' } }],
      created: true,
      resultPath: ['sniffles', '2'],
    });
    expect(planPost([], [], 'first')).toEqual({ ops: [{ op: 'add', path: '/0', value: 'first' }], created: true, resultPath: ['0'] });
  });

  test('to an object: adds under a new push id', () => {
    const plan = planPost(sample, ['settings'], 'v');
    const key = plan.resultPath[1] as string;
    expect(key).toMatch(/^[-0-9A-Za-z_]{20}$/);
    expect(plan).toEqual({ ops: [{ op: 'add', path: `/settings/${key}`, value: 'v' }], created: true, resultPath: ['settings', key] });
  });

  test('successive posts get distinct keys that sort in order', () => {
    const keys: string[] = [];
    for (let i = 0; i < 50; i++) keys.push(planPost({}, [], i).resultPath[0] as string);
    expect(new Set(keys).size).toBe(50);
    expect([...keys].sort()).toEqual(keys);
  });

  test('a missing target is 404, telling to create it first', () => {
    const error = thrownBy(() => planPost(sample, ['missing', 'deeper'], 1));
    expect(error.code).toBe('not-found');
    expect(error.status).toBe(404);
    expect(error.message).toBe('Cannot POST to /missing/deeper: it does not exist; create it first with PUT');
  });

  test('a scalar or null target is a conflict', () => {
    const error = thrownBy(() => planPost(sample, ['count'], 1));
    expect(error.code).toBe('conflict');
    expect(error.message).toBe('Cannot POST to /count: it is a number; POST adds to an array or an object');
    expect(thrownBy(() => planPost(sample, ['nothing'], 1)).message).toBe('Cannot POST to /nothing: it is null; POST adds to an array or an object');
  });
});

describe('planDelete', () => {
  test('the root becomes the empty document {}', () => {
    expect(planDelete(sample, [])).toEqual({ ops: [{ op: 'replace', path: '', value: {} }], created: false, resultPath: [], removesTarget: true });
  });

  test('an existing member or element is removed', () => {
    // Nothing of the target is left to answer with: a DELETE answers no value.
    expect(planDelete(sample, ['settings', 'a/b'])).toEqual({
      ops: [{ op: 'remove', path: '/settings/a~1b' }],
      created: false,
      resultPath: ['settings', 'a/b'],
      removesTarget: true,
    });
    expect(planDelete(sample, ['sniffles', '0']).ops).toEqual([{ op: 'remove', path: '/sniffles/0' }]);
    expect(planDelete(sample, ['nothing']).ops).toEqual([{ op: 'remove', path: '/nothing' }]);
  });

  test('a missing target is 404', () => {
    for (const path of [['missing'], ['sniffles', '2'], ['sniffles', '-'], ['sniffles', '01'], ['count', 'x'], ['toString']]) {
      const error = thrownBy(() => planDelete(sample, path));
      expect(error.code).toBe('not-found');
      expect(error.message).toBe(`Cannot DELETE /${path.join('/')}: it does not exist`);
    }
  });
});

describe('planMergePatch', () => {
  test('an existing target gets the operations the merge amounts to, under its path', () => {
    expect(planMergePatch(sample, ['settings'], { theme: 'light', 'a/b': null, font: 'serif' })).toEqual({
      ops: [
        { op: 'replace', path: '/settings/theme', value: 'light' },
        { op: 'remove', path: '/settings/a~1b' },
        { op: 'add', path: '/settings/font', value: 'serif' },
      ],
      created: false,
      resultPath: ['settings'],
    });
  });

  test('a scalar target is replaced by a non-object patch', () => {
    expect(planMergePatch(sample, ['count'], 4).ops).toEqual([{ op: 'replace', path: '/count', value: 4 }]);
  });

  test('a missing target is created like a PUT of the patch minus its nulls', () => {
    expect(planMergePatch(sample, ['settings', 'new', 'x'], { a: 1, b: null })).toEqual({
      ops: [{ op: 'add', path: '/settings/new', value: { x: { a: 1 } } }],
      created: true,
      resultPath: ['settings', 'new', 'x'],
    });
    expect(planMergePatch(sample, ['sniffles', '-'], { name: 'Appended', age: null })).toEqual({
      ops: [{ op: 'add', path: '/sniffles/2', value: { name: 'Appended' } }],
      created: true,
      resultPath: ['sniffles', '2'],
    });
  });

  test('refusals while creating name PATCH', () => {
    expect(thrownBy(() => planMergePatch(sample, ['count', 'x'], { a: 1 })).message).toBe('Cannot PATCH /count/x: /count is a number');
    expect(thrownBy(() => planMergePatch(sample, ['sniffles', '9'], { a: 1 })).message).toBe(
      'Cannot PATCH /sniffles/9: index 9 is past the end of the array at /sniffles (length 2); use 2 or - to append',
    );
  });

  test('applying the plan gives the merged document', () => {
    const plan = planMergePatch(sample, [], { settings: { theme: null, size: 12 }, count: null, extra: [null] });
    expect(afterPlan(sample, plan)).toBe(
      '{"sniffles":[{"name":"Whiskers"},{"name":"Socks"}],"settings":{"a/b":{"m~n":1},"size":12},"nothing":null,"extra":[null]}',
    );
  });
});

describe('planJsonPatch', () => {
  test('operations are rebased onto the path; the target must exist', () => {
    const plan = planJsonPatch(sample, ['sniffles', '0'], [
      { op: 'test', path: '/name', value: 'Whiskers' },
      { op: 'add', path: '/age', value: 2 },
    ]);
    expect(plan.ops).toEqual([
      { op: 'test', path: '/sniffles/0/name', value: 'Whiskers' },
      { op: 'add', path: '/sniffles/0/age', value: 2 },
    ]);
    expect(plan.created).toBe(false);
    expect(plan.resultPath).toEqual(['sniffles', '0']);
    expect(afterPlan(sample, plan)).toContain('"sniffles":[{"name":"Whiskers","age":2},{"name":"Socks"}]');
  });

  test('a missing target is 404', () => {
    const error = thrownBy(() => planJsonPatch(sample, ['missing'], [{ op: 'add', path: '/a', value: 1 }]));
    expect(error.code).toBe('not-found');
    expect(error.message).toBe('Cannot PATCH /missing: it does not exist');
  });

  test('a malformed patch is 400 even when the target is missing', () => {
    const error = thrownBy(() => planJsonPatch(sample, ['missing'], { op: 'add' }));
    expect(error.code).toBe('invalid-patch');
  });

  test('describe() names each operation as the client wrote it', () => {
    const plan = planJsonPatch(sample, ['settings'], [
      { op: 'test', path: '/theme', value: 'dark' },
      { op: 'remove', path: '/a~1b' },
    ]);
    expect(plan.describe?.(0)).toBe('JSON Patch operation 0 (test "/theme")');
    expect(plan.describe?.(1)).toBe('JSON Patch operation 1 (remove "/a~1b")');
  });

  test('a failing operation is reported with that description and the absolute path', () => {
    const plan = planJsonPatch(sample, ['settings'], [
      { op: 'replace', path: '/theme', value: 'light' },
      { op: 'test', path: '/theme', value: 'dark' },
    ]);
    const state = { root: structuredClone(sample) };
    const error = thrownBy(() => applyOperations(state, plan.ops, plan.describe));
    expect(error.message).toBe('JSON Patch operation 1 (test "/theme"): the value at /settings/theme is not the expected one');
    expect(JSON.stringify(state.root)).toBe(JSON.stringify(sample));
  });
});

test('no planner changes the document it plans against', () => {
  // `sample` is frozen all the way down: any write would throw.
  planPut(sample, ['settings', 'theme'], 'x');
  planPut(sample, ['sniffles', '-', 'a'], 'x');
  planPost(sample, ['sniffles'], 'x');
  planPost(sample, ['settings'], 'x');
  planDelete(sample, ['count']);
  planMergePatch(sample, [], { settings: { theme: null }, sniffles: [1] });
  planMergePatch(sample, ['new'], { a: null });
  planJsonPatch(sample, [], [{ op: 'remove', path: '/count' }]);
  expect(Object.isFrozen(sample)).toBe(true);
  expect(JSON.stringify(sample)).toBe(
    '{"sniffles":[{"name":"Whiskers"},{"name":"Socks"}],"settings":{"theme":"dark","a/b":{"m~n":1}},"count":3,"nothing":null}',
  );
});
