/**
 * Every JSON shape survives the trip through the engine into storage and
 * back: written with the programmatic API, read back from a reopened adapter
 * (or the live one), compared exactly, key order included.
 */
import assert from 'node:assert/strict';
import type { JsonArray, JsonObject, JsonValue } from '../../document/json.js';
import type { JsonStore } from '../../json-store.js';
import { prototypeFingerprint } from '../assert-json.js';
import { assertReadBack, type CaseDefinition } from './helpers.js';

interface RoundTrip {
  title: string;
  initial?: JsonValue;
  /** Writes through the store; builds every value afresh so nothing is shared with `expected`. */
  write(store: JsonStore): Promise<unknown>;
  expected(): JsonValue;
}

const rootScalars: Array<[string, () => JsonValue]> = [
  ['null', () => null],
  ['0', () => 0],
  ['false', () => false],
  ['true', () => true],
  ['an empty string', () => ''],
  ['a string', () => 'just a string'],
  ['a negative fraction', () => -12.5],
];

const unicodeTexts = [
  '😀',
  '👩‍👩‍👧‍👦',
  '🇺🇦',
  'e\u0301',
  '\u00e9',
  'n\u0303',
  '\u00f1',
  'שלום עולם',
  'مرحبا بالعالم',
  '\u202eRTL override\u202c',
  'a\u0000b',
  '\u0000',
  '日本語のテキスト',
  'line\u2028separator\u2029paragraph',
  'tab\tnewline\ncarriage\rquote"backslash\\',
  '\u0001\u001f\u007f',
  '\ufeffbyte order mark',
];

/** `e\u0301` and `\u00e9` are different keys: storage must not normalize Unicode. */
function unicodeDocument(): JsonValue {
  const keyed: JsonObject = {};
  unicodeTexts.forEach((text, index) => {
    keyed[text] = `${index}:${text}`;
  });
  return { keyed, values: [...unicodeTexts], 'ключ': { '😀': 'значение' } };
}

/** Keys that are JSON Pointer syntax, path syntax or `Object.prototype` members. */
const awkwardKeys = ['', '/', '~', '~1', '~0', '~01', '/~', '-', '.', '..', ' ', '%2F', '0', '__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', 'prototype', '__defineGetter__'];

/** Uses JSON text so `__proto__` is an own key, as it is for a parsed request body. */
function awkwardExpected(): JsonValue {
  const members = awkwardKeys.map((key) => `${JSON.stringify(key)}:${JSON.stringify({ key })}`).join(',');
  return JSON.parse(
    `{"keys":{${members}},` +
      `"__proto__":{"polluted":true},` +
      `"merged":{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}},` +
      `"pointers":{"/":1,"~":2,"~1":3}}`,
  ) as JsonValue;
}

function numbers(): JsonValue {
  return {
    largestSafe: 2 ** 53 - 1,
    smallestSafe: -(2 ** 53 - 1),
    small: 1e-7,
    negativeZero: -0,
    tiny: 5e-324,
    huge: 1.7976931348623157e308,
    tenth: 0.1,
    third: 1 / 3,
    exponent: 1e21,
    negative: -42,
    list: [0, -0, 1, -1, 2 ** 53 - 1, -(2 ** 53 - 1), 1e-7, 123456789.123456],
  };
}

/** Alternating objects and arrays, `levels` containers deep, `"bottom"` inside. */
function nested(levels: number): JsonValue {
  let value: JsonValue = 'bottom';
  for (let level = levels; level >= 1; level--) value = level % 2 === 0 ? [value] : { d: value };
  return value;
}

/** The pointer segments from the top of `nested(levels)` to the bottom value. */
function nestedPath(levels: number): string[] {
  const path: string[] = [];
  for (let level = 1; level <= levels; level++) path.push(level % 2 === 0 ? '0' : 'd');
  return path;
}

const megabyte = 1024 * 1024;
/** 32 UTF-16 units, whole characters only, so slicing at multiples of 32 never splits a pair. */
const longPattern = 'abcdefghij0123456789 é😀\u0000"\\\n✓日本!';
function longString(): string {
  assert.equal(longPattern.length, 32);
  return longPattern.repeat(megabyte / longPattern.length);
}

function bigArray(): JsonArray {
  return Array.from({ length: 10_000 }, (_, i): JsonValue => (i % 3 === 0 ? i : i % 3 === 1 ? `item ${i}` : { i }));
}

