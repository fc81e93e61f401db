/**
 * The response side every bridge shares: holds a checked head (see
 * `response-head.ts`) back until the first non-empty chunk (so an app can
 * still replace it after an error), streams chunks with backpressure, keeps
 * an app-declared Content-Length honest, and cuts the connection when a
 * response cannot be completed, so a client never takes a broken response
 * for a whole one.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { JsonStoreError } from '../errors.js';
import { sendProblem } from '../http/problem.js';
import { GatewayError, GatewayProtocolError, sendAppFailure } from './errors.js';
import { describeError, safeLog, type ResolvedGatewayOptions } from './options.js';
import { statusAllowsBody, type ResponseHead } from './response-head.js';
import type { NextFunction } from './types.js';

/** How long a cut waits for already-written bytes to reach a slow client. */
const flushBeforeCutMs = 1_000;

type WriterState = 'pending' | 'streaming' | 'fell-through' | 'ended' | 'aborted';

export interface WriterSettings {
  options: ResolvedGatewayOptions;
  next: NextFunction | undefined;
  /** Thrown when a body arrives before any head was set (WSGI: before start_response). */
  missingHeadMessage: string;
}

function uncork(writer: ResponseWriter): void {
  writer.uncork();
}

/** Sends one app response through a `ServerResponse`. One per request. */
export class ResponseWriter {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly #settings: WriterSettings;
  #state: WriterState = 'pending';
  #head: ResponseHead | undefined;
  #bodyAllowed = true;
  /** Bytes still owed under a declared Content-Length. */
  #remaining: number | undefined;
  #clientGone = false;
  #corked = false;
  #goneListeners: Array<() => void> = [];

  constructor(req: IncomingMessage, res: ServerResponse, settings: WriterSettings) {
    this.req = req;
    this.res = res;
    this.#settings = settings;
    res.once('close', this.#onClose);
  }

  readonly #onClose = (): void => {
    // 'close' before the response finished: the client left, or we cut it.
    if (this.res.writableFinished) return;
    this.#clientGone = true;
    const listeners = this.#goneListeners;
    this.#goneListeners = [];
    for (const listener of listeners) listener();
  };

