/**
 * A FastCGI client: mounts php-fpm (or any FastCGI responder) as middleware,
 * as nginx's `fastcgi_pass` does. Each request is one FastCGI request on a
 * pooled connection (FCGI_KEEP_CONN, one request at a time per connection:
 * php-fpm does not multiplex): BEGIN_REQUEST, the CGI meta-variables as
 * PARAMS, the body streamed as STDIN; STDOUT is a CGI response (read by
 * `cgi-head.ts`) streamed back with backpressure, STDERR goes to the logger,
 * END_REQUEST ends it. A client that leaves gets FCGI_ABORT_REQUEST sent on
 * its behalf.
 */
import { connect, type Socket } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { isAbsolute, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { JsonStoreError } from '../errors.js';
import { optionChecks } from '../option-checks.js';
import { CgiHeadReader, withoutScriptOutput, type CompleteCgiHead } from './cgi-head.js';
import { cgiVariables, decodePath, originalTarget, requestScheme, requestTarget } from './environ.js';
import { GatewayError } from './errors.js';
import {
  decodeEndRequest,
  encodeAbortRequest,
  encodeBeginRequest,
  encodeParams,
  encodeRecords,
  ProtocolStatus,
  RecordReader,
  RecordType,
  type FastCgiRecord,
} from './fastcgi-protocol.js';
import { LineLogStream } from './log-stream.js';
import { checkBoolean, checkOptionObject, checkPositiveNumber, commonOptionNames, resolveCommonOptions, safeLog } from './options.js';
import { buildHead } from './response-head.js';
import { ResponseWriter } from './response-writer.js';
import { bodyOptionNames, describeRequest, discardRestOfBody, receiveBody, resolveBodyLimits, type ProgramInput } from './request-body.js';
import type { GatewayMiddleware, GatewayOptions, NextFunction } from './types.js';

type Params = Readonly<Record<string, string>>;

/** Debian's nginx `snippets/fastcgi-php.conf`: `fastcgi_split_path_info ^(.+?\.php)(/.*)$;` */
const defaultSplitPathInfo = /^(.+?\.php)(\/.*)$/;

export interface FastCgiOptions extends GatewayOptions {
  /** Unix socket of the FastCGI server (php-fpm's `listen = /run/php/php-fpm.sock`). Or `host` and `port`. */
  socket?: string;
  /** TCP host of the FastCGI server (with `port`). Default `127.0.0.1` when `port` is given. */
  host?: string;
  port?: number;
  /**
   * Document root on the FastCGI server's side: DOCUMENT_ROOT, and the base
   * of SCRIPT_FILENAME. Without `script`, SCRIPT_FILENAME is `root` plus the
   * path below the mount (`/info.php` -> `<root>/info.php`; a path leaving
   * `root` is a 404).
   */
  root?: string;
  /**
   * A front controller, relative to `root` (`'index.php'`): every request
   * runs it, with SCRIPT_NAME the mount point and PATH_INFO the rest.
   */
  script?: string;
  /**
   * With `root` and no `script`: splits the path below the mount into the
   * script and PATH_INFO, as nginx's `fastcgi_split_path_info` (two capture
   * groups). Default `/^(.+?\.php)(\/.*)$/`, Debian's `fastcgi-php.conf`:
   * `/x.php/a/b` runs `<root>/x.php` with PATH_INFO `/a/b` (and
   * PATH_TRANSLATED `<root>/a/b`). `false`: the whole path is the script.
   */
  splitPathInfo?: RegExp | false;
  /**
   * Extra FastCGI params, or a function of the request returning them (per
   * request). They may override DOCUMENT_ROOT, SCRIPT_FILENAME, REQUEST_URI,
   * REDIRECT_STATUS and HTTPS; the RFC 3875 meta-variables and HTTP_* always
   * come from the request.
   */
  params?: Params | ((req: IncomingMessage) => Params);
  /** Milliseconds for the whole response (connecting included); past it: 504 (or a cut connection). Default 30000. */
  timeout?: number;
  /**
   * Connections to the server at most; requests beyond wait for one. A
   * php-fpm child serves one kept-open connection for as long as it stays
   * open, so keep this at most the pool's `pm.max_children` (a connection
   * beyond it would wait in the listen queue for a child that is never
   * freed). Default 5, php-fpm's own default `pm.max_children`.
   */
  maxConnections?: number;
  /** Requests that may wait for a connection when all `maxConnections` are busy; past it, 503. Default 100, as `pythonWsgi()`. */
  maxQueue?: number;
  /** Milliseconds an unused kept-open connection stays open (and holds its php-fpm child). Default 10000. */
  idleTimeout?: number;
  /** Largest CGI header block accepted in STDOUT, in bytes; larger is a 502. Default 65536. */
  maxHeaderSize?: number;
  /** Largest request body accepted, in bytes (413 past it). Default 1 GiB, as for `cgi()`. */
  maxBodySize?: number;
  /**
   * A chunked request body is read in full first so CONTENT_LENGTH can be
   * sent (FastCGI frames STDIN itself, but PHP reads `php://input` and
   * `$_POST` only up to CONTENT_LENGTH): in memory up to this many bytes,
   * past it in an unlinked temporary file. Default 1 MiB.
   */
  spoolThreshold?: number;
  /** The most bytes of chunked request bodies held at once, across all requests (503 past it), as for `cgi()`. Default 1 GiB, or `maxBodySize` if larger. */
  maxSpoolTotal?: number;
  /** Directory for spooled request bodies. Default `os.tmpdir()`. */
  tempDir?: string;
  /** Pass `Authorization` as HTTP_AUTHORIZATION. Default true: nginx does, and PHP builds PHP_AUTH_USER from it. */
  passAuthorization?: boolean;
}

/** What `fastcgi()` returns: middleware, plus its connection pool's state and a way to close it. */
export interface FastCgiMiddleware extends GatewayMiddleware {
  /** Connections opened so far, those open now (idle or serving a request), and requests waiting for one. */
  readonly connections: { opened: number; idle: number; busy: number; queued: number };
  /** Closes idle connections now and the others when their request ends; new requests get 502. */
  close(): Promise<void>;
}

const requestId = 1;

/** The record handler of the request a connection is serving. */
interface Exchange {
  onRecord(record: FastCgiRecord): void;
  onClose(error: Error | undefined): void;
}

/** One connection to the FastCGI server; serves one request at a time. */
class Connection {
  readonly socket: Socket;
  readonly #reader = new RecordReader();
  exchange: Exchange | undefined;
  /** Requests this connection has started (more than 1: it was reused). */
  uses = 0;
  closed = false;
  #error: Error | undefined;
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(socket: Socket, onClosed: (connection: Connection) => void) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      let records: FastCgiRecord[];
      try {
        records = this.#reader.push(chunk);
      } catch (error) {
        socket.destroy(error as Error);
        return;
      }
      for (const record of records) {
        const exchange = this.exchange;
        if (exchange === undefined || record.requestId !== requestId) {
          // Nothing asked for this: the stream is out of step; never reuse it.
          socket.destroy(new Error(`unexpected FastCGI record (type ${record.type}, request ${record.requestId})`));
          return;
        }
        exchange.onRecord(record);
      }
    });
    socket.on('error', (error) => {
      this.#error = error;
    });
    socket.on('close', () => {
      this.closed = true;
      this.clearIdle();
      onClosed(this);
      const exchange = this.exchange;
      this.exchange = undefined;
      exchange?.onClose(this.#error);
    });
  }

  get reusable(): boolean {
    return !this.closed && !this.socket.destroyed && !this.#reader.partial;
  }

  idleFor(ms: number, onIdleTimeout: () => void): void {
    this.#idleTimer = setTimeout(onIdleTimeout, ms);
    this.#idleTimer.unref();
  }

  clearIdle(): void {
    if (this.#idleTimer !== undefined) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

type Address = { path: string } | { host: string; port: number };

/** Connections to one FastCGI server, kept open between requests, at most `max` at a time. */
class ConnectionPool {
  readonly #address: Address;
  readonly #max: number;
  readonly #idleTimeout: number;
  readonly #maxQueue: number;
  #idle: Connection[] = [];
  #open = new Set<Connection>();
  #waiting: Array<{ resolve: (connection: Connection) => void; reject: (error: Error) => void }> = [];
  #closing = false;
  opened = 0;

  constructor(address: Address, max: number, idleTimeout: number, maxQueue: number) {
    this.#address = address;
    this.#max = max;
    this.#idleTimeout = idleTimeout;
    this.#maxQueue = maxQueue;
  }

  get stats(): { opened: number; idle: number; busy: number; queued: number } {
    return { opened: this.opened, idle: this.#idle.length, busy: this.#open.size - this.#idle.length, queued: this.#waiting.length };
  }

  /**
   * A connection: idle, new, or the next one freed. `cancel` gives up a place
   * in the queue (the request timed out or its client left). Rejects with a
   * 503 GatewayError when `maxQueue` requests already wait.
   */
  acquire(): { connection: Promise<Connection>; cancel: () => void } {
    const now = (connection: Promise<Connection>) => ({ connection, cancel: () => undefined });
    if (this.#closing) return now(Promise.reject(new Error('the FastCGI client was closed')));
    for (let idle = this.#idle.pop(); idle !== undefined; idle = this.#idle.pop()) {
      idle.clearIdle();
      if (idle.reusable) return now(Promise.resolve(idle));
    }
    if (this.#open.size < this.#max) return now(this.#connect());
    if (this.#waiting.length >= this.#maxQueue) {
      return now(Promise.reject(new GatewayError('service-unavailable', `All ${this.#max} FastCGI connections are busy and ${this.#maxQueue} requests are already waiting; retry shortly.`)));
    }
    let waiter: { resolve: (connection: Connection) => void; reject: (error: Error) => void } | undefined;
    const connection = new Promise<Connection>((resolve, reject) => {
      waiter = { resolve, reject };
      this.#waiting.push(waiter);
    });
    return { connection, cancel: () => this.#forget(waiter) };
  }

  #forget(gone: unknown): void {
    this.#waiting = this.#waiting.filter((waiter) => waiter !== gone);
  }

  #connect(): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = 'path' in this.#address ? connect(this.#address.path) : connect(this.#address.port, this.#address.host);
      const connection = new Connection(socket, (gone) => this.#onClosed(gone));
      this.#open.add(connection);
      this.opened += 1;
      const onError = (error: Error): void => reject(error);
      socket.once('error', onError);
      socket.once('connect', () => {
        socket.off('error', onError);
        socket.setNoDelay(true);
        resolve(connection);
      });
    });
  }

  #onClosed(connection: Connection): void {
    this.#open.delete(connection);
    this.#idle = this.#idle.filter((entry) => entry !== connection);
    // A place came free: a waiting request may connect now.
    const waiter = this.#waiting.shift();
    if (waiter !== undefined) this.#connect().then(waiter.resolve, waiter.reject);
  }

  /** A request is over: the connection serves the next one, waits idle, or is closed. */
  release(connection: Connection, reusable: boolean): void {
    connection.exchange = undefined;
    if (!reusable || !connection.reusable || this.#closing) {
      connection.destroy();
      return;
    }
    const waiter = this.#waiting.shift();
    if (waiter !== undefined) {
      waiter.resolve(connection);
      return;
    }
    this.#idle.push(connection);
    connection.idleFor(this.#idleTimeout, () => connection.destroy());
  }

  async close(): Promise<void> {
    this.#closing = true;
    for (const waiter of this.#waiting.splice(0)) waiter.reject(new Error('the FastCGI client was closed'));
    for (const connection of this.#idle.splice(0)) connection.destroy();
    const open = [...this.#open];
    await Promise.all(open.map((connection) => (connection.closed ? undefined : new Promise((resolve) => connection.socket.once('close', resolve)))));
  }
}

function checkParams(bridge: string, value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`${bridge}(): option "params" must be an object of strings or a function of the request returning one`);
  }
  const params: Record<string, string> = {};
  for (const [name, entry] of Object.entries(value)) {
    if (name === '' || typeof entry !== 'string') throw new TypeError(`${bridge}(): option "params" has an invalid entry '${name}' (string values)`);
    params[name] = entry;
  }
  return params;
}

function checkAddress(raw: Record<string, unknown>): Address {
  const { socket, host, port } = raw;
  if (socket !== undefined) {
    if (typeof socket !== 'string' || socket === '') throw new TypeError('fastcgi(): option "socket" must be the path of a Unix socket');
    if (host !== undefined || port !== undefined) throw new TypeError('fastcgi(): give either "socket" or "host" and "port", not both');
    return { path: socket };
  }
  if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) {
    throw new TypeError('fastcgi(): give the server as { socket: "/path/php-fpm.sock" } or { host, port } (port from 1 to 65535)');
  }
  if (host !== undefined && (typeof host !== 'string' || host === '')) throw new TypeError('fastcgi(): option "host" must be a non-empty string');
  return { host: (host as string | undefined) ?? '127.0.0.1', port: port as number };
}

/** What goes to the server's STDIN. */

/**
 * Mounts a FastCGI responder: `app.use('/blog', fastcgi({ socket: '/run/php/php8.2-fpm.sock', root: '/srv/blog', script: 'index.php' }))`.
 */
export function fastcgi(options: FastCgiOptions): FastCgiMiddleware {
  const bridge = 'fastcgi';
  const raw = checkOptionObject(bridge, options, [
    ...commonOptionNames,
    'socket',
    'host',
    'port',
    'root',
    'script',
    'splitPathInfo',
    'params',
    'timeout',
    'maxConnections',
    'maxQueue',
    'idleTimeout',
    'maxHeaderSize',
    ...bodyOptionNames,
    'passAuthorization',
  ]);
  const address = checkAddress(raw);
  const common = resolveCommonOptions(bridge, raw);
  const timeout = checkPositiveNumber(bridge, 'timeout', raw.timeout, 30_000);
  const maxConnections = checkPositiveNumber(bridge, 'maxConnections', raw.maxConnections, 5);
  const idleTimeout = checkPositiveNumber(bridge, 'idleTimeout', raw.idleTimeout, 10_000);
  const maxQueue = optionChecks(`${bridge}()`).wholeNumber('maxQueue', raw.maxQueue, 100, { min: 0 });
  const maxHeaderSize = checkPositiveNumber(bridge, 'maxHeaderSize', raw.maxHeaderSize, 64 * 1024);
  const passAuthorization = checkBoolean(bridge, 'passAuthorization', raw.passAuthorization, true);
  if (raw.root !== undefined && (typeof raw.root !== 'string' || !isAbsolute(raw.root))) {
    throw new TypeError('fastcgi(): option "root" must be an absolute path (on the FastCGI server\'s side)');
  }
  const root = raw.root === undefined ? undefined : resolve(raw.root);
  if (raw.script !== undefined && (typeof raw.script !== 'string' || raw.script === '')) throw new TypeError('fastcgi(): option "script" must be a non-empty string');
  if (raw.script !== undefined && root === undefined && !isAbsolute(raw.script)) {
    throw new TypeError('fastcgi(): option "script" must be absolute when there is no "root"');
  }
  const frontController = raw.script === undefined ? undefined : resolve(root ?? '/', raw.script);
  const splitOption = raw.splitPathInfo === undefined ? defaultSplitPathInfo : raw.splitPathInfo;
  if (splitOption !== false && !(splitOption instanceof RegExp)) {
    throw new TypeError('fastcgi(): option "splitPathInfo" must be a RegExp with two groups (script, path info), such as /^(.+?\\.php)(\\/.*)$/, or false');
  }
  // Without g or y: exec() must not carry lastIndex from one request to the next.
  const splitPathInfo = splitOption === false ? false : new RegExp(splitOption.source, splitOption.flags.replace(/[gy]/g, ''));
  const paramsOption = raw.params;
  const paramsOf: (req: IncomingMessage) => Record<string, string> =
    typeof paramsOption === 'function'
      ? (req) => checkParams(bridge, (paramsOption as (req: IncomingMessage) => unknown)(req))
      : (() => {
          const fixed = checkParams(bridge, paramsOption);
          return () => fixed;
        })();
  const pool = new ConnectionPool(address, maxConnections, idleTimeout, maxQueue);
  const bodyLimits = resolveBodyLimits(bridge, raw, common.logger);

  /** The params of one request; a JsonStoreError (404) for a path that leaves `root`. */
  function paramsFor(req: IncomingMessage, input: ProgramInput): Array<[string, string]> {
    const target = requestTarget(req);
    const contentLength = input.kind === 'memory' ? String(input.data.length) : input.kind === 'file' ? String(input.size) : undefined;
    const variables = cgiVariables(req, target, { trustProxy: common.trustProxy, omitEmptyContent: true, contentLength }) as unknown as Record<string, string>;
    if (!passAuthorization) delete variables.HTTP_AUTHORIZATION;
    delete variables.HTTP_PROXY_AUTHORIZATION;
    const server: Record<string, string> = { REQUEST_URI: originalTarget(req), REDIRECT_STATUS: '200' };
    if (requestScheme(req, common.trustProxy) === 'https') server.HTTPS = 'on';
    if (req.socket.remotePort !== undefined) server.REMOTE_PORT = String(req.socket.remotePort);
    if (root !== undefined) server.DOCUMENT_ROOT = root;
    if (frontController !== undefined) server.SCRIPT_FILENAME = frontController;
    else if (root !== undefined) {
      // Each path is a file under root, as nginx's $document_root$fastcgi_script_name,
      // with what follows the script's name split off as PATH_INFO (fastcgi_split_path_info).
      const path = variables.PATH_INFO || '/';
      const split = splitPathInfo === false ? null : splitPathInfo.exec(path);
      const scriptPath = split?.[1] ?? path;
      const pathInfo = split?.[2] ?? '';
      const file = resolve(root, '.' + scriptPath);
      if (file !== root && !file.startsWith(root + sep)) {
        throw new JsonStoreError('not-found', `No script for ${decodePath(target.pathInfo)} here.`);
      }
      server.SCRIPT_FILENAME = file;
      variables.SCRIPT_NAME = (variables.SCRIPT_NAME ?? '') + scriptPath;
      variables.PATH_INFO = pathInfo;
      // As nginx's fastcgi_param PATH_TRANSLATED $document_root$fastcgi_path_info (RFC 3875 section 4.1.6).
      if (pathInfo !== '') server.PATH_TRANSLATED = root + pathInfo;
    }
    const all: Record<string, string> = {
      ...server,
      ...paramsOf(req),
      ...variables,
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_SOFTWARE: 'express-jsonstore',
    };
    return Object.entries(all);
  }

  function run(req: IncomingMessage, res: ServerResponse, writer: ResponseWriter, input: ProgramInput): void {
    let params: Array<[string, string]>;
    try {
      params = paramsFor(req, input);
    } catch (error) {
      if (input.kind === 'file') void input.file.close();
      writer.fail(error, bridge);
      return;
    }

    type Phase = 'connecting' | 'head' | 'body' | 'done';
    let phase: Phase = 'connecting';
    let connection: Connection | undefined;
    let cancelWait = (): void => undefined;
    let stdinDone = false;
    let stdinSource: Readable | undefined;
    const headReader = new CgiHeadReader(maxHeaderSize);
    const stderr = new LineLogStream(common.logger, `${bridge}: `);

    const cleanUp = (): void => {
      clearTimeout(deadline);
      stopOnLeave();
      stderr.flush();
      if (stdinSource !== undefined) {
        stdinSource.removeAllListeners('data');
        if (stdinSource !== req) stdinSource.destroy();
      }
      discardRestOfBody(req, res);
      if (input.kind === 'file') void input.file.close();
    };
    /** Ends this request's use of the connection: kept for the next request only after a clean END_REQUEST. */
    const finish = (reusable: boolean): void => {
      if (phase === 'done') return;
      // Over while waiting for a connection: its place in the queue goes too.
      if (phase === 'connecting') cancelWait();
      phase = 'done';
      cleanUp();
      if (connection !== undefined) pool.release(connection, reusable && stdinDone);
    };
    const failWith = (error: unknown): void => {
      finish(false);
      writer.fail(error, bridge);
    };

    const deadline = setTimeout(() => {
      if (phase === 'done') return;
      if (writer.headersSent) {
        safeLog(common.logger, `${bridge}: no complete answer to ${describeRequest(req)} within ${timeout} ms; connection cut`);
        finish(false);
        writer.abort();
        return;
      }
      failWith(new GatewayError('gateway-timeout', `The FastCGI server did not answer within ${timeout} ms.`));
    }, timeout);

    const stopOnLeave = writer.onClientGone(() => {
      if (phase === 'done') return;
      // Tell the server, then give the connection up: its stream may still
      // carry this request's records.
      if (connection !== undefined && !connection.closed) connection.socket.write(encodeAbortRequest(requestId));
      finish(false);
    });

    const writeBody = (chunk: Buffer): void => {
      const wait = writer.write(chunk);
      if (wait && connection !== undefined) {
        const paused = connection;
        paused.socket.pause();
        void wait.then(() => {
          if (!paused.closed) paused.socket.resume();
        });
      }
    };

    const onStdout = (content: Buffer): void => {
      if (phase === 'body') {
        writeBody(content);
        return;
      }
      if (phase !== 'head') return;
      let read: CompleteCgiHead | undefined;
      try {
        read = headReader.push(content);
      } catch (error) {
        failWith(withoutScriptOutput(error, common.logger, `${bridge}: ${describeRequest(req)}`, 'The FastCGI application'));
        return;
      }
      if (read === undefined) return;
      // No re-dispatch here: a bare local Location goes to the client as a 302.
      writer.setHead(read.head.kind === 'response' ? read.head.head : buildHead(302, undefined, [['Location', read.head.location]], bridge));
      phase = 'body';
      if (writer.fallsThrough) return; // The rest is read and dropped; end() passes on to next().
      if (read.body.length > 0) writeBody(read.body);
    };

    /** Whether anything came back for this request (then it is never retried). */
    let answered = false;
    let retried = false;
    const exchange: Exchange = {
      onRecord(record) {
        if (phase === 'done') return;
        answered = true;
        switch (record.type) {
          case RecordType.Stdout:
            if (record.content.length > 0) onStdout(record.content);
            return;
          case RecordType.Stderr:
            stderr.write(record.content);
            return;
          case RecordType.EndRequest: {
            let end;
            try {
              end = decodeEndRequest(record.content);
            } catch (error) {
              failWith(new GatewayError('bad-gateway', 'The FastCGI server broke the protocol.', { cause: error }));
              return;
            }
            if (end.protocolStatus !== ProtocolStatus.RequestComplete) {
              const why = end.protocolStatus === ProtocolStatus.Overloaded ? 'is overloaded' : `refused the request (protocol status ${end.protocolStatus})`;
              failWith(new GatewayError('bad-gateway', `The FastCGI server ${why}.`));
              return;
            }
            if (phase === 'head') {
              failWith(new GatewayError('bad-gateway', `The FastCGI application ended (status ${end.appStatus}) without a complete header block.`));
              return;
            }
            if (end.appStatus !== 0) safeLog(common.logger, `${bridge}: the application exited with status ${end.appStatus} after its response to ${describeRequest(req)}`);
            finish(true);
            writer.end();
            return;
          }
          default:
            // Not for a responder (GET_VALUES_RESULT, UNKNOWN_TYPE...): ignored, as the specification allows.
            return;
        }
      },
      onClose(error) {
        if (phase === 'done') return;
        const why = error === undefined ? 'closed the connection' : `failed (${error.message})`;
        // A kept-open connection the server closed just as this request
        // started (php-fpm recycling a child): run a body-less or in-memory
        // request once more on a fresh connection.
        const replayable = input.kind === 'none' || input.kind === 'memory';
        if (!answered && !retried && replayable && connection !== undefined && connection.uses > 1) {
          retried = true;
          connection = undefined;
          phase = 'connecting';
          acquire();
          return;
        }
        if (writer.headersSent) {
          safeLog(common.logger, `${bridge}: the FastCGI server ${why} mid-response to ${describeRequest(req)}; connection cut`);
          finish(false);
          writer.abort();
          return;
        }
        safeLog(common.logger, `${bridge}: the FastCGI server ${why} before answering ${describeRequest(req)}`);
        failWith(new GatewayError('bad-gateway', 'The FastCGI server closed the connection before answering.'));
      },
    };

    /** Sends STDIN records from `source`, following the socket's backpressure, then the empty record that ends STDIN. */
    const pump = (socket: Socket, source: Readable): void => {
      stdinSource = source;
      source.on('data', (chunk: Buffer) => {
        if (phase === 'done') return;
        let flushed = true;
        for (const part of encodeRecords(RecordType.Stdin, requestId, chunk)) flushed = socket.write(part);
        if (!flushed) {
          source.pause();
          socket.once('drain', () => source.resume());
        }
      });
      source.once('end', () => {
        if (phase === 'done' || socket.destroyed) return;
        socket.write(Buffer.concat(encodeRecords(RecordType.Stdin, requestId)));
        stdinDone = true;
      });
      source.once('error', () => {
        // The client's upload broke: the request cannot be completed.
        if (phase !== 'done') failWith(new GatewayError('bad-gateway', 'The request body could not be read.'));
      });
    };

    const start = (acquired: Connection): void => {
      if (phase === 'done') {
        pool.release(acquired, true);
        return;
      }
      connection = acquired;
      acquired.uses += 1;
      acquired.exchange = exchange;
      phase = 'head';
      const { socket } = acquired;
      socket.write(encodeBeginRequest(requestId, true));
      socket.write(encodeParams(requestId, params));
      if (input.kind === 'stream') pump(socket, req);
      else if (input.kind === 'file') pump(socket, input.file.reader.createReadStream({ start: 0, autoClose: false }));
      else {
        const data = input.kind === 'memory' ? input.data : undefined;
        socket.write(Buffer.concat([...(data === undefined || data.length === 0 ? [] : encodeRecords(RecordType.Stdin, requestId, data)), ...encodeRecords(RecordType.Stdin, requestId)]));
        stdinDone = true;
      }
    };

    const unreachable = (error: Error): void => {
      if (phase === 'done') return;
      if (error instanceof GatewayError) {
        safeLog(common.logger, `${bridge}: 503 for ${describeRequest(req)}: ${error.message}`);
        failWith(error);
        return;
      }
      safeLog(common.logger, `${bridge}: cannot reach the FastCGI server for ${describeRequest(req)}: ${error.message}`);
      failWith(new GatewayError('bad-gateway', 'The FastCGI server could not be reached.'));
    };
    function acquire(): void {
      const waiting = pool.acquire();
      cancelWait = waiting.cancel;
      waiting.connection.then(start, unreachable);
    }
    acquire();
  }

  const middleware = function fastcgiMiddleware(req: IncomingMessage, res: ServerResponse, next?: NextFunction): void {
    const writer = new ResponseWriter(req, res, { options: common, next, missingHeadMessage: 'fastcgi: no response head' });
    try {
      receiveBody(req, res, writer, bodyLimits, (input) => run(req, res, writer, input));
    } catch (error) {
      writer.fail(error, bridge);
    }
  } as FastCgiMiddleware;
  Object.defineProperty(middleware, 'connections', { get: () => pool.stats, enumerable: true });
  middleware.close = () => pool.close();
  return middleware;
}
