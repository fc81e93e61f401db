/**
 * The hosts the middleware must work on, each at every mount point it
 * supports, and a small HTTP client that talks to them over a real socket.
 *
 *   describe.each(hosts)('$name', (host) => { ... serve(host) ... })
 *
 * `base` is the prefix a client puts before a document path ('/store' when
 * mounted there, '' at the root).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express from 'express';
import express4 from 'express4';
import connect from 'connect';
import { jsonStore, type JsonStore, type JsonStoreOptions } from '../../src/index.js';

/** Connect-style middleware, which is what the store and body parsers are. */
export type Middleware = (req: http.IncomingMessage, res: http.ServerResponse, next: (error?: unknown) => void) => void;

export interface Host {
  /** e.g. "express5 at /store". */
  name: string;
  base: '' | '/store';
  framework: 'express5' | 'express4' | 'connect' | 'node';
  /** Wraps the store in an app of this host, after `before` (app-wide middleware such as a body parser). */
  app(store: Middleware, before?: Middleware[]): http.RequestListener;
}

function mounted(framework: 'express5' | 'express4' | 'connect', base: '' | '/store'): Host {
  const make = (): { use(...args: unknown[]): unknown } & http.RequestListener => {
    if (framework === 'express5') return express() as never;
    if (framework === 'express4') return express4() as never;
    return connect() as never;
  };
  return {
    name: `${framework} ${base === '' ? 'at the root' : 'at /store'}`,
    base,
    framework,
    app(store, before = []) {
      const app = make();
      for (const middleware of before) app.use(middleware);
      if (base === '') app.use(store);
      else app.use(base, store);
      return app;
    },
  };
}

export const hosts: Host[] = [
  mounted('express5', '/store'),
  mounted('express5', ''),
  mounted('express4', '/store'),
  mounted('express4', ''),
  mounted('connect', '/store'),
  mounted('connect', ''),
  {
    name: 'node:http at the root',
    base: '',
    framework: 'node',
    app(store, before = []) {
      if (before.length === 0) return store as http.RequestListener;
      // Run `before` in order, as a framework would, then the store.
      return (req, res) => {
        const run = (index: number): void => {
          const middleware = before[index];
          if (middleware === undefined) return store(req, res, () => {});
          middleware(req, res, (error?: unknown) => {
            if (error === undefined) return run(index + 1);
            res.statusCode = (error as { status?: number }).status ?? 500;
            res.end();
          });
        };
        run(0);
      };
    },
  },
];

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body as received ('' when there is none). */
  text: string;
  /** The body parsed as JSON (throws if it is not). */
  json(): unknown;
}

export interface RequestOptions {
  /** A JS value is sent as JSON with `Content-Type: application/json` unless `headers` say otherwise. */
  json?: unknown;
  /** A raw body, sent as is (no Content-Type added). */
  body?: string | Buffer;
  headers?: Record<string, string | string[]>;
}

const openServers = new Set<http.Server>();
const openAgents = new Set<http.Agent>();

/** Sends one request (over `agent`'s kept-alive connections, else a fresh one) and collects the whole response. */
export function send(port: number, method: string, path: string, options: RequestOptions = {}, agent: http.Agent | false = false): Promise<Reply> {
  const headers: Record<string, string | string[]> = { ...options.headers };
  let body: string | Buffer | undefined = options.body;
  if (options.json !== undefined) {
    body = JSON.stringify(options.json);
    if (!Object.keys(headers).some((name) => name.toLowerCase() === 'content-type')) headers['Content-Type'] = 'application/json';
  }
  if (body !== undefined) headers['Content-Length'] = String(Buffer.byteLength(body));
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) as unknown });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

export interface Served {
  store: JsonStore;
  server: http.Server;
  port: number;
  base: string;
  /** The URL path a client uses for a document path: `url('/a/0')` is '/store/a/0' when mounted at /store. */
  url(path: string): string;
  request(method: string, path: string, options?: RequestOptions): Promise<Reply>;
  get(path: string, headers?: Record<string, string>): Promise<Reply>;
  put(path: string, json: unknown, headers?: Record<string, string>): Promise<Reply>;
  post(path: string, json: unknown, headers?: Record<string, string>): Promise<Reply>;
  patch(path: string, json: unknown, type?: string, headers?: Record<string, string>): Promise<Reply>;
  delete(path: string, headers?: Record<string, string>): Promise<Reply>;
  /** The whole document as the programmatic API sees it. */
  doc(): Promise<unknown>;
}

/** Starts a listening server for `app`; closed by `closeServers()`. */
export async function listen(app: http.RequestListener): Promise<{ server: http.Server; port: number }> {
  const server = http.createServer(app);
  openServers.add(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, port: (server.address() as AddressInfo).port };
}

/** A fresh store behind `host`, listening on an ephemeral port. */
export async function serve(host: Host, options?: JsonStoreOptions, extra: { store?: JsonStore; before?: Middleware[] } = {}): Promise<Served> {
  const store = extra.store ?? jsonStore(options);
  const { server, port } = await listen(host.app(store, extra.before));
  const url = (path: string) => host.base + path;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
  openAgents.add(agent);
  const request = (method: string, path: string, options?: RequestOptions) => send(port, method, url(path), options, agent);
  return {
    store,
    server,
    port,
    base: host.base,
    url,
    request,
    get: (path, headers) => request('GET', path, headers ? { headers } : {}),
    put: (path, json, headers) => request('PUT', path, { json, headers: { ...headers } }),
    post: (path, json, headers) => request('POST', path, { json, headers: { ...headers } }),
    patch: (path, json, type = 'application/merge-patch+json', headers) =>
      request('PATCH', path, { json, headers: { 'Content-Type': type, ...headers } }),
    delete: (path, headers) => request('DELETE', path, headers ? { headers } : {}),
    doc: () => store.get(),
  };
}

/** Closes every server started since the last call (use in afterEach). */
export async function closeServers(): Promise<void> {
  const servers = [...openServers];
  openServers.clear();
  for (const agent of openAgents) agent.destroy();
  openAgents.clear();
  await Promise.all(
    servers.map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
}
