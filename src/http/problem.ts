/**
 * The one problem+json (RFC 9457) writer: the HTTP layer answers its
 * `JsonStoreError`s with it, the gateway bridges their `GatewayError`s.
 */
import type { ServerResponse } from 'node:http';
import { JsonStoreError, problemType, type JsonStoreErrorCode } from '../errors.js';

/** An RFC 9457 problem details object as this package sends it. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  [extension: string]: unknown;
}

/** What can be answered as a problem: a `JsonStoreError`, or a gateway's `GatewayError`. */
export interface ProblemSource {
  readonly type: string;
  readonly title: string;
  readonly status: number;
  /** What the client is told; never a stack trace or server-side details. */
  readonly detail: string;
  /** Extra response headers that belong with the problem (e.g. `Allow`). */
  readonly headers?: Readonly<Record<string, string>>;
}

export function problemFromError(error: ProblemSource): ProblemDetails {
  return { type: error.type, title: error.title, status: error.status, detail: error.detail };
}

/**
 * Answer with `application/problem+json`. Never includes a stack trace: only
 * the error's plain-words detail goes to the client.
 */
export function sendProblem(
  res: ServerResponse,
  error: ProblemSource,
  options: { head?: boolean } = {},
): void {
  const body = JSON.stringify(problemFromError(error));
  if (res.headersSent) {
    // Too late for a clean answer: cut the connection so the client cannot
    // mistake a partial response for a complete one.
    res.destroy();
    return;
  }
  res.statusCode = error.status;
  for (const [name, value] of Object.entries(error.headers ?? {})) res.setHeader(name, value);
  res.setHeader('Content-Type', 'application/problem+json; charset=utf-8');
  res.setHeader('Content-Length', Buffer.byteLength(body));
  res.setHeader('Cache-Control', 'no-store');
  res.end(options.head ? undefined : body);
}

/** Shorthand for bridges and handlers that have a code and a detail, not an error. */
export function sendProblemOf(res: ServerResponse, code: JsonStoreErrorCode, detail: string, options: { head?: boolean } = {}): void {
  sendProblem(res, new JsonStoreError(code, detail), options);
}

export { problemType };
