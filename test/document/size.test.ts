/**
 * The size walk is exactly Buffer.byteLength(JSON.stringify(value)), escapes
 * and all, and stops early; the meter keeps a document's size exact through
 * every kind of operation, including ones that fail midway.
 */
import { describe, expect, test } from 'vitest';
import { applyOperations, type DocumentState } from '../../src/document/apply.js';
import type { JsonValue } from '../../src/document/json.js';
import type { PatchOperation } from '../../src/document/patch-types.js';
import { toPointer } from '../../src/document/path.js';
import { jsonSize, SizeMeter, stringSize } from '../../src/document/size.js';
import { JsonStoreError } from '../../src/errors.js';
import { randomSource } from '../support/random.js';

const bytesOf = (value: unknown): number => Buffer.byteLength(JSON.stringify(value));

/** Characters chosen to hit every branch of JSON string escaping and UTF-8 encoding. */
const alphabet = [
  'a', 'Z', '0', ' ', '~', '\u007f', '"', '\\', '/', '\b', '\f', '\n', '\r', '\t', '\u0000', '\u0001', '\u001f',
  '\u0080', 'é', '\u07ff', '\u0800', '€', '\uffff', '\ufeff', '😀', '\ud83d', '\ude00', '\ud800', '\udfff', '\u2028', '\u2029',
];

function randomString(random: () => number, maxLength: number): string {
  let text = '';
  const length = Math.floor(random() * maxLength);
  for (let i = 0; i < length; i++) text += alphabet[Math.floor(random() * alphabet.length)];
  return text;
}

const numbers = [0, -0, 1, -1, 0.5, -2.25, 1e21, 1e-7, 123456789012, 5e-324, Number.MAX_VALUE, -Number.MAX_SAFE_INTEGER, 3.141592653589793];
const keys = ['', 'a', 'key', '__proto__', 'constructor', 'toString', '0', '-', '~1', 'a/b', 'é', '😀', '\ud800', '"q"', '\n'];

function randomValue(random: () => number, depth: number): JsonValue {
  const pick = Math.floor(random() * (depth > 3 ? 5 : 7));
  switch (pick) {
    case 0:
      return null;
    case 1:
      return random() < 0.5;
    case 2:
      return random() < 0.5 ? (numbers[Math.floor(random() * numbers.length)] as number) : (random() - 0.5) * 10 ** Math.floor(random() * 30 - 10);
    case 3:
    case 4:
      return randomString(random, 12);
    case 5: {
      const array: JsonValue[] = [];
      const length = Math.floor(random() * 5);
      for (let i = 0; i < length; i++) array.push(randomValue(random, depth + 1));
      return array;
    }
    default: {
      const object: Record<string, JsonValue> = {};
      const length = Math.floor(random() * 5);
      for (let i = 0; i < length; i++) {
        const key = random() < 0.5 ? (keys[Math.floor(random() * keys.length)] as string) : randomString(random, 6);
        // As JSON.parse and the store do: an own data property, even for __proto__.
        Object.defineProperty(object, key, { value: randomValue(random, depth + 1), enumerable: true, writable: true, configurable: true });
      }
      return object;
    }
  }
}