const roundTrips: RoundTrip[] = [
  {
    title: 'an empty object at the root',
    initial: [1, 2],
    write: (store) => store.put([], {}),
    expected: () => ({}),
  },
  {
    title: 'an empty array at the root',
    initial: { a: 1 },
    write: (store) => store.put([], []),
    expected: () => [],
  },
  {
    title: 'an empty array as the starting document',
    initial: [],
    write: (store) => store.post([], []),
    expected: () => [[]],
  },
  {
    title: 'empty objects and arrays nested',
    async write(store) {
      await store.put(['object'], {});
      await store.put(['array'], []);
      await store.put(['mixed'], [[], {}, [[]], [{}], { inner: [] }]);
      await store.put(['deeper', 'still'], { empty: {}, none: [] });
    },
    expected: (): JsonValue => ({
      object: {},
      array: [],
      mixed: [[], {}, [[]], [{}], { inner: [] }] as JsonValue[],
      deeper: { still: { empty: {}, none: [] } },
    }),
  },
  ...rootScalars.map(
    ([label, value]): RoundTrip => ({
      title: `${label} at the root`,
      write: (store) => store.put([], value()),
      expected: value,
    }),
  ),
  {
    title: 'unicode keys and values (emoji, combining characters, RTL text, \\u0000)',
    async write(store) {
      await store.put(['keyed'], (unicodeDocument() as JsonObject)['keyed'] as JsonValue);
      await store.put(['values'], []);
      for (const text of unicodeTexts) await store.post(['values'], text);
      await store.put(['ключ', '😀'], 'значение');
    },
    expected: unicodeDocument,
  },
  {
    title: "keys '', '/', '~', '~1', '__proto__', 'constructor', 'toString' and friends",
    async write(store) {
      await store.put(['keys'], {});
      for (const key of awkwardKeys) await store.put(['keys', key], { key });
      await store.put(['__proto__'], { polluted: true });
      await store.patch(['merged'], JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}') as JsonValue);
      await store.put(['pointers'], {});
      await store.patch(
        ['pointers'],
        [
          { op: 'add', path: '/~1', value: 1 },
          { op: 'add', path: '/~0', value: 2 },
          { op: 'add', path: '/~01', value: 3 },
        ],
        { type: 'json-patch' },
      );
    },
    expected: awkwardExpected,
  },
  {
    title: 'numbers: ±(2**53-1), 1e-7, -0 (stored as 0), 5e-324, 1.79e308',
    write: (store) => store.put(['numbers'], numbers()),
    expected: () => ({ numbers: numbers() }),
  },
  {
    title: 'deep nesting (90 levels)',
    async write(store) {
      await store.put(['deep'], nested(89));
      // A write at the bottom reaches through every level.
      await store.patch([], [{ op: 'replace', path: '/deep/' + nestedPath(89).join('/'), value: 'rewritten' }], { type: 'json-patch' });
    },
    expected() {
      const deep = nested(89);
      let parent = deep as JsonObject | JsonArray;
      const path = nestedPath(89);
      for (const segment of path.slice(0, -1)) parent = (parent as Record<string, JsonValue>)[segment] as JsonObject | JsonArray;
      (parent as Record<string, JsonValue>)[path[path.length - 1] as string] = 'rewritten';
      return { deep };
    },
  },
  {
    title: 'a long string (1 MB) and a long key',
    async write(store) {
      await store.put(['long'], longString());
      await store.put(['k'.repeat(10_000)], 'long key');
    },
    expected: () => ({ long: longString(), ['k'.repeat(10_000)]: 'long key' }),
  },
  {
    title: 'an array of 10,000 elements',
    async write(store) {
      await store.put(['items'], bigArray());
      await store.post(['items'], 'appended');
      await store.patch(['items'], [{ op: 'remove', path: '/5000' }], { type: 'json-patch' });
    },
    expected() {
      const items = bigArray();
      items.push('appended');
      items.splice(5000, 1);
      return { items };
    },
  },
  {
    title: 'key order, exactly as written',
    initial: { zulu: 1, alpha: 2 },
    async write(store) {
      await store.put(['order'], { zebra: 1, apple: 2, mango: 3 });
      await store.put(['order', 'banana'], 4);
      await store.delete(['order', 'apple']);
      await store.put(['order', 'apple'], 5);
      await store.put(['order', 'zebra'], 6);
      await store.patch(['order'], { kiwi: 7, mango: null, zebra: 8 });
      await store.patch(['order'], [{ op: 'move', from: '/banana', path: '/cherry' }], { type: 'json-patch' });
      await store.put(['beta'], 3);
    },
    expected: () => ({ zulu: 1, alpha: 2, order: { zebra: 8, apple: 5, kiwi: 7, cherry: 4 }, beta: 3 }),
  },
];

export const roundTripCases: CaseDefinition[] = roundTrips.map((trip) => ({
  title: `round trip: ${trip.title}`,
  async run(context) {
    const prototypes = prototypeFingerprint();
    const { store } = await context.newStore(trip.initial === undefined ? {} : { initial: trip.initial });
    await trip.write(store);
    await assertReadBack(context, store, trip.expected(), trip.title);
    assert.equal(prototypeFingerprint(), prototypes, `${trip.title}: storing or loading changed Object.prototype or Array.prototype`);
  },
}));
