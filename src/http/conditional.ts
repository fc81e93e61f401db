/**
 * Conditional requests (RFC 9110 section 13). Tags are compared against the
 * value at the request path: weakly for GET/HEAD revalidation, strongly for
 * writes, where a tag of any representation of the current value matches.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { JsonStoreError } from '../errors.js';
import type { JsonValue } from '../document/json.js';
import { contentPartOf, contentTag, isShallowTag } from '../document/etag.js';

/** `*`, or the opaque tags listed (without quotes), weak ones marked. */
export type TagList = '*' | Array<{ tag: string; weak: boolean }>;

export function parseTagList(header: string | undefined): TagList | undefined {
  if (header === undefined) return undefined;
  const trimmed = header.trim();
  if (trimmed === '*') return '*';
  const tags: Array<{ tag: string; weak: boolean }> = [];
  const pattern = /\s*(W\/)?"([^"]*)"\s*(?:,|$)/gy;
  let match: RegExpExecArray | null;
  let end = 0;
  while (end < trimmed.length && (match = pattern.exec(trimmed)) !== null) {
    tags.push({ tag: match[2] as string, weak: match[1] !== undefined });
    end = pattern.lastIndex;
  }
  if (end < trimmed.length || tags.length === 0) {
    throw new JsonStoreError('bad-request', `The header value ${JSON.stringify(header)} is not a list of entity tags such as "abc" or *`);
  }
  return tags;
}

export interface Preconditions {
  ifMatch: TagList | undefined;
  ifNoneMatch: TagList | undefined;
}

export function preconditionsOf(headers: IncomingHttpHeaders): Preconditions {
  return {
    ifMatch: parseTagList(joined(headers['if-match'])),
    ifNoneMatch: parseTagList(joined(headers['if-none-match'])),
  };
}

function joined(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

export function hasPreconditions(p: Preconditions): boolean {
  return p.ifMatch !== undefined || p.ifNoneMatch !== undefined;
}

/** Lazily computed content tag of the current value, so `*` costs nothing. */
function tagOf(current: JsonValue | undefined): () => string | undefined {
  let cached: string | undefined | null = null;
  return () => {
    if (cached === null) cached = current === undefined ? undefined : contentTag(JSON.stringify(current));
    return cached;
  };
}

/**
 * Checks the preconditions of a write against the current value at its
 * path; throws 412 when they fail. Runs inside the write's critical section.
 */
export function checkWritePreconditions(p: Preconditions, current: JsonValue | undefined, what: string): void {
  const tag = tagOf(current);
  if (p.ifMatch !== undefined) {
    const ok =
      p.ifMatch === '*'
        ? current !== undefined
        : current !== undefined && p.ifMatch.some((t) => !t.weak && !isShallowTag(t.tag) && contentPartOf(t.tag) === tag());
    if (!ok) {
      throw new JsonStoreError(
        'precondition-failed',
        current === undefined
          ? `If-Match failed: ${what} does not exist`
          : `If-Match failed: ${what} has changed since you read it; GET it again for the current ETag`,
      );
    }
  }
  if (p.ifNoneMatch !== undefined) {
    const matches =
      p.ifNoneMatch === '*' ? current !== undefined : current !== undefined && p.ifNoneMatch.some((t) => !isShallowTag(t.tag) && contentPartOf(t.tag) === tag());
    if (matches) {
      throw new JsonStoreError(
        'precondition-failed',
        p.ifNoneMatch === '*' ? `If-None-Match: * failed: ${what} already exists` : `If-None-Match failed: ${what} still has that ETag`,
      );
    }
  }
}

/**
 * For GET and HEAD of a value that exists (a missing one is 404 whatever the
 * preconditions say, RFC 9110 section 13.2.1): whether If-None-Match says the
 * client's copy is current (weak comparison against the exact
 * representation's tag). If-Match failures throw 412.
 */
export function isNotModified(p: Preconditions, etag: string, what: string): boolean {
  const opaque = etag.slice(1, -1);
  if (p.ifMatch !== undefined) {
    const ok = p.ifMatch === '*' || p.ifMatch.some((t) => !t.weak && isShallowTag(t.tag) === isShallowTag(opaque) && contentPartOf(t.tag) === contentPartOf(opaque));
    if (!ok) throw new JsonStoreError('precondition-failed', `If-Match failed: ${what} has changed`);
  }
  if (p.ifNoneMatch === undefined) return false;
  if (p.ifNoneMatch === '*') return true;
  return p.ifNoneMatch.some((t) => t.tag === opaque);
}
