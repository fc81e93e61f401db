/**
 * Fetch-style handlers, `(Request) => Response`, as written for Hono,
 * itty-router or serverless runtimes, mounted as middleware. The handler sees
 * a WHATWG `Request` with an absolute URL, the body as a stream, and a signal
 * that aborts when the client goes away; its `Response` body is streamed back
 * with backpressure.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { JsonStoreError } from '../errors.js';
import { forEachRequestHeader, requestAuthority, requestScheme, requestTarget } from './environ.js';
import { GatewayProtocolError } from './errors.js';
import { consumedBody } from './input.js';
import { lazyRequest } from './lazy-request.js';
import { checkBoolean, checkFunction, checkOptionObject, commonOptionNames, reportEscaped, resolveCommonOptions } from './options.js';
import { chunkToBuffer } from './response-body.js';
import { buildHead, checkStatusCode, hopByHopHeaders, isFieldText, statusAllowsBody } from './response-head.js';
import { ResponseWriter } from './response-writer.js';
import type { GatewayMiddleware, GatewayOptions, NextFunction } from './types.js';

/** Second argument of the handler: the Node objects behind the Request, for reading (e.g. `req.user` set by Express auth middleware). */
export interface FetchContext {
  incoming: IncomingMessage;
  /** Do not write to it: the bridge sends the returned Response. */
  outgoing: ServerResponse;
}

export type FetchHandler = (request: Request, context: FetchContext) => Response | Promise<Response>;

export interface FetchHandlerOptions extends GatewayOptions {
  /**
   * `'strip'` (default): the Request URL is relative to the mount point, as
   * Express's `req.url` is (mounted at `/api`, `/api/users` arrives as
   * `/users`). `'keep'`: the URL the client requested, mount point included.
   */
  mountPath?: 'strip' | 'keep';
  /**
   * With `mountPath: 'strip'`, prefix the mount point to a root-relative
   * `Location` (and `Content-Location`) the handler answers with, as Apache's
   * ProxyPassReverse does: mounted at `/api`, `redirect('/users/9')` sends
   * the client to `/api/users/9`, not out of the mount. Default false (a
   * handler may mean the host app's `/login`).
   */
  rewriteLocation?: boolean;
}

/**
 * What a Host (or X-Forwarded-Host) may be for the URL built from it: a DNS
 * name or IPv4 address, or a bracketed IPv6 literal, and a port. Anything
 * else ("127.0.0.1/admin?") could move the path the handler sees.
 */
const hostNamePattern = /^(?:[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9_])?|\[[0-9A-Fa-f:.]+\])$/;

function isHostAndPort(field: string): boolean {
  const colon = field.startsWith('[') ? field.indexOf(':', field.indexOf(']')) : field.lastIndexOf(':');
  const name = colon === -1 ? field : field.slice(0, colon);
  const port = colon === -1 ? '' : field.slice(colon + 1);
  return hostNamePattern.test(name) && (port === '' || (/^\d{1,5}$/.test(port) && Number(port) <= 65535));
}

/** Methods `new Request()` refuses. */
const forbiddenMethods = new Set(['CONNECT', 'TRACE', 'TRACK']);

/**
 * A URL the URL parser would serialize unchanged: lower-case host, and only
 * characters it leaves alone in a path and query. Others go through `new URL`.
 */
const serializedUrlPattern = /^https?:\/\/(?:[a-z0-9._-]+|\[[0-9a-f:.]+\])(?::\d{1,5})?\/[A-Za-z0-9\-._~!$&()*+,;=:@/%?]*$/;

/** A path segment that the URL parser would resolve away (".", "..", "%2e%2E"...). */
function isDotSegment(segment: string): boolean {
  if (segment.length > 6) return false;
  const decoded = segment.replace(/%2e/gi, '.');
  return decoded === '.' || decoded === '..';
}

/**
 * The path as the client sent it, safe to put in a URL unchanged: the URL
 * parser turns `\` into `/` and resolves dot segments, which would hand the
 * handler another path than the one Express routed (and guarded). `\` is
 * escaped; dot segments are refused (400).
 */
function literalPath(path: string): string {
  if (path.includes('.') || path.includes('%')) {
    for (const segment of path.split('/')) {
      if (isDotSegment(segment) || (segment.includes('\\') && segment.split('\\').some(isDotSegment))) {
        throw new JsonStoreError('bad-request', 'The request path has a "." or ".." segment; send the path without it.');
      }
    }
  }
  return path.includes('\\') ? path.replaceAll('\\', '%5C') : path;
}

// The connection belongs to the server on each side, so these neither go to
// the handler nor come back from it (a handler returning a proxied `fetch()`
// response carries the upstream's).
const connectionHeaders = hopByHopHeaders;

type ReadStep = Awaited<ReturnType<ReadableStreamDefaultReader<Uint8Array>['read']>>;

