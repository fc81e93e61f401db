/**
 * pythonWsgi(): real Python WSGI apps (the talk's hello_world, Flask and
 * Django from Debian's packages, and probe apps) in real worker processes,
 * over real HTTP, through Express 5 and Express 4.
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { IncomingMessage } from 'node:http';
import express from 'express';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { pythonWsgi, type PythonWsgiMiddleware, type PythonWsgiOptions } from '../../src/gateway/index.js';
import { expectProblemAnswer } from '../support/problem.js';
import { eventually } from '../support/wait.js';
import { captureLogger, clientThatDoesNotRead, expressVersions, header, isRunning, leaveAfterFirstChunk, listen, postUnreadThenGet, rawRequest, waitForStall, type Listening } from './helpers.js';
import { connect } from 'node:net';

const python = '/usr/bin/python3';
const appDir = fileURLToPath(new URL('./fixtures/python', import.meta.url));

function pythonHas(modules: string): boolean {
  try {
    execFileSync(python, ['-c', `import ${modules}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
// CI installs python3-flask and python3-django (.ci/run); elsewhere the suite says why it did not run.
const missing = !existsSync(python) ? `${python} is missing` : !pythonHas('flask, django') ? `${python} lacks flask or django (apt-get install python3-flask python3-django)` : undefined;
if (missing !== undefined && process.env.JSONSTORE_REQUIRE_PYTHON === '1') throw new Error(`JSONSTORE_REQUIRE_PYTHON is set but ${missing}`);

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'gateway-python-'));
});
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

/** Pools made by a test, closed (and checked gone) after it. */
const pools: PythonWsgiMiddleware[] = [];
function pool(appSpec: string, options: PythonWsgiOptions = {}): PythonWsgiMiddleware & { lines: string[] } {
  const log = captureLogger();
  const middleware = pythonWsgi(appSpec, { python, cwd: appDir, logger: log.logger, ...options });
  pools.push(middleware);
  return Object.assign(middleware, { lines: log.lines });
}
async function closePools(): Promise<void> {
  const open = pools.splice(0);
  await Promise.all(open.map((middleware) => middleware.close()));
}

let releases = 0;
/** A file the /block probe waits for: `start` tells the app to block, `release` lets it go on. */
function blocker(): { query: string; started: () => boolean; release: () => void } {
  const path = join(scratch, `release-${releases++}`);
  return { query: path, started: () => existsSync(`${path}.started`), release: () => writeFileSync(path, '') };
}

async function pidOf(url: string): Promise<number> {
  const response = await fetch(`${url}/pid`);
  expect(response.status).toBe(200);
  return ((await response.json()) as { pid: number }).pid;
}

