/**
 * Request bodies: JSON only, read with a size cap enforced while reading, and
 * compatible with body parsers that already ran (express.json() and friends).
 */
import type { IncomingMessage } from 'node:http';
import contentType from 'content-type';
import { JsonStoreError } from '../errors.js';
import { faultOf, type JsonValue } from '../document/json.js';
import { displayPath } from '../document/path.js';
import { locateJsonSyntaxError } from './json-syntax.js';

/** How a body is to be understood. */
export type BodyKind = 'json' | 'merge-patch' | 'json-patch';

export const acceptedPatchTypes = ['application/merge-patch+json', 'application/json-patch+json'] as const;

/**
 * Content types: `application/json` or `application/*+json` are JSON; for
 * PATCH, `application/json-patch+json` selects RFC 6902 and the others
 * RFC 7396. Only UTF-8 is accepted. A body without a content type is refused
 * like form data: those are what a page on any site may send without a CORS
 * preflight (`no-cors` fetch, `sendBeacon`, forms), so taking them as JSON
 * would let any site write to a store the browser can reach.
 */
export function bodyKindOf(header: string | undefined, method: string): BodyKind {
  const isPatch = method === 'PATCH';
  if (header === undefined || header.trim() === '') throw unsupported(undefined, isPatch);
  let type: string;
  let charset: string | undefined;
  try {
    const parsed = contentType.parse(header);
    type = parsed.type;
    charset = parsed.parameters['charset'];
  } catch {
    throw unsupported(header, isPatch);
  }
  if (charset !== undefined && charset.toLowerCase() !== 'utf-8') {
    throw new JsonStoreError('unsupported-media-type', `The body must be UTF-8 JSON; charset=${charset} is not supported`, {
      headers: isPatch ? { 'Accept-Patch': acceptedPatchTypes.join(', ') } : {},
    });
  }
  if (isPatch && type === 'application/json-patch+json') return 'json-patch';
  if (type === 'application/json' || (type.startsWith('application/') && type.endsWith('+json'))) {
    return isPatch ? 'merge-patch' : 'json';
  }
  throw unsupported(header, isPatch);
}

function unsupported(header: string | undefined, isPatch: boolean): JsonStoreError {
  const accepted = isPatch
    ? 'application/merge-patch+json, application/json-patch+json or application/json'
    : 'application/json (or any application/*+json type)';
  // curl -d sends form data, and curl without -H or --json no type at all: say how to fix that.
  const curl = ' (with curl, use --json or -H "Content-Type: application/json")';
  const detail =
    header === undefined
      ? `The request has no Content-Type; send the body as ${accepted}${curl}`
      : `Content-Type ${JSON.stringify(header)} is not accepted; send ${accepted}${header.toLowerCase().startsWith('application/x-www-form-urlencoded') ? curl : ''}`;
  return new JsonStoreError('unsupported-media-type', detail, {
    headers: isPatch ? { 'Accept-Patch': acceptedPatchTypes.join(', ') } : {},
  });
}

/** What a body parser that ran before us may have left on the request. */
interface ParsedRequest extends IncomingMessage {
  body?: unknown;
  _body?: boolean;
}

function tooLarge(limit: number): JsonStoreError {
  return new JsonStoreError('payload-too-large', `The request body is larger than the limit of ${limit} bytes (the limit option)`, {
    headers: { Connection: 'close' },
  });
}

/** Reads the raw body, refusing as soon as it passes `limit` bytes. */
export function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) return Promise.reject(tooLarge(limit));
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let finished = false;
    const finish = (error: JsonStoreError | undefined) => {
      if (finished) return;
      finished = true;
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('aborted', onAborted);
      if (error) {
        // Discard the rest rather than buffer it; the answer closes the connection.
        req.resume();
        reject(error);
      } else {
        resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, size));
      }
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) finish(tooLarge(limit));
      else chunks.push(chunk);
    };
    const onEnd = () => finish(undefined);
    const onError = () => finish(new JsonStoreError('bad-request', 'The request body could not be read'));
    const onAborted = () => finish(new JsonStoreError('bad-request', 'The client went away while sending the body'));
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('aborted', onAborted);
  });
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses a JSON body, saying where it broke when it is not JSON. */
export function parseJson(bytes: Buffer | string, maxDepth: number): JsonValue {
  let text: string;
  if (typeof bytes === 'string') {
    text = bytes;
  } else {
    try {
      text = utf8.decode(bytes);
    } catch {
      throw new JsonStoreError('invalid-json', 'The request body is not valid UTF-8');
    }
  }
  if (text.trim() === '') throw new JsonStoreError('invalid-json', 'The request body is empty; send a JSON value (for example {} or "text")');
  let value: JsonValue;
  try {
    value = JSON.parse(text) as JsonValue;
  } catch (error) {
    const where = locateJsonSyntaxError(text);
    const detail = where
      ? `The request body is not valid JSON: at line ${where.line}, column ${where.column}, ${where.reason}`
      : `The request body is not valid JSON: ${(error as Error).message}`;
    throw new JsonStoreError('invalid-json', detail);
  }
  return checkBody(value, maxDepth);
}

