/**
 * The `Idempotency-Key` request header (draft-ietf-httpapi-idempotency-key-header):
 * an RFC 8941 sf-string such as `"8e03978e-40d5"`, or, for convenience, the
 * same characters unquoted when they are token characters (no spaces, commas
 * or quotes). Pure: no I/O.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { JsonStoreError } from '../errors.js';

const MAX_KEY_LENGTH = 255;
/** RFC 9110 tchar, plus ':' and '/' as RFC 8941 tokens allow. */
const bareKey = /^[!#$%&'*+\-.^_`|~0-9A-Za-z:/]+$/;
/** An sf-string: printable ASCII, with `"` and `\` escaped by a backslash. */
const quotedKey = /^"((?:[\x20\x21\x23-\x5b\x5d-\x7e]|\\["\\])*)"$/;

function invalid(why: string): JsonStoreError {
  return new JsonStoreError(
    'bad-request',
    `The Idempotency-Key header ${why}; send one quoted string of 1 to ${MAX_KEY_LENGTH} printable ASCII characters, such as Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324"`,
  );
}

/** The key the request carries, `undefined` when it has none; 400 when the header is not one key. */
export function idempotencyKeyOf(headers: IncomingHttpHeaders): string | undefined {
  const raw = headers['idempotency-key'];
  if (raw === undefined) return undefined;
  // Node joins repeated unknown headers with ", ", which no single key below matches.
  const value = (Array.isArray(raw) ? raw.join(', ') : raw).trim();
  if (value === '') throw invalid('is empty');
  let key: string;
  const quoted = quotedKey.exec(value);
  if (quoted !== null) key = (quoted[1] as string).replace(/\\(["\\])/g, '$1');
  else if (bareKey.test(value)) key = value;
  else if (value.startsWith('"')) throw invalid('is not one well-formed quoted string (printable ASCII only, and a quote or backslash inside escaped with a backslash)');
  else throw invalid('is not one key (a key with spaces, commas or other separators must be quoted; a header sent twice is refused)');
  if (key.length === 0) throw invalid('is an empty string');
  if (key.length > MAX_KEY_LENGTH) throw invalid(`is ${key.length} characters long`);
  return key;
}
