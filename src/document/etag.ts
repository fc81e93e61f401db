/**
 * Strong ETags from content: the tag of a path is a hash of the compact JSON
 * of the value there, so it changes exactly when that value changes, a write
 * elsewhere leaves it alone, and every process sharing a document computes
 * the same tag without coordination.
 */
import * as crypto from 'node:crypto';
import type { JsonValue } from './json.js';

const hashString: (text: string) => string =
  typeof crypto.hash === 'function'
    ? (text) => crypto.hash('sha256', text, 'base64url')
    : (text) => crypto.createHash('sha256').update(text).digest('base64url');

/** Representation variants of one value; each has its own strong tag. */
export type Representation = '' | 'pretty' | 'shallow' | 'shallow-pretty';

/** The opaque part of the tag (no quotes) for a value's compact JSON. */
export function contentTag(compactJson: string): string {
  return hashString(compactJson).slice(0, 27);
}

export function formatEtag(tag: string, representation: Representation = ''): string {
  return representation === '' ? `"${tag}"` : `"${tag}-${representation}"`;
}

/** The strong ETag of a value (compact JSON hashed). */
export function etagOf(value: JsonValue): string {
  return formatEtag(contentTag(JSON.stringify(value)));
}

/** The content part of an entity tag from a request header (variant suffix dropped). */
export function contentPartOf(opaqueTag: string): string {
  const dash = opaqueTag.indexOf('-', 27);
  return dash === -1 ? opaqueTag : opaqueTag.slice(0, dash);
}

/**
 * Whether a tag from a request header names a shallow representation: its
 * hash is of the shallow JSON, so it says nothing about the whole value (a
 * value of `true` members would hash alike) and never stands for it.
 */
export function isShallowTag(opaqueTag: string): boolean {
  const content = contentPartOf(opaqueTag);
  return content.length < opaqueTag.length && opaqueTag.startsWith('shallow', content.length + 1);
}
