/**
 * Paths into the document. Internally a path is an array of raw segments;
 * it is written as a JSON Pointer (RFC 6901) in patches and change events, and
 * as a URL-style path (`/sniffles/0`) in messages.
 */
import { JsonStoreError } from '../errors.js';

export type Path = readonly string[];

/** Canonical array index: `0`, `12`; never `01`, `-1`, `+1` or `1.0`. */
const indexPattern = /^(?:0|[1-9][0-9]*)$/;

export function isArrayIndex(segment: string): boolean {
  return indexPattern.test(segment);
}

export function toPointer(path: Path): string {
  let out = '';
  for (const segment of path) out += '/' + (hasPointerSpecial(segment) ? segment.replace(/~/g, '~0').replace(/\//g, '~1') : segment);
  return out;
}

// Most keys have neither "~" nor "/": skipping the escape work for them matters
// when one request carries tens of thousands of pointers.
function hasPointerSpecial(segment: string): boolean {
  return segment.indexOf('~') !== -1 || segment.indexOf('/') !== -1;
}

/** Parses an RFC 6901 pointer; throws `invalid-patch` naming what is wrong. */
export function parsePointer(pointer: unknown, what = 'path'): string[] {
  if (typeof pointer !== 'string') {
    throw new JsonStoreError('invalid-patch', `"${what}" must be a JSON Pointer string`);
  }
  if (pointer === '') return [];
  if (pointer[0] !== '/') {
    throw new JsonStoreError('invalid-patch', `"${what}" ${JSON.stringify(pointer)} is not a JSON Pointer: it must be empty or start with "/"`);
  }
  const parts = pointer.slice(1).split('/');
  if (pointer.indexOf('~') === -1) return parts;
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    if (/~(?![01])/.test(part)) {
      throw new JsonStoreError('invalid-patch', `"${what}" ${JSON.stringify(pointer)} has "~" not followed by 0 or 1`);
    }
    parts[i] = part.replace(/~1/g, '/').replace(/~0/g, '~');
  }
  return parts;
}

/** A path as a reader would write it in a URL; `/` and `%` inside keys are escaped. */
export function displayPath(path: Path): string {
  if (path.length === 0) return '/';
  let out = '';
  for (const segment of path) out += '/' + segment.replace(/%/g, '%25').replace(/\//g, '%2F');
  return out;
}

/**
 * A path as a URL path: every segment percent-encoded, and keys named `.` and
 * `..` written `%2E` and `%2E%2E`, which RFC 3986 reference resolution
 * (section 5.2.4) leaves alone where it would remove `.` and `..` segments.
 * (WHATWG URL parsers, in browsers and fetch(), treat `%2E` as a dot too: to
 * them such a key has no URL at all.)
 */
export function urlPath(path: Path): string {
  let out = '';
  for (const segment of path) out += '/' + (segment === '.' ? '%2E' : segment === '..' ? '%2E%2E' : encodeURIComponent(segment));
  return out;
}

/**
 * Splits a URL path (below the mount point) into segments: empty segments
 * are ignored, each segment is percent-decoded as UTF-8.
 */
export function parseUrlPath(rawPath: string): string[] {
  const segments: string[] = [];
  for (const raw of rawPath.split('/')) {
    if (raw === '') continue;
    if (raw.indexOf('%') === -1) {
      segments.push(raw);
      continue;
    }
    try {
      segments.push(decodeURIComponent(raw));
    } catch {
      throw new JsonStoreError(
        'invalid-path',
        `The path segment "${raw}" has a bad percent-escape or is not valid UTF-8; write "%" itself as %25`,
      );
    }
  }
  return segments;
}

/**
 * A path as the programmatic API takes it: an array of raw segments, or a
 * string written as in a URL (`'/sniffles/0'`, percent-escapes decoded).
 */
export function toPath(path: string | readonly string[] | undefined): string[] {
  if (path === undefined) return [];
  if (typeof path === 'string') return parseUrlPath(path);
  if (Array.isArray(path) && path.every((segment) => typeof segment === 'string')) return [...path];
  throw new TypeError('path must be a string such as "/sniffles/0" or an array of segments such as ["sniffles", "0"]');
}
