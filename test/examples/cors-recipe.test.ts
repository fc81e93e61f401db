/**
 * The README's CORS recipe for middleware users (the `cors` package in front
 * of the store), run through real HTTP the way a browser would use it.
 */
import type { Server } from 'node:http';
import cors from 'cors';
import express from 'express';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { jsonStore } from '../../src/index.js';

// --- the recipe, as in the README (imports from 'express-jsonstore' there) ---
const app = express();
app.use(
  '/store',
  cors({
    origin: ['https://app.example', 'http://localhost:5173'], // or `true` for any origin
    methods: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'],
    allowedHeaders: ['Content-Type', 'If-Match', 'If-None-Match', 'Idempotency-Key', 'Prefer'],
    exposedHeaders: ['ETag', 'Location', 'Link', 'X-Total-Count', 'Retry-After'],
    maxAge: 600,
  }),
  jsonStore({ initial: { posts: {} } }),
);
// --- end of the recipe ---

let server: Server;
let base: string;
beforeAll(async () => {
  server = await new Promise<Server>((done) => {
    const listening = app.listen(0, '127.0.0.1', () => done(listening));
  });
  base = `http://127.0.0.1:${(server.address() as { port: number }).port}/store`;
});
afterAll(() => new Promise<void>((done) => server.close(() => done())));

const origin = 'https://app.example';

test('a preflight for PATCH with a JSON Patch body and If-Match is granted to a listed origin', async () => {
  const reply = await fetch(`${base}/posts/p1`, {
    method: 'OPTIONS',
    headers: { origin, 'access-control-request-method': 'PATCH', 'access-control-request-headers': 'content-type,if-match,idempotency-key' },
  });
  expect(reply.status).toBe(204);
  expect(reply.headers.get('access-control-allow-origin')).toBe(origin);
  expect(reply.headers.get('access-control-allow-methods')).toContain('PATCH');
  expect(reply.headers.get('access-control-allow-headers')).toContain('If-Match');
});

test('answers expose ETag and Location; other origins get no CORS headers', async () => {
  const created = await fetch(`${base}/posts`, { method: 'POST', headers: { origin, 'content-type': 'application/json' }, body: '{"title":"hi"}' });
  expect(created.status).toBe(201);
  expect(created.headers.get('access-control-allow-origin')).toBe(origin);
  expect(created.headers.get('access-control-expose-headers')).toBe('ETag,Location,Link,X-Total-Count,Retry-After');
  const location = created.headers.get('location')!;
  const patched = await fetch(`${base}${location.replace(/^\/store/, '')}`, {
    method: 'PATCH',
    headers: { origin, 'content-type': 'application/json-patch+json', 'if-match': created.headers.get('etag')! },
    body: '[{"op":"replace","path":"/title","value":"edited"}]',
  });
  expect(patched.status).toBe(200);
  const other = await fetch(`${base}/`, { headers: { origin: 'https://evil.example' } });
  expect(other.headers.get('access-control-allow-origin')).toBeNull();
});
