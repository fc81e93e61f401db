/**
 * src/document/push-id.ts: POST keys that are unique and sort, as strings, in
 * the order they were made. Each test loads a fresh copy of the module, whose
 * clock state (the last time used) starts over.
 */
import { beforeEach, describe, expect, test, vi } from 'vitest';

type PushId = (now?: number) => string;

const alphabet = '-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz';

let pushId: PushId;

beforeEach(async () => {
  vi.resetModules();
  ({ pushId } = await import('../../src/document/push-id.js'));
});

/** The millisecond time the first 8 characters hold. */
function timeOf(id: string): number {
  let time = 0;
  for (const char of id.slice(0, 8)) time = time * 64 + alphabet.indexOf(char);
  return time;
}

/** The 72-bit counter (12 digits) as a BigInt, to check +1 steps. */
function counterOf(id: string): bigint {
  let counter = 0n;
  for (const char of id.slice(8)) counter = counter * 64n + BigInt(alphabet.indexOf(char));
  return counter;
}

const T = Date.UTC(2030, 0, 1);

describe('pushId', () => {
  test('the alphabet sorts as ASCII, so string order is digit order', () => {
    expect([...alphabet].sort().join('')).toBe(alphabet);
  });

  test('is 20 characters of the alphabet, safe in URLs and JSON Pointers', () => {
    for (let i = 0; i < 500; i++) {
      const id = pushId(T + i);
      expect(id).toMatch(/^[-0-9A-Za-z_]{20}$/);
      expect(encodeURIComponent(id)).toBe(id);
    }
  });

  test('the first 8 characters encode the time', () => {
    expect(pushId(0).slice(0, 8)).toBe('--------');
    expect(pushId(1).slice(0, 8)).toBe('-------0');
    expect(pushId(63).slice(0, 8)).toBe('-------z');
    expect(pushId(64).slice(0, 8)).toBe('------0-');
    expect(pushId(64 * 64 + 2).slice(0, 8)).toBe('-----0-1');
    expect(timeOf(pushId(T + 5))).toBe(T + 5);
  });

  test('without an argument it uses the clock', () => {
    const before = Date.now();
    const id = pushId();
    const after = Date.now();
    expect(timeOf(id)).toBeGreaterThanOrEqual(before);
    expect(timeOf(id)).toBeLessThanOrEqual(after);
  });

  test('ids made in the same millisecond count up by one', () => {
    const ids = Array.from({ length: 1000 }, () => pushId(T));
    for (let i = 1; i < ids.length; i++) {
      expect(ids[i]?.slice(0, 8)).toBe(ids[0]?.slice(0, 8));
      expect(counterOf(ids[i] as string)).toBe(counterOf(ids[i - 1] as string) + 1n);
    }
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(1000);
  });

  test('ids sort in creation order across milliseconds, including when a time digit carries', () => {
    const times = [T, T + 1, T + 63, T + 64, T + 65, T + 4095, T + 4096, T + 262_144, T + 262_144, T + 10_000_000];
    const ids = times.map((time) => pushId(time));
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
  });

  test('a clock that goes back does not break the order: the last time is kept', () => {
    const first = pushId(T + 1000);
    const second = pushId(T);
    const third = pushId(T + 500);
    expect(timeOf(second)).toBe(T + 1000);
    expect(timeOf(third)).toBe(T + 1000);
    expect(first < second && second < third).toBe(true);
  });

  test('a new millisecond starts the counter with room to count up (first digit below 32)', () => {
    for (let i = 0; i < 300; i++) {
      const id = pushId(T + i * 2);
      expect(alphabet.indexOf(id.charAt(8))).toBeLessThan(32);
    }
  });

  test('the counter starts at a random point in each new millisecond', () => {
    const counters = new Set<bigint>();
    for (let i = 0; i < 50; i++) counters.add(counterOf(pushId(T + i)));
    // 50 draws of 71 random bits: a repeat would mean the counter is not random.
    expect(counters.size).toBe(50);
  });

  test('two fresh copies of the module (two processes) make different ids for the same millisecond', async () => {
    const a = pushId(T);
    vi.resetModules();
    const other = (await import('../../src/document/push-id.js')).pushId;
    const b = other(T);
    expect(a.slice(0, 8)).toBe(b.slice(0, 8));
    expect(a).not.toBe(b);
  });
});
