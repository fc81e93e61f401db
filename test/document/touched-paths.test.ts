/**
 * src/document/touched-paths.ts: what a change touches and when two changes
 * overlap (the rule shared storage uses to commit a change made on an older
 * revision without redoing it). Ends with the property the rule exists for:
 * two changes that do not conflict still applies after the other and leaves what each wrote.
 */
import { describe, expect, test } from 'vitest';
import { applyOperations, valueAt, type DocumentState } from '../../src/document/apply.js';
import { parsePointer } from '../../src/document/path.js';
import type { JsonValue } from '../../src/document/json.js';
import type { PatchOperation } from '../../src/document/patch-types.js';
import {
  conflictsWith,
  decodePaths,
  encodePaths,
  maxTouchedPaths,
  minimalCover,
  pathsOverlap,
  touchedPaths,
} from '../../src/document/touched-paths.js';
import { randomSource } from '../support/random.js';

describe('pathsOverlap', () => {
  test.each([
    ['/a', '/a', true],
    ['/a', '/a/b', true],
    ['/a/b', '/a', true],
    ['', '/a/b/c', true],
    ['', '', true],
    ['/a', '/b', false],
    ['/a', '/ab', false],
    ['/ab', '/a', false],
    ['/a/b', '/a/c', false],
    ['/a/b', '/a/bc/d', false],
    // Escaped segments are compared as written: `~1` is `/` inside a key, so `/a~1b` is one key, not /a/b.
    ['/a~1b', '/a/b', false],
    ['/a~1b', '/a~1b/c', true],
    ['/a~0', '/a~0/x', true],
    ['/a~0', '/a~01', false],
    ['/a/', '/a', true],
    ['/a/', '/a/b', false],
  ])('%j and %j: %s', (a, b, expected) => {
    expect(pathsOverlap(a, b)).toBe(expected);
  });
});

