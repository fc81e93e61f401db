/**
 * The request body as a file-like reader (`wsgi.input`, JSGI `input`). Reads
 * pull from the request stream on demand, so an app that never reads the body
 * costs nothing, and reads past the end return empty instead of blocking
 * (what PEP 3333 calls `wsgi.input_terminated`). Also what a body parser may
 * already have read.
 */
import type { IncomingMessage } from 'node:http';
import type { RequestInput } from './types.js';

/** What body parsers leave on a request once they have read its stream. */
interface ParsedRequest extends IncomingMessage {
  _body?: unknown;
  rawBody?: unknown;
  body?: unknown;
}

const empty = Buffer.alloc(0);

/**
 * The bytes of a body a parser (express.json(), body-parser...) already
 * consumed: `req.rawBody` when a `verify` hook kept it, `req.body` when it is
 * raw bytes or text; otherwise empty. `undefined` while the stream is unread.
 */
export function consumedBody(req: IncomingMessage): Buffer | undefined {
  const parsed = req as ParsedRequest;
  if (parsed._body !== true && !req.readableEnded) return undefined;
  // A `verify` hook that kept the raw bytes, then express.raw() / express.text() bodies.
  for (const candidate of [parsed.rawBody, parsed.body]) {
    if (typeof candidate === 'string') return Buffer.from(candidate, 'utf8');
    if (candidate instanceof Uint8Array) {
      return Buffer.isBuffer(candidate) ? candidate : Buffer.from(candidate.buffer, candidate.byteOffset, candidate.byteLength);
    }
  }
  return empty;
}

export class BodyInput implements RequestInput {
  readonly #req: IncomingMessage;
  #source: AsyncIterator<Buffer> | undefined;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #ended = false;
  /** Reads run one after another even when an app does not await them. */
  #queue: Promise<unknown> = Promise.resolve();

  /** `consumed`: what `consumedBody(req)` returned, when the caller already asked. */
  constructor(req: IncomingMessage, consumed: Buffer | undefined = consumedBody(req)) {
    this.#req = req;
    if (consumed !== undefined) {
      this.#ended = true;
      if (consumed.length > 0) {
        this.#chunks.push(consumed);
        this.#buffered = consumed.length;
      }
    }
  }

  /** Pulls one more chunk from the request into the buffer; false at end of body. */
  async #fill(): Promise<boolean> {
    if (this.#ended) return false;
    this.#source ??= (this.#req as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
    const step = await this.#source.next();
    if (step.done) {
      this.#ended = true;
      return false;
    }
    const chunk = typeof step.value === 'string' ? Buffer.from(step.value, 'utf8') : step.value;
    if (chunk.length > 0) {
      this.#chunks.push(chunk);
      this.#buffered += chunk.length;
    }
    return true;
  }

  #take(size: number): Buffer {
    const count = Math.min(size, this.#buffered);
    if (count === 0) return empty;
    const joined = this.#chunks.length === 1 ? (this.#chunks[0] as Buffer) : Buffer.concat(this.#chunks, this.#buffered);
    const taken = joined.subarray(0, count);
    const rest = joined.subarray(count);
    this.#chunks = rest.length > 0 ? [rest] : [];
    this.#buffered = rest.length;
    return taken;
  }

  #serial<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.#queue.then(operation);
    this.#queue = result.catch(() => undefined);
    return result;
  }

  read(size?: number): Promise<Buffer> {
    return this.#serial(async () => {
      const wanted = size === undefined || size < 0 ? Infinity : Math.floor(size);
      while (this.#buffered < wanted && (await this.#fill()));
      return this.#take(wanted === Infinity ? this.#buffered : wanted);
    });
  }

  readline(size?: number): Promise<Buffer> {
    return this.#serial(async () => {
      const limit = size === undefined || size < 0 ? Infinity : Math.floor(size);
      let searched = 0;
      for (;;) {
        const joined = this.#chunks.length <= 1 ? this.#chunks[0] : Buffer.concat(this.#chunks, this.#buffered);
        if (joined !== undefined) {
          this.#chunks = [joined];
          const newline = joined.indexOf(10, searched);
          if (newline !== -1 && newline < limit) return this.#take(newline + 1);
          searched = joined.length;
        }
        if (this.#buffered >= limit) return this.#take(limit);
        if (!(await this.#fill())) return this.#take(this.#buffered);
      }
    });
  }

  async readlines(): Promise<Buffer[]> {
    const lines: Buffer[] = [];
    for await (const line of this) lines.push(line);
    return lines;
  }

  forEach(callback: (chunk: Buffer) => unknown): Promise<void> {
    return this.#serial(async () => {
      for (;;) {
        if (this.#buffered > 0) await callback(this.#take(this.#buffered));
        if (!(await this.#fill())) return;
      }
    });
  }

  /** Lines, as iterating a file (and PEP 3333's `wsgi.input`) yields them. */
  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for (;;) {
      const line = await this.readline();
      if (line.length === 0) return;
      yield line;
    }
  }
}

/** Whether the request announces a body (Content-Length or Transfer-Encoding). */
export function hasRequestBody(req: IncomingMessage): boolean {
  return req.headers['content-length'] !== undefined || req.headers['transfer-encoding'] !== undefined;
}

/**
 * CONTENT_LENGTH for a body a parser already read: the length of what the app
 * will actually get, so the two agree. `undefined` when the stream is unread.
 */
export function consumedLength(req: IncomingMessage, consumed: Buffer | undefined): string | undefined {
  return consumed !== undefined && hasRequestBody(req) ? String(consumed.length) : undefined;
}
