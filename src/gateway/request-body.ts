/**
 * How the bridges that hand a body to another program (CGI, FastCGI) receive
 * it: none, already read by a parser, streamed when its length is declared, or
 * spooled (memory, then an unlinked file) when it comes chunked, so the program
 * still gets a CONTENT_LENGTH. Past `maxBodySize` the answer is 413, logged with
 * the reason, and the connection closes (the rest stays unread).
 */
import { statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { originalTarget } from './environ.js';
import { GatewayError } from './errors.js';
import { consumedBody, hasRequestBody } from './input.js';
import { checkPositiveNumber, reportEscaped, safeLog } from './options.js';
import type { ResponseWriter } from './response-writer.js';
import { SpoolBudget, spoolRequestBody, type SpooledBody } from './spool.js';
import type { GatewayLogger } from './types.js';

/** A request body as a program gets it. `stream`: read from the request as it arrives, its length declared. */
export type ProgramInput = { kind: 'none' } | { kind: 'stream' } | SpooledBody;

export interface BodyLimits {
  /** The bridge's name in logs and problems (`cgi`, `fastcgi`). */
  readonly where: string;
  readonly logger: GatewayLogger;
  readonly maxBodySize: number;
  readonly spoolThreshold: number;
  readonly tempDir: string;
  /** What the bridge's chunked bodies may hold at once (`maxSpoolTotal`). */
  readonly spool: SpoolBudget;
}

/** The `maxBodySize` of every bridge that reads request bodies, unless set: 1 GiB. */
export const defaultMaxBodySize = 1024 * 1024 * 1024;

/** The options `receiveBody` reads, in the option lists of `cgi()` and `fastcgi()`. */
export const bodyOptionNames = ['maxBodySize', 'spoolThreshold', 'maxSpoolTotal', 'tempDir'] as const;

/** `cgi()`'s and `fastcgi()`'s body options, checked once, at factory time. */
export function resolveBodyLimits(where: string, raw: Record<string, unknown>, logger: GatewayLogger): BodyLimits {
  const maxBodySize = checkPositiveNumber(where, 'maxBodySize', raw.maxBodySize, defaultMaxBodySize);
  const spoolThreshold = checkPositiveNumber(where, 'spoolThreshold', raw.spoolThreshold, 1024 * 1024);
  // By default 1 GiB, or one largest body: concurrent uploads share it, and one past it is a 503.
  const maxSpoolTotal = checkPositiveNumber(where, 'maxSpoolTotal', raw.maxSpoolTotal, Math.max(maxBodySize, defaultMaxBodySize));
  const tempDir = raw.tempDir ?? tmpdir();
  let isDirectory = false;
  try {
    isDirectory = typeof tempDir === 'string' && statSync(tempDir).isDirectory();
  } catch {
    // Missing or unreadable: refused below.
  }
  if (!isDirectory) throw new TypeError(`${where}(): option "tempDir" (${JSON.stringify(tempDir)}) is not a directory`);
  return { where, logger, maxBodySize, spoolThreshold, tempDir: tempDir as string, spool: new SpoolBudget(maxSpoolTotal) };
}

/**
 * The response is over and the rest of the body is unwanted: read and drop
 * it, as Node does for a body nobody read. A bridge pauses the request for
 * backpressure, and Node skips its own drain for a request that was read
 * from, so a paused remainder would stall the keep-alive connection. Not when
 * the response closes the connection (a 413): the rest stays unread.
 */
export function discardRestOfBody(req: IncomingMessage, res: ServerResponse): void {
  if (!req.complete && String(res.getHeader('connection')).toLowerCase() !== 'close') req.resume();
}

/** `METHOD /target` of a request, for log lines. */
export function describeRequest(req: IncomingMessage): string {
  return `${req.method ?? 'GET'} ${originalTarget(req)}`;
}

/** Why a declared Content-Length is over `maxBodySize`, or undefined when it is not (or none is declared). */
export function declaredOverLimit(req: IncomingMessage, maxBodySize: number): string | undefined {
  const declared = req.headers['content-length'];
  if (declared === undefined || !(Number(declared) > maxBodySize)) return undefined;
  return `Content-Length ${declared} is over maxBodySize (${maxBodySize})`;
}

/** Answers 413 (logged with `why`) and closes the connection after it: the rest of the body stays unread. */
export function refuseTooLarge(
  req: IncomingMessage,
  res: ServerResponse,
  writer: ResponseWriter,
  limits: Pick<BodyLimits, 'where' | 'logger' | 'maxBodySize'>,
  why: string,
): void {
  safeLog(limits.logger, `${limits.where}: 413 for ${describeRequest(req)}: ${why}`);
  failLeavingBodyUnread(res, writer, new GatewayError('payload-too-large', `The request body is larger than ${limits.maxBodySize} bytes.`), limits.where);
}

/** Answers `error` and closes the connection after it: the rest of the request body stays unread (see `discardRestOfBody`). */
function failLeavingBodyUnread(res: ServerResponse, writer: ResponseWriter, error: unknown, where: string): void {
  res.setHeader('Connection', 'close');
  writer.fail(error, where);
}

/** Answers 503 (the writer logs it, as every 5xx) and closes the connection after it: the bridge holds `maxSpoolTotal` of chunked bodies already. */
function overBudget(res: ServerResponse, writer: ResponseWriter, limits: BodyLimits): void {
  res.setHeader('Retry-After', '1');
  const detail = `The server is receiving as many request bodies as it holds at once (maxSpoolTotal, ${limits.spool.limit} bytes); retry shortly.`;
  failLeavingBodyUnread(res, writer, new GatewayError('service-unavailable', detail), limits.where);
}

/** Calls `run` with the body once it can be handed over, or answers 413, 503 or the failure. */
export function receiveBody(
  req: IncomingMessage,
  res: ServerResponse,
  writer: ResponseWriter,
  limits: BodyLimits,
  run: (input: ProgramInput) => void,
): void {
  const { where, maxBodySize } = limits;
  const tooLarge = (why: string): void => refuseTooLarge(req, res, writer, limits, why);
  const consumed = consumedBody(req);
  const declared = req.headers['content-length'];
  if (!hasRequestBody(req)) run({ kind: 'none' });
  else if (consumed !== undefined) run({ kind: 'memory', data: consumed });
  else if (declared !== undefined) {
    const over = declaredOverLimit(req, maxBodySize);
    if (over !== undefined) tooLarge(over);
    else run({ kind: 'stream' });
  } else {
    // Held from the budget until the answer is sent or the connection closes.
    const share = limits.spool.share();
    res.once('finish', share.release);
    res.once('close', share.release);
    // A chunked body larger than all the spool holds could never fit: a 413, not a 503 to retry forever.
    const chunkedLimit = Math.min(maxBodySize, limits.spool.limit);
    const limitName = chunkedLimit < maxBodySize ? 'maxSpoolTotal' : 'maxBodySize';
    spoolRequestBody(req, { memoryLimit: limits.spoolThreshold, maxSize: chunkedLimit, directory: limits.tempDir, take: share.take })
      .then((body) => {
        if (body.kind !== 'memory' && body.kind !== 'file') share.release();
        if (body.kind === 'gone') return;
        if (body.kind === 'too-large') refuseTooLarge(req, res, writer, { ...limits, maxBodySize: chunkedLimit }, `the chunked body passed ${limitName} (${chunkedLimit}); the rest was left unread`);
        else if (body.kind === 'over-budget') overBudget(res, writer, limits);
        // A temporary file could not be written.
        else if (body.kind === 'failed') failLeavingBodyUnread(res, writer, body.error, where);
        else if (writer.clientGone) {
          share.release();
          if (body.kind === 'file') void body.file.close();
        } else {
          try {
            run(body);
          } catch (error) {
            // The spooled file is closed (it may be already), and the client answered, or cut if the answer had begun.
            if (body.kind === 'file') body.file.close().catch(() => {});
            writer.fail(error, where);
          }
        }
      })
      .catch((error: unknown) => reportEscaped(limits.logger, where, error));
  }
}