  /**
   * Hands the response to someone else (a CGI local redirect re-dispatches
   * it): this writer stops listening, so redirect hops do not pile up listeners.
   */
  release(): void {
    this.res.off('close', this.#onClose);
    this.#goneListeners = [];
  }

  /** Whether the status and headers were handed to the socket (nothing can replace them now). */
  get headersSent(): boolean {
    return this.#state === 'streaming' || this.#state === 'ended' || this.#state === 'aborted';
  }

  /** Whether a head was set (WSGI: start_response was called). */
  get hasHead(): boolean {
    return this.#head !== undefined;
  }

  /** Whether the app should still be asked for more body. */
  get active(): boolean {
    return (this.#state === 'pending' || this.#state === 'streaming') && !this.#clientGone;
  }

  get clientGone(): boolean {
    return this.#clientGone;
  }

  get fellThrough(): boolean {
    return this.#state === 'fell-through';
  }

  /** Whether the response is over, one way or another. */
  get done(): boolean {
    return this.#state === 'ended' || this.#state === 'aborted' || this.#clientGone;
  }

  /** Runs `listener` once if the client disconnects before the response completes. Returns an unsubscribe. */
  onClientGone(listener: () => void): () => void {
    if (this.#clientGone) {
      listener();
      return () => {};
    }
    this.#goneListeners.push(listener);
    return () => {
      const index = this.#goneListeners.indexOf(listener);
      if (index !== -1) this.#goneListeners.splice(index, 1);
    };
  }

  /** Sets (or, before anything was sent, replaces) the status and headers. */
  setHead(head: ResponseHead): void {
    if (this.headersSent) throw new GatewayProtocolError('the response headers were already sent');
    this.#head = head;
  }

  /** Whether the head set now would pass the request on to `next()` instead of being sent. */
  get fallsThrough(): boolean {
    const head = this.#head;
    const { fallthrough } = this.#settings.options;
    return head !== undefined && fallthrough.size > 0 && this.#settings.next !== undefined && fallthrough.has(head.statusCode);
  }

  #commit(knownLength?: number): void {
    const head = this.#head;
    if (head === undefined) throw new GatewayProtocolError(this.#settings.missingHeadMessage);
    if (this.fallsThrough) {
      this.#state = 'fell-through';
      return;
    }
    const { res } = this;
    const statusCode = head.statusCode;
    this.#bodyAllowed = this.req.method !== 'HEAD' && statusAllowsBody(statusCode);
    res.statusCode = statusCode;
    if (head.reason !== undefined) res.statusMessage = head.reason;
    for (const field of head.headers.values()) {
      res.setHeader(field.name, field.values.length === 1 ? (field.values[0] as string) : field.values);
    }
    if (head.contentLength !== undefined) this.#remaining = head.contentLength;
    else if (knownLength !== undefined && statusAllowsBody(statusCode)) res.setHeader('Content-Length', knownLength);
    this.#state = 'streaming';
  }

  /** The part of `chunk` the declared Content-Length still allows. */
  #limit(chunk: Buffer): Buffer {
    const remaining = this.#remaining;
    if (remaining === undefined) return chunk;
    if (chunk.length > remaining) {
      safeLog(
        this.#settings.options.logger,
        `the app sent more than its Content-Length of ${this.#head?.contentLength} bytes; the excess was dropped`,
      );
      chunk = chunk.subarray(0, remaining);
    }
    this.#remaining = remaining - chunk.length;
    return chunk;
  }

  /**
   * Writes one chunk; sends the head first if this is the first non-empty
   * one. Returns a promise when the caller must wait (socket buffer full)
   * before the next chunk; it settles on 'drain', or on 'close' if the client
   * left meanwhile.
   */
  write(chunk: Buffer | string): Promise<void> | undefined {
    if (chunk.length === 0) return undefined;
    if (this.#state === 'pending') this.#commit();
    if (this.#state !== 'streaming' || !this.#bodyAllowed || this.#clientGone) return undefined;
    if (typeof chunk === 'string') {
      // Node writes a string as UTF-8 without an intermediate Buffer; only a
      // declared Content-Length needs the byte count.
      if (this.#remaining === undefined) {
        this.#cork();
        return this.res.write(chunk, 'utf8') ? undefined : this.#drained();
      }
      chunk = Buffer.from(chunk, 'utf8');
    }
    const allowed = this.#limit(chunk);
    if (allowed.length === 0) return undefined;
    this.#cork();
    if (this.res.write(allowed)) return undefined;
    return this.#drained();
  }

  /**
   * Holds writes until the current burst of synchronous and promise work is
   * over, so the head, a short body and the end of a response leave in one
   * packet instead of one write each.
   */
  #cork(): void {
    if (this.#corked) return;
    this.#corked = true;
    this.res.cork();
    process.nextTick(uncork, this);
  }

  /** @internal */
  uncork(): void {
    this.#corked = false;
    this.res.uncork();
  }

  #drained(): Promise<void> {
    const { res } = this;
    return new Promise((resolve) => {
      const settle = (): void => {
        res.off('drain', settle);
        res.off('close', settle);
        resolve();
      };
      res.on('drain', settle);
      res.on('close', settle);
    });
  }

  /**
   * A body known in full up front (an array, a string): Content-Length is
   * computed unless the app declared one, then the response ends.
   */
  async writeAll(chunks: readonly Buffer[]): Promise<void> {
    if (this.#state === 'pending') {
      let total = 0;
      for (const chunk of chunks) total += chunk.length;
      this.#commit(total);
    }
    const last = chunks.length - 1;
    for (let i = 0; i < last; i++) {
      const wait = this.write(chunks[i] as Buffer);
      if (wait) await wait;
      if (!this.active) break;
    }
    this.end(this.active ? chunks[last] : undefined);
  }

  /** `writeAll([chunk])` without its promise: a whole body in one buffer, with its Content-Length unless the app declared one. */
  endWhole(chunk: Buffer): void {
    if (this.#state === 'pending') this.#commit(chunk.length);
    this.end(chunk);
  }

  /**
   * A whole body given as one string: sent with its Content-Length in a
   * single write together with the head (Node joins a string to the head;
   * bytes would go out as a second buffer). Anything else goes through
   * `writeAll`.
   */
  async sendWhole(body: string | Buffer): Promise<void> {
    if (typeof body !== 'string' || this.#state !== 'pending' || this.#head?.contentLength !== undefined) {
      await this.writeAll([typeof body === 'string' ? Buffer.from(body, 'utf8') : body]);
      return;
    }
    const length = Buffer.byteLength(body, 'utf8');
    this.#commit(length);
    if (this.fellThrough) {
      this.end(); // Fell through to next().
      return;
    }
    if (this.#clientGone) return;
    this.#state = 'ended';
    if (this.#bodyAllowed && length > 0) this.res.end(body, 'utf8');
    else this.res.end();
  }

  /**
   * Completes the response (sending the head if no chunk did), or falls
   * through to `next()`. Safe to call in any state: after a cut or a
   * disconnect it does nothing.
   */
  end(lastChunk?: Buffer): void {
    if (this.#state === 'pending') this.#commit();
    if (this.#state === 'fell-through') {
      this.#state = 'ended';
      this.#settings.next?.();
      return;
    }
    if (this.#state !== 'streaming' || this.#clientGone) return;
    let chunk = lastChunk !== undefined && lastChunk.length > 0 && this.#bodyAllowed ? this.#limit(lastChunk) : undefined;
    if (chunk !== undefined && chunk.length === 0) chunk = undefined;
    if (this.#bodyAllowed && this.#remaining !== undefined && this.#remaining > 0) {
      // Fewer bytes than the app promised: ending normally would leave the
      // client waiting for the rest, so the connection is cut instead.
      safeLog(this.#settings.options.logger, `the app sent less than its Content-Length of ${this.#head?.contentLength} bytes; connection cut`);
      if (chunk !== undefined) this.res.write(chunk);
      this.abort();
      return;
    }
    this.#state = 'ended';
    if (chunk !== undefined) this.res.end(chunk);
    else this.res.end();
  }

  /** Cuts the connection: the client sees an incomplete response, never a complete-looking one. */
  abort(): void {
    if (this.#state === 'aborted') return;
    const framed = this.#state !== 'streaming' || this.res.hasHeader('content-length') || this.req.httpVersion !== '1.0';
    this.#state = 'aborted';
    const { res } = this;
    const socket = res.socket;
    // Under HTTP/1.1 the framing (chunked, or Content-Length) shows a closed
    // connection as an incomplete body, so the bytes already written are let
    // out first (useful to whoever debugs the client). An unframed HTTP/1.0
    // body would look complete on a normal close: that one is reset.
    const cut = (): void => {
      if (!framed && socket && !socket.destroyed && typeof socket.resetAndDestroy === 'function') socket.resetAndDestroy();
      res.destroy();
    };
    if (!framed || !socket || socket.destroyed || socket.writableLength === 0) {
      cut();
      return;
    }
    const timer = setTimeout(cut, flushBeforeCutMs);
    timer.unref();
    socket.once('drain', () => {
      clearTimeout(timer);
      cut();
    });
  }

  /**
   * The app failed. Before anything was sent: a problem+json answer (or
   * `next(err)` with `onError: 'next'`). After: the connection is cut.
   */
  fail(error: unknown, bridge: string): void {
    const { options, next } = this.#settings;
    if (this.#clientGone) return; // Nobody is left to answer, and the failure is a consequence.
    if (this.#state === 'streaming') {
      safeLog(options.logger, `${bridge}: the app failed after the response started; connection cut: ${describeError(error)}`);
      this.abort();
      return;
    }
    if (this.#state === 'aborted') {
      safeLog(options.logger, `${bridge}: the app failed after the response started; connection cut: ${describeError(error)}`);
      return;
    }
    if (this.#state === 'ended') {
      safeLog(options.logger, `${bridge}: the app failed after its response ended: ${describeError(error)}`);
      return;
    }
    this.#state = 'ended';
    if (options.onError === 'next' && next !== undefined) {
      next(error);
      return;
    }
    const head = this.req.method === 'HEAD';
    if (error instanceof GatewayError) {
      // A 5xx is the app failing, which the server's log must show; a 4xx is the client's doing.
      if (error.status >= 500) safeLog(options.logger, `${bridge}: ${error.message}`);
      sendProblem(this.res, error, { head });
    } else if (error instanceof JsonStoreError) {
      sendProblem(this.res, error, { head });
    } else {
      safeLog(options.logger, `${bridge}: the app failed: ${describeError(error)}`);
      sendAppFailure(this.res, head);
    }
  }
}
