/**
 * Types shared by the gateway bridges. Request and response are plain
 * `node:http` objects so the bridges work under Express 4, Express 5, connect
 * and a bare `http.createServer` alike; Express is never imported.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Express/connect's `next`: no argument continues, an argument reports an error. */
export type NextFunction = (error?: unknown) => void;

/** What every bridge returns: a connect/Express-compatible middleware. */
export type GatewayMiddleware = (req: IncomingMessage, res: ServerResponse, next?: NextFunction) => void;

/** Receives diagnostics: app errors, `wsgi.errors`/`jsgi.errors` text, CGI stderr. One call per line. */
export type GatewayLogger = (line: string) => void;

/** Options every bridge accepts. */
export interface GatewayOptions {
  /**
   * Pass the request on to the next middleware instead of sending the app's
   * response when its status is one of these (`true` means `[404]`), so a
   * legacy app can be mounted beside native routes. Needs a `next` (Express,
   * connect); the app's body is discarded unread.
   */
  fallthrough?: boolean | readonly number[];
  /**
   * What to do with an exception raised before the response started:
   * `'problem'` (default) logs it and answers 500 `application/problem+json`;
   * `'next'` hands it to `next(err)` for the Express error handlers.
   */
  onError?: 'problem' | 'next';
  /** Where diagnostics go. Default: `process.stderr`, each line prefixed with the bridge name. */
  logger?: GatewayLogger;
  /**
   * Believe `X-Forwarded-Proto` and `X-Forwarded-Host` (first value) for the
   * URL scheme and host the app sees. Only enable behind a proxy you control.
   */
  trustProxy?: boolean;
}

/** CGI-style request meta-variables, as WSGI's environ and JSGI's `env` carry them. */
export interface CgiVariables {
  REQUEST_METHOD: string;
  /** Mount point of the app, percent-decoded; `''` at the root. */
  SCRIPT_NAME: string;
  /** Path below the mount point, percent-decoded; `''` when the mount point itself was requested. */
  PATH_INFO: string;
  /** Everything after `?`, raw (not decoded); `''` when absent. */
  QUERY_STRING: string;
  CONTENT_TYPE: string;
  CONTENT_LENGTH: string;
  SERVER_NAME: string;
  SERVER_PORT: string;
  SERVER_PROTOCOL: string;
  REMOTE_ADDR: string;
  /** One per request header (name upper-cased, `-` as `_`), repeated headers joined. */
  [header: `HTTP_${string}`]: string;
}

/** A file-like text sink, as `wsgi.errors` and `jsgi.errors` are. */
export interface ErrorStream {
  write(text: string): void;
  writelines(lines: Iterable<string>): void;
  flush(): void;
}

/** A file-like reader of the request body (`wsgi.input`, JSGI `input`). */
export interface RequestInput extends AsyncIterable<Buffer> {
  /** Up to `size` bytes (all that remain when `size` is omitted or negative); empty at end of body. */
  read(size?: number): Promise<Buffer>;
  /** The next line including its `\n` (at most `size` bytes); empty at end of body. */
  readline(size?: number): Promise<Buffer>;
  /** The remaining lines. */
  readlines(): Promise<Buffer[]>;
  /** Calls `callback` with each chunk as it arrives; resolves at end of body (JSGI style). */
  forEach(callback: (chunk: Buffer) => unknown): Promise<void>;
}

/** A body chunk an app may produce: bytes, or a string sent as UTF-8. */
export type BodyChunk = string | Uint8Array;

/** Something whose `close()` the gateway calls exactly once when it is done with it. */
export interface Closable {
  close?(): unknown;
}

export type { IncomingMessage, ServerResponse };
