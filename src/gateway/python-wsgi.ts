/**
 * `pythonWsgi('package.module:app', options)`: real WSGI (PEP 3333) apps in
 * Python, served by a pool of preforked worker processes (`python-pool.ts`)
 * that speak a framed protocol (`python-protocol.ts`) with this side. This
 * file is one request: the environ out, the request body streamed after it,
 * the response streamed back through the shared `ResponseWriter`.
 */
import { statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import { cgiVariables, originalTarget, requestScheme, requestTarget } from './environ.js';
import { GatewayError, GatewayProtocolError } from './errors.js';
import { consumedBody, consumedLength, hasRequestBody } from './input.js';
import { checkOptionObject, commonOptionNames, resolveCommonOptions, safeLog, type ResolvedGatewayOptions } from './options.js';
import { PythonWorkerPool, runnerPath, type PoolJob, type PythonWorker, type WorkerSession } from './python-pool.js';
import { Deadlines, type Expiring } from './deadlines.js';
import { decodeResponseHead, FromWorker, requestFrames, ToWorker, type Frame } from './python-protocol.js';
import { buildHead, parseStatusLine } from './response-head.js';
import { declaredOverLimit, defaultMaxBodySize, describeRequest, discardRestOfBody, refuseTooLarge } from './request-body.js';
import { ResponseWriter } from './response-writer.js';
import type { GatewayMiddleware, GatewayOptions, NextFunction } from './types.js';
import { optionChecks, shown, type OptionChecks } from '../option-checks.js';

export interface PythonWsgiOptions extends GatewayOptions {
  /** The Python interpreter. Default `/usr/bin/python3`. */
  python?: string;
  /** Working directory of the workers, first on their `sys.path` (where the app's module is). Default: `process.cwd()`. */
  cwd?: string;
  /** Worker processes, each serving one request at a time. Default 2. */
  workers?: number;
  /** Milliseconds a request may take from arrival to the end of its response (queueing included); past it, 504 (or a cut connection) and the worker is killed and replaced. Default 30000. */
  timeout?: number;
  /** Requests a worker serves before it is replaced by a fresh one (leaky apps); 0 never. Default 0. */
  maxRequests?: number;
  /** Each worker's limit is `maxRequests` plus a random 0 to `maxRequestsJitter`, so workers started together do not all restart at once (gunicorn's `max_requests_jitter`). Default 0. */
  maxRequestsJitter?: number;
  /** Requests that may wait when every worker is busy; past it, 503. Default 100. */
  maxQueue?: number;
  /**
   * Largest request body in bytes. A declared Content-Length over it is
   * answered 413 before the app runs; a chunked body that passes it is cut
   * off (the app's next read fails as if the client left) and answered 413,
   * or the connection is cut if the response had started. Default 1 GiB.
   */
  maxBodySize?: number;
  /** Milliseconds a retiring worker (recycled, or on `close()`) gets to exit after its stdin closes, before SIGKILL. Default 2000. */
  killGrace?: number;
  /** Extra environment variables for the workers (on top of this process's environment). */
  env?: Readonly<Record<string, string>>;
}

/** The middleware, with the pool's controls. */
export interface PythonWsgiMiddleware extends GatewayMiddleware {
  /** Resolves once every worker has imported the app; rejects if it cannot be imported. */
  ready(): Promise<void>;
  /** Stops taking requests (503), finishes the queued and running ones, and resolves when every worker has exited. */
  close(): Promise<void>;
  /** Process ids of the running workers. */
  readonly workerPids: number[];
  /** Workers serving a request now, and requests waiting for a free one. */
  readonly load: { busy: number; queued: number };
}

const bridge = 'pythonWsgi';
const optionNames = [...commonOptionNames, 'python', 'cwd', 'workers', 'timeout', 'maxRequests', 'maxRequestsJitter', 'maxQueue', 'maxBodySize', 'killGrace', 'env'] as const;
const appSpecPattern = /^[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*(?::[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)?$/;

interface ResolvedPythonOptions {
  common: ResolvedGatewayOptions;
  python: string;
  cwd: string;
  workers: number;
  timeout: number;
  maxRequests: number;
  maxRequestsJitter: number;
  maxQueue: number;
  maxBodySize: number;
  killGrace: number;
  env: Record<string, string>;
}

function resolveOptions(appSpec: unknown, options: unknown): ResolvedPythonOptions {
  const checks: OptionChecks = optionChecks(`${bridge}()`);
  if (typeof appSpec !== 'string' || !appSpecPattern.test(appSpec)) {
    checks.fail(`appSpec must be 'module:callable' such as 'hello:app' (or a module with an 'application'), got ${shown(appSpec)}`);
  }
  const raw = checkOptionObject(bridge, options, optionNames);
  const python = raw.python === undefined ? '/usr/bin/python3' : raw.python;
  if (typeof python !== 'string' || python === '') checks.fail(`option "python" must be the path or name of a Python 3 interpreter, got ${shown(python)}`);
  if (python.includes('/')) {
    try {
      if (!statSync(python).isFile()) throw new Error('not a file');
    } catch {
      checks.fail(`option "python" (${JSON.stringify(python)}) does not exist; install Python 3 or pass its path`);
    }
  }
  const cwd = raw.cwd === undefined ? process.cwd() : raw.cwd;
  if (typeof cwd !== 'string') checks.fail(`option "cwd" must be a directory path, got ${shown(cwd)}`);
  try {
    if (!statSync(cwd).isDirectory()) throw new Error('not a directory');
  } catch {
    checks.fail(`option "cwd" (${JSON.stringify(cwd)}) is not a directory`);
  }
  const env: Record<string, string> = {};
  if (raw.env !== undefined) {
    const object = checks.object(raw.env);
    for (const [name, value] of Object.entries(object)) {
      if (name === '' || name.includes('=') || name.includes('\0') || typeof value !== 'string' || value.includes('\0')) {
        checks.fail(`option "env" has an invalid entry ${JSON.stringify(name)} (names without '=' or NUL, string values)`);
      }
      env[name] = value;
    }
  }
  const maxRequests = checks.wholeNumber('maxRequests', raw.maxRequests, 0, { min: 0, example: '0 to never recycle' });
  const maxRequestsJitter = checks.wholeNumber('maxRequestsJitter', raw.maxRequestsJitter, 0, { min: 0 });
  if (maxRequestsJitter > 0 && maxRequests === 0) {
    checks.fail('option "maxRequestsJitter" needs "maxRequests" (workers that are never recycled need no jitter); set maxRequests, or drop maxRequestsJitter');
  }
  return {
    common: resolveCommonOptions(bridge, raw),
    python,
    cwd: resolve(cwd),
    workers: checks.wholeNumber('workers', raw.workers, 2, { max: 256, unit: 'processes' }),
    timeout: checks.positiveNumber('timeout', raw.timeout, 30_000),
    maxRequests,
    maxRequestsJitter,
    maxQueue: checks.wholeNumber('maxQueue', raw.maxQueue, 100, { min: 0 }),
    maxBodySize: checks.positiveNumber('maxBodySize', raw.maxBodySize, defaultMaxBodySize),
    killGrace: checks.positiveNumber('killGrace', raw.killGrace, 2_000),
    env,
  };
}

/** The environ Python gets, minus the `wsgi.*` objects the runner adds. Paths stay raw (percent-encoded): the runner makes them PEP 3333 latin-1 strings. */
function environOf(req: IncomingMessage, common: ResolvedGatewayOptions, consumed: Buffer | undefined): Record<string, string> {
  const target = requestTarget(req);
  const environ = cgiVariables(req, target, {
    trustProxy: common.trustProxy,
    omitEmptyContent: false,
    contentLength: consumedLength(req, consumed),
  }) as unknown as Record<string, string>;
  environ.SCRIPT_NAME = target.scriptName;
  environ.PATH_INFO = target.pathInfo;
  environ.REQUEST_URI = originalTarget(req);
  environ.SERVER_SOFTWARE = 'express-jsonstore';
  environ['wsgi.url_scheme'] = requestScheme(req, common.trustProxy);
  return environ;
}

type ExchangeState = 'queued' | 'running' | 'discarding' | 'done';

const emptyBody = Buffer.alloc(0);

/** One request through the pool. */
class Exchange implements PoolJob, WorkerSession, Expiring {
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #writer: ResponseWriter;
  readonly #settings: ResolvedPythonOptions;
  readonly #pool: PythonWorkerPool;
  readonly #deadlines: Deadlines<Exchange>;
  #state: ExchangeState = 'queued';
  #worker: PythonWorker | undefined;
  #bodySent = false;
  #detachBody: (() => void) | undefined;
  #stopWatchingClient: () => void;

  constructor(req: IncomingMessage, res: ServerResponse, writer: ResponseWriter, settings: ResolvedPythonOptions, pool: PythonWorkerPool, deadlines: Deadlines<Exchange>) {
    this.#req = req;
    this.#res = res;
    this.#writer = writer;
    this.#settings = settings;
    this.#pool = pool;
    this.#deadlines = deadlines;
    deadlines.add(this);
    this.#stopWatchingClient = writer.onClientGone(() => this.#clientGone());
  }

  /** Over before it started (the client left before the middleware ran): nothing to submit. */
  get finished(): boolean {
    return this.#state === 'done';
  }

  #fail(error: unknown): void {
    this.#writer.fail(error, bridge);
  }

  #finish(): void {
    if (this.#state === 'done') return;
    this.#state = 'done';
    this.#deadlines.delete(this);
    this.#stopWatchingClient();
    this.#detachBody?.();
    discardRestOfBody(this.#req, this.#res);
    const worker = this.#worker;
    this.#worker = undefined;
    worker?.detach();
  }

  /** PoolJob: the pool gave this request a worker. */
  start(worker: PythonWorker): void {
    this.#state = 'running';
    this.#worker = worker;
    worker.attach(this);
    const req = this.#req;
    const consumed = consumedBody(req);
    const environ = environOf(req, this.#settings.common, consumed);
    if (consumed !== undefined || !hasRequestBody(req)) {
      // The whole request in one write: environ, body, end.
      worker.sendRaw(requestFrames(environ, consumed ?? emptyBody));
      this.#bodySent = true;
      return;
    }
    worker.sendRaw(requestFrames(environ, undefined));
    this.#streamBody(worker);
  }

  /** The request body to the worker as it arrives, pausing the request while the worker's pipe is full. */
  #streamBody(worker: PythonWorker): void {
    const req = this.#req;
    let undrain: (() => void) | undefined;
    let received = 0;
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (received > this.#settings.maxBodySize) {
        this.#bodyTooLarge(worker);
        return;
      }
      if (!worker.send(ToWorker.body, chunk)) {
        req.pause();
        undrain = worker.onDrain(() => {
          undrain = undefined;
          req.resume();
        });
      }
    };
    const onEnd = (): void => {
      detach();
      this.#bodySent = true;
      worker.send(ToWorker.bodyEnd);
    };
    const detach = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      undrain?.();
      this.#detachBody = undefined;
    };
    this.#detachBody = detach;
    req.on('data', onData);
    req.once('end', onEnd);
  }

  /** PoolJob: the pool cannot serve this request. */
  reject(error: GatewayError): void {
    if (this.#state !== 'queued') return;
    this.#finish();
    this.#fail(error);
  }

  /** WorkerSession: a frame of this request's response. */
  onFrame(frame: Frame, next: Frame | undefined): Promise<void> | undefined {
    const writer = this.#writer;
    switch (frame.type) {
      case FromWorker.startResponse:
      case FromWorker.startResponseJson: {
        if (this.#state !== 'running') return undefined;
        try {
          const { status, headers } = decodeResponseHead(frame);
          const { statusCode, reason } = parseStatusLine(status, 'wsgi start_response()');
          writer.setHead(buildHead(statusCode, reason, headers, 'wsgi start_response()'));
        } catch (error) {
          // Refused by HTTP's rules (a hop-by-hop header, a bad status): 500, the rest of the response dropped.
          this.#state = 'discarding';
          this.#fail(error instanceof GatewayProtocolError ? error : new GatewayProtocolError(`the worker sent an unreadable response head: ${String(error)}`));
          return undefined;
        }
        if (writer.fallsThrough) {
          this.#state = 'discarding';
          writer.end();
        }
        return undefined;
      }
      case FromWorker.body: {
        if (this.#state !== 'running') return undefined;
        if (next?.type === FromWorker.end && !writer.headersSent) {
          // A whole response in one read (the common small page): sent with a Content-Length.
          writer.endWhole(frame.payload);
          return undefined;
        }
        return writer.write(frame.payload);
      }
      case FromWorker.end:
        if (this.#state === 'running') writer.end();
        this.#finish();
        return undefined;
      case FromWorker.failed: {
        let report: { traceback?: string; disconnected?: boolean };
        try {
          report = JSON.parse(frame.payload.toString('utf8')) as typeof report;
        } catch {
          // The runner writes this frame itself; unreadable, it is reported as the failure it announces.
          report = { traceback: `(an unreadable failure report from the worker: ${frame.payload.subarray(0, 200).toString('utf8')})` };
        }
        if (report.disconnected !== true) {
          const error = pythonError(report.traceback ?? '');
          if (this.#state === 'running') this.#fail(error);
          else safeLog(this.#settings.common.logger, `${bridge}: the app failed after its response was given up: ${error.stack}`);
        }
        this.#finish();
        return undefined;
      }
      default:
        return undefined;
    }
  }

  /** WorkerSession: the worker died during this request. */
  onExit(description: string): void {
    const state = this.#state;
    this.#worker = undefined;
    this.#finish();
    if (state !== 'running') return;
    if (this.#writer.headersSent) {
      safeLog(this.#settings.common.logger, `${bridge}: the worker ${description} mid-response; connection cut`);
      this.#writer.abort();
    } else this.#fail(new GatewayError('bad-gateway', 'The Python worker ended before it completed a response.'));
  }

  /** Expiring: the timeout passed (the deadline list already forgot this request). */
  expire(): void {
    const { timeout, common } = this.#settings;
    if (this.#state === 'queued') {
      this.#pool.withdraw(this);
      this.#finish();
      this.#fail(new GatewayError('gateway-timeout', `No Python worker became free within ${timeout} ms.`));
      return;
    }
    const worker = this.#worker;
    const state = this.#state;
    this.#worker = undefined; // Not handed back: it is killed and the pool replaces it.
    this.#finish();
    worker?.kill();
    if (state !== 'running') return;
    if (this.#writer.headersSent) {
      safeLog(common.logger, `${bridge}: the app overran its ${timeout} ms timeout mid-response; worker ${worker?.pid} killed, connection cut`);
      this.#writer.abort();
    } else {
      this.#fail(new GatewayError('gateway-timeout', `The Python app did not answer within ${timeout} ms.`));
      safeLog(common.logger, `${bridge}: worker ${worker?.pid} killed after the ${timeout} ms timeout`);
    }
  }

  /** A chunked body passed maxBodySize: the app sees the client leave, the client gets 413 (or a cut connection). */
  #bodyTooLarge(worker: PythonWorker): void {
    const { maxBodySize, common } = this.#settings;
    this.#state = 'discarding';
    this.#detachBody?.();
    // Removing the data listener does not stop a flowing stream.
    this.#req.pause();
    worker.send(ToWorker.abort);
    this.#bodySent = true;
    worker.send(ToWorker.bodyEnd);
    const why = `the chunked body passed maxBodySize (${maxBodySize}); the rest was left unread`;
    if (this.#writer.headersSent) {
      safeLog(common.logger, `${bridge}: ${describeRequest(this.#req)}: ${why}; connection cut`);
      this.#writer.abort();
    } else refuseTooLarge(this.#req, this.#res, this.#writer, { where: bridge, logger: common.logger, maxBodySize }, why);
  }

  /**
   * The client left. Queued: forgotten. Running: the worker is told (an abort
   * frame, which ends a generator at its next chunk and fails wsgi.input
   * reads) and its output is dropped until it finishes, within the timeout.
   */
  #clientGone(): void {
    if (this.#state === 'queued') {
      this.#pool.withdraw(this);
      this.#finish();
      return;
    }
    if (this.#state !== 'running') return;
    this.#state = 'discarding';
    this.#detachBody?.();
    const worker = this.#worker;
    if (worker === undefined) return;
    worker.send(ToWorker.abort);
    if (!this.#bodySent) {
      this.#bodySent = true;
      worker.send(ToWorker.bodyEnd);
    }
  }
}

/** The app's exception, logged with its Python traceback (never sent to the client). */
function pythonError(traceback: string): Error {
  const lastLine = traceback.trimEnd().split('\n').pop() ?? 'the app failed';
  const error = new Error(lastLine);
  error.name = 'PythonError';
  error.stack = traceback.trimEnd() || lastLine;
  return error;
}

/**
 * Mounts a Python WSGI app run by preforked worker processes:
 *
 *     const hello = pythonWsgi('hello:app', { cwd: './py', workers: 2 });
 *     app.use('/hello', hello);
 *     // on shutdown: await hello.close();
 */
export function pythonWsgi(appSpec: string, options?: PythonWsgiOptions): PythonWsgiMiddleware {
  const settings = resolveOptions(appSpec, options);
  const { common } = settings;
  const pool = new PythonWorkerPool({
    python: settings.python,
    runner: runnerPath(),
    appSpec,
    cwd: settings.cwd,
    env: settings.env,
    workers: settings.workers,
    maxRequests: settings.maxRequests,
    maxRequestsJitter: settings.maxRequestsJitter,
    maxQueue: settings.maxQueue,
    killGrace: settings.killGrace,
    logger: common.logger,
  });

  const deadlines = new Deadlines<Exchange>(settings.timeout);

  const middleware = function pythonWsgiMiddleware(req: IncomingMessage, res: ServerResponse, next?: NextFunction): void {
    const writer = new ResponseWriter(req, res, { options: common, next, missingHeadMessage: `${bridge}: no response head` });
    const tooLarge = consumedBody(req) === undefined ? declaredOverLimit(req, settings.maxBodySize) : undefined;
    if (tooLarge !== undefined) {
      refuseTooLarge(req, res, writer, { where: bridge, logger: common.logger, maxBodySize: settings.maxBodySize }, tooLarge);
      return;
    }
    const exchange = new Exchange(req, res, writer, settings, pool, deadlines);
    if (exchange.finished) return;
    const result = pool.submit(exchange);
    if (result === 'started' || result === 'queued') return;
    if (result === 'cannot-start') {
      exchange.reject(new GatewayError('bad-gateway', 'The Python application could not be started; the server log says why.'));
      return;
    }
    exchange.reject(
      new GatewayError(
        'service-unavailable',
        result === 'closed'
          ? 'The Python app is shutting down.'
          : `All ${settings.workers} Python workers are busy and ${settings.maxQueue} requests are already waiting; retry shortly.`,
      ),
    );
  } as PythonWsgiMiddleware;
  Object.defineProperty(middleware, 'workerPids', { get: () => pool.pids, enumerable: true });
  Object.defineProperty(middleware, 'load', { get: () => pool.load, enumerable: true });
  middleware.ready = () => pool.ready();
  middleware.close = () => pool.close();
  return middleware;
}
