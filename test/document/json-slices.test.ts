import { expect, test } from 'vitest';
import { jsonPieces, pausePoint, piecesInSlices, serializeInSlices } from '../../src/document/json-slices.js';
import type { JsonValue } from '../../src/document/json.js';
import { contentTag } from '../../src/document/etag.js';
import { randomSource } from '../support/random.js';

function big(random: () => number, members: number, depth: number): JsonValue {
  const pick = () => {
    const r = random();
    if (depth > 0 && r < 0.02) return big(random, 300 + Math.floor(random() * 50), depth - 1);
    if (r < 0.3) return { a: 'x"\\\u0001\u2028é😀', b: [1, -0, 1e21, 0.1], __proto__k: null };
    if (r < 0.5) return ['\ud800', true, false, null, { c: {} }, []];
    return Math.floor(random() * 1e6) / 7;
  };
  if (random() < 0.5) return Array.from({ length: members }, pick);
  const object: Record<string, JsonValue> = {};
  for (let i = 0; i < members; i++) object[i % 7 === 0 ? `k"${i}` : `k${i}`] = pick();
  Object.defineProperty(object, '__proto__', { value: { p: 1 }, enumerable: true, writable: true, configurable: true });
  return object;
}

test('the pieces join to exactly JSON.stringify, for small and large values alike', () => {
  const random = randomSource(7);
  for (let round = 0; round < 8; round++) {
    const value = big(random, Math.floor(random() * 1000), 2);
    expect([...jsonPieces(value)].join('')).toBe(JSON.stringify(value));
  }
  for (const value of [null, 1, 'a"b', [], {}, [[]], { a: [] }] as JsonValue[]) expect([...jsonPieces(value)].join('')).toBe(JSON.stringify(value));
}, 60_000);

test('serialized in slices: the same bytes, and the hash the ETag is taken from', async () => {
  // A root of two members, one of them large: walked into, not serialized whole.
  const value = { meta: 1, parts: big(randomSource(8), 5_000, 1) } as JsonValue;
  const sliced = await serializeInSlices(value, () => false, 1);
  const text = JSON.stringify(value);
  expect(Buffer.concat(sliced!.chunks!).toString('utf8')).toBe(text);
  expect(sliced!.size).toBe(Buffer.byteLength(text));
  expect(sliced!.sha256.slice(0, 27)).toBe(contentTag(text));
  expect(sliced!.chunks!.length).toBeGreaterThan(1);
  // Past `keepBytes` only measured and hashed, to the same size and hash.
  const measured = await serializeInSlices(value, () => false, 1, 64 * 1024);
  expect(measured).toEqual({ chunks: undefined, size: sliced!.size, sha256: sliced!.sha256 });
}, 60_000);

test('pretty pieces join to exactly JSON.stringify(value, null, indent)', () => {
  const random = randomSource(17);
  for (let round = 0; round < 6; round++) {
    const value = { meta: { a: [1, { b: [] }] }, parts: big(random, Math.floor(random() * 1000), 2) } as JsonValue;
    for (const indent of [2, 4]) expect([...jsonPieces(value, indent)].join('')).toBe(JSON.stringify(value, null, indent));
  }
  for (const value of [null, 1, 'a"b', [], {}, [[]], { a: [] }, { a: {} }] as JsonValue[]) expect([...jsonPieces(value, 2)].join('')).toBe(JSON.stringify(value, null, 2));
}, 60_000);

test('a long string is escaped in parts, never splitting a surrogate pair', () => {
  // Pairs straddle every part boundary; lone halves and escapes are on the way.
  const long = ('😀a\u0001"\ud800é' + 'x'.repeat(1000)).repeat(100) + '\udc00';
  for (const value of [long, { s: long, t: [long, 1] }, [long]] as JsonValue[]) {
    const pieces = [...jsonPieces(value)];
    expect(pieces.join('')).toBe(JSON.stringify(value));
    expect([...jsonPieces(value, 2)].join('')).toBe(JSON.stringify(value, null, 2));
  }
  const odd = 'a'.repeat(16 * 1024 - 1) + '😀' + 'b'.repeat(20_000);
  expect([...jsonPieces(odd)].join('')).toBe(JSON.stringify(odd));
}, 60_000);

test('a serialization told to stop stops', async () => {
  const value = big(randomSource(9), 20_000, 1);
  expect(await serializeInSlices(value, () => true, 0)).toBeUndefined();
}, 60_000);

test('members of a container walked for its size get a pause point before them; the slicer hands out no empty piece', async () => {
  const part = (n: number) => Object.fromEntries(Array.from({ length: 2_000 }, (_, i) => [`r${i}`, { n, text: 'lorem ipsum '.repeat(4) }]));
  const value = { meta: { count: 1 }, parts: { p0: part(0), p1: part(1) } } as JsonValue;
  const pieces = [...jsonPieces(value)];
  expect(pieces.join('')).toBe(JSON.stringify(value));
  // Before meta and parts (members of the root), and before p0 and p1.
  expect(pieces.filter((piece) => piece === pausePoint).length).toBe(4);
  // The text gathered is not cut at them: pieces of 64 KB or more (the last one aside), not one per member.
  const texts = pieces.filter((piece) => piece !== pausePoint);
  for (const piece of texts.slice(0, -1)) expect(piece.length).toBeGreaterThanOrEqual(64 * 1024);
  const sliced: string[] = [];
  for await (const piece of piecesInSlices(value)) sliced.push(piece);
  expect(sliced).not.toContain('');
  expect(sliced.join('')).toBe(JSON.stringify(value));
});
