/**
 * JSGI 0.3 / Rack style: `app(request)` returns `[status, headers, body]` or
 * `{ status, headers, body }` (or a promise of either).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { cgiVariables, originalTarget, requestScheme, requestTarget } from './environ.js';
import { GatewayProtocolError } from './errors.js';
import { BodyInput, consumedBody, consumedLength } from './input.js';
import { LineLogStream } from './log-stream.js';
import { resolveCallableBridge } from './options.js';
import { isBody, runApp } from './response-body.js';
import { buildHead, checkStatusCode } from './response-head.js';
import { ResponseWriter } from './response-writer.js';
import type { BodyChunk, CgiVariables, Closable, ErrorStream, GatewayMiddleware, GatewayOptions, NextFunction, RequestInput } from './types.js';
import { isThenable } from '../is-thenable.js';

/** The `jsgi` key of a request. */
export interface JsgiInfo {
  version: readonly [0, 3];
  errors: ErrorStream;
  multithread: boolean;
  multiprocess: boolean;
  runOnce: boolean;
  /** The app may return a promise. */
  async: true;
  cgi: false;
  ext: Record<string, unknown>;
}

/** The request a JSGI app receives. */
export interface JsgiRequest {
  method: string;
  /** Mount point, percent-decoded; `''` at the root. */
  scriptName: string;
  /** Path below the mount point, percent-decoded (as PATH_INFO). */
  pathInfo: string;
  /** Raw query string, without `?`. */
  queryString: string;
  host: string;
  port: number;
  scheme: 'http' | 'https';
  /** Lower-cased names; repeated headers joined with ", " (cookies with "; "). */
  headers: Record<string, string>;
  input: RequestInput;
  jsgi: JsgiInfo;
  /** The same CGI variables a WSGI environ has (REQUEST_METHOD, SCRIPT_NAME, HTTP_*...). */
  env: CgiVariables & { REQUEST_URI: string };
  remoteAddr: string;
  /** HTTP version, e.g. `[1, 1]`. */
  version: readonly [number, number];
  [key: string]: unknown;
}

/** Response headers: an object (array values send repeated lines) or `[name, value]` pairs. */
export type JsgiHeaders =
  | Readonly<Record<string, string | number | ReadonlyArray<string | number>>>
  | Iterable<readonly [string, string | number]>;

/** A Rack/JSGI body: chunks in an array or (async) iterable, one chunk, or an object with `forEach`. */
export type JsgiBody =
  | (Iterable<BodyChunk> & Closable)
  | (AsyncIterable<BodyChunk> & Closable)
  | ({ forEach(callback: (chunk: BodyChunk) => unknown): unknown } & Closable)
  | BodyChunk;

export interface JsgiResponseObject {
  status: number;
  headers?: JsgiHeaders;
  /** Omitted or null: an empty body. */
  body?: JsgiBody | null;
}

export type JsgiResponseTuple = readonly [status: number, headers: JsgiHeaders, body: JsgiBody];

export type JsgiResponse = JsgiResponseObject | JsgiResponseTuple;

export type JsgiApplication = (request: JsgiRequest) => JsgiResponse | Promise<JsgiResponse>;

export interface JsgiOptions extends GatewayOptions {
  /** Value of `jsgi.multiprocess`. Default false. */
  multiprocess?: boolean;
}

function headerPairs(headers: unknown, where: string): Iterable<readonly [unknown, unknown]> {
  if (headers === undefined || headers === null) return [];
  if (typeof headers !== 'object') throw new GatewayProtocolError(`${where}: headers must be an object, got ${typeof headers}`);
  if (Symbol.iterator in headers) {
    const pairs: Array<readonly [unknown, unknown]> = [];
    for (const pair of headers as Iterable<unknown>) {
      if (!Array.isArray(pair) || pair.length !== 2) throw new GatewayProtocolError(`${where}: each header must be a [name, value] pair`);
      pairs.push(pair as [unknown, unknown]);
    }
    return pairs;
  }
  const pairs: Array<readonly [unknown, unknown]> = [];
  for (const [name, value] of Object.entries(headers)) {
    if (Array.isArray(value)) for (const item of value) pairs.push([name, item]);
    else pairs.push([name, value]);
  }
  return pairs;
}

/** The three parts of a response, from either the tuple or the object form. */
function responseParts(response: unknown, where: string): { status: unknown; headers: unknown; body: unknown } {
  if (Array.isArray(response)) {
    if (response.length !== 3) throw new GatewayProtocolError(`${where}: a response array must be [status, headers, body]`);
    return { status: response[0], headers: response[1], body: response[2] };
  }
  if (response !== null && typeof response === 'object' && 'status' in response) {
    const { status, headers, body } = response as JsgiResponseObject;
    return { status, headers, body };
  }
  throw new GatewayProtocolError(`${where}: the app must return [status, headers, body] or { status, headers, body }`);
}

/** Mounts a JSGI/Rack-style app as middleware: `app.use('/legacy', jsgi(legacyApp))`. */
export function jsgi(app: JsgiApplication, options?: JsgiOptions): GatewayMiddleware {
  const { common, multiprocess } = resolveCallableBridge('jsgi', app, options);
  const where = 'jsgi';

  return function jsgiMiddleware(req: IncomingMessage, res: ServerResponse, next?: NextFunction): void {
    const writer = new ResponseWriter(req, res, { options: common, next, missingHeadMessage: 'jsgi: no response status' });
    const errors = new LineLogStream(common.logger, 'jsgi.errors: ');
    const target = requestTarget(req);
    const headers: Record<string, string> = {};
    const consumed = consumedBody(req);
    const env = cgiVariables(req, target, {
      trustProxy: common.trustProxy,
      omitEmptyContent: false,
      contentLength: consumedLength(req, consumed),
      onHeader: (name, value) => {
        headers[name] = value;
      },
    }) as JsgiRequest['env'];
    env.REQUEST_URI = originalTarget(req);

    const request: JsgiRequest = {
      method: req.method ?? 'GET',
      scriptName: env.SCRIPT_NAME,
      pathInfo: env.PATH_INFO,
      queryString: target.queryString,
      host: env.SERVER_NAME,
      port: Number(env.SERVER_PORT),
      scheme: requestScheme(req, common.trustProxy),
      headers,
      input: new BodyInput(req, consumed),
      jsgi: { version: [0, 3], errors, multithread: false, multiprocess, runOnce: false, async: true, cgi: false, ext: {} },
      env,
      remoteAddr: req.socket.remoteAddress ?? '',
      version: [req.httpVersionMajor, req.httpVersionMinor],
    };

    runApp(writer, errors, where, common.logger, async () => {
      let response: unknown = app(request);
      if (isThenable(response)) response = await response;
      const parts = responseParts(response, where);
      const statusCode = checkStatusCode(parts.status, where);
      writer.setHead(buildHead(statusCode, undefined, headerPairs(parts.headers, where), where));
      const body = parts.body ?? [];
      if (!isBody(body, true)) {
        throw new GatewayProtocolError(`${where}: the body must be an array, an (async) iterable, a string, bytes or have forEach(), got ${typeof body}`);
      }
      return body;
    });
  };
}
