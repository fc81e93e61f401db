/**
 * The request as CGI-style meta-variables, shared by the WSGI environ, the
 * JSGI `env` and the CGI child's environment, so the three agree key by key.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import type { CgiVariables } from './types.js';

/** What Express (or connect) adds to a request it routes. Both are absent on a bare node:http server. */
interface RoutedRequest extends IncomingMessage {
  /** Express: the mount path the request matched, raw (still percent-encoded). */
  baseUrl?: unknown;
  /** Express and connect: the URL before mount points were stripped from `req.url`. */
  originalUrl?: unknown;
}

/** The request target split the CGI way. `scriptName`/`pathInfo` are raw here; decode for the variables. */
export interface RequestTarget {
  scriptName: string;
  pathInfo: string;
  queryString: string;
}

/** The request target as the client sent it: path and query, mount points not yet stripped (`REQUEST_URI`). */
export function originalTarget(req: IncomingMessage): string {
  const original = (req as RoutedRequest).originalUrl;
  return typeof original === 'string' ? original : (req.url ?? '/');
}

function pathOf(url: string): string {
  const query = url.indexOf('?');
  let path = query === -1 ? url : url.slice(0, query);
  // Absolute-form targets ("http://host/p", sent to proxies) carry an origin.
  if (path.charCodeAt(0) !== 47 /* / */) {
    const origin = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]*/.exec(path);
    if (origin) path = path.slice(origin[0].length) || '/';
  }
  return path;
}

/**
 * Where the mount point ends. Express rewrites `req.url` to be relative to
 * the mount and maps both `/app` and `/app/` to `/`, so the split comes from
 * `originalUrl` and `baseUrl`; connect only keeps `originalUrl`.
 */
export function requestTarget(req: IncomingMessage): RequestTarget {
  const routed = req as RoutedRequest;
  const url = req.url ?? '/';
  const query = url.indexOf('?');
  const queryString = query === -1 ? '' : url.slice(query + 1);
  const currentPath = pathOf(url);
  const original = originalTarget(req);
  if (original === url) return { scriptName: '', pathInfo: currentPath, queryString };

  const originalPath = pathOf(original);
  const base = routed.baseUrl;
  if (typeof base === 'string' && originalPath.startsWith(base)) {
    return { scriptName: base, pathInfo: originalPath.slice(base.length), queryString };
  }
  // connect, or a rewritten URL: the mount is what precedes the current path.
  if (originalPath.endsWith(currentPath)) {
    return { scriptName: originalPath.slice(0, originalPath.length - currentPath.length), pathInfo: currentPath, queryString };
  }
  if (currentPath === '/') return { scriptName: originalPath, pathInfo: '', queryString };
  return { scriptName: '', pathInfo: currentPath, queryString };
}

function hexValue(byte: number): number {
  if (byte >= 48 && byte <= 57) return byte - 48;
  if (byte >= 65 && byte <= 70) return byte - 55;
  if (byte >= 97 && byte <= 102) return byte - 87;
  return -1;
}

/**
 * Percent-decodes a path (all of it, `%2F` included, as CGI servers do) and
 * reads the bytes as UTF-8. Malformed escapes are kept as they are and
 * invalid UTF-8 becomes U+FFFD, instead of failing the request.
 */
export function decodePath(raw: string): string {
  if (!raw.includes('%')) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    // Malformed escape or invalid UTF-8: decode byte by byte below.
  }
  const input = Buffer.from(raw, 'utf8');
  const output = Buffer.allocUnsafe(input.length);
  let length = 0;
  for (let i = 0; i < input.length; i++) {
    const byte = input[i] as number;
    if (byte === 37 /* % */ && i + 2 < input.length) {
      const high = hexValue(input[i + 1] as number);
      const low = hexValue(input[i + 2] as number);
      if (high >= 0 && low >= 0) {
        output[length++] = high * 16 + low;
        i += 2;
        continue;
      }
    }
    output[length++] = byte;
  }
  return output.toString('utf8', 0, length);
}

function firstListValue(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return undefined;
  const first = text.split(',')[0]?.trim();
  return first === '' ? undefined : first;
}

/** `http` or `https`: TLS on the socket, or (with `trustProxy`) the proxy's word for it. */
export function requestScheme(req: IncomingMessage, trustProxy: boolean): 'http' | 'https' {
  if (trustProxy) {
    const forwarded = firstListValue(req.headers['x-forwarded-proto'])?.toLowerCase();
    if (forwarded === 'https' || forwarded === 'http') return forwarded;
  }
  return (req.socket as Partial<TLSSocket>).encrypted === true ? 'https' : 'http';
}