const notYet = Symbol('not yet');

/** Settles once the promise work already under way has run (a read that can complete now will have). */
function afterPendingWork(): Promise<typeof notYet> {
  return new Promise((resolve) => process.nextTick(resolve, notYet));
}

function isResponse(value: unknown): value is Response {
  if (value instanceof Response) return true;
  return (
    value !== null &&
    typeof value === 'object' &&
    typeof (value as Response).status === 'number' &&
    typeof (value as Response).headers?.forEach === 'function' &&
    'body' in value
  );
}

/**
 * The body of a Response made from a string or bytes, without reading its
 * stream: Node's fetch (undici) keeps what was given to `new Response()` as
 * the body's `source`. Only used when the stream is untouched and the source
 * is plainly a string or bytes of the recorded length; anything else
 * (another runtime's Response, a stream body, a Node version that stores it
 * elsewhere) is read through the stream as usual.
 */
function knownBody(response: Response): string | Buffer | undefined {
  if (response.bodyUsed) return undefined;
  const state = (response as unknown as Record<symbol, unknown>)[undiciState ?? noState];
  const body = (state as { body?: { source?: unknown; length?: unknown; stream?: ReadableStream } } | undefined)?.body;
  if (body === undefined || body === null || body.stream === undefined || body.stream.locked) return undefined;
  const { source, length } = body;
  if (typeof source === 'string') return Buffer.byteLength(source, 'utf8') === length ? source : undefined;
  if (source instanceof Uint8Array && source.byteLength === length) return Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  return undefined;
}

const noState = Symbol('no state');
/** The symbol under which undici's Response keeps its state, if this Node has one. */
const undiciState: symbol | undefined = (() => {
  try {
    return Object.getOwnPropertySymbols(new Response('')).find((symbol) => symbol.description === 'state');
  } catch {
    return undefined;
  }
})();

