/**
 * CGI/1.1 (RFC 3875): one process per request. The request goes in as
 * meta-variables in a clean environment and the body on stdin; the response
 * comes back as a CGI header block (with `Status` and `Location`, read by
 * `cgi-head.ts`) and a body on stdout. The child runs under a deadline and is
 * killed (its whole process group, SIGTERM then SIGKILL) when it overruns or
 * the client goes away; a local redirect is served by re-dispatching.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants as fsConstants, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { basename, dirname, resolve } from 'node:path';
import { CgiHeadReader, withoutScriptOutput, type CompleteCgiHead } from './cgi-head.js';
import { cgiVariables, originalTarget, requestTarget } from './environ.js';
import { GatewayError } from './errors.js';
import { bodyOptionNames, describeRequest, discardRestOfBody, receiveBody, resolveBodyLimits, type ProgramInput } from './request-body.js';
import { LineLogStream } from './log-stream.js';
import { checkBoolean, checkOptionObject, checkPositiveNumber, commonOptionNames, resolveCommonOptions, safeLog } from './options.js';
import { buildHead } from './response-head.js';
import { ResponseWriter } from './response-writer.js';
import type { GatewayMiddleware, GatewayOptions, NextFunction } from './types.js';

export interface CgiOptions extends GatewayOptions {
  /** Milliseconds the script may take for its whole response; past it: 504 (or a cut connection) and the script killed. Default 30000. */
  timeout?: number;
  /** Milliseconds between SIGTERM and SIGKILL when the script must be stopped. Default 2000. */
  killGrace?: number;
  /** Largest CGI header block accepted from the script, in bytes; a larger one is a 502. Default 65536. */
  maxHeaderSize?: number;
  /**
   * Largest request body accepted, in bytes; a larger one gets 413 (a
   * declared Content-Length before the script starts, a chunked body as soon
   * as it passes the limit). Default 1 GiB: big enough for a `git push` of a
   * large repository, small enough that one client cannot fill the disk.
   */
  maxBodySize?: number;
  /**
   * A chunked request body is read in full before the script starts, because
   * RFC 3875 (and PHP, and git) need CONTENT_LENGTH. Up to this many bytes
   * it is kept in memory; past it, it is spooled to an unlinked temporary
   * file in `tempDir` that becomes the script's stdin (nginx's
   * `client_body_buffer_size` / `client_body_temp`). Default 1 MiB.
   */
  spoolThreshold?: number;
  /**
   * The most bytes of chunked request bodies held at once, in memory and in
   * `tempDir`, across all requests to this middleware: a body that would go
   * past it is answered 503 with `Retry-After: 1`, its rest left unread.
   * `maxBodySize` bounds one body; this bounds them all, so that concurrent
   * uploads cannot fill the disk (a chunked body larger than this alone is
   * a 413). Default 1 GiB, or `maxBodySize` if that is larger.
   */
  maxSpoolTotal?: number;
  /** Directory for spooled request bodies. Default: `os.tmpdir()`. */
  tempDir?: string;
  /**
   * Extra environment variables for the script (PATH by default comes from
   * this process), or a function of the request returning them, called per
   * request. They may override SCRIPT_FILENAME, REQUEST_URI and
   * REDIRECT_STATUS (mount `/usr/bin/php-cgi` with
   * `env: () => ({ SCRIPT_FILENAME: '/srv/app/index.php' })`); the RFC 3875
   * meta-variables and HTTP_* always come from the request.
   */
  env?: Readonly<Record<string, string>> | ((req: IncomingMessage) => Readonly<Record<string, string>>);
  /** Working directory of the script. Default: the script's own directory, as RFC 3875 recommends. */
  cwd?: string;
  /**
   * Pass the `Authorization` header as HTTP_AUTHORIZATION. Off by default:
   * RFC 3875 says a server should not hand credentials to scripts
   * (Apache's CGIPassAuth); turn it on for scripts that do their own auth.
   */
  passAuthorization?: boolean;
}

const defaultPath = '/usr/local/bin:/usr/bin:/bin';
const maxLocalRedirects = 10;
const redirectDepth = Symbol('express-jsonstore.cgi.redirectDepth');

