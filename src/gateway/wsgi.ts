/**
 * WSGI (PEP 3333) translated to JavaScript: `app(environ, startResponse)`
 * returns the body as an iterable of chunks, and the bridge behaves like a
 * conformant WSGI server towards it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { cgiVariables, originalTarget, requestScheme, requestTarget } from './environ.js';
import { GatewayProtocolError } from './errors.js';
import { BodyInput, consumedBody, consumedLength } from './input.js';
import { LineLogStream } from './log-stream.js';
import { resolveCallableBridge } from './options.js';
import { chunkForWrite, isBody, runApp } from './response-body.js';
import { buildHead, parseStatusLine } from './response-head.js';
import { ResponseWriter } from './response-writer.js';
import type { BodyChunk, CgiVariables, Closable, ErrorStream, GatewayMiddleware, GatewayOptions, NextFunction, RequestInput } from './types.js';
import { isThenable } from '../is-thenable.js';

/** The environ dictionary: CGI variables plus the `wsgi.*` keys of PEP 3333. */
export interface WsgiEnviron extends CgiVariables {
  /** The raw request target as the client sent it (path and query, before mount points were stripped). */
  REQUEST_URI: string;
  'wsgi.version': readonly [1, 0];
  'wsgi.url_scheme': 'http' | 'https';
  'wsgi.input': RequestInput;
  'wsgi.errors': ErrorStream;
  'wsgi.multithread': boolean;
  'wsgi.multiprocess': boolean;
  'wsgi.run_once': boolean;
  /** Reading `wsgi.input` past the end returns empty bytes rather than blocking. */
  'wsgi.input_terminated': true;
  /** An app or middleware may add its own keys. */
  [key: string]: unknown;
}

/** Header list as `start_response` takes it: `[name, value]` pairs. */
export type WsgiHeaders = ReadonlyArray<readonly [string, string | number]>;

/** The legacy imperative writer `start_response` returns. Resolves once the chunk is handed to the socket buffer. */
export type WsgiWrite = (chunk: BodyChunk) => Promise<void>;

/**
 * `start_response(status, headers, excInfo?)`. Pass `excInfo` (the caught
 * Error) to replace the status and headers after an error; once the headers
 * have gone out it rethrows `excInfo` and the connection is cut.
 */
export type StartResponse = (status: string, headers: WsgiHeaders, excInfo?: unknown) => WsgiWrite;

/** What a WSGI app returns: chunks in an iterable or async iterable (optionally with `close()`), or one chunk. */
export type WsgiBody = (Iterable<BodyChunk> & Closable) | (AsyncIterable<BodyChunk> & Closable) | BodyChunk;

export type WsgiApplication = (environ: WsgiEnviron, startResponse: StartResponse) => WsgiBody | Promise<WsgiBody>;

export interface WsgiOptions extends GatewayOptions {
  /** Value of `wsgi.multiprocess`: set it when the server runs in several processes (cluster). Default false. */
  multiprocess?: boolean;
}

const resolved = Promise.resolve();

/** Mounts a WSGI-style app as middleware: `app.use('/legacy', wsgi(legacyApp))`. */
export function wsgi(app: WsgiApplication, options?: WsgiOptions): GatewayMiddleware {
  const { common, multiprocess } = resolveCallableBridge('wsgi', app, options);
  const where = 'wsgi';

  return function wsgiMiddleware(req: IncomingMessage, res: ServerResponse, next?: NextFunction): void {
    const writer = new ResponseWriter(req, res, {
      options: common,
      next,
      missingHeadMessage: 'wsgi: the app produced a body before calling start_response()',
    });
    const errors = new LineLogStream(common.logger, 'wsgi.errors: ');

    const consumed = consumedBody(req);
    const environ = cgiVariables(req, requestTarget(req), {
      trustProxy: common.trustProxy,
      omitEmptyContent: false,
      contentLength: consumedLength(req, consumed),
    }) as WsgiEnviron;
    environ.REQUEST_URI = originalTarget(req);
    environ['wsgi.version'] = [1, 0];
    environ['wsgi.url_scheme'] = requestScheme(req, common.trustProxy);
    environ['wsgi.input'] = new BodyInput(req, consumed);
    environ['wsgi.errors'] = errors;
    environ['wsgi.multithread'] = false;
    environ['wsgi.multiprocess'] = multiprocess;
    environ['wsgi.run_once'] = false;
    environ['wsgi.input_terminated'] = true;

    const write: WsgiWrite = (chunk) => {
      if (writer.clientGone) return resolved; // Nobody to write to; the body's close() follows.
      if (writer.done) throw new GatewayProtocolError('wsgi: write() called after the response ended');
      return writer.write(chunkForWrite(chunk, 'wsgi write()')) ?? resolved;
    };

    let headSet = false;
    const startResponse: StartResponse = (status, headers, excInfo) => {
      if (excInfo) {
        if (writer.headersSent) {
          // Too late to replace anything: cut the connection, and let the app's error go on up.
          writer.abort();
          throw excInfo;
        }
      } else if (headSet) {
        throw new GatewayProtocolError('wsgi: start_response() was already called; pass excInfo to replace the response after an error');
      }
      const { statusCode, reason } = parseStatusLine(status, 'wsgi start_response()');
      if (!Array.isArray(headers)) {
        throw new GatewayProtocolError('wsgi start_response(): headers must be an array of [name, value] pairs');
      }
      for (const pair of headers as unknown[]) {
        if (!Array.isArray(pair) || pair.length !== 2) {
          throw new GatewayProtocolError('wsgi start_response(): each header must be a [name, value] pair');
        }
      }
      writer.setHead(buildHead(statusCode, reason, headers, 'wsgi start_response()'));
      headSet = true;
      return write;
    };

    runApp(writer, errors, where, common.logger, async () => {
      let body: unknown = app(environ, startResponse);
      if (isThenable(body)) body = await body;
      if (!isBody(body, false)) {
        throw new GatewayProtocolError(`wsgi: the app must return an iterable of chunks, got ${body === null ? 'null' : typeof body}`);
      }
      return body;
    });
  };
}
