/**
 * The query engine on its own: orderings, and the bounded heap agreeing with
 * a plain full sort on random data.
 */
import { describe, expect, test } from 'vitest';
import type { JsonValue } from '../../src/document/json.js';
import { compareFirebaseKeys, compareFirebaseValues, compareLodash, jsString, runQuery } from '../../src/document/query.js';
import { parseReadQuery, type CollectionQuery } from '../../src/document/query-parse.js';
import { randomSource } from '../support/random.js';

function queryOf(text: string): CollectionQuery {
  const parsed = parseReadQuery(text).collection;
  if (parsed === undefined) throw new Error(`no query in ${text}`);
  return parsed;
}

function run(collection: JsonValue, text: string): string {
  return runQuery(collection, queryOf(text), { pretty: false, where: '/c' }).body;
}

describe('orderings', () => {
  test('Firebase keys: 32-bit integers first, numerically, then strings', () => {
    const keys = ['b', '10', '-3', '2147483648', '9', 'a', '007', '2147483647'];
    expect([...keys].sort(compareFirebaseKeys)).toEqual(['-3', '9', '10', '2147483647', '007', '2147483648', 'a', 'b']);
  });

  test('Firebase values: missing and null, false, true, numbers, strings, objects', () => {
    const values: Array<JsonValue | undefined> = [{ a: 1 }, 'b', 2, true, null, false, -1, 'a', [0], undefined];
    // Array.prototype.sort puts undefined last without asking the comparator: sort boxes.
    const sorted = values.map((value) => ({ value })).sort((a, b) => compareFirebaseValues(a.value, b.value)).map(({ value }) => value);
    expect(sorted.slice(0, 2)).toEqual([null, undefined]);
    expect(sorted.slice(2)).toEqual([false, true, -1, 2, 'a', 'b', { a: 1 }, [0]]);
  });

  test('lodash order (json-server): numbers and strings as JavaScript compares them, null after, missing last', () => {
    expect([3, null, undefined, 1, 2].sort(compareLodash)).toEqual([1, 2, 3, null, undefined]);
    expect(compareLodash('b', 'a')).toBe(1);
    expect(compareLodash('10', 9)).toBe(1);
    // Members named toString are data: never called.
    expect(jsString({ toString: 'x' })).toBe('[object Object]');
    expect(jsString([1, null, [2, 3]])).toBe('1,,2,3');
  });
});

describe('_like patterns', () => {
  test.each(['(a+)+', '((a)+)+', '(a|aa)*', '(?:a*)*', '(x(a+))*', '((a|b)c)+', '(\\d+)*$', '(.*a){20}'])('%s is refused: it can backtrack exponentially', (pattern) => {
    expect(() => parseReadQuery(`title_like=${encodeURIComponent(pattern)}`)).toThrow(/repeated group/);
  });

  test.each(['^a', '(?:abc)+', '(ab){2}', 'a+b*', '[(+)]+', '\\(a+\\)+', '(a+)?', 'colou?r', '(foo)(bar)+'])('%s is accepted', (pattern) => {
    const query = parseReadQuery(`title_like=${encodeURIComponent(pattern)}`).collection;
    expect(query?.dialect).toBe('json-server');
  });
});

describe('runQuery', () => {
  test('a member named __proto__ or toString is data', () => {
    const collection = JSON.parse('{"__proto__":{"n":2},"toString":{"n":1}}') as JsonValue;
    expect(run(collection, 'orderBy="n"')).toBe('{"toString":{"n":1},"__proto__":{"n":2}}');
    expect(run([{ toString: 'x', n: 1 }], 'q=x')).toBe('[{"toString":"x","n":1}]');
  });

  test('an empty collection answers an empty one of its kind', () => {
    expect(run([], 'orderBy="$key"&limitToFirst=3')).toBe('[]');
    expect(run({}, '_sort=a&_limit=3')).toBe('{}');
  });

  test('the bounded heap selects exactly what a full sort would (random data, both dialects)', () => {
    const random = randomSource(20261129);
    for (let round = 0; round < 60; round++) {
      const size = Math.floor(random() * 60);
      const values: JsonValue[] = [null, true, false, 1, 2, 'a', 'b', { x: 1 }];
      const members: Record<string, JsonValue> = {};
      const list: JsonValue[] = [];
      for (let i = 0; i < size; i++) {
        // n: what lodash orders consistently (numbers, null, missing); with mixed types its order is not transitive.
        const n = random() < 0.2 ? null : Math.floor(random() * 5);
        const member: JsonValue = random() < 0.8 ? { v: values[Math.floor(random() * values.length)] as JsonValue, w: Math.floor(random() * 4), ...(random() < 0.8 ? { n } : {}) } : {};
        // No integer-like keys here: JSON.parse would reorder them (the test below covers their order).
        members[`k${Math.floor(random() * 1000)}`] = member;
        list.push(member);
      }
      const limit = 1 + Math.floor(random() * 8);
      for (const collection of [members, list] as JsonValue[]) {
        const whole = JSON.parse(run(collection, 'orderBy="v"')) as object;
        const entries = Object.entries(whole);
        const first = run(collection, `orderBy="v"&limitToFirst=${limit}`);
        const last = run(collection, `orderBy="v"&limitToLast=${limit}`);
        if (Array.isArray(collection)) {
          const all = whole as JsonValue[];
          expect(JSON.parse(first)).toEqual(all.slice(0, limit));
          expect(JSON.parse(last)).toEqual(all.slice(Math.max(0, all.length - limit)));
        } else {
          expect(Object.keys(JSON.parse(first) as object).sort()).toEqual(entries.slice(0, limit).map(([k]) => k).sort());
          expect(Object.keys(JSON.parse(last) as object).sort()).toEqual(entries.slice(Math.max(0, entries.length - limit)).map(([k]) => k).sort());
        }
        const sorted = JSON.parse(run(collection, '_sort=w,-n')) as JsonValue;
        const start = Math.floor(random() * 5);
        const window = run(collection, `_sort=w,-n&_start=${start}&_limit=${limit}`);
        const expected = Array.isArray(sorted) ? sorted.slice(start, start + limit) : Object.fromEntries(Object.entries(sorted as object).slice(start, start + limit));
        expect(JSON.parse(window)).toEqual(expected);
      }
    }
  });

  test('the answer of an object keeps the query order in its text, integer-like keys included', () => {
    expect(run({ b: 1, 2: 3, a: 2 }, 'orderBy="$value"&limitToLast=2')).toBe('{"a":2,"2":3}');
  });
});
