/**
 * Error types shared by every layer. Each carries the HTTP status it maps to,
 * so the HTTP layer can turn any of them into problem+json without a table.
 */

/** Machine-readable reason; also the last part of the problem `type` URI. */
export type JsonStoreErrorCode =
  | 'bad-request'
  | 'invalid-path'
  | 'invalid-json'
  | 'too-deep'
  | 'invalid-patch'
  | 'not-found'
  | 'method-not-allowed'
  | 'misdirected-request'
  | 'conflict'
  | 'precondition-failed'
  | 'payload-too-large'
  | 'budget-exceeded'
  | 'unsupported-media-type'
  | 'idempotency-key-reused'
  | 'precondition-required'
  | 'internal-error'
  | 'storage-unavailable'
  | 'subscription-limit';

const titles: Record<JsonStoreErrorCode, string> = {
  'bad-request': 'Bad request',
  'invalid-path': 'Invalid path',
  'invalid-json': 'Invalid JSON',
  'too-deep': 'Nesting too deep',
  'invalid-patch': 'Invalid patch document',
  'not-found': 'Not found',
  'method-not-allowed': 'Method not allowed',
  'misdirected-request': 'Misdirected request',
  conflict: 'Conflict',
  'precondition-failed': 'Precondition failed',
  'payload-too-large': 'Payload too large',
  'budget-exceeded': 'Budget exceeded',
  'unsupported-media-type': 'Unsupported media type',
  'idempotency-key-reused': 'Idempotency key reused',
  'precondition-required': 'Precondition required',
  'internal-error': 'Internal error',
  'storage-unavailable': 'Storage unavailable',
  'subscription-limit': 'Too many live subscriptions',
};

const statuses: Record<JsonStoreErrorCode, number> = {
  'bad-request': 400,
  'invalid-path': 400,
  'invalid-json': 400,
  'too-deep': 400,
  'invalid-patch': 400,
  'not-found': 404,
  'method-not-allowed': 405,
  'misdirected-request': 421,
  conflict: 409,
  'precondition-failed': 412,
  'payload-too-large': 413,
  // A write that would cost more memory than a budget allows (RFC 9110 Content Too Large).
  'budget-exceeded': 413,
  'unsupported-media-type': 415,
  // The same key sent with another request (draft-ietf-httpapi-idempotency-key-header).
  'idempotency-key-reused': 422,
  'precondition-required': 428,
  'internal-error': 500,
  'storage-unavailable': 503,
  'subscription-limit': 503,
};

/** The problem `type` URI for a code (RFC 9457 allows non-resolvable URIs). */
export function problemType(code: JsonStoreErrorCode): string {
  return `tag:express-jsonstore,2026:${code}`;
}

/**
 * A request or programmatic call that cannot be carried out. `message` is the
 * plain-words `detail` a client sees; `status` is the HTTP status.
 */
export class JsonStoreError extends Error {
  readonly code: JsonStoreErrorCode;
  readonly status: number;
  readonly title: string;
  /** Extra response headers that belong with this error (e.g. `Allow`). */
  readonly headers: Readonly<Record<string, string>>;

  constructor(code: JsonStoreErrorCode, detail: string, options?: { headers?: Record<string, string>; cause?: unknown }) {
    super(detail, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'JsonStoreError';
    this.code = code;
    this.status = statuses[code];
    this.title = titles[code];
    this.headers = options?.headers ?? {};
  }

  get type(): string {
    return problemType(this.code);
  }

  /** What a client is told; the same as `message` unless it holds server-side details. */
  get detail(): string {
    return this.message;
  }
}

/**
 * A storage adapter failed (disk full, connection lost, ...). Clients get 503
 * and the change is not applied, unless `outcome` is `'unknown'`. The
 * adapter's own error is the `cause`.
 */
export class StorageError extends JsonStoreError {
  /**
   * `'unknown'`: the write reached storage, or may have, and no answer came
   * back, so it may have been saved after all. Otherwise `'not-applied'`.
   */
  readonly outcome: 'not-applied' | 'unknown';
  private readonly clientDetail: string;

  /**
   * `message` may name files, hosts and the adapter's own error for the
   * server's log; `publicDetail`, when given, is all a client is told.
   */
  constructor(message: string, options?: { cause?: unknown; publicDetail?: string; outcome?: 'not-applied' | 'unknown' }) {
    super('storage-unavailable', message, { headers: { 'Retry-After': '1' }, cause: options?.cause });
    this.name = 'StorageError';
    this.outcome = options?.outcome ?? 'not-applied';
    this.clientDetail = options?.publicDetail ?? message;
  }

  override get detail(): string {
    return this.clientDetail;
  }
}

const revisionConflictMark = Symbol.for('express-jsonstore.RevisionConflictError');

/**
 * Thrown by a shared storage adapter's `commit` when the change was made on a
 * stale revision (another process wrote first). The engine catches up and
 * retries instead of overwriting.
 */
export class RevisionConflictError extends Error {
  /** The revision the adapter holds now, when it knows it. */
  readonly currentRevision: number | undefined;

  constructor(message = 'the change was made on a stale revision', currentRevision?: number) {
    super(message);
    this.name = 'RevisionConflictError';
    this.currentRevision = currentRevision;
    Object.defineProperty(this, revisionConflictMark, { value: true });
  }

  // An adapter loaded through the CommonJS build throws a different class than
  // the ESM engine checks for; the registered symbol makes both recognized.
  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[revisionConflictMark] === true;
  }
}

