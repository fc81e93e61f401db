/**
 * The response head is written in one `writeHead`: headers that middleware
 * in front of the store set before are kept, the store's own win over them,
 * and middleware that wraps `writeHead` sees them.
 */
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, expect, test } from 'vitest';
import { jsonStore } from '../../src/json-store.js';

const servers: Array<ReturnType<typeof createServer>> = [];
afterEach(() => {
  for (const server of servers.splice(0)) {
    server.closeAllConnections();
    server.close();
  }
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

test('headers set in front of the store are kept; the store sets its own over them; a writeHead wrapper sees them all', async () => {
  const store = jsonStore({ initial: { a: { b: 1 } } });
  const seenByWrapper: Array<Record<string, unknown>> = [];
  const base = await serve((req, res) => {
    res.setHeader('X-Request-Id', 'r1');
    res.setHeader('Cache-Control', 'private');
    const writeHead = res.writeHead;
    res.writeHead = function (this: ServerResponse, ...args: Parameters<ServerResponse['writeHead']>) {
      seenByWrapper.push({ status: args[0], ...(args[1] as Record<string, unknown>) });
      return writeHead.apply(this, args);
    } as ServerResponse['writeHead'];
    store(req, res);
  });
  const read = await fetch(`${base}/a`);
  expect(read.status).toBe(200);
  expect(await read.text()).toBe('{"b":1}');
  expect(read.headers.get('x-request-id')).toBe('r1');
  expect(read.headers.get('cache-control')).toBe('no-cache');
  expect(read.headers.get('content-type')).toBe('application/json; charset=utf-8');
  expect(read.headers.get('content-length')).toBe('7');
  const etag = read.headers.get('etag');
  expect(etag).toMatch(/^".+"$/);
  expect(seenByWrapper[0]).toMatchObject({ status: 200, ETag: etag, 'Cache-Control': 'no-cache', 'Content-Length': '7' });

  const notModified = await fetch(`${base}/a`, { headers: { 'if-none-match': etag as string } });
  expect(notModified.status).toBe(304);
  expect(notModified.headers.get('x-request-id')).toBe('r1');
  expect(notModified.headers.get('etag')).toBe(etag);

  const head = await fetch(`${base}/a`, { method: 'HEAD' });
  expect(head.status).toBe(200);
  expect(head.headers.get('content-length')).toBe('7');
  expect(await head.text()).toBe('');

  const missing = await fetch(`${base}/nothing`);
  expect(missing.status).toBe(404);
  expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(missing.headers.get('x-request-id')).toBe('r1');
  await store.close();
});
