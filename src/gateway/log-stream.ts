/**
 * A text sink that hands complete lines to the logger: `wsgi.errors`,
 * `jsgi.errors`, and a CGI script's stderr. Partial lines wait for the rest
 * (or for `flush()`), so one message is never split across log lines.
 */
import { StringDecoder } from 'node:string_decoder';
import { safeLog } from './options.js';
import type { ErrorStream, GatewayLogger } from './types.js';

/** Longest partial line kept while waiting for its end; past it that much is logged, marked truncated, and the rest of the line dropped. */
const maxPending = 16 * 1024;

/**
 * What one request's stream (`perRequest`) logs at most, in characters of
 * its log lines (prefix and line break included, so empty lines count
 * too): a program that writes without end must not flood the log. Past it
 * one line says so and the rest is read and dropped.
 */
export const maxRequestLog = 1024 * 1024;

export class LineLogStream implements ErrorStream {
  readonly #logger: GatewayLogger;
  readonly #prefix: string;
  #pending = '';
  /** Past maxPending: the rest of the current line is dropped until its newline. */
  #dropping = false;
  #decoder: StringDecoder | undefined;
  /** Characters the stream may still log; Infinity for a stream that outlives requests (a worker's). */
  #left: number;

  constructor(logger: GatewayLogger, prefix: string, { perRequest = true }: { perRequest?: boolean } = {}) {
    this.#logger = logger;
    this.#prefix = prefix;
    this.#left = perRequest ? maxRequestLog : Number.POSITIVE_INFINITY;
  }

  /** A worker's stream that serves one request after another: the next one gets the whole budget again. */
  nextRequest(): void {
    this.#left = maxRequestLog;
  }

  /** Logs one line, within the stream's budget. */
  #log(line: string): void {
    // Below zero: the notice was logged, and nothing more is.
    if (this.#left < 0) return;
    const cost = this.#prefix.length + line.length + 1;
    if (cost > this.#left) {
      this.#left = -1;
      safeLog(this.#logger, `${this.#prefix}… (this request logged more than ${maxRequestLog} characters; the rest of its output is dropped)`);
      return;
    }
    this.#left -= cost;
    safeLog(this.#logger, this.#prefix + line);
  }

  write(text: string | Uint8Array): void {
    if (typeof text !== 'string') {
      this.#decoder ??= new StringDecoder('utf8');
      text = this.#decoder.write(Buffer.from(text.buffer, text.byteOffset, text.byteLength));
    }
    let pending = String(text);
    if (this.#dropping) {
      const newline = pending.indexOf('\n');
      if (newline === -1) return;
      this.#dropping = false;
      pending = pending.slice(newline + 1);
    }
    pending = this.#pending + pending;
    let newline = pending.indexOf('\n');
    while (newline !== -1) {
      const line = pending.slice(0, newline).replace(/\r$/, '');
      this.#log(line.length > maxPending ? `${line.slice(0, maxPending)}… (truncated)` : line);
      pending = pending.slice(newline + 1);
      newline = pending.indexOf('\n');
    }
    if (pending.length > maxPending) {
      this.#log(`${pending.slice(0, maxPending)}… (truncated)`);
      pending = '';
      this.#dropping = true;
    }
    this.#pending = pending;
  }

  writelines(lines: Iterable<string>): void {
    for (const line of lines) this.write(line);
  }

  flush(): void {
    const tail = this.#decoder?.end() ?? '';
    const rest = this.#dropping ? '' : this.#pending + tail;
    this.#pending = '';
    this.#dropping = false;
    if (rest !== '') this.#log(rest);
  }
}