/** What Express adds to a request that a local redirect re-dispatches. */
interface ExpressLikeApp {
  handle(req: IncomingMessage, res: ServerResponse): void;
  parent?: unknown;
}
interface RedirectableRequest extends IncomingMessage {
  app?: unknown;
  originalUrl?: string;
  baseUrl?: string;
  query?: unknown;
  [redirectDepth]?: number;
}

function isApp(value: unknown): value is ExpressLikeApp {
  const isObject = typeof value === 'function' || (typeof value === 'object' && value !== null);
  return isObject && typeof (value as { handle?: unknown }).handle === 'function';
}

/** The top-level Express app of a request, for re-dispatching a local redirect. */
function rootApp(req: RedirectableRequest): ExpressLikeApp | undefined {
  const app = req.app;
  if (!isApp(app)) return undefined;
  let root: ExpressLikeApp = app;
  while (isApp(root.parent)) root = root.parent;
  return root;
}

/** Checks the script once, at factory time: it must exist, be a file and be executable. */
function checkScript(scriptPath: unknown): string {
  if (typeof scriptPath !== 'string' || scriptPath === '') {
    throw new TypeError(`cgi(): scriptPath must be a non-empty string, got ${typeof scriptPath}`);
  }
  const absolute = resolve(scriptPath);
  let isFile: boolean;
  try {
    isFile = statSync(absolute).isFile();
  } catch {
    throw new TypeError(`cgi(): scriptPath '${scriptPath}' does not exist`);
  }
  if (!isFile) throw new TypeError(`cgi(): scriptPath '${scriptPath}' is not a file`);
  try {
    accessSync(absolute, fsConstants.X_OK);
  } catch {
    throw new TypeError(`cgi(): scriptPath '${scriptPath}' is not executable (chmod +x it)`);
  }
  return absolute;
}

function checkEnv(value: unknown): Record<string, string> {
  if (value === undefined) return {};
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TypeError(`cgi(): option "env" must be an object of strings or a function of the request returning one`);
  }
  const env: Record<string, string> = {};
  for (const [name, entry] of Object.entries(value)) {
    if (name === '' || name.includes('=') || name.includes('\0') || typeof entry !== 'string' || entry.includes('\0')) {
      throw new TypeError(`cgi(): option "env" has an invalid entry '${name}' (names without '=' or NUL, string values)`);
    }
    env[name] = entry;
  }
  return env;
}

function checkDirectory(name: string, value: unknown): string {
  if (typeof value !== 'string') throw new TypeError(`cgi(): option "${name}" must be a string`);
  try {
    if (!statSync(value).isDirectory()) throw new Error('not a directory');
  } catch {
    throw new TypeError(`cgi(): option "${name}" (${JSON.stringify(value)}) is not a directory`);
  }
  return value;
}

/** What goes to the script's stdin. */

