/**
 * RFC 9457 problem answers, checked the same way by every suite: exact status,
 * problem+json, exactly the four members, a detail with no stack trace.
 */
import { expect } from 'vitest';

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

/** The parts of an answer a problem check needs, whatever client produced it. */
export interface ProblemAnswer {
  status: number;
  contentType: string | undefined;
  contentLength?: string | undefined;
  text: string;
}

/** Checks everything a problem must be, and returns it for the caller's own detail check. */
export function expectProblemAnswer(answer: ProblemAnswer, status: number): Problem {
  expect({ status: answer.status, text: answer.text }).toMatchObject({ status });
  expect(answer.contentType).toBe(PROBLEM_TYPE);
  if (answer.contentLength !== undefined) expect(answer.contentLength).toBe(String(Buffer.byteLength(answer.text)));
  const body = JSON.parse(answer.text) as Problem;
  expect(Object.keys(body).sort()).toEqual(['detail', 'status', 'title', 'type']);
  expect(body.status).toBe(status);
  expect(body.type).toMatch(/^tag:express-jsonstore,2026:[a-z-]+$/);
  expect(typeof body.title).toBe('string');
  expect(body.title.length).toBeGreaterThan(0);
  expect(typeof body.detail).toBe('string');
  expect(body.detail.length).toBeGreaterThan(0);
  expectNoStack(answer.text);
  return body;
}
