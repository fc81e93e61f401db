/**
 * Large values serialized in slices (src/document/value-cache.ts):
 * concurrent readers of one value share one serialization, which stops only
 * when every one of them has left.
 */
import { describe, expect, test } from 'vitest';
import type { JsonValue } from '../../src/document/json.js';
import { slicedJsonOf } from '../../src/document/value-cache.js';

function large(records: number): JsonValue {
  const value: Record<string, JsonValue> = {};
  for (let i = 0; i < records; i++) value[`r${i}`] = { id: i, text: 'lorem ipsum dolor sit amet '.repeat(4) };
  return value;
}

describe('slicedJsonOf', () => {
  test('concurrent calls for one value share one serialization: the same result, exact', async () => {
    const value = large(20_000);
    const results = await Promise.all([slicedJsonOf(value), slicedJsonOf(value), slicedJsonOf(value)]);
    expect(results[0]).toBeDefined();
    expect(results[1]).toBe(results[0]);
    expect(results[2]).toBe(results[0]);
    const json = results[0] as { bytes: Buffer };
    expect(json.bytes.toString()).toBe(JSON.stringify(value));
  });

  test('one caller leaving does not stop the work the others wait for; all leaving does', async () => {
    const value = large(20_000);
    const left = slicedJsonOf(value, () => true);
    const stays = slicedJsonOf(value, () => false);
    expect(await left).toBeDefined();
    expect(((await stays) as { bytes: Buffer }).bytes.toString()).toBe(JSON.stringify(value));
    const other = large(20_000);
    expect(await Promise.all([slicedJsonOf(other, () => true), slicedJsonOf(other, () => true)])).toEqual([undefined, undefined]);
  });
});