/** Mounts an executable as a CGI/1.1 script: `app.use('/cgi-bin/info', cgi('./info.sh'))`. */
export function cgi(scriptPath: string, options?: CgiOptions): GatewayMiddleware {
  const script = checkScript(scriptPath);
  const raw = checkOptionObject('cgi', options, [
    ...commonOptionNames,
    'timeout',
    'killGrace',
    'maxHeaderSize',
    ...bodyOptionNames,
    'env',
    'cwd',
    'passAuthorization',
  ]);
  const common = resolveCommonOptions('cgi', raw);
  const timeout = checkPositiveNumber('cgi', 'timeout', raw.timeout, 30_000);
  const killGrace = checkPositiveNumber('cgi', 'killGrace', raw.killGrace, 2_000);
  const maxHeaderSize = checkPositiveNumber('cgi', 'maxHeaderSize', raw.maxHeaderSize, 64 * 1024);
  const passAuthorization = checkBoolean('cgi', 'passAuthorization', raw.passAuthorization, false);
  const envOption = raw.env;
  const envOf: (req: IncomingMessage) => Record<string, string> =
    typeof envOption === 'function' ? (req) => checkEnv((envOption as (req: IncomingMessage) => unknown)(req)) : (() => {
      const fixed = checkEnv(envOption);
      return () => fixed;
    })();
  const cwd = checkDirectory('cwd', raw.cwd ?? dirname(script));
  // Not in RFC 3875, but what PHP and most CGI programs read (Apache sets
  // them): the env option may replace them.
  const serverVariables = { PATH: process.env.PATH ?? defaultPath, SCRIPT_FILENAME: script, REDIRECT_STATUS: '200' };
  const where = 'cgi';
  const scriptLabel = basename(script);

  /** The request as the log names it. */
  const bodyLimits = resolveBodyLimits(where, raw, common.logger);

  /** Runs the script for one request, with `input` as its stdin. */
  function run(req: IncomingMessage, res: ServerResponse, writer: ResponseWriter, input: ProgramInput): void {
    const target = requestTarget(req);
    const variables = cgiVariables(req, target, {
      trustProxy: common.trustProxy,
      omitEmptyContent: true,
      contentLength: input.kind === 'memory' ? String(input.data.length) : input.kind === 'file' ? String(input.size) : undefined,
    }) as unknown as Record<string, string>;
    if (!passAuthorization) delete variables.HTTP_AUTHORIZATION;
    delete variables.HTTP_PROXY_AUTHORIZATION;
    let extraEnv: Record<string, string>;
    try {
      extraEnv = envOf(req);
    } catch (error) {
      writer.fail(error, where);
      if (input.kind === 'file') void input.file.close();
      return;
    }
    const env: Record<string, string> = {
      ...serverVariables,
      REQUEST_URI: originalTarget(req),
      ...extraEnv,
      ...variables,
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_SOFTWARE: 'express-jsonstore',
      REMOTE_HOST: variables.REMOTE_ADDR ?? '',
    };

    let child: ChildProcess;
    try {
      // A process group of its own, so a kill reaches whatever the script
      // started. A spooled body is the script's stdin as a file.
      const stdin = input.kind === 'file' ? input.file.reader.fd : 'pipe';
      child = spawn(script, [], { cwd, env, stdio: [stdin, 'pipe', 'pipe'], detached: true });
    } catch (error) {
      writer.fail(new GatewayError('bad-gateway', 'The CGI script could not be started.', { cause: error }), where);
      return;
    } finally {
      // The child holds its own descriptor now.
      if (input.kind === 'file') void input.file.close();
    }

    type Phase = 'head' | 'body' | 'handed-off' | 'done';
    let phase: Phase = 'head';
    const headReader = new CgiHeadReader(maxHeaderSize);
    let closed = false;
    let timedOut = false;
    let stopping = false;
    const stderr = new LineLogStream(common.logger, `${scriptLabel}: `);
    const pid = child.pid;

    const signalGroup = (signal: NodeJS.Signals): void => {
      if (pid === undefined) return;
      try {
        process.kill(-pid, signal);
      } catch {
        // The group is gone (or never formed): the leader alone, if still there.
        if (!closed) {
          try {
            child.kill(signal);
          } catch {
            // Already gone.
          }
        }
      }
    };
    /**
     * SIGTERM to the group, then SIGKILL after killGrace, whether or not the
     * leader is gone by then: a grandchild ignoring SIGTERM must not survive.
     */
    const stop = (): void => {
      if (stopping) return;
      stopping = true;
      signalGroup('SIGTERM');
      setTimeout(() => signalGroup('SIGKILL'), killGrace).unref();
    };
    const failWith = (error: GatewayError): void => {
      phase = 'done';
      writer.fail(error, where);
      stop();
    };

    const deadline = setTimeout(() => {
      timedOut = true;
      if (phase === 'head' || (phase === 'body' && !writer.headersSent)) {
        failWith(new GatewayError('gateway-timeout', `The CGI script ${scriptLabel} did not answer ${describeRequest(req)} within ${timeout} ms.`));
        return;
      }
      if (phase === 'body') {
        safeLog(common.logger, `${where}: ${scriptLabel} overran its ${timeout} ms timeout mid-response to ${describeRequest(req)}; connection cut`);
        phase = 'done';
        writer.abort();
      }
      stop();
    }, timeout);

    const stopOnLeave = writer.onClientGone(() => {
      if (phase !== 'handed-off') phase = 'done';
      stop();
    });

    const writeBody = (chunk: Buffer): void => {
      const wait = writer.write(chunk);
      if (wait) {
        child.stdout?.pause();
        void wait.then(() => child.stdout?.resume());
      }
    };

    const localRedirect = (location: string): void => {
      phase = 'handed-off';
      const redirectable = req as RedirectableRequest;
      const depth = (redirectable[redirectDepth] ?? 0) + 1;
      if (depth > maxLocalRedirects) {
        writer.fail(new GatewayError('bad-gateway', `The CGI script redirected locally more than ${maxLocalRedirects} times.`), where);
        return;
      }
      const app = rootApp(redirectable);
      if (app === undefined) {
        // Not under Express: nothing to re-dispatch to, so let the client follow it.
        writer.setHead(buildHead(302, undefined, [['Location', location]], where));
        writer.end();
        return;
      }
      // As Apache does: the redirected request is a GET without a body.
      redirectable[redirectDepth] = depth;
      if (req.method !== 'HEAD') req.method = 'GET';
      req.url = location;
      redirectable.originalUrl = location;
      redirectable.baseUrl = '';
      delete redirectable.query;
      delete req.headers['content-length'];
      delete req.headers['content-type'];
      delete req.headers['transfer-encoding'];
      writer.release();
      app.handle(req, res);
    };

    const onHeaderData = (chunk: Buffer): void => {
      let read: CompleteCgiHead | undefined;
      try {
        read = headReader.push(chunk);
      } catch (error) {
        failWith(withoutScriptOutput(error, common.logger, `${where}: ${scriptLabel}`));
        return;
      }
      if (read === undefined) return;
      if (read.head.kind === 'local-redirect') {
        localRedirect(read.head.location);
        return;
      }
      writer.setHead(read.head.head);
      if (writer.fallsThrough) {
        phase = 'handed-off'; // The rest of the output is read and dropped.
        writer.end();
        return;
      }
      phase = 'body';
      if (read.body.length > 0) writeBody(read.body);
    };

    child.stdout?.on('data', (chunk: Buffer) => {
      if (phase === 'head') onHeaderData(chunk);
      else if (phase === 'body') writeBody(chunk);
    });
    child.stderr?.on('data', (chunk: Buffer) => stderr.write(chunk));

    const stdin = child.stdin;
    if (stdin) {
      // A script may exit without reading its input; EPIPE is then expected.
      stdin.on('error', () => undefined);
      if (input.kind === 'stream') {
        req.pipe(stdin);
        req.once('error', () => stdin.destroy());
      } else stdin.end(input.kind === 'memory' ? input.data : undefined);
    }

    let settled = false;
    const settle = (code: number | null, signal: NodeJS.Signals | null, spawnError?: Error): void => {
      if (settled) return;
      settled = true;
      closed = true;
      clearTimeout(deadline);
      stopOnLeave();
      stderr.flush();
      if (input.kind === 'stream') {
        req.unpipe(child.stdin ?? undefined);
        discardRestOfBody(req, res);
      }
      if (spawnError !== undefined) {
        if (phase === 'head') failWith(new GatewayError('bad-gateway', 'The CGI script could not be started.', { cause: spawnError }));
        return;
      }
      if (timedOut || phase === 'done' || phase === 'handed-off') return;
      const how = signal !== null ? `was killed by ${signal}` : `exited with status ${code}`;
      if (phase === 'head') {
        failWith(
          new GatewayError(
            'bad-gateway',
            code !== 0 ? `The CGI script ${how} before sending a response.` : 'The CGI script ended without a complete header block.',
          ),
        );
        return;
      }
      // phase === 'body': the head was read and stdout has reached its end.
      phase = 'done';
      if (signal === null) {
        // The script ended on its own after writing all it meant to: the
        // response is whole. A status is the script's business (php-cgi
        // exits 255 after its own 500 page, `exit(3)` after a full page).
        if (code !== 0) safeLog(common.logger, `${where}: ${scriptLabel} ${how} after its response to ${describeRequest(req)}`);
        writer.end();
      } else if (writer.headersSent) {
        safeLog(common.logger, `${where}: ${scriptLabel} ${how} mid-response to ${describeRequest(req)}; connection cut`);
        writer.abort();
      } else writer.fail(new GatewayError('bad-gateway', `The CGI script ${how} before sending a response body.`), where);
    };
    child.once('error', (error) => settle(null, null, error));
    child.once('close', (code, signal) => settle(code, signal));
  }

  return function cgiMiddleware(req: IncomingMessage, res: ServerResponse, next?: NextFunction): void {
    const writer = new ResponseWriter(req, res, { options: common, next, missingHeadMessage: 'cgi: no response head' });
    try {
      receiveBody(req, res, writer, bodyLimits, (input) => run(req, res, writer, input));
    } catch (error) {
      writer.fail(error, where);
    }
  };
}
