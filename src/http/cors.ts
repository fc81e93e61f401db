/**
 * CORS for the CLI (`--cors`, `--cors https://a.example,https://b.example`):
 * lets pages on other origins read and write the store from a browser.
 * Middleware users put the `cors` package in front of the store instead
 * (README recipe); this is the same policy without a dependency.
 *
 * Preflights are answered here for every method the store takes and the
 * request headers it reads (JSON media types need a preflight, as do
 * preconditions and Idempotency-Key); the headers a client needs to read
 * from a cross-origin answer (ETag, Location, Link, ...) are exposed.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export interface CorsPolicy {
  /** `'*'`: any origin. Otherwise the exact origins allowed (scheme://host[:port]). */
  readonly origins: '*' | readonly string[];
}

export const corsMethods = 'GET, HEAD, PUT, POST, PATCH, DELETE, OPTIONS';
export const corsRequestHeaders = 'Content-Type, If-Match, If-None-Match, Idempotency-Key, Prefer, Accept, Last-Event-ID';
export const corsExposedHeaders = 'ETag, Location, Link, X-Total-Count, Retry-After, Allow, Accept-Patch';
/** How long a browser may cache a preflight answer, in seconds. */
const preflightMaxAge = '600';

/** An origin as browsers send it, or undefined: `--cors` values are checked with this. */
export function normalizeOrigin(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return undefined;
  if (url.username !== '' || url.password !== '' || url.search !== '' || url.hash !== '' || (url.pathname !== '/' && url.pathname !== '')) return undefined;
  if (text.endsWith('/') && !/^[a-z]+:\/\/[^/]+\/$/i.test(text)) return undefined;
  return url.origin;
}

/**
 * Adds the CORS headers for this request. Returns true when it answered the
 * request itself (a preflight from an allowed origin); false when the
 * request goes on to the store.
 */
export function applyCors(policy: CorsPolicy, req: IncomingMessage, res: ServerResponse): boolean {
  const origin = req.headers.origin;
  const anyOrigin = policy.origins === '*';
  // The answer depends on Origin whenever the allowed origins are a list.
  if (!anyOrigin) res.setHeader('Vary', 'Origin');
  if (origin === undefined) return false;
  const allowed = anyOrigin || policy.origins.includes(origin);
  if (!allowed) return false;
  res.setHeader('Access-Control-Allow-Origin', anyOrigin ? '*' : origin);
  const requestedMethod = req.headers['access-control-request-method'];
  if (req.method === 'OPTIONS' && requestedMethod !== undefined) {
    res.statusCode = 204;
    res.setHeader('Access-Control-Allow-Methods', corsMethods);
    res.setHeader('Access-Control-Allow-Headers', corsRequestHeaders);
    res.setHeader('Access-Control-Max-Age', preflightMaxAge);
    if (!anyOrigin) res.setHeader('Vary', 'Origin, Access-Control-Request-Method, Access-Control-Request-Headers');
    res.setHeader('Content-Length', '0');
    res.end();
    return true;
  }
  res.setHeader('Access-Control-Expose-Headers', corsExposedHeaders);
  return false;
}
