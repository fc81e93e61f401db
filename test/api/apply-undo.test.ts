/**
 * applyOperations (exported for storage adapters) undoes exactly, key order
 * included, and removing k keys from an object of n keys costs O(k + n) to
 * apply and to undo: the object is saved once, not once per removed key.
 */
import { describe, expect, test } from 'vitest';
import { applyOperations, toPointer, type DocumentState, type JsonValue, type PatchOperation } from '../../src/index.js';
import { randomSource } from '../support/random.js';


// Integer-like keys enumerate before the others whatever their insertion
// order; `__proto__` must stay an own key.
const keyPool = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', '0', '7', '10', '__proto__', 'a/b', 'm~n'];

function setOwn(object: Record<string, JsonValue>, key: string, value: JsonValue): void {
  Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
}

function randomValue(random: () => number, depth: number): JsonValue {
  const roll = random();
  if (depth >= 3 || roll < 0.4) return [null, true, 0, 1.5, 'x', ''][Math.floor(random() * 6)] as JsonValue;
  if (roll < 0.55) return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth + 1));
  const object: Record<string, JsonValue> = {};
  const count = 2 + Math.floor(random() * 8);
  for (let i = 0; i < count; i++) setOwn(object, pick(random, keyPool), randomValue(random, depth + 1));
  return object;
}

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)] as T;
}

interface Located {
  path: string[];
  value: JsonValue;
}

/** Every value in the document with its path (the root included). */
function locations(root: JsonValue): Located[] {
  const out: Located[] = [];
  const walk = (value: JsonValue, path: string[]) => {
    out.push({ path, value });
    if (Array.isArray(value)) value.forEach((child, i) => walk(child, [...path, String(i)]));
    else if (value !== null && typeof value === 'object') for (const key of Object.keys(value)) walk(value[key] as JsonValue, [...path, key]);
  };
  walk(root, []);
  return out;
}

/** A destination inside a container: a new or existing key, or an array position. */
function destinationIn(random: () => number, container: Located): string[] {
  if (Array.isArray(container.value)) {
    const index = Math.floor(random() * (container.value.length + 1));
    return [...container.path, random() < 0.2 ? '-' : String(index)];
  }
  return [...container.path, pick(random, keyPool)];
}

/**
 * One operation likely to apply to `root`, biased towards `hot` (an object
 * many operations change, so their interleavings are exercised).
 */
function randomOperation(random: () => number, root: JsonValue, hot: string[]): PatchOperation {
  const all = locations(root);
  const hotKey = toPointer(hot);
  const nearHot = all.filter((l) => toPointer(l.path.slice(0, -1)) === hotKey && l.path.length > 0);
  const members = all.filter((l) => l.path.length > 0);
  const containers = all.filter((l) => l.value !== null && typeof l.value === 'object');
  const member = nearHot.length > 0 && random() < 0.7 ? pick(random, nearHot) : pick(random, members.length > 0 ? members : all);
  const hotContainer = containers.find((l) => toPointer(l.path) === hotKey);
  const container = hotContainer && random() < 0.7 ? hotContainer : pick(random, containers);
  const value = randomValue(random, 2);
  switch (pick(random, ['add', 'add', 'remove', 'remove', 'replace', 'move', 'move', 'copy', 'test'] as const)) {
    case 'add':
      return { op: 'add', path: toPointer(destinationIn(random, container)), value };
    case 'remove':
      return { op: 'remove', path: toPointer(member.path) };
    case 'replace':
      return { op: 'replace', path: toPointer(member.path), value };
    case 'move':
      return { op: 'move', from: toPointer(member.path), path: toPointer(destinationIn(random, container)) };
    case 'copy':
      return { op: 'copy', from: toPointer(member.path), path: toPointer(destinationIn(random, container)) };
    case 'test':
      return { op: 'test', path: toPointer(member.path), value: structuredClone(member.value) };
  }
}

/** A sequence of operations that all apply, built by applying each to a scratch copy. */
function randomSequence(random: () => number, original: JsonValue, length: number): PatchOperation[] {
  const scratch: DocumentState = { root: structuredClone(original) };
  const hotCandidates = locations(original).filter((l) => l.value !== null && typeof l.value === 'object' && !Array.isArray(l.value));
  const hot = pick(random, hotCandidates).path;
  const ops: PatchOperation[] = [];
  for (let tries = 0; ops.length < length && tries < length * 20; tries++) {
    const op = randomOperation(random, scratch.root, hot);
    try {
      applyOperations(scratch, [op]);
      ops.push(op);
    } catch {
      // Not applicable here (a move into its own child, an index past the end): try another.
    }
  }
  return ops;
}

function randomDocument(random: () => number): JsonValue {
  const root: Record<string, JsonValue> = {};
  for (let i = 0; i < 6; i++) setOwn(root, pick(random, keyPool), randomValue(random, 1));
  setOwn(root, 'hot', randomValue(random, 2));
  return root;
}

