/**
 * The pure checks on a response head an app hands over: status code, status
 * line, header names and values, Content-Length. No I/O; a broken rule is a
 * `GatewayProtocolError` naming where it was broken, thrown into the app.
 */
import { GatewayProtocolError } from './errors.js';

/** One response header name as the app spelled it, with all its values in order. */
export interface HeaderField {
  name: string;
  values: string[];
}

/** A checked status and header set, waiting to be sent. */
export interface ResponseHead {
  statusCode: number;
  /** Reason phrase to send; Node's default for the code when undefined. */
  reason: string | undefined;
  /** Keyed by lower-cased name. */
  headers: Map<string, HeaderField>;
  /** The app's own Content-Length, when it declared one. */
  contentLength: number | undefined;
}

/** Connection-level headers (RFC 9110 section 7.6.1); an app may not set them, the server owns them. */
export const hopByHopHeaders: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'trailers',
  'transfer-encoding',
  'upgrade',
]);

const tokenPattern = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// What Node accepts in a header value or reason phrase: tab, visible ASCII, Latin-1.
const invalidFieldChar = /[^\t\x20-\x7e\x80-\xff]/;
const controlChar = /[\x00-\x1f\x7f]/;

/** Whether `name` is an HTTP token (RFC 9110 section 5.6.2), as a header name must be. */
export function isToken(name: string): boolean {
  return tokenPattern.test(name);
}

/** Whether `text` can go out as a header value or reason phrase as it is. */
export function isFieldText(text: string): boolean {
  return !invalidFieldChar.test(text);
}

/** 204 and 304 never carry a body (RFC 9110 sections 15.3.5 and 15.4.5), so nor a Content-Length for one. */
export function statusAllowsBody(statusCode: number): boolean {
  return statusCode !== 204 && statusCode !== 304;
}

function describeCharacter(text: string): string {
  const match = invalidFieldChar.exec(text);
  if (!match) return 'an invalid character';
  const code = match[0].charCodeAt(0);
  if (code === 13) return 'CR';
  if (code === 10) return 'LF';
  if (code === 0) return 'NUL';
  return code > 0xff ? `U+${code.toString(16).toUpperCase().padStart(4, '0')} (outside Latin-1)` : `control character 0x${code.toString(16).padStart(2, '0')}`;
}

/** Checks a status code number: a final status of HTTP (informational 1xx cannot end a response). */
export function checkStatusCode(code: unknown, where: string): number {
  if (typeof code !== 'number' || !Number.isInteger(code) || code < 200 || code > 599) {
    throw new GatewayProtocolError(`${where}: status must be an integer from 200 to 599, got ${JSON.stringify(code) ?? String(code)}`);
  }
  return code;
}

/** Parses a WSGI/CGI status line such as `'200 OK'`. */
export function parseStatusLine(status: unknown, where: string, reasonRequired = true): { statusCode: number; reason: string | undefined } {
  if (typeof status !== 'string') throw new GatewayProtocolError(`${where}: status must be a string such as '200 OK', got ${typeof status}`);
  if (controlChar.test(status)) throw new GatewayProtocolError(`${where}: status ${JSON.stringify(status)} contains a control character`);
  const match = reasonRequired ? /^(\d{3}) (.+)$/.exec(status) : /^(\d{3})(?: (.*))?$/.exec(status);
  if (!match) {
    throw new GatewayProtocolError(
      `${where}: status ${JSON.stringify(status)} must be three digits, a space and a reason phrase, such as '200 OK'`,
    );
  }
  const reason = match[2] === undefined || match[2].trim() === '' ? undefined : match[2];
  if (reason !== undefined && !isFieldText(reason)) {
    throw new GatewayProtocolError(`${where}: reason phrase contains ${describeCharacter(reason)}`);
  }
  return { statusCode: checkStatusCode(Number(match[1]), where), reason };
}

/**
 * Builds a head from header pairs. Names must be tokens, values free of
 * CR/LF/NUL (and Latin-1, as HTTP/1.1 and Node require), hop-by-hop headers
 * are refused (or dropped with `dropHopByHop`, for proxied responses), and
 * Content-Length must be one non-negative integer.
 */
export function buildHead(
  statusCode: number,
  reason: string | undefined,
  pairs: Iterable<readonly [unknown, unknown]>,
  where: string,
  dropHopByHop = false,
): ResponseHead {
  const headers = new Map<string, HeaderField>();
  for (const pair of pairs) {
    const [name, rawValue] = pair;
    if (typeof name !== 'string' || !isToken(name)) {
      throw new GatewayProtocolError(`${where}: header name ${JSON.stringify(name) ?? String(name)} is not a valid HTTP token`);
    }
    // Numbers are accepted as a convenience (Content-Length: 12); anything else is a mistake.
    if (typeof rawValue !== 'string' && !(typeof rawValue === 'number' && Number.isFinite(rawValue))) {
      throw new GatewayProtocolError(`${where}: value of header '${name}' must be a string, got ${typeof rawValue}`);
    }
    const value = String(rawValue);
    if (!isFieldText(value)) {
      throw new GatewayProtocolError(`${where}: value of header '${name}' contains ${describeCharacter(value)}`);
    }
    const lower = name.toLowerCase();
    if (hopByHopHeaders.has(lower)) {
      if (dropHopByHop) continue;
      throw new GatewayProtocolError(`${where}: '${name}' is a hop-by-hop header; the server manages the connection`);
    }
    const field = headers.get(lower);
    if (field) field.values.push(value);
    else headers.set(lower, { name, values: [value] });
  }

  let contentLength: number | undefined;
  const declared = headers.get('content-length');
  if (declared) {
    const distinct = new Set(declared.values.map((value) => value.trim()));
    const only = distinct.size === 1 ? [...distinct][0] : undefined;
    if (only === undefined || !/^\d+$/.test(only) || !Number.isSafeInteger(Number(only))) {
      throw new GatewayProtocolError(`${where}: Content-Length must be one non-negative integer, got ${JSON.stringify(declared.values)}`);
    }
    contentLength = Number(only);
    declared.values = [only];
  }
  return { statusCode, reason, headers, contentLength };
}