describe.skipIf(missing !== undefined)(`pythonWsgi (skipped: ${missing ?? 'no'})`, () => {
  describe.each(expressVersions)('real apps in %s', (_version, expressFactory) => {
    let hello: ReturnType<typeof pool>;
    let flask: ReturnType<typeof pool>;
    let django: ReturnType<typeof pool>;
    let server: Listening;

    beforeAll(async () => {
      hello = pool('hello:hello_world');
      flask = pool('flask_app:app');
      django = pool('django_app');
      await Promise.all([hello.ready(), flask.ready(), django.ready()]);
      const app = expressFactory();
      app.use('/hello', hello);
      app.use('/flask', flask);
      app.use('/django', django);
      app.get('/native', (_req, res) => {
        res.send('native route\n');
      });
      server = await listen(app);
    });
    afterAll(async () => {
      await server.close();
      await closePools();
    });

    it("serves the talk's hello_world with a Content-Length", async () => {
      const response = await request(server.server).get('/hello');
      expect(response.status).toBe(200);
      expect(response.text).toBe('Hello world!\n');
      expect(response.headers['content-type']).toBe('text/plain');
      expect(response.headers['content-length']).toBe('13');
      expect((await request(server.server).get('/native')).text).toBe('native route\n');
    });

    it('serves many requests from the same two workers', async () => {
      const pids = new Set(hello.workerPids);
      const answers = await Promise.all(Array.from({ length: 20 }, () => request(server.server).get('/hello/any/path')));
      expect(answers.map((answer) => answer.text)).toEqual(Array(20).fill('Hello world!\n'));
      expect(new Set(hello.workerPids)).toEqual(pids);
      expect(pids.size).toBe(2);
    });

    it('Flask: routing below the mount, url_for with SCRIPT_NAME, and its own 404', async () => {
      const home = await request(server.server).get('/flask/');
      expect(home.status).toBe(200);
      expect(home.text).toBe('Flask home\n');
      const user = await request(server.server).get('/flask/users/42');
      expect(user.body).toEqual({ id: 42, url: '/flask/users/42', script_root: '/flask' });
      const missingPage = await request(server.server).get('/flask/nope');
      expect(missingPage.status).toBe(404);
      expect(missingPage.text).toContain('Not Found');
    });

    it('Flask: an urlencoded form POST', async () => {
      const response = await request(server.server).post('/flask/form').type('form').send('name=S%C3%B8ren&tag=a&tag=b');
      expect(response.status).toBe(200);
      expect(response.body).toEqual({ name: 'Søren', tags: ['a', 'b'] });
    });

    it('Flask: a multipart file upload, byte for byte', async () => {
      const file = randomBytes(300_000);
      const response = await request(server.server).post('/flask/upload').field('note', 'a note').attach('file', file, 'data.bin');
      expect(response.status).toBe(200);
      expect(response.body).toEqual({ filename: 'data.bin', size: file.length, sha256: createHash('sha256').update(file).digest('hex'), note: 'a note' });
    });

    it('Flask: a streamed response from a generator goes out chunked', async () => {
      const response = await rawRequest(server.port, 'GET /flask/stream?count=50 HTTP/1.1\nHost: x');
      expect(response.status).toBe(200);
      expect(response.complete).toBe(true);
      expect(response.headerLines.find(([name]) => name.toLowerCase() === 'transfer-encoding')?.[1]).toBe('chunked');
      expect(response.body.toString()).toBe(Array.from({ length: 50 }, (_, index) => `line ${index}\n`).join(''));
    });

    it('Django: routing, reverse() under the mount, query strings', async () => {
      const home = await request(server.server).get('/django/');
      expect(home.text).toBe('Django home\n');
      const item = await request(server.server).get('/django/items/7/?q=x%20y');
      expect(item.status).toBe(200);
      expect(item.body).toEqual({ id: 7, path: '/django/items/7/', path_info: '/items/7/', reversed: '/django/items/7/', query: 'x y' });
      // CommonMiddleware's APPEND_SLASH redirect keeps the mount.
      const redirect = await request(server.server).get('/django/items/7');
      expect(redirect.status).toBe(301);
      expect(redirect.headers.location).toBe('/django/items/7/');
    });

    it('Django: a form POST and a multipart upload', async () => {
      const form = await request(server.server).post('/django/form/').type('form').send('name=ada&tag=x&tag=y');
      expect(form.body).toEqual({ name: 'ada', tags: ['x', 'y'] });
      const file = randomBytes(3_000_000); // Past Django's in-memory limit: spooled to a temporary file.
      const upload = await request(server.server).post('/django/upload/').attach('file', file, 'big.bin');
      expect(upload.status).toBe(200);
      expect(upload.body).toEqual({ filename: 'big.bin', size: file.length, sha256: createHash('sha256').update(file).digest('hex') });
    });

    it('Django: a StreamingHttpResponse', async () => {
      const response = await rawRequest(server.port, 'GET /django/stream/?count=30 HTTP/1.1\nHost: x');
      expect(response.status).toBe(200);
      expect(response.complete).toBe(true);
      expect(response.body.toString()).toBe(Array.from({ length: 30 }, (_, index) => `row ${index}\n`).join(''));
    });
  });

  describe('PEP 3333 on the Python side', () => {
    let probe: ReturnType<typeof pool>;
    let server: Listening;
    beforeAll(async () => {
      probe = pool('probe:app');
      await probe.ready();
      const app = express();
      app.use('/app', probe);
      server = await listen(app);
    });
    afterAll(async () => {
      await server.close();
      await closePools();
    });

    it('builds the environ: CGI variables, latin-1 paths, the wsgi.* keys', async () => {
      const response = await request(server.server).get('/app/environ/caf%C3%A9?a=1&b=%20').set('X-Custom', 'yes');
      const environ = response.body as Record<string, unknown>;
      expect(environ).toMatchObject({
        REQUEST_METHOD: 'GET',
        SCRIPT_NAME: '/app',
        // The UTF-8 bytes of "café", each as one latin-1 character, as PEP 3333 says.
        PATH_INFO: '/environ/caf\u00c3\u00a9',
        QUERY_STRING: 'a=1&b=%20',
        REQUEST_URI: '/app/environ/caf%C3%A9?a=1&b=%20',
        SERVER_NAME: '127.0.0.1',
        SERVER_PORT: String(server.port),
        SERVER_PROTOCOL: 'HTTP/1.1',
        CONTENT_TYPE: '',
        CONTENT_LENGTH: '',
        HTTP_X_CUSTOM: 'yes',
        'wsgi.version': [1, 0],
        'wsgi.url_scheme': 'http',
        'wsgi.multithread': false,
        'wsgi.multiprocess': true,
        'wsgi.run_once': false,
        'wsgi.input_terminated': true,
        'wsgi.input': 'WsgiInput',
      });
    });

    it('wsgi.input: read(n), readline() and iteration, with Content-Length and chunked', async () => {
      const body = 'abcdef\nline two\nthree\n';
      const sized = await request(server.server).post('/app/echo').send(body);
      expect(sized.body).toEqual({ first: 'abc', line: 'def\n', rest: 'line two\nthree\n'.length, length: String(body.length) });
      const chunked = await rawRequest(
        server.port,
        'POST /app/echo HTTP/1.1\nHost: x\nTransfer-Encoding: chunked',
        '4\r\nabcd\r\n3\r\nef\n\r\n6\r\nxyz\nq\n\r\n0\r\n\r\n',
      );
      expect(JSON.parse(chunked.body.toString())).toEqual({ first: 'abc', line: 'def\n', rest: 6, length: '' });
    });

    it('streams a large request body to the app in pieces', async () => {
      const body = randomBytes(8 * 1024 * 1024);
      let checksum = 0;
      for (const byte of body) checksum = (checksum + byte) % 1_000_000_007;
      const response = await request(server.server).post('/app/sum').set('Content-Type', 'application/octet-stream').send(body);
      expect(response.body).toEqual({ length: body.length, checksum });
    });

    it('wsgi.errors and print() reach the logger line by line', async () => {
      expect((await request(server.server).get('/app/errors')).body).toEqual({ logged: true });
      await eventually('the log lines', () => probe.lines.includes('wsgi.errors: second line'));
      expect(probe.lines).toContain('wsgi.errors: first line');
      expect(probe.lines.some((line) => /^python\[\d+\]: printed to stdout$/.test(line))).toBe(true);
    });

    it('an exception before the response is a 500 problem; the traceback goes to the log only', async () => {
      const response = await request(server.server).get('/app/fail');
      const problem = expectProblemAnswer({ status: response.status, contentType: response.headers['content-type'], text: response.text }, 500);
      expect(problem.detail).not.toContain('secret');
      expect(response.text).not.toContain('Traceback');
      await eventually('the traceback in the log', () => probe.lines.find((line) => line.includes('Traceback (most recent call last)')));
      expect(probe.lines.join('\n')).toContain('RuntimeError: secret detail that must stay in the log');
      expect(await pidOf(`${server.url}/app`)).toBeGreaterThan(0); // The worker goes on serving.
    });

    it('an exception after the body started cuts the connection', async () => {
      const response = await rawRequest(server.port, 'GET /app/fail-after-start HTTP/1.1\nHost: x');
      expect(response.status).toBe(200);
      expect(response.complete).toBe(false);
      expect(response.body.toString()).toBe('partial');
    });

    it('start_response with exc_info replaces the head before anything was sent', async () => {
      const response = await request(server.server).get('/app/exc-info');
      expect(response.status).toBe(500);
      expect(response.text).toBe('replaced by the app\n');
    });

    it('a body chunk of several megabytes arrives whole', async () => {
      const response = await request(server.server).get('/app/big').buffer(true).parse((res, done) => {
        const parts: Buffer[] = [];
        res.on('data', (part: Buffer) => parts.push(part));
        res.on('end', () => done(null, Buffer.concat(parts)));
      });
      const expected = Buffer.alloc(5 * 4096 * 256);
      for (let i = 0; i < expected.length; i++) expected[i] = i % 256;
      expect(response.headers['content-length']).toBe(String(expected.length));
      expect((response.body as Buffer).equals(expected)).toBe(true);
    });

    it('the write() callable, then the returned body', async () => {
      const response = await request(server.server).get('/app/write');
      expect(response.text).toBe('written and returned\n');
    });

    it('a hop-by-hop header from the app is refused with a 500', async () => {
      const response = await request(server.server).get('/app/hop');
      expectProblemAnswer({ status: response.status, contentType: response.headers['content-type'], text: response.text }, 500);
      await eventually('the log line', () => probe.lines.find((line) => line.includes("'Connection' is a hop-by-hop header")));
    });

    it('keeps Latin-1, empty and repeated header values and the reason phrase', async () => {
      const response = await rawRequest(server.port, 'GET /app/headers HTTP/1.1\nHost: x');
      expect([response.status, response.reason]).toEqual([299, 'Fine Indeed']);
      expect(response.headerLines).toEqual(expect.arrayContaining([['X-Latin', 'caf\u00e9'], ['X-Empty', ''], ['Set-Cookie', 'a=1'], ['Set-Cookie', 'b=2']]));
      expect(response.body.toString()).toBe('ok');
    });

    it('a NUL in a header value from the app is refused with a 500 naming the header', async () => {
      const response = await request(server.server).get('/app/nul-header');
      expectProblemAnswer({ status: response.status, contentType: response.headers['content-type'], text: response.text }, 500);
      await eventually('the log line', () => probe.lines.find((line) => line.includes("value of header 'X-Bad' contains NUL")));
    });

    it("calls the body's close(), and stops a generator when the client leaves", async () => {
      await request(server.server).get('/app/stream?3').expect(200);
      await eventually('close() after a full body', () => probe.lines.includes('wsgi.errors: body closed after 3'));
      const pids = probe.workerPids;
      await leaveAfterFirstChunk(server.port, '/app/stream?100000000');
      const line = await eventually('close() after the client left', () => probe.lines.find((entry) => /body closed after \d+$/.test(entry) && !entry.endsWith(' 3')));
      expect(Number(/(\d+)$/.exec(line)?.[1])).toBeLessThan(100_000_000);
      // Stopped, not killed: the same workers serve on.
      expect(probe.workerPids).toEqual(pids);
      expect(await pidOf(`${server.url}/app`)).toBeGreaterThan(0);
    });
    it('follows backpressure: a client that does not read holds the generator back', async () => {
      const streamed = () => probe.lines.filter((line) => line.startsWith('wsgi.errors: streamed ')).length;
      const before = streamed();
      const from = probe.lines.length;
      const socket = clientThatDoesNotRead(server.port, '/app/stream-big?100000');
      try {
        await waitForStall(() => streamed() - before, 'the generator held back');
        // 10 chunks of 64 KiB per line: what sits in the socket and pipe buffers, nowhere near the 6.5 GB asked for.
        expect((streamed() - before) * 10 * 65536).toBeLessThan(64 * 1024 * 1024);
      } finally {
        socket.destroy();
      }
      const closed = await eventually('close() after the client left', () => probe.lines.slice(from).find((line) => /body closed after \d+$/.test(line)));
      expect(Number(/(\d+)$/.exec(closed)?.[1])).toBeLessThan(100_000);
      await eventually('the worker free again', () => probe.load.busy === 0);
    });

    it('a wsgi.input read fails when the client leaves mid-body; the worker serves on', async () => {
      await eventually('no request running', () => probe.load.busy === 0);
      const pids = probe.workerPids;
      const socket = connect(server.port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write('POST /app/input-after-leave HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n0123456789');
      await eventually('the app reading', () => probe.load.busy === 1);
      socket.destroy();
      await eventually('the failed read logged', () => probe.lines.includes('wsgi.errors: input failed: the client disconnected'));
      await eventually('the worker free again', () => probe.load.busy === 0);
      expect(probe.workerPids).toEqual(pids);
    });

    it('hands PATH_INFO over as the raw bytes of the target, latin-1 decoded', async () => {
      const response = await rawRequest(server.port, 'GET /app/environ/a%2Fb%FF HTTP/1.1\nHost: x');
      expect(JSON.parse(response.body.toString()).PATH_INFO).toBe('/environ/a/b\u00ff');
    });
  });

  describe('the pool', () => {
    let servers: Listening[] = [];
    afterEach(async () => {
      await Promise.all(servers.map((entry) => entry.close()));
      servers = [];
      const pids = pools.flatMap((middleware) => middleware.workerPids);
      await closePools();
      for (const pid of pids) expect(isRunning(pid)).toBe(false);
    });
    async function serve(middleware: PythonWsgiMiddleware): Promise<Listening> {
      await middleware.ready();
      const app = express();
      app.use('/app', middleware);
      const listening = await listen(app);
      servers.push(listening);
      return listening;
    }

    it('reads and drops a body the app never read, so the keep-alive connection serves the next request', async () => {
      // The app holds the worker until the upload has backed up (the request paused), then answers without reading it.
      const probe = pool('probe:app', { workers: 1 });
      await probe.ready();
      let uploading: IncomingMessage | undefined;
      const app = express();
      app.use((req, _res, next) => {
        if (req.method === 'POST') uploading = req;
        next();
      });
      app.use('/app', probe);
      const listening = await listen(app);
      servers.push(listening);
      const gate = join(scratch, `unread-${randomBytes(4).toString('hex')}`);
      const result = await postUnreadThenGet(listening.port, `/app/block?${gate}`, '/app/pid', undefined, async () => {
        await eventually('the upload to back up', () => uploading?.isPaused());
        writeFileSync(gate, '');
      });
      expect(result).toEqual({ postStatus: 200, getStatus: 200, sockets: 1 });
    });

    it('a worker streaming its answer holds at most about 1 MiB of a body its app does not read', async () => {
      const probe = pool('probe:app', { workers: 1 });
      const { url } = await serve(probe);
      const response = await fetch(`${url}/app/stream-unread?20000`, { method: 'POST', body: Buffer.alloc(32 * 1024 * 1024, 'x') });
      const text = await response.text();
      expect(text.length).toBeGreaterThan(20000);
      const mostUnread = Number(text.trim().split('\n').at(-1));
      // The runner stops reading ahead past 1 MiB (one more read of up to 64 KiB may land first).
      expect(mostUnread).toBeLessThan(1.25 * 1024 * 1024);
    });

    it('maxBodySize: 413 for a declared Content-Length over it, before the app runs', async () => {
      const probe = pool('probe:app', { workers: 1, maxBodySize: 1000 });
      const { server, port } = await serve(probe);
      const answer = await rawRequest(port, 'POST /app/sum HTTP/1.1\nHost: x\nContent-Length: 5000', 'x'.repeat(5000));
      expect(answer.status).toBe(413);
      const problem = expectProblemAnswer({ status: answer.status, contentType: header(answer, 'content-type')[0], text: answer.body.toString() }, 413);
      expect(problem.detail).toBe('The request body is larger than 1000 bytes.');
      expect(probe.lines.join('\n')).toMatch(/pythonWsgi: 413 for POST \/app\/sum: Content-Length 5000 is over maxBodySize \(1000\)/);
      expect((await request(server).post('/app/sum').send('x'.repeat(1000)).expect(200)).body).toMatchObject({ length: 1000 });
    });

    it('maxBodySize: a chunked body past it is cut off with 413, and the worker serves the next request', async () => {
      const probe = pool('probe:app', { workers: 1, maxBodySize: 1000 });
      const { server, port } = await serve(probe);
      const [before] = probe.workerPids;
      const answer = await rawRequest(port, 'POST /app/sum HTTP/1.1\nHost: x\nTransfer-Encoding: chunked', `200\r\n${'x'.repeat(512)}\r\n1388\r\n${'x'.repeat(5000)}\r\n0\r\n\r\n`);
      expect(answer.status).toBe(413);
      expect(header(answer, 'connection')).toEqual(['close']);
      expect(probe.lines.join('\n')).toMatch(/413 for POST \/app\/sum: the chunked body passed maxBodySize \(1000\)/);
      expect((await request(server).post('/app/sum').send('x'.repeat(1000)).expect(200)).body).toMatchObject({ length: 1000 });
      expect(probe.workerPids).toEqual([before]);
    });

    it('a huge wsgi.errors write is logged cut to 16 KiB, and the worker lives on', async () => {
      const probe = pool('probe:app', { workers: 1 });
      const { server } = await serve(probe);
      const [before] = probe.workerPids;
      expect((await request(server).get('/app/errors-huge').expect(200)).body).toEqual({ logged: true });
      await eventually('the line after the huge one', () => probe.lines.includes('wsgi.errors: after the huge line'));
      const huge = probe.lines.filter((line) => line.startsWith('wsgi.errors: eee'));
      expect(huge).toEqual([`wsgi.errors: ${'e'.repeat(16 * 1024)}… (truncated)`]);
      expect(probe.workerPids).toEqual([before]);
    });

    it('a request logs at most 1 MiB of wsgi.errors, then one line saying so; the same worker\'s next request logs again', async () => {
      const probe = pool('probe:app', { workers: 1 });
      const { server } = await serve(probe);
      const notice = 'wsgi.errors: … (this request logged more than 1048576 characters; the rest of its output is dropped)';
      for (const round of [1, 2]) {
        expect((await request(server).get('/app/errors-many').expect(200)).body).toEqual({ logged: true });
        await eventually(`the notice of request ${round}`, () => (probe.lines.filter((line) => line === notice).length === round ? true : undefined));
        // Each line counts with its prefix and line break.
        expect(probe.lines.filter((line) => line === `wsgi.errors: ${'m'.repeat(1000)}`)).toHaveLength(round * Math.floor((1024 * 1024) / ('wsgi.errors: '.length + 1000 + 1)));
      }
      expect(probe.lines).not.toContain('wsgi.errors: the last line');
    });

    it.each(['huge-exception', 'huge-emoji-exception'])('an exception with a huge message (%s): 500 with its traceback logged cut to its end, and the worker lives on', async (route) => {
      const probe = pool('probe:app', { workers: 1 });
      const { server } = await serve(probe);
      const [before] = probe.workerPids;
      await request(server).get(`/app/${route}`).expect(500);
      expect(probe.workerPids).toEqual([before]);
      expect(probe.lines.join('\n')).toMatch(/traceback cut to its end/);
    });

    it('a response head over 64 KiB: 500, and the worker lives on', async () => {
      const probe = pool('probe:app', { workers: 1 });
      const { server } = await serve(probe);
      const [before] = probe.workerPids;
      await request(server).get('/app/big-head').expect(500);
      expect(probe.workerPids).toEqual([before]);
      expect(probe.lines.join('\n')).toMatch(/the response head is larger than 65536 bytes/);
    });

    it('a worker crash mid-request gives 502, and the next request succeeds on its replacement', async () => {
      const probe = pool('probe:app', { workers: 1 });
      const { server, url } = await serve(probe);
      const [before] = probe.workerPids;
      const crashed = await request(server).get('/app/crash');
      const problem = expectProblemAnswer({ status: crashed.status, contentType: crashed.headers['content-type'], text: crashed.text }, 502);
      expect(problem.detail).toMatch(/Python worker/);
      expect(await pidOf(`${url}/app`)).not.toBe(before);
      expect(probe.lines.some((line) => line.includes(`worker ${before} exited with status 3`))).toBe(true);
    });

    it('a crash after the body started cuts the connection; the pool recovers', async () => {
      const probe = pool('probe:app', { workers: 1 });
      const { port, url } = await serve(probe);
      const response = await rawRequest(port, 'GET /app/crash-mid-body HTTP/1.1\nHost: x');
      expect(response.status).toBe(200);
      expect(response.complete).toBe(false);
      expect(await pidOf(`${url}/app`)).toBeGreaterThan(0);
    });

    it('past the timeout: 504, and the worker is killed and replaced', async () => {
      const probe = pool('probe:app', { workers: 1, timeout: 1500 });
      const { server, url } = await serve(probe);
      const [slow] = probe.workerPids as [number];
      const response = await request(server).get('/app/sleep?60');
      const problem = expectProblemAnswer({ status: response.status, contentType: response.headers['content-type'], text: response.text }, 504);
      expect(problem.detail).toContain('1500 ms');
      await eventually('the slow worker killed', () => !isRunning(slow));
      const next = await pidOf(`${url}/app`);
      expect(next).not.toBe(slow);
      expect(probe.workerPids).toEqual([next]);
    });

    it("a timeout past setTimeout's range (30 days) does not fire at once", async () => {
      const probe = pool('probe:app', { workers: 1, timeout: 30 * 24 * 3600 * 1000 });
      const { server } = await serve(probe);
      const response = await request(server).get('/app/sleep?0.05');
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ slept: true });
    });

    it('a request still queued at the timeout: 504, and so is the one holding the worker', async () => {
      // The killed worker's replacement is held at import until both answers are in, so it cannot serve the queued request.
      const holdImport = join(scratch, `hold-import-${randomBytes(4).toString('hex')}`);
      const probe = pool('probe:app', { workers: 1, timeout: 1500, env: { PROBE_HOLD_IMPORT: holdImport } });
      const { url } = await serve(probe);
      writeFileSync(holdImport, '');
      const gate = blocker();
      try {
        const blocked = fetch(`${url}/app/block?${gate.query}`);
        await eventually('the worker blocked', gate.started);
        const queued = fetch(`${url}/app/pid`);
        await eventually('one request queued', () => probe.load.queued === 1);
        const [first, second] = await Promise.all([blocked, queued]);
        expect(first.status).toBe(504);
        expect(second.status).toBe(504);
        expect(((await second.json()) as { detail: string }).detail).toBe('No Python worker became free within 1500 ms.');
      } finally {
        gate.release();
        rmSync(holdImport, { force: true });
      }
      expect(await pidOf(`${url}/app`)).toBeGreaterThan(0);
      expect(probe.load).toEqual({ busy: 0, queued: 0 });
    });

    it('queues requests while workers are busy, and answers 503 past maxQueue', async () => {
      const probe = pool('probe:app', { workers: 1, maxQueue: 1 });
      const { server, url } = await serve(probe);
      const gate = blocker();
      const blocked = fetch(`${url}/app/block?${gate.query}`);
      await eventually('the worker blocked', gate.started);
      const queued = fetch(`${url}/app/pid`);
      await eventually('one request queued', () => probe.load.queued === 1);
      const refused = await request(server).get('/app/pid');
      const problem = expectProblemAnswer({ status: refused.status, contentType: refused.headers['content-type'], text: refused.text }, 503);
      expect(problem.detail).toContain('busy');
      gate.release();
      expect((await blocked).status).toBe(200);
      expect((await queued).status).toBe(200);
      expect(probe.load).toEqual({ busy: 0, queued: 0 });
    });

    it("fallthrough: the app's 404 passes the request on to the next route", async () => {
      const probe = pool('probe:app', { workers: 1, fallthrough: true });
      await probe.ready();
      const app = express();
      app.use('/app', probe);
      app.get('/app/elsewhere', (_req, res) => {
        res.send('native after the app\n');
      });
      const listening = await listen(app);
      servers.push(listening);
      expect((await request(listening.server).get('/app/elsewhere')).text).toBe('native after the app\n');
      expect((await request(listening.server).get('/app/pid')).status).toBe(200);
      expect(await pidOf(`${listening.url}/app`)).toBe(probe.workerPids[0]); // The fallen-through request freed the worker.
    });

    it('maxRequestsJitter: each worker serves maxRequests plus its own 0 to jitter requests', async () => {
      const probe = pool('probe:app', { workers: 1, maxRequests: 1, maxRequestsJitter: 3 });
      const { url } = await serve(probe);
      const pids: number[] = [];
      for (let i = 0; i < 16; i++) pids.push(await pidOf(`${url}/app`));
      const runs: number[] = [];
      for (let i = 0; i < pids.length; i++) {
        if (i > 0 && pids[i] === pids[i - 1]) runs[runs.length - 1]! += 1;
        else runs.push(1);
      }
      const whole = runs.slice(0, -1); // The last worker may not have reached its limit yet.
      expect(whole.every((length) => length >= 1 && length <= 4)).toBe(true);
      expect(new Set(pids).size).toBe(runs.length); // A retired worker never comes back.
      // Without jitter every run would be 1 long; with it, 11 runs all of length 1 have odds 4^-11.
      expect(whole.some((length) => length > 1)).toBe(true);
    });

    it('recycles a worker after maxRequests', async () => {
      const probe = pool('probe:app', { workers: 1, maxRequests: 2 });
      const { url } = await serve(probe);
      const first = await pidOf(`${url}/app`);
      expect(await pidOf(`${url}/app`)).toBe(first);
      const third = await pidOf(`${url}/app`);
      expect(third).not.toBe(first);
      await eventually('the recycled worker gone', () => !isRunning(first));
      expect(await pidOf(`${url}/app`)).toBe(third);
    });

    it('close() finishes the request in flight, refuses new ones with 503, and leaves no process', async () => {
      const probe = pool('probe:app', { workers: 2 });
      const { server, url } = await serve(probe);
      const pids = probe.workerPids;
      expect(pids).toHaveLength(2);
      const gate = blocker();
      const inFlight = fetch(`${url}/app/block?${gate.query}`);
      await eventually('the request running', gate.started);
      let closed = false;
      const closing = probe.close().then(() => {
        closed = true;
      });
      const refused = await request(server).get('/app/pid');
      expectProblemAnswer({ status: refused.status, contentType: refused.headers['content-type'], text: refused.text }, 503);
      expect(closed).toBe(false);
      gate.release();
      const answer = await inFlight;
      expect(answer.status).toBe(200);
      expect(((await answer.json()) as { released: boolean }).released).toBe(true);
      await closing;
      for (const pid of pids) expect(isRunning(pid)).toBe(false);
      expect(probe.workerPids).toEqual([]);
    });

    it('an app that cannot be imported: ready() rejects, requests get 502, the traceback is logged', async () => {
      const broken = pool('no_such_module:app', { workers: 1 });
      await expect(broken.ready()).rejects.toThrow(/no_such_module/);
      const app = express();
      app.use('/app', broken);
      const listening = await listen(app);
      servers.push(listening);
      const response = await request(listening.server).get('/app/');
      // Refused at once: no worker could start, and waiting for the next try would not help.
      expectProblemAnswer({ status: response.status, contentType: response.headers['content-type'], text: response.text }, 502);
      expect(broken.lines.join('\n')).toContain("ModuleNotFoundError: No module named 'no_such_module'");
    });

    it('leaves no orphan when the Node process is killed with SIGKILL', async () => {
      // A real Node child mounts the pool from a bundle of the sources (with the runner beside it, as in dist/).
      const { build } = await import('esbuild');
      const bundleDir = join(scratch, 'bundle');
      await build({
        entryPoints: [fileURLToPath(new URL('../../src/gateway/index.ts', import.meta.url))],
        bundle: true,
        platform: 'node',
        format: 'esm',
        outfile: join(bundleDir, 'gateway.mjs'),
        logLevel: 'silent',
      });
      cpSync(fileURLToPath(new URL('../../src/gateway/python', import.meta.url)), join(bundleDir, 'python'), { recursive: true });
      const script = join(bundleDir, 'serve.mjs');
      writeFileSync(
        script,
        `import { createServer } from 'node:http';
import { pythonWsgi } from './gateway.mjs';
const pool = pythonWsgi('hello:app', { python: ${JSON.stringify(python)}, cwd: ${JSON.stringify(appDir)}, workers: 2 });
await pool.ready();
createServer(pool).listen(0, '127.0.0.1', () => console.log('ready ' + JSON.stringify(pool.workerPids)));
`,
      );
      const child = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
      const pids = await new Promise<number[]>((resolve, reject) => {
        let output = '';
        child.stdout.on('data', (chunk: Buffer) => {
          output += chunk.toString();
          const match = /ready (\[.*\])/.exec(output);
          if (match) resolve(JSON.parse(match[1] as string) as number[]);
        });
        child.once('exit', (code) => reject(new Error(`the child exited with ${code} before it was ready`)));
      });
      expect(pids).toHaveLength(2);
      for (const pid of pids) expect(isRunning(pid)).toBe(true);
      child.kill('SIGKILL');
      await eventually('the workers gone with their parent', () => pids.every((pid) => !isRunning(pid)));
    });
  });

  describe('options', () => {
    it('are checked when the middleware is made, naming the option', () => {
      expect(() => pythonWsgi('not a spec')).toThrow(/pythonWsgi\(\): appSpec must be 'module:callable'/);
      expect(() => pythonWsgi('hello:app', { workers: 0, cwd: appDir, python })).toThrow(/option "workers" must be a whole number of processes from 1 to 256, got 0/);
      expect(() => pythonWsgi('hello:app', { python: '/no/such/python', cwd: appDir })).toThrow(/option "python" \("\/no\/such\/python"\) does not exist/);
      expect(() => pythonWsgi('hello:app', { cwd: '/no/such/dir', python })).toThrow(/option "cwd" \("\/no\/such\/dir"\) is not a directory/);
      expect(() => pythonWsgi('hello:app', { cwd: appDir, python, maxQueue: -1 })).toThrow(/option "maxQueue"/);
      expect(() => pythonWsgi('hello:app', { cwd: appDir, python, timeout: 0 })).toThrow(/option "timeout" must be a positive number/);
      expect(() => pythonWsgi('hello:app', { cwd: appDir, python, maxRequestsJitter: 5 })).toThrow(/"maxRequestsJitter" needs "maxRequests"/);
      expect(() => pythonWsgi('hello:app', { cwd: appDir, python, env: { 'A=B': 'x' } })).toThrow(/option "env" has an invalid entry "A=B"/);
      expect(() => pythonWsgi('hello:app', { cwd: appDir, python, wokers: 2 } as PythonWsgiOptions)).toThrow(/unknown option "wokers"/);
    });
  });
});
