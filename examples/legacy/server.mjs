// Legacy gateway apps mounted next to the JSON store, in one Express 5 app:
// the talk's WSGI hello_world (in JavaScript and in Python), a Flask app, a CGI script run per request, a JSONStore
// written as a WSGI callable, a fetch-style handler, a PHP page (php-cgi via
// cgi(), and php-fpm via fastcgi() when FPM_SOCKET is set) and git over HTTP
// (git http-backend via cgi()).
//   npm run build && node examples/legacy/server.mjs
//   curl localhost:3000/hello
//   curl 'localhost:3000/cgi-bin/info/some/path?q=1'
//   curl localhost:3000/py/hello
//   curl localhost:3000/flask/ -d text=hello
//   curl localhost:3000/php/
//   git clone http://localhost:3000/git/demo.git
// See README.md beside this file for more.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import express from 'express';
import { jsonStore } from '../../dist/index.js';
import { cgi, fastcgi, fetchHandler, pythonWsgi, wsgi } from '../../dist/gateway.js';
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

// Python WSGI apps, each run by a pool of preforked Python workers that import
// the app once (like gunicorn's sync workers): the talk's hello_world in
// Python, and a Flask app when Debian's python3-flask is installed.
const pythonDir = fileURLToPath(new URL('./python', import.meta.url));
const pools = [];
let notesFolder;
const mounted = ['/store', '/hello', '/cgi-bin/info', '/wsgi-store', '/edge/echo', '/edge/native'];
if (existsSync('/usr/bin/python3')) {
  pools.push(pythonWsgi('hello:hello_world', { cwd: pythonDir, workers: 2 }));
  app.use('/py/hello', pools.at(-1));
  mounted.push('/py/hello');
  if (spawnSync('/usr/bin/python3', ['-c', 'import flask']).status === 0) {
    // The workers share nothing in memory: the notes go to one SQLite file.
    notesFolder = mkdtempSync(join(tmpdir(), 'legacy-notes-'));
    pools.push(pythonWsgi('notes:app', { cwd: pythonDir, workers: 2, env: { NOTES_DB: join(notesFolder, 'notes.sqlite3') } }));
    app.use('/flask', pools.at(-1));
    mounted.push('/flask/');
  }
}

// PHP: php-cgi mounted as the CGI program, with the front controller as
// SCRIPT_FILENAME, so every path under /php reaches index.php (REQUEST_URI
// routing). Only when php-cgi is installed.
const frontController = fileURLToPath(new URL('./php/index.php', import.meta.url));
if (existsSync('/usr/bin/php-cgi')) {
  app.use('/php', cgi('/usr/bin/php-cgi', { cwd: dirname(frontController), env: () => ({ SCRIPT_FILENAME: frontController }) }));
  mounted.push('/php/');
}

// The same page through php-fpm, when one listens on FPM_SOCKET
// (e.g. /run/php/php8.2-fpm.sock): connections are kept open and reused.
let fpm;
if (process.env.FPM_SOCKET) {
  fpm = fastcgi({ socket: process.env.FPM_SOCKET, root: dirname(frontController), script: 'index.php' });
  app.use('/fpm', fpm);
  mounted.push('/fpm/');
}

// git over HTTP: git http-backend with default options serves clone, fetch
// and push (a large push arrives chunked and is spooled to a temporary file).
// The repositories live in a temporary directory with one empty repository.
const httpBackend = '/usr/lib/git-core/git-http-backend';
let repositories;
if (existsSync(httpBackend)) {
  repositories = mkdtempSync(join(tmpdir(), 'legacy-git-'));
  execFileSync('git', ['init', '--quiet', '--bare', join(repositories, 'demo.git')]);
  execFileSync('git', ['-C', join(repositories, 'demo.git'), 'config', 'http.receivepack', 'true']); // Anonymous push: a demo only.
  app.use('/git', cgi(httpBackend, { env: { GIT_PROJECT_ROOT: repositories, GIT_HTTP_EXPORT_ALL: '1' } }));
  mounted.push('/git/demo.git/info/refs?service=git-upload-pack');
}

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  const base = `http://127.0.0.1:${server.address().port}`;
  console.log(`listening on ${base}`);
  for (const path of mounted) console.log(`  ${base}${path}`);
});
async function shutdown() {
  server.close();
  // The workers first: they may still hold the notes database open.
  await Promise.allSettled([fpm?.close(), ...pools.map((pool) => pool.close())]);
  if (repositories) rmSync(repositories, { recursive: true, force: true });
  if (notesFolder) rmSync(notesFolder, { recursive: true, force: true });
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