describe('jsonSize', () => {
  test.each([
    ['null', null],
    ['true', true],
    ['false', false],
    ['zero', 0],
    ['negative zero', -0],
    ['an exponent', 1e21],
    ['a small exponent', 1e-7],
    ['empty string', ''],
    ['every escape', '"\\/\b\f\n\r\t\u0000\u001f\u007f'],
    ['two-, three- and four-byte characters', 'é€😀'],
    ['lone surrogates', '\ud800x\udfff\ud83d'],
    ['a surrogate pair split by the end', 'x\ud83d'],
    ['empty containers', [[], {}, [{}], { a: [] }]],
    ['a __proto__ key', JSON.parse('{"__proto__":{"x":1},"b":[1,"2"]}') as JsonValue],
    ['non-ASCII keys', { 'é': 1, '😀': 2, '\ud800': 3, '"': 4 }],
  ])('%s', (_name, value) => {
    expect(jsonSize(value as JsonValue)).toBe(bytesOf(value));
  });

  test('every single character 0..0xFFFF, alone and in context', () => {
    for (let code = 0; code <= 0xffff; code++) {
      const char = String.fromCharCode(code);
      expect(stringSize(char)).toBe(bytesOf(char));
      expect(stringSize(`a${char}b`)).toBe(bytesOf(`a${char}b`));
    }
  });

  test('numbers: integers at every digit boundary, both signs, the edges of the integer fast path, fractions', () => {
    const numbers: number[] = [0, -0, 0.5, -0.5, 1e-7, 1e21, -1e21, 999_999_999, 1e9, -999_999_999, -1e9, 1e9 + 0.5, Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER, 142.85714285714286];
    for (let power = 1; power <= 1e15; power *= 10) numbers.push(power - 1, power, power + 1, -(power - 1), -power, -(power + 1));
    for (const number of numbers) expect(jsonSize(number), String(number)).toBe(bytesOf(number));
    expect(jsonSize(numbers)).toBe(bytesOf(numbers));
  });

  test('strings around the length where measuring moves to native code, with and without characters to escape', () => {
    for (let length = 60; length <= 68; length++) {
      for (const odd of ['', '"', '\\', '\n', 'é', '😀', '\ud800', '\u007f']) {
        const text = 'x'.repeat(length) + odd;
        expect(stringSize(text), JSON.stringify(text)).toBe(bytesOf(text));
        expect(stringSize(odd + text)).toBe(bytesOf(odd + text));
      }
    }
  });

  test('10 000 random values, seeded (unicode, control characters, lone surrogates, __proto__ keys)', () => {
    const random = randomSource(20260427);
    for (let i = 0; i < 10_000; i++) {
      const value = randomValue(random, 0);
      const size = jsonSize(value);
      if (size !== bytesOf(value)) expect({ value, size }).toEqual({ value, size: bytesOf(value) });
    }
  });

  test('deep nesting does not overflow the stack', () => {
    let value: JsonValue = 'x';
    for (let i = 0; i < 100_000; i++) value = i % 2 === 0 ? [value] : { k: value };
    // 50 000 arrays ("[" "]") and 50 000 objects ('{"k":' '}') around '"x"'.
    expect(jsonSize(value)).toBe(50_000 * 2 + 50_000 * 6 + 3);
  });

  /** 100 000 `{"i":N}` in an array that counts the elements read. */
  function watchedArray(): { watched: JsonValue; visited: () => number } {
    const elements = Array.from({ length: 100_000 }, (_, i) => ({ i }));
    let visited = 0;
    const watched = new Proxy(elements, {
      get(target, key, receiver) {
        if (typeof key === 'string' && /^\d+$/.test(key)) visited++;
        return Reflect.get(target, key, receiver) as unknown;
      },
    });
    return { watched: watched as unknown as JsonValue, visited: () => visited };
  }

  test('stops as soon as it passes the limit, without visiting the rest', () => {
    const { watched, visited } = watchedArray();
    const nested = { small: 'x', big: watched };
    // More members than the budget left: over it without reading one.
    expect(jsonSize(nested, 100)).toBeGreaterThan(100);
    expect(visited()).toBeLessThan(10);
    // Under the limit it is exact.
    expect(jsonSize([{ i: 1 }], 100)).toBe(bytesOf([{ i: 1 }]));
  });

  test('against a limit, a wide array of containers is visited only until the limit is passed', () => {
    const { watched, visited } = watchedArray();
    // Brackets and commas (100 001) and a byte per element at least (100 000) fit the limit, so the
    // elements are walked; the 150 000 bytes to the limit are the first 14 647 {"i":N}.
    expect(jsonSize(watched, 250_001)).toBeGreaterThan(250_001);
    expect(visited()).toBeGreaterThan(14_000);
    expect(visited()).toBeLessThan(20_000);
  });

  test('against a limit, the size is exact up to it and passes it exactly when the whole does', () => {
    const random = randomSource(17);
    const value = (depth: number): JsonValue => {
      const roll = random();
      if (depth > 3 || roll < 0.4) return [null, true, 12.5, 'text', 'é\n', -3][Math.floor(random() * 6)] as JsonValue;
      if (roll < 0.7) return Array.from({ length: Math.floor(random() * 5) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: Math.floor(random() * 5) }, (_, i) => [`k${i}`, value(depth + 1)]));
    };
    for (let round = 0; round < 500; round++) {
      const sample = value(0);
      const whole = bytesOf(sample);
      const limit = Math.floor(random() * (whole + 10));
      const measured = jsonSize(sample, limit);
      if (whole <= limit) expect(measured).toBe(whole);
      else expect(measured).toBeGreaterThan(limit);
      // Past the limit it may stop early, on a count of members, but never claims more than there is.
      expect(measured).toBeLessThanOrEqual(whole);
    }
  });
});