/**
 * Refuses what JSON.parse accepts but the store must not: nesting deeper than
 * `maxDepth`, and numbers too large for a double (`1e400` parses as Infinity,
 * which every serialization, the journal's included, would write as null).
 */
export function checkBody(value: JsonValue, maxDepth: number): JsonValue {
  const fault = faultOf(value, maxDepth);
  if (fault?.kind === 'too-deep') {
    throw new JsonStoreError('too-deep', `The request body nests more than ${maxDepth} levels deep (the maxDepth option)`);
  }
  if (fault?.kind === 'not-finite') {
    const what = fault.path.length === 0 ? 'The request body is a number' : `The number at ${displayPath(fault.path)} in the request body is`;
    throw new JsonStoreError(
      'invalid-json',
      `${what} out of range: it reads as ${fault.value}, which JSON cannot represent; numbers must lie between -1.7976931348623157e308 and 1.7976931348623157e308`,
    );
  }
  return value;
}

function describeParsed(body: unknown): string {
  if (body === undefined) return 'nothing';
  try {
    const text = JSON.stringify(body);
    return text === undefined ? typeof body : text.length > 40 ? `${text.slice(0, 40)}…` : text;
  } catch {
    return typeof body;
  }
}

/**
 * The request's JSON body, whether it is still on the wire or a body parser
 * already read it.
 */
export async function jsonBodyOf(req: IncomingMessage, limit: number, maxDepth: number): Promise<JsonValue> {
  const parsed = req as ParsedRequest;
  if (parsed._body === true || req.readableEnded) {
    // Another parser read the body under its own limit; ours still holds.
    if (Number(req.headers['content-length']) > limit) throw tooLarge(limit);
    const body = parsed.body;
    // express.json() reads an empty body as {}: storing that would erase the target.
    if (req.headers['content-length']?.trim() === '0') {
      throw new JsonStoreError(
        'invalid-json',
        `The request body is empty; send a JSON value (for example {} or "text"). A body parser before the store (such as express.json()) read it as ${describeParsed(body)}, which the store does not take for the body`,
      );
    }
    // express.raw() leaves bytes; a JSON parser (express.json(), even with
    // strict: false, where a body may parse to a string) leaves the value.
    if (Buffer.isBuffer(body)) return parseJson(body, maxDepth);
    // A string is either a text parser's raw body, which is exactly
    // Content-Length bytes, or a JSON string value, which is always shorter
    // than the body it was parsed from (by its quotes, at least).
    if (typeof body === 'string' && Buffer.byteLength(body) === Number(req.headers['content-length'])) return parseJson(body, maxDepth);
    // body-parser 1 marks what it parsed with `_body`; body-parser 2
    // (Express 5) does not, and leaves the value on a fully read request.
    if (body !== undefined) return checkBody(body as JsonValue, maxDepth);
    throw new JsonStoreError(
      'internal-error',
      'The request body was consumed by another middleware before the store could read it, and it left no parsed body. ' +
        "Mount the store before that middleware (app.use('/store', jsonStore()) first: the store answers every request under its path), " +
        'or keep that middleware off the store path (give it a path, or a type option that does not match application/json)',
    );
  }
  const encoding = req.headers['content-encoding'];
  if (encoding !== undefined && encoding.trim().toLowerCase() !== 'identity') {
    throw new JsonStoreError('unsupported-media-type', `Content-Encoding ${JSON.stringify(encoding)} is not supported; send the body uncompressed`);
  }
  return parseJson(await readBody(req, limit), maxDepth);
}