/** Whether the Request gets a body: never for GET and HEAD (the fetch API forbids it), nor for an empty one. */
function requestBodyWanted(req: IncomingMessage): boolean {
  if (req.method === 'GET' || req.method === 'HEAD') return false;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** Mounts a fetch-style handler as middleware: `app.use('/edge', fetchHandler(honoApp.fetch))`. */
export function fetchHandler(handler: FetchHandler, options?: FetchHandlerOptions): GatewayMiddleware {
  checkFunction('fetchHandler', 'handler', handler);
  const raw = checkOptionObject('fetchHandler', options, [...commonOptionNames, 'mountPath', 'rewriteLocation']);
  const common = resolveCommonOptions('fetchHandler', raw);
  const mountPath = raw.mountPath ?? 'strip';
  if (mountPath !== 'strip' && mountPath !== 'keep') {
    throw new TypeError(`fetchHandler(): option "mountPath" must be 'strip' or 'keep', got ${JSON.stringify(mountPath)}`);
  }
  const where = 'fetchHandler';
  const rewriteLocation = checkBoolean(where, 'rewriteLocation', raw.rewriteLocation, false) && mountPath === 'strip';

  /**
   * The handler's Request: method and URL now, the real WHATWG Request
   * (headers, body stream, signal) only when the handler reads more (see
   * `lazy-request.ts`). `signalFor` gives the signal when that happens.
   */
  function buildRequest(req: IncomingMessage, signalFor: () => AbortSignal): Request {
    const method = req.method ?? 'GET';
    if (forbiddenMethods.has(method)) {
      throw new JsonStoreError('bad-request', `The request cannot be represented as a fetch Request: method ${method} is forbidden by the fetch standard.`);
    }
    const scheme = requestScheme(req, common.trustProxy);
    const forwardedHost = common.trustProxy ? req.headers['x-forwarded-host'] : undefined;
    const hostField = typeof forwardedHost === 'string' && forwardedHost !== '' ? forwardedHost.split(',')[0]?.trim() : req.headers.host;
    if (hostField !== undefined && !isHostAndPort(hostField)) {
      throw new JsonStoreError('bad-request', `The ${hostField === req.headers.host ? 'Host' : 'X-Forwarded-Host'} header must be a host name or address with an optional port (host[:port]).`);
    }
    const authority = requestAuthority(req, scheme, common.trustProxy);
    const defaultPort = scheme === 'https' ? '443' : '80';
    const target = requestTarget(req);
    const path = mountPath === 'keep' ? target.scriptName + target.pathInfo : target.pathInfo;
    const pathAndQuery = literalPath(path || '/') + (target.queryString === '' ? '' : `?${target.queryString}`);
    let url = `${scheme}://${authority.name}${authority.port === defaultPort ? '' : `:${authority.port}`}${pathAndQuery}`;
    if (!serializedUrlPattern.test(url)) {
      // Upper case, spaces, non-ASCII...: as the URL parser writes it (and checks it).
      try {
        url = new URL(url).href;
      } catch (error) {
        throw new JsonStoreError('bad-request', `The request cannot be represented as a fetch Request: ${error instanceof Error ? error.message : String(error)}`);
      }
    }

    return lazyRequest(method, url, () => {
      const headers: Array<[string, string]> = [];
      forEachRequestHeader(req, (name, value) => {
        if (!connectionHeaders.has(name)) headers.push([name, value]);
      });
      const init: RequestInit & { duplex?: 'half' } = { method, headers, signal: signalFor() };
      if (requestBodyWanted(req)) {
        const consumed = consumedBody(req);
        if (consumed !== undefined) init.body = consumed;
        else {
          init.body = Readable.toWeb(req) as unknown as ReadableStream<Uint8Array>;
          init.duplex = 'half';
        }
      }
      return new Request(url, init);
    });
  }

  return function fetchMiddleware(req: IncomingMessage, res: ServerResponse, next?: NextFunction): void {
    const writer = new ResponseWriter(req, res, { options: common, next, missingHeadMessage: 'fetchHandler: no response' });
    // Made when the handler first reads the Request's signal (or more).
    let controller: AbortController | undefined;
    const signalFor = (): AbortSignal => {
      controller ??= new AbortController();
      if (writer.clientGone) controller.abort();
      return controller.signal;
    };
    const stopAbortOnLeave = writer.onClientGone(() => controller?.abort());

    (async () => {
      let reader: ReadableStreamDefaultReader<Uint8Array> | undefined;
      let bodyFinished = false;
      let released = false;
      const release = (): void => {
        if (released || reader === undefined || bodyFinished) return;
        released = true;
        reader.cancel().catch(() => undefined);
      };
      const stopReleaseOnLeave = writer.onClientGone(release);
      try {
        const response: unknown = await handler(buildRequest(req, signalFor), { incoming: req, outgoing: res });
        if (!isResponse(response)) {
          throw new GatewayProtocolError(`${where}: the handler must return a Response, got ${response === null ? 'null' : typeof response}`);
        }
        if (response.type === 'error' || response.status === 0) {
          throw new GatewayProtocolError(`${where}: the handler returned a network error (Response.error())`);
        }
        const statusCode = checkStatusCode(response.status, where);
        const reason = response.statusText && isFieldText(response.statusText) ? response.statusText : undefined;
        const pairs: Array<[string, string]> = [];
        response.headers.forEach((value, name) => {
          if (name !== 'set-cookie') pairs.push([name, value]);
        });
        for (const cookie of response.headers.getSetCookie()) pairs.push(['set-cookie', cookie]);
        if (rewriteLocation) {
          const mount = requestTarget(req).scriptName;
          for (const pair of pairs) {
            if ((pair[0] === 'location' || pair[0] === 'content-location') && pair[1].startsWith('/') && !pair[1].startsWith('//')) pair[1] = mount + pair[1];
          }
        }
        writer.setHead(buildHead(statusCode, reason, pairs, where, true));

        const known = knownBody(response);
        if (known !== undefined) {
          // Bytes or a string given to new Response(): sent as they are,
          // without reading them back through the body stream.
          if (writer.fallsThrough || req.method === 'HEAD' || !statusAllowsBody(statusCode)) writer.end();
          else await writer.sendWhole(known);
          return;
        }
        const body = response.body;
        if (body === null) {
          writer.end();
          return;
        }
        reader = body.getReader();
        if (writer.fallsThrough || req.method === 'HEAD' || !statusAllowsBody(statusCode)) {
          writer.end(); // No body goes out, so none is read.
          return;
        }
        const open = reader;
        const read = (): Promise<ReadStep> => {
          const step = open.read().then(undefined, (error: unknown) => {
            bodyFinished = true; // An errored stream needs no cancel.
            throw error;
          });
          step.catch(() => undefined); // Awaited below, or abandoned when the response stops early.
          return step;
        };
        let pending = read();
        let first = true;
        for (;;) {
          const step = await pending;
          if (step.done) {
            bodyFinished = true;
            break;
          }
          if (!writer.active) break;
          const chunk = chunkToBuffer(step.value, where);
          pending = read();
          if (first) {
            first = false;
            // A body that is already complete (a string or bytes given to
            // new Response) goes out with a Content-Length, in one write.
            const next = await Promise.race([pending, afterPendingWork()]);
            if (next !== notYet && next.done) {
              bodyFinished = true;
              await writer.writeAll([chunk]);
              return;
            }
          }
          const wait = writer.write(chunk);
          if (wait) await wait;
          if (!writer.active) break;
        }
        writer.end();
      } catch (error) {
        writer.fail(error, where);
      } finally {
        stopReleaseOnLeave();
        release();
        // Once answered, a later disconnect is not the handler's business.
        stopAbortOnLeave();
      }
    })().catch((error: unknown) => reportEscaped(common.logger, where, error));
  };
}
