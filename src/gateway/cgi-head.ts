/**
 * A CGI script's header block (RFC 3875 section 6.3), read from the start of
 * its stdout: found past LF or CRLF line ends, held to a size limit, and
 * parsed into a response head or a local redirect. Pure: the process
 * handling around it is `cgi.ts`. Anything malformed is a 502 `GatewayError`.
 */
import { GatewayError, GatewayProtocolError } from './errors.js';
import { safeLog } from './options.js';
import { buildHead, isToken, parseStatusLine, type ResponseHead } from './response-head.js';
import type { GatewayLogger } from './types.js';

/** What the header block asks for: a response to send, or a local redirect to serve instead. */
export type CgiHead =
  | { kind: 'response'; head: ResponseHead }
  | { kind: 'local-redirect'; location: string };

/** A complete header block: what it asks for, and the body bytes that arrived with it (possibly none). */
export interface CompleteCgiHead {
  head: CgiHead;
  body: Buffer;
}

// Names the checks in messages ("... malformed response: cgi: header name ...").
const where = 'cgi';

/** How every malformed-response message starts (the rest quotes the script's output). */
export const malformedPrefix = 'The CGI script sent a malformed response';

function malformed(why: string): GatewayError {
  return new GatewayError('bad-gateway', `${malformedPrefix}: ${why}.`);
}

/**
 * Where the header block ends and the body starts (after the blank line), or
 * undefined if not yet seen. LF or CRLF line ends. `from` is where to resume
 * the search (a little before the end of what an earlier call saw).
 */
function headerEnd(buffer: Buffer, from: number): { headerLength: number; bodyStart: number } | undefined {
  if (buffer[0] === 10) return { headerLength: 0, bodyStart: 1 };
  if (buffer[0] === 13 && buffer[1] === 10) return { headerLength: 0, bodyStart: 2 };
  let index = Math.max(0, from);
  for (;;) {
    const newline = buffer.indexOf(10, index);
    if (newline === -1 || newline + 1 >= buffer.length) return undefined;
    if (buffer[newline + 1] === 10) return { headerLength: newline, bodyStart: newline + 2 };
    if (buffer[newline + 1] === 13) {
      if (newline + 2 >= buffer.length) return undefined;
      if (buffer[newline + 2] === 10) return { headerLength: newline, bodyStart: newline + 3 };
    }
    index = newline + 1;
  }
}

/**
 * Reads the header block's text (without the blank line). A `Status` field
 * sets the status; a `Location` alone is a local redirect for `/path`, a 302
 * for an absolute URI; at least one of those or `Content-Type` is required.
 */
export function parseCgiHead(text: string): CgiHead {
  const lines = text.split('\n').map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  let status: { statusCode: number; reason: string | undefined } | undefined;
  let location: string | undefined;
  let contentType = false;
  const pairs: Array<[string, string]> = [];
  for (const line of lines) {
    if (line === '') throw malformed('no header fields');
    if (line.startsWith(' ') || line.startsWith('\t')) throw malformed('folded header line');
    const colon = line.indexOf(':');
    const name = colon === -1 ? line : line.slice(0, colon);
    if (colon <= 0 || !isToken(name)) throw malformed(`invalid header line ${JSON.stringify(line.slice(0, 80))}`);
    const value = line.slice(colon + 1).trim();
    const lower = name.toLowerCase();
    if (lower === 'status') {
      if (status !== undefined) throw malformed('more than one Status field');
      try {
        status = parseStatusLine(value, 'Status', false);
      } catch (error) {
        throw malformed(error instanceof Error ? error.message : 'invalid Status field');
      }
      continue;
    }
    if (lower === 'location') location = value;
    if (lower === 'content-type') contentType = true;
    pairs.push([name, value]);
  }
  if (status === undefined && location === undefined && !contentType) {
    throw malformed('it needs a Content-Type, Location or Status field');
  }
  if (status === undefined && location !== undefined) {
    // "/path": the server answers as if that path had been requested (local
    // redirect); an absolute URI is a redirect for the client (302).
    if (location.startsWith('/') && !location.startsWith('//')) return { kind: 'local-redirect', location };
    status = { statusCode: 302, reason: undefined };
  }
  const { statusCode, reason } = status ?? { statusCode: 200, reason: undefined };
  try {
    return { kind: 'response', head: buildHead(statusCode, reason, pairs, where, true) };
  } catch (error) {
    throw malformed(error instanceof GatewayProtocolError ? error.message : String(error));
  }
}

/**
 * Collects the script's stdout until its header block is complete. One per
 * script run; the block may arrive split across any number of chunks.
 */
export class CgiHeadReader {
  readonly #maxHeaderSize: number;
  #chunks: Buffer[] = [];
  #bytes = 0;

  /** `maxHeaderSize`: the largest header block accepted, in bytes. */
  constructor(maxHeaderSize: number) {
    this.#maxHeaderSize = maxHeaderSize;
  }

  /**
   * Takes the next chunk of stdout; undefined while the block is incomplete.
   * Throws a 502 `GatewayError` for a block over the limit or malformed.
   */
  push(chunk: Buffer): CompleteCgiHead | undefined {
    // The blank line may straddle the previous chunk's end.
    const searchFrom = this.#bytes - 2;
    this.#chunks.push(chunk);
    this.#bytes += chunk.length;
    const buffer = this.#chunks.length === 1 ? chunk : Buffer.concat(this.#chunks, this.#bytes);
    this.#chunks = [buffer];
    const end = headerEnd(buffer, searchFrom);
    if (end === undefined || end.headerLength > this.#maxHeaderSize) {
      if (this.#bytes > this.#maxHeaderSize) {
        throw new GatewayError('bad-gateway', `The CGI script's header block is larger than ${this.#maxHeaderSize} bytes.`);
      }
      return undefined;
    }
    this.#chunks = [];
    return { head: parseCgiHead(buffer.toString('latin1', 0, end.headerLength)), body: buffer.subarray(end.bodyStart) };
  }
}

/**
 * A malformed header block is the script's fault, but its text is the
 * script's output, which may hold anything: the details go to the log
 * (prefixed with `prefix`) and the client gets a detail quoting none of it.
 * `subject` names the program in that detail.
 */
export function withoutScriptOutput(error: unknown, logger: GatewayLogger, prefix: string, subject = 'The CGI script'): GatewayError {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof GatewayError && !message.startsWith(malformedPrefix)) return error;
  safeLog(logger, `${prefix}: ${message}`);
  return new GatewayError('bad-gateway', `${subject} sent a malformed response (details in the server log).`);
}