/** Host name and port the client addressed: Host header (or X-Forwarded-Host), else the socket's local end. */
export function requestAuthority(req: IncomingMessage, scheme: 'http' | 'https', trustProxy: boolean): { name: string; port: string } {
  const host = (trustProxy ? firstListValue(req.headers['x-forwarded-host']) : undefined) ?? req.headers.host;
  if (host) {
    // "[::1]:8080", "example.com", "example.com:8080"
    const match = /^(\[[^\]]*\]|[^:]*)(?::(\d*))?$/.exec(host);
    if (match && match[1]) {
      return { name: match[1], port: match[2] || (scheme === 'https' ? '443' : '80') };
    }
  }
  const address = req.socket.localAddress ?? '127.0.0.1';
  return { name: address.includes(':') ? `[${address}]` : address, port: String(req.socket.localPort ?? '') };
}

/** True when a header must never reach an app as a variable (see `headerVariables`). */
function isMaskedHeader(lowerName: string): boolean {
  // Underscores: "X_Forwarded_For" would collide with "X-Forwarded-For".
  // Proxy: would become HTTP_PROXY, which HTTP clients read as their proxy (httpoxy).
  return lowerName.includes('_') || lowerName === 'proxy';
}

/**
 * Request headers as they reach an app, lower-cased, repeated headers joined
 * with ", " (cookies with "; "), names with "_" and the `Proxy` header dropped.
 * Visits each in arrival order.
 */
export function forEachRequestHeader(req: IncomingMessage, visit: (lowerName: string, value: string) => void): void {
  const joined = new Map<string, string>();
  const raw = req.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const lowerName = (raw[i] as string).toLowerCase();
    if (isMaskedHeader(lowerName)) continue;
    const value = raw[i + 1] as string;
    const previous = joined.get(lowerName);
    joined.set(lowerName, previous === undefined ? value : previous + (lowerName === 'cookie' ? '; ' : ', ') + value);
  }
  for (const [name, value] of joined) visit(name, value);
}

/** `HTTP_*` name of a lower-cased header name. */
export function headerVariableName(lowerName: string): string {
  return 'HTTP_' + lowerName.toUpperCase().replaceAll('-', '_');
}

export interface VariableOptions {
  trustProxy: boolean;
  /** CGI leaves CONTENT_TYPE/CONTENT_LENGTH unset when absent; WSGI and JSGI set them to ''. */
  omitEmptyContent: boolean;
  /** Overrides the body length (CGI after buffering a chunked body, or a body a parser already read). */
  contentLength?: string | undefined;
  /** Also called with every header that reaches the app (lower-cased name, joined value), in the same pass. */
  onHeader?: (lowerName: string, value: string) => void;
}

/**
 * The meta-variables of RFC 3875 section 4.1 that every gateway shares, and
 * one `HTTP_*` per request header. `Content-Type` and `Content-Length` appear
 * only as CONTENT_TYPE and CONTENT_LENGTH.
 */
export function cgiVariables(req: IncomingMessage, target: RequestTarget, options: VariableOptions): CgiVariables {
  const scheme = requestScheme(req, options.trustProxy);
  const authority = requestAuthority(req, scheme, options.trustProxy);
  const variables: Record<string, string> = {
    REQUEST_METHOD: req.method ?? 'GET',
    SCRIPT_NAME: decodePath(target.scriptName),
    PATH_INFO: decodePath(target.pathInfo),
    QUERY_STRING: target.queryString,
    SERVER_NAME: authority.name,
    SERVER_PORT: authority.port,
    SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
    REMOTE_ADDR: req.socket.remoteAddress ?? '',
  };
  const contentType = req.headers['content-type'];
  const contentLength = options.contentLength ?? req.headers['content-length'];
  if (contentType !== undefined || !options.omitEmptyContent) variables.CONTENT_TYPE = contentType ?? '';
  if (contentLength !== undefined || !options.omitEmptyContent) variables.CONTENT_LENGTH = contentLength ?? '';

  const { onHeader } = options;
  forEachRequestHeader(req, (name, value) => {
    onHeader?.(name, value);
    if (name === 'content-type' || name === 'content-length') return;
    variables[headerVariableName(name)] = value;
  });
  return variables as unknown as CgiVariables;
}
