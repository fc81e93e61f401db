/**
 * Assertions shared by the HTTP contract tests.
 */
import { expect } from 'vitest';
import type { Reply, Served } from './hosts.js';

export const JSON_TYPE = 'application/json; charset=utf-8';
export const PROBLEM_TYPE = 'application/problem+json; charset=utf-8';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
}

/** Nothing in a client-facing text may look like a stack trace or a source location. */
export function expectNoStack(text: string): void {
  expect(text).not.toMatch(/\bat .*\(.*:\d+:\d+\)/);
  expect(text).not.toMatch(/\n\s+at /);
  expect(text).not.toMatch(/\.(?:ts|js|mjs|cjs):\d+/);
  expect(text).not.toMatch(/node_modules|node:internal/);
}

/**
 * An RFC 9457 problem: exact status, problem+json, exactly the four members,
 * and (when given) the exact detail or a pattern it must match.
 */
export function expectProblem(reply: Reply, status: number, detail?: string | RegExp): Problem {
  expect({ status: reply.status, text: reply.text }).toMatchObject({ status });
  expect(reply.headers['content-type']).toBe(PROBLEM_TYPE);
  expect(reply.headers['content-length']).toBe(String(Buffer.byteLength(reply.text)));
  const body = reply.json() as Problem;
  expect(Object.keys(body).sort()).toEqual(['detail', 'status', 'title', 'type']);
  expect(body.status).toBe(status);
  expect(body.type).toMatch(/^tag:express-jsonstore,2026:[a-z-]+$/);
  expect(typeof body.title).toBe('string');
  expect(body.title.length).toBeGreaterThan(0);
  expect(typeof body.detail).toBe('string');
  expect(body.detail.length).toBeGreaterThan(0);
  expectNoStack(reply.text);
  if (typeof detail === 'string') expect(body.detail).toBe(detail);
  else if (detail instanceof RegExp) expect(body.detail).toMatch(detail);
  return body;
}

/** A JSON answer: exact status, Content-Type, and exactly this compact JSON text. */
export function expectJson(reply: Reply, status: number, value: unknown): void {
  expect({ status: reply.status, text: reply.text }).toEqual({ status, text: JSON.stringify(value) });
  expect(reply.headers['content-type']).toBe(JSON_TYPE);
  expect(reply.headers['content-length']).toBe(String(Buffer.byteLength(reply.text)));
}

/** A strong entity tag: a quoted opaque string, no W/ prefix. */
export function expectStrongEtag(reply: Reply): string {
  const etag = reply.headers.etag;
  expect(etag).toMatch(/^"[\x21\x23-\x7e]+"$/);
  return etag as string;
}

export interface Snapshot {
  text: string;
  etag: string;
  revision: number;
}

/** The whole document as a client sees it (exact text, key order included), its ETag, and the revision. */
export async function snapshot(ctx: Served): Promise<Snapshot> {
  const reply = await ctx.get('/');
  expect(reply.status).toBe(200);
  return { text: reply.text, etag: reply.headers.etag as string, revision: ctx.store.store.revision };
}

/** Asserts a rejected request left no trace: same text, same ETag, same revision. */
export async function expectUnchanged(ctx: Served, before: Snapshot): Promise<void> {
  expect(await snapshot(ctx)).toEqual(before);
}