describe('undo is exact, key order included', () => {
  test.each(Array.from({ length: 40 }, (_, i) => i + 1))('random operation sequence, seed %i', (seed) => {
    const random = randomSource(seed);
    const original = randomDocument(random);
    const before = JSON.stringify(original);
    const ops = randomSequence(random, original, 5 + Math.floor(random() * 40));
    expect(ops.length).toBeGreaterThan(0);

    // Applied in one call: the result equals applying one at a time, and
    // the operations it logs replay to the same document (journal replay).
    const state: DocumentState = { root: structuredClone(original) };
    const applied = applyOperations(state, ops);
    const sequential: DocumentState = { root: structuredClone(original) };
    for (const op of ops) applyOperations(sequential, [op]);
    const after = JSON.stringify(state.root);
    expect(after).toBe(JSON.stringify(sequential.root));
    const replayed: DocumentState = { root: structuredClone(original) };
    applyOperations(replayed, structuredClone(applied.ops));
    expect(JSON.stringify(replayed.root)).toBe(after);

    applied.undo();
    expect(JSON.stringify(state.root)).toBe(before);

    // A failing last operation rolls back all the earlier ones inside the call.
    const failing: DocumentState = { root: structuredClone(original) };
    expect(() => applyOperations(failing, [...ops, { op: 'test', path: '', value: 'never this' }])).toThrow(/is not the expected one/);
    expect(JSON.stringify(failing.root)).toBe(before);
  });

  test.each([
    ['replace then remove', [{ op: 'replace', path: '/o/b', value: 'B' }, { op: 'remove', path: '/o/b' }]],
    ['remove then add of the same key', [{ op: 'remove', path: '/o/a' }, { op: 'add', path: '/o/a', value: 'last now' }]],
    ['add then remove of a new key', [{ op: 'add', path: '/o/z', value: 1 }, { op: 'remove', path: '/o/z' }, { op: 'remove', path: '/o/c' }]],
    ['a new key, then a removal before it', [{ op: 'add', path: '/o/z', value: 1 }, { op: 'remove', path: '/o/a' }]],
    ['nested changes inside a member, then its removal', [{ op: 'remove', path: '/o/b/y' }, { op: 'add', path: '/o/b/w', value: 0 }, { op: 'remove', path: '/o/b' }]],
    ['a removal, then changes inside a member', [{ op: 'remove', path: '/o/a' }, { op: 'remove', path: '/o/b/x' }, { op: 'replace', path: '/o/b/y', value: 9 }]],
    ['move within the same object', [{ op: 'move', from: '/o/a', path: '/o/renamed' }, { op: 'move', from: '/o/c', path: '/o/a' }]],
    ['move out to another object and back', [{ op: 'move', from: '/o/b', path: '/p/b' }, { op: 'move', from: '/p/b', path: '/o/b' }]],
    ['integer-like keys and __proto__', [{ op: 'remove', path: '/o/10' }, { op: 'remove', path: '/o/__proto__' }, { op: 'add', path: '/o/2', value: 2 }, { op: 'add', path: '/o/__proto__', value: 'back' }]],
    ['the root replaced, then its members changed', [{ op: 'remove', path: '/o/a' }, { op: 'replace', path: '', value: { x: 1, y: 2 } }, { op: 'remove', path: '/x' }]],
  ] as Array<[string, PatchOperation[]]>)('%s', (_name, ops) => {
    const original: Record<string, JsonValue> = { o: { a: 1, b: { x: 1, y: 2 }, c: 3, d: 4, '10': 10, '3': 3 }, p: {} };
    setOwn(original['o'] as Record<string, JsonValue>, '__proto__', 'own');
    setOwn(original['o'] as Record<string, JsonValue>, 'e', 5);
    const before = JSON.stringify(original);
    const state: DocumentState = { root: structuredClone(original) };
    const applied = applyOperations(state, ops);
    expect(JSON.stringify(state.root)).not.toBe(before);
    applied.undo();
    expect(JSON.stringify(state.root)).toBe(before);
    expect(Object.getPrototypeOf((state.root as Record<string, JsonValue>)['o'])).toBe(Object.prototype);
  });
});

describe('cost of removing many keys from one object', () => {
  /** An object that counts every operation done on it (reads, writes, key listings). */
  function counted(target: Record<string, JsonValue>): { object: Record<string, JsonValue>; count: () => number } {
    let calls = 0;
    const handler: ProxyHandler<Record<string, JsonValue>> = {};
    for (const trap of ['get', 'set', 'has', 'deleteProperty', 'defineProperty', 'ownKeys', 'getOwnPropertyDescriptor'] as const) {
      (handler as Record<string, unknown>)[trap] = (...args: unknown[]) => {
        calls++;
        return (Reflect[trap] as (...a: unknown[]) => unknown)(...args);
      };
    }
    return { object: new Proxy(target, handler), count: () => calls };
  }

  test('k removals from n keys take O(k + n) object operations to apply and to undo, not O(k * n)', () => {
    const n = 4000;
    const k = 2000;
    const target: Record<string, JsonValue> = {};
    for (let i = 0; i < n; i++) target[`key${i}`] = i;
    const before = JSON.stringify(target);
    const { object, count } = counted(target);
    const state: DocumentState = { root: { big: object } };
    const ops: PatchOperation[] = [];
    for (let i = 0; i < n; i += 2) ops.push({ op: 'remove', path: `/big/key${i}` });
    expect(ops).toHaveLength(k);

    const applied = applyOperations(state, ops);
    expect(Object.keys(target)).toHaveLength(n - k);
    const applyCost = count();
    applied.undo();
    const undoCost = count() - applyCost;
    expect(JSON.stringify(target)).toBe(before);
    // Saving the object once is a few operations per key; once per removal
    // would be k * n (8 000 000 here).
    expect(applyCost).toBeLessThan(10 * (n + k));
    expect(undoCost).toBeLessThan(10 * (n + k));
  });
});