describe('touchedPaths', () => {
  test('replace touches its pointer; test reads it', () => {
    expect(touchedPaths([{ op: 'test', path: '/count', value: 1 }, { op: 'replace', path: '/count', value: 2 }])).toEqual({ writes: ['/count'], reads: ['/count'] });
    expect(touchedPaths([{ op: 'test', path: '/a', value: 1 }, { op: 'replace', path: '/b', value: 2 }])).toEqual({ writes: ['/b'], reads: ['/a'] });
  });

  test('add and remove at an array index, or `-`, touch the whole array', () => {
    expect(touchedPaths([{ op: 'add', path: '/list/0', value: 1 }]).writes).toEqual(['/list']);
    expect(touchedPaths([{ op: 'add', path: '/list/-', value: 1 }]).writes).toEqual(['/list']);
    expect(touchedPaths([{ op: 'remove', path: '/list/3' }]).writes).toEqual(['/list']);
    // Not an index: an object member.
    expect(touchedPaths([{ op: 'add', path: '/obj/03', value: 1 }]).writes).toEqual(['/obj/03']);
    expect(touchedPaths([{ op: 'add', path: '/obj/name', value: 1 }]).writes).toEqual(['/obj/name']);
  });

  test('replace and test at an index touch the element only; an insert in that array still overlaps them', () => {
    const replace = touchedPaths([{ op: 'replace', path: '/list/2', value: 'x' }]);
    expect(replace.writes).toEqual(['/list/2']);
    const insert = touchedPaths([{ op: 'add', path: '/list/0', value: 'y' }]);
    expect(conflictsWith(insert.writes, replace)).toBe(true);
    expect(conflictsWith(replace.writes, insert)).toBe(true);
    // Two replaces of different elements do not conflict.
    expect(conflictsWith(touchedPaths([{ op: 'replace', path: '/list/1', value: 'z' }]).writes, replace)).toBe(false);
  });

  test('move writes both ends; copy reads its source and writes its target', () => {
    expect(touchedPaths([{ op: 'move', from: '/a/x', path: '/b/y' }])).toEqual({ writes: ['/a/x', '/b/y'], reads: [] });
    expect(touchedPaths([{ op: 'move', from: '/list/0', path: '/list/-' }])).toEqual({ writes: ['/list'], reads: [] });
    expect(touchedPaths([{ op: 'copy', from: '/a/x', path: '/b/y' }])).toEqual({ writes: ['/b/y'], reads: ['/a/x'] });
    expect(touchedPaths([{ op: 'copy', from: '/a/x', path: '/b/0' }])).toEqual({ writes: ['/b'], reads: ['/a/x'] });
  });

  test('the root: a change at "" touches everything', () => {
    const root = touchedPaths([{ op: 'replace', path: '', value: {} }]);
    expect(root.writes).toEqual(['']);
    expect(conflictsWith(root.writes, touchedPaths([{ op: 'replace', path: '/deep/down', value: 1 }]))).toBe(true);
    expect(touchedPaths([{ op: 'add', path: '', value: 1 }]).writes).toEqual(['']);
    expect(touchedPaths([{ op: 'remove', path: '/0' }]).writes).toEqual(['']);
  });

  test('a precondition reads the pointer it checked', () => {
    const change = touchedPaths([{ op: 'replace', path: '/a/b', value: 1 }], ['/a']);
    expect(change).toEqual({ writes: ['/a/b'], reads: ['/a'] });
    // Someone writing a sibling under /a changes the value the precondition saw.
    expect(conflictsWith(['/a/c'], change)).toBe(true);
    expect(conflictsWith(['/other'], change)).toBe(false);
  });

  test('a change that only reads conflicts with nothing; reads are kept even under a write (the change depends on them)', () => {
    expect(conflictsWith([], touchedPaths([{ op: 'test', path: '/a', value: 1 }]))).toBe(false);
    expect(touchedPaths([{ op: 'test', path: '/a/b', value: 1 }, { op: 'replace', path: '/a', value: 2 }])).toEqual({ writes: ['/a'], reads: ['/a/b'] });
  });

  test('siblings do not conflict, ancestors and descendants do', () => {
    const change = touchedPaths([{ op: 'replace', path: '/users/ann/name', value: 'Ann' }]);
    expect(conflictsWith(['/users/bob'], change)).toBe(false);
    expect(conflictsWith(['/users/ann'], change)).toBe(true);
    expect(conflictsWith(['/users'], change)).toBe(true);
    expect(conflictsWith(['/users/ann/name/first'], change)).toBe(true);
    expect(conflictsWith(['/users/annie'], change)).toBe(false);
  });

  test('escaped ~0 and ~1 segments stay one segment', () => {
    const change = touchedPaths([{ op: 'replace', path: '/a~1b/c~0d', value: 1 }]);
    expect(change.writes).toEqual(['/a~1b/c~0d']);
    expect(conflictsWith(['/a'], change)).toBe(false);
    expect(conflictsWith(['/a~1b'], change)).toBe(true);
    expect(conflictsWith(['/a~1b/c~0'], change)).toBe(false);
  });

  test('lists are minimal, and past the limit fold into their common prefix', () => {
    expect(minimalCover(['/a/b', '/a', '/a/c', '/b', '/b'])).toEqual(['/a', '/b']);
    const many = Array.from({ length: maxTouchedPaths + 1 }, (_, i) => `/items/k${i}/v`);
    expect(minimalCover(many)).toEqual(['/items']);
    expect(minimalCover([...many, '/other'])).toEqual(['']);
  });
});

describe('encodePaths', () => {
  test('round-trips any pointer, with its byte length', () => {
    const pointers = ['', '/a', '/ключ/🔑', '/with:colon/12:3', '/new\nline', '/a~1b~0'];
    const encoded = encodePaths(pointers);
    expect(encoded.startsWith('0:2:/a')).toBe(true);
    expect(decodePaths(encoded)).toEqual(pointers);
    expect(decodePaths('')).toEqual([]);
    expect(decodePaths('5:/a')).toBeUndefined();
    expect(decodePaths(':/a')).toBeUndefined();
  });
});

