/**
 * jsonStore(options): a bad option is a TypeError naming it, thrown when
 * jsonStore() is called, never a failing request later.
 */
import { describe, expect, test } from 'vitest';
import { jsonStore, memoryStorage, type JsonStoreOptions } from '../../src/index.js';

const cyclic: Record<string, unknown> = { a: 1 };
cyclic['self'] = cyclic;
const cyclicArray: unknown[] = [];
cyclicArray.push({ back: cyclicArray });

class Point {
  x = 1;
}

function expectOptionError(options: unknown, name: string): void {
  let thrown: unknown;
  try {
    jsonStore(options as JsonStoreOptions);
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(TypeError);
  expect((thrown as Error).message).toContain(`"${name}"`);
  expect((thrown as Error).message).toMatch(/^jsonStore\(\): /);
}

describe('valid options', () => {
  test('no options, an empty object and every known option are accepted', async () => {
    expect(typeof jsonStore()).toBe('function');
    expect(typeof jsonStore({})).toBe('function');
    const store = jsonStore({
      initial: { a: 1 },
      storage: memoryStorage(),
      limit: '500kb',
      readOnly: false,
      maxDepth: 10,
      requirePreconditions: false,
      maxRetries: 0,
      readConsistency: 'local',
      maxPatchOperations: 10,
      maxWriteGrowth: '2mb',
      maxDocumentSize: 1_000_000,
    });
    await store.ready();
    expect(await store.get()).toEqual({ a: 1 });
  });

  test.each([1, 1024, '1b', '1kb', '1.5mb', '1MB', ' 1mb ', '10 kb', '2gb'])('limit %j is accepted', (limit) => {
    expect(() => jsonStore({ limit })).not.toThrow();
  });

  test.each([null, 0, -3.5, '', 'text', true, [], [1, { a: null }], { nested: { deep: [] } }])('initial %j is any JSON value, served as is', async (initial) => {
    const store = jsonStore({ initial });
    expect(await store.get()).toEqual(initial);
  });

  test('the default document is {}', async () => {
    expect(await jsonStore().get()).toEqual({});
    expect(await jsonStore({ initial: undefined }).get()).toEqual({});
  });

  test.each(['maxWriteGrowth', 'maxDocumentSize'])('%s takes bytes or a size string, like limit', (name) => {
    for (const size of [16, 1024, '1kb', '1.5mb', ' 2gb ']) expect(() => jsonStore({ [name]: size })).not.toThrow();
  });

  test('initial may be exactly maxDocumentSize bytes of JSON ({"a":"é"} is 10 bytes of UTF-8)', () => {
    expect(() => jsonStore({ maxDocumentSize: 10, initial: { a: 'é' } })).not.toThrow();
  });

  test('initial may nest exactly maxDepth levels', () => {
    expect(() => jsonStore({ maxDepth: 2, initial: { a: { b: 1 } } })).not.toThrow();
  });
});

describe('invalid options throw a TypeError naming the option', () => {
  test.each([
    ['a misspelled option', { limt: '1mb' }, 'limt'],
    ['an unknown option', { port: 3000 }, 'port'],
    ['an unknown option set to undefined', { strict: undefined }, 'strict'],
  ])('%s', (_name, options, name) => {
    expectOptionError(options, name);
  });

  test.each([
    ['1mb', '"1mb"'],
    [42, '42'],
    [[], 'an array'],
    [null, 'null'],
  ])('options that are not an object (%j)', (options, got) => {
    let thrown: unknown;
    try {
      jsonStore(options as never);
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(TypeError);
    expect((thrown as Error).message).toBe(`jsonStore(): options must be an object, got ${got}`);
  });

  test.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 'abc', '', '1 parsecs', '12xyz', '1kb2', '10 mg', '-1mb', '0.1b', null, true, {}, []])('limit %j', (limit) => {
    expectOptionError({ limit }, 'limit');
  });

  test.each([0, -1, 1.5, 1001, Number.NaN, Number.POSITIVE_INFINITY, '10', null, true])('maxDepth %j', (maxDepth) => {
    expectOptionError({ maxDepth }, 'maxDepth');
  });

  test.each([
    ['a function', () => 1],
    ['NaN', Number.NaN],
    ['Infinity', Number.POSITIVE_INFINITY],
    ['a nested NaN', { a: [1, Number.NaN] }],
    ['a cycle', cyclic],
    ['a cycle through an array', cyclicArray],
    ['a Date', new Date(0)],
    ['a Map', new Map()],
    ['a class instance', new Point()],
    ['a nested undefined', { a: undefined }],
    ['a symbol', Symbol('s')],
    ['a bigint', BigInt(1)],
    ['a nested function', { a: { b: () => 1 } }],
  ])('initial: %s', (_name, initial) => {
    expectOptionError({ initial }, 'initial');
  });

  test.each(['maxWriteGrowth', 'maxDocumentSize'])('%s that is not a positive size', (name) => {
    for (const size of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 'abc', '', '12xyz', '-1mb', null, true, {}]) {
      expectOptionError({ [name]: size }, name);
    }
  });

  test.each([0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '10', null, true])('maxPatchOperations %j', (maxPatchOperations) => {
    expectOptionError({ maxPatchOperations }, 'maxPatchOperations');
  });

  test.each(['idempotencyWindow', 'idempotencyKeys'])('%s that is not a positive whole number', (name) => {
    for (const value of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '10', '24h', null, true]) {
      expectOptionError({ [name]: value }, name);
    }
    expect(() => jsonStore({ [name]: 1 })).not.toThrow();
  });

  test('idempotencyKeys above 1 000 000', () => {
    expectOptionError({ idempotencyKeys: 1_000_001 }, 'idempotencyKeys');
  });

  test('initial larger than maxDocumentSize', () => {
    // {"a":"é"} is 10 bytes of UTF-8.
    expectOptionError({ maxDocumentSize: 9, initial: { a: 'é' } }, 'initial');
  });

  test('initial deeper than maxDepth', () => {
    expectOptionError({ maxDepth: 2, initial: { a: { b: {} } } }, 'initial');
  });

  test.each([
    ['an empty object', {}],
    ['an object without commit', { load: () => undefined }],
    ['an object without load', { commit: () => {} }],
    ['load that is not a function', { load: 1, commit: () => {} }],
    ['a string', 'memory'],
    ['a number', 42],
    ['null', null],
    ['a function', () => undefined],
  ])('storage: %s', (_name, storage) => {
    expectOptionError({ storage }, 'storage');
  });

  test.each([
    ['readOnly', 'yes'],
    ['readOnly', 1],
    ['requirePreconditions', 'true'],
    ['maxRetries', -1],
    ['maxRetries', 1.5],
    ['readConsistency', 'eventual'],
  ])('%s: %j', (name, value) => {
    expectOptionError({ [name]: value }, name);
  });
});
