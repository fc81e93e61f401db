/**
 * Errors of the gateway layer. `GatewayProtocolError` is thrown *into* an app
 * that breaks its interface's rules (so the app sees it where it made the
 * mistake); `GatewayError` is an answer the gateway itself gives when the app
 * behind it failed or took too long (502, 504), or when a request cannot be
 * handed to it (413), sent as problem+json by the shared `sendProblem`.
 */
import type { ServerResponse } from 'node:http';
import { problemType } from '../errors.js';
import { sendProblemOf } from '../http/problem.js';

/** The app broke a rule of its gateway interface (bad status line, header, call order...). */
export class GatewayProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GatewayProtocolError';
  }
}

export type GatewayErrorCode = 'payload-too-large' | 'bad-gateway' | 'gateway-timeout' | 'service-unavailable';

const gatewayStatuses: Record<GatewayErrorCode, { status: number; title: string }> = {
  // CGI reads a chunked body in full before the script starts; this is its limit.
  'payload-too-large': { status: 413, title: 'Payload too large' },
  'bad-gateway': { status: 502, title: 'Bad gateway' },
  'gateway-timeout': { status: 504, title: 'Gateway timeout' },
  // pythonWsgi(): every worker busy and the queue full, or the pool closing.
  'service-unavailable': { status: 503, title: 'Service unavailable' },
};

// Same URI scheme as the shared codes, derived rather than copied so the two
// cannot drift apart.
const typePrefix = problemType('internal-error').slice(0, -'internal-error'.length);

/** The gateway's own answer: the app behind it gave none it could use, or never got the request. `status` lets Express error handlers use it as is. */
export class GatewayError extends Error {
  readonly code: GatewayErrorCode;
  readonly status: number;
  readonly title: string;

  constructor(code: GatewayErrorCode, detail: string, options?: { cause?: unknown }) {
    super(detail, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'GatewayError';
    this.code = code;
    this.status = gatewayStatuses[code].status;
    this.title = gatewayStatuses[code].title;
  }

  get type(): string {
    return typePrefix + this.code;
  }

  get detail(): string {
    return this.message;
  }
}

/** The 500 every bridge sends for an app that failed before its response started. */
export function sendAppFailure(res: ServerResponse, head: boolean): void {
  sendProblemOf(res, 'internal-error', 'The application failed before it sent a response.', { head });
}