describe('SizeMeter', () => {
  /** A random operation on `root`, valid or not (invalid ones must leave the size as it was). */
  function randomOperation(random: () => number, root: JsonValue): PatchOperation {
    const paths: string[][] = [];
    const collect = (value: JsonValue, path: string[]) => {
      paths.push(path);
      if (Array.isArray(value)) value.forEach((child, i) => collect(child, [...path, String(i)]));
      else if (value !== null && typeof value === 'object') for (const key of Object.keys(value)) collect(value[key] as JsonValue, [...path, key]);
    };
    collect(root, []);
    const somePath = () => paths[Math.floor(random() * paths.length)] as string[];
    const target = () => {
      const base = somePath();
      const roll = random();
      if (roll < 0.3) return toPointer([...base, '-']);
      if (roll < 0.5) return toPointer([...base, keys[Math.floor(random() * keys.length)] as string]);
      if (roll < 0.6) return toPointer([...base, String(Math.floor(random() * 3))]);
      return toPointer(base);
    };
    const value = () => randomValue(random, 2);
    switch (Math.floor(random() * 5)) {
      case 0:
        return { op: 'add', path: target(), value: value() };
      case 1:
        return { op: 'remove', path: toPointer(somePath()) };
      case 2:
        return { op: 'replace', path: toPointer(somePath()), value: value() };
      case 3:
        return { op: 'move', from: toPointer(somePath()), path: target() };
      default:
        return { op: 'copy', from: toPointer(somePath()), path: target() };
    }
  }

  test('keeps the exact size through 5 000 random changes of 1 to 4 operations, applied or refused', () => {
    const random = randomSource(7);
    const state: DocumentState = { root: JSON.parse('{"list":[1,"two",{"three":3}],"obj":{"a":null,"__proto__":{"b":[]}}}') as JsonValue };
    let size = jsonSize(state.root);
    let applied = 0;
    let walks = 0;
    for (let i = 0; i < 5_000; i++) {
      const ops: PatchOperation[] = [];
      const count = 1 + Math.floor(random() * 4);
      for (let j = 0; j < count; j++) ops.push(randomOperation(random, state.root));
      const meter = new SizeMeter();
      try {
        applyOperations(state, ops, undefined, meter);
      } catch (error) {
        if (!(error instanceof JsonStoreError)) throw error;
        expect(jsonSize(state.root)).toBe(size); // undone, so the size did not change
        continue;
      }
      applied++;
      const after = meter.sizeAfter(size);
      if (after === undefined) walks++;
      size = after ?? jsonSize(state.root);
      if (size !== bytesOf(state.root)) expect({ ops, size }).toEqual({ ops, size: bytesOf(state.root) });
      // Keep the document small enough to stay interesting.
      if (size > 20_000) {
        state.root = { restart: [] };
        size = jsonSize(state.root);
      }
    }
    expect(applied).toBeGreaterThan(1_000);
    // Only changes to the whole document need a walk.
    expect(walks).toBeLessThan(applied / 5);
  });

  test('adding or removing members lists the keys of the object about once, not once per member (a POST to a big collection is O(1))', () => {
    const members: Record<string, JsonValue> = {};
    for (let i = 0; i < 1_000; i++) members[`k${i}`] = i;
    let listings = 0;
    const collection = new Proxy(members, {
      ownKeys(target) {
        listings++;
        return Reflect.ownKeys(target);
      },
    });
    const state: DocumentState = { root: { c: collection } };
    let size = jsonSize(state.root);
    listings = 0;
    for (let i = 0; i < 100; i++) {
      const meter = new SizeMeter();
      applyOperations(state, [{ op: 'add', path: `/c/new${i}`, value: i }], undefined, meter);
      size = meter.sizeAfter(size) as number;
    }
    // Removing members oldest first, then newest first (the meter alone: removing itself is apply's business).
    const removals = [...Array.from({ length: 50 }, (_, i) => `k${i}`), ...Array.from({ length: 50 }, (_, i) => `new${99 - i}`)];
    for (const key of removals) {
      const meter = new SizeMeter();
      meter.removing(state.root, ['c', key], 'remove');
      delete members[key];
      size = meter.sizeAfter(size) as number;
    }
    expect(listings).toBeLessThanOrEqual(3);
    expect(size).toBe(bytesOf(state.root));
  });

  test('counts what a write inserts, copies measured before they are made, and refuses past the limit', () => {
    const state: DocumentState = { root: { a: ['0123456789'] } };
    const meter = new SizeMeter(100, true);
    const copy: PatchOperation = { op: 'copy', from: '/a', path: '/a/-' };
    applyOperations(state, [copy, copy], (i) => `operation ${i}`, meter);
    // ["0123456789"] is 14 bytes, then ["0123456789",["0123456789"]] is 29.
    expect(meter.inserted).toBe(14 + 29);
    const fresh: DocumentState = { root: { a: ['0123456789'] } };
    let refusal: unknown;
    try {
      applyOperations(fresh, [copy, copy, copy], (i) => `operation ${i}`, new SizeMeter(100, true));
    } catch (error) {
      refusal = error;
    }
    // The third copy would insert 59 bytes on top of 14 + 29: refused as soon as the count passes 100.
    expect(refusal).toBeInstanceOf(JsonStoreError);
    const match = /^This write would insert at least (\d+) bytes of JSON \(passed at operation 2\); the limit is 100 bytes \(the maxWriteGrowth option\); nothing was changed$/.exec(
      (refusal as Error).message,
    );
    expect(match).not.toBeNull();
    expect(Number(match?.[1])).toBeGreaterThan(100);
    expect(Number(match?.[1])).toBeLessThanOrEqual(14 + 29 + 59);
    expect(fresh.root).toEqual({ a: ['0123456789'] });
    // A move inserts nothing new.
    const moves = new SizeMeter(1);
    applyOperations(state, [{ op: 'move', from: '/a/1', path: '/b' }], undefined, moves);
    expect(moves.inserted).toBe(0);
  });
});
