// Legacy gateway apps mounted next to the JSON store, in one Express 5 app:
// the talk's WSGI hello_world, a CGI script run per request, a JSONStore
// written as a WSGI callable, and a fetch-style handler.
//   npm run build && node examples/legacy/server.mjs
//   curl localhost:3000/hello
//   curl 'localhost:3000/cgi-bin/info/some/path?q=1'
// See README.md beside this file for more.
import { fileURLToPath } from 'node:url';
import express from 'express';
import { jsonStore } from '../../dist/index.js';
import { cgi, fetchHandler, wsgi } from '../../dist/gateway.js';
import { helloWorld } from './apps/hello-world.mjs';
import { createJsonStoreApp } from './apps/json-store-wsgi.mjs';

const cgiBin = (name) => fileURLToPath(new URL(`./cgi-bin/${name}`, import.meta.url));

const app = express();

// The native store, as the rest of this package serves it.
app.use('/store', jsonStore());

// The talk's WSGI hello_world, unchanged but for the language.
app.use('/hello', wsgi(helloWorld));

// A CGI script: a new process per request, the request in its environment.
app.use('/cgi-bin/info', cgi(cgiBin('info.cgi'), { timeout: 5_000 }));

// The store again, this time written as a WSGI callable.
app.use('/wsgi-store', wsgi(createJsonStoreApp({ sniffles: [{ name: 'fred' }, { name: 'irma' }], snuffle: { name: 'gundar' } })));

// A fetch-style handler, as written for Hono or a serverless runtime; its 404s
// fall through to the native route below.
app.use(
  '/edge',
  fetchHandler(
    (request) => {
      const url = new URL(request.url);
      if (url.pathname !== '/echo') return new Response('not here', { status: 404 });
      return Response.json({ method: request.method, url: request.url, userAgent: request.headers.get('user-agent') });
    },
    { fallthrough: true },
  ),
);
app.get('/edge/native', (_req, res) => {
  res.json({ servedBy: 'a native Express route, after the fetch handler passed' });
});

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  const base = `http://127.0.0.1:${server.address().port}`;
  console.log(`listening on ${base}`);
  for (const path of ['/store', '/hello', '/cgi-bin/info', '/wsgi-store', '/edge/echo', '/edge/native']) console.log(`  ${base}${path}`);
});
process.on('SIGTERM', () => server.close());
process.on('SIGINT', () => server.close());