describe('the rebase rule', () => {
  /** Small documents and changes on them, so that overlaps are frequent. */
  const keys = ['a', 'b', 'list'];
  function randomDocument(random: () => number): JsonValue {
    return { a: { x: Math.floor(random() * 3), y: [1, 2] }, b: { x: 1 }, list: [0, 1, 2, 3] };
  }
  function randomChange(random: () => number): PatchOperation[] {
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
    const leaf = () => pick(['/a/x', '/b/x', '/a/y/0', '/list/1', '/list/2', '/b/new']);
    switch (pick(['replace', 'add', 'remove', 'insert', 'append', 'move', 'copy', 'test'])) {
      case 'replace':
        return [{ op: 'replace', path: pick(['/a/x', '/b/x', '/list/1', '/list/2', '/a/y/1', '/a']), value: random() }];
      case 'add':
        return [{ op: 'add', path: pick(['/b/new', '/a/z', `/${pick(keys)}2`]), value: random() }];
      case 'remove':
        return [{ op: 'remove', path: pick(['/list/0', '/list/3', '/a/y/0', '/b/x']) }];
      case 'insert':
        return [{ op: 'add', path: pick(['/list/0', '/list/2', '/a/y/1']), value: random() }];
      case 'append':
        return [{ op: 'add', path: pick(['/list/-', '/a/y/-']), value: random() }];
      case 'move':
        return [{ op: 'move', from: pick(['/list/0', '/a/x']), path: pick(['/b/moved', '/list/-']) }];
      case 'copy':
        return [{ op: 'copy', from: pick(['/list/1', '/a/x', '/b']), path: pick(['/b/copied', '/list/0']) }];
      default:
        return [
          { op: 'test', path: leaf(), value: 1 },
          { op: 'replace', path: pick(['/a/x', '/b/x']), value: random() },
        ];
    }
  }
  /** JSON with object members sorted by name. */
  function canonical(value: JsonValue | undefined): string {
    return JSON.stringify(value, (_key, member: unknown) =>
      member !== null && typeof member === 'object' && !Array.isArray(member)
        ? Object.fromEntries(Object.entries(member).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
        : member,
    );
  }
  function tryApply(root: JsonValue, ops: PatchOperation[]): JsonValue | undefined {
    const state: DocumentState = { root: structuredClone(root) };
    try {
      applyOperations(state, ops);
      return state.root;
    } catch {
      return undefined;
    }
  }

  test('two changes that both apply to a document and do not conflict still applies after the other and leaves what each wrote', () => {
    const random = randomSource(1313);
    let checked = 0;
    let conflicts = 0;
    for (let i = 0; i < 20_000; i++) {
      const base = randomDocument(random);
      const first = randomChange(random);
      const second = randomChange(random);
      const afterFirst = tryApply(base, first);
      const afterSecond = tryApply(base, second);
      if (afterFirst === undefined || afterSecond === undefined) continue;
      if (conflictsWith(touchedPaths(first).writes, touchedPaths(second))) {
        conflicts += 1;
        continue;
      }
      // The second was planned on `base` and committed after the first: it must still apply, and
      // leave what each of them wrote as each left it on its own (a serial order, first then second).
      const rebased = tryApply(afterFirst, second);
      const pair = `${JSON.stringify(first)} then ${JSON.stringify(second)}`;
      expect(rebased, pair).toBeDefined();
      for (const [written, alone] of [
        [touchedPaths(first).writes, afterFirst],
        [touchedPaths(second).writes, afterSecond],
      ] as const) {
        for (const pointer of written) {
          expect(canonical(valueAt(rebased as JsonValue, parsePointer(pointer))), `${pair}: ${pointer}`).toBe(canonical(valueAt(alone, parsePointer(pointer))));
        }
      }
      // Neither depends on the other: either order gives the same document, up to member order
      // (which is why the engine replays changes in revision order).
      if (!conflictsWith(touchedPaths(second).writes, touchedPaths(first))) {
        expect(canonical(rebased), pair).toBe(canonical(tryApply(afterSecond, first)));
      }
      checked += 1;
    }
    // The generator must produce both kinds, or the test proves nothing.
    expect(checked).toBeGreaterThan(1000);
    expect(conflicts).toBeGreaterThan(1000);
  });
});
