/**
 * Assertions shared by the HTTP contract tests.
 */
import { expect } from 'vitest';
import type { Reply, Served } from './hosts.js';
import { expectProblemAnswer, type Problem } from '../support/problem.js';

export const JSON_TYPE = 'application/json; charset=utf-8';
export { PROBLEM_TYPE, expectNoStack, type Problem } from '../support/problem.js';

/**
 * An RFC 9457 problem: exact status, problem+json, exactly the four members,
 * and (when given) the exact detail or a pattern it must match.
 */
export function expectProblem(reply: Reply, status: number, detail?: string | RegExp): Problem {
  const body = expectProblemAnswer(
    { status: reply.status, contentType: reply.headers['content-type'], contentLength: reply.headers['content-length'], text: reply.text },
    status,
  );
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
