/**
 * Where a request points, relative to where the store is mounted. Express and
 * connect rewrite `req.url` below the mount point; plain `node:http` does not
 * mount, so its `req.url` is the whole path.
 */
import type { IncomingMessage } from 'node:http';

export interface RequestTarget {
  /** The raw (still percent-encoded) path below the mount point. */
  path: string;
  /** The raw query string without `?`, or '' when there is none. */
  query: string;
}

export function splitTarget(url: string | undefined): RequestTarget {
  let target = url ?? '/';
  // Absolute-form (proxies): keep only the path and query.
  if (!target.startsWith('/')) {
    const match = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/.exec(target);
    if (match) target = target.slice(match[0].length) || '/';
  }
  const hash = target.indexOf('#');
  if (hash !== -1) target = target.slice(0, hash);
  const question = target.indexOf('?');
  return question === -1 ? { path: target, query: '' } : { path: target.slice(0, question), query: target.slice(question + 1) };
}

interface MountedRequest extends IncomingMessage {
  baseUrl?: string;
  originalUrl?: string;
}

/** The path prefix the client used to reach the store ('' at the root), for `Location`. */
export function mountPrefix(req: IncomingMessage): string {
  const mounted = req as MountedRequest;
  if (typeof mounted.baseUrl === 'string') return mounted.baseUrl;
  if (typeof mounted.originalUrl === 'string' && mounted.originalUrl !== req.url) {
    const original = splitTarget(mounted.originalUrl).path;
    const below = splitTarget(req.url).path;
    if (below === '/' && !original.endsWith('/')) return original;
    if (original.endsWith(below)) return original.slice(0, original.length - below.length);
  }
  return '';
}
