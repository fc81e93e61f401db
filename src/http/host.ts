/**
 * Host checks, against DNS rebinding: a page on evil.example whose name is
 * made to resolve to 127.0.0.1 reaches a local server as its own origin, so
 * the browser lets it read and write freely; but its requests still say
 * `Host: evil.example`. A server that answers only for the names it is
 * reached by refuses them.
 */
import type { IncomingMessage } from 'node:http';
import { isIPv6 } from 'node:net';
import { JsonStoreError } from '../errors.js';

const label = '[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?';
const namePattern = new RegExp(`^${label}(?:\\.${label})*$`);

/**
 * A host name as compared: lower-case, without a trailing dot, an IPv6
 * address in brackets (`[::1]`, also when given as `::1`). Undefined when it
 * is not a host name (a port, a scheme or a path makes it none).
 */
export function normalizeHostName(name: string): string | undefined {
  let host = name.trim().toLowerCase();
  if (host.startsWith('[') && host.endsWith(']')) return isIPv6(host.slice(1, -1)) ? host : undefined;
  if (isIPv6(host)) return `[${host}]`;
  if (host.endsWith('.')) host = host.slice(0, -1);
  return namePattern.test(host) ? host : undefined;
}

/**
 * The authority the request is for: that of an absolute-form target (which
 * RFC 9112 section 3.2.2 says overrides Host), else the Host header.
 */
function authorityOf(req: IncomingMessage): string | undefined {
  const absolute = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/([^/?#]*)/.exec(req.url ?? '');
  return absolute ? absolute[1] : req.headers.host;
}

/** The host name in an authority (`name`, `name:port`, `[v6]:port`), normalized; undefined if malformed. */
function hostNameOf(authority: string): string | undefined {
  const match = /^(\[[^\]]*\]|[^:[\]]*)(?::\d*)?$/.exec(authority.slice(authority.lastIndexOf('@') + 1));
  return match ? normalizeHostName(match[1] as string) : undefined;
}

/** Throws 421 unless the request is for one of `allowed` (normalized names). */
export function checkHost(req: IncomingMessage, allowed: ReadonlySet<string>): void {
  const authority = authorityOf(req);
  const name = authority === undefined ? undefined : hostNameOf(authority);
  if (name !== undefined && allowed.has(name)) return;
  const fix = 'if this server should answer it, add the name to allowedHosts (jsonstore: --allowed-host NAME)';
  throw new JsonStoreError(
    'misdirected-request',
    authority === undefined
      ? 'The request has no Host header; this server answers only requests that name one of its hosts'
      : `This server does not answer for the host ${JSON.stringify(authority)}; ${fix}`,
  );
}
