/**
 * cgi(): RFC 3875 scripts run as real child processes (the executables in
 * ./fixtures), over real HTTP, in Express 5 and Express 4.
 */
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { cgi, GatewayError } from '../../src/gateway/index.js';
import { captureLogger, expressVersions, fixture, header, isRunning, isZombie, leaveAfterFirstChunk, listen, parseRaw, postUnreadThenGet, rawRequest, waitFor, type Listening } from './helpers.js';

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'gateway-cgi-'));
});
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

let pidFiles = 0;
function pidFile(): string {
  return join(scratch, `pids-${process.pid}-${pidFiles++}`);
}

function readPids(path: string): number[] {
  return readFileSync(path, 'utf8').trim().split(/\s+/).map(Number);
}

function envLines(text: string): Record<string, string> {
  const variables: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const equals = line.indexOf('=');
    if (equals > 0) variables[line.slice(0, equals)] = line.slice(equals + 1);
  }
  return variables;
}

describe.each(expressVersions)('cgi in %s', (_version, express) => {
  let servers: Listening[] = [];
  afterEach(async () => {
    await Promise.all(servers.map((server) => server.close()));
    servers = [];
  });

  function mountScript(script: string, options: Parameters<typeof cgi>[1] = {}) {
    const log = captureLogger();
    const app = express();
    app.use('/cgi/respond', cgi(fixture(script), { logger: log.logger, ...options }));
    app.get('/native', (req, res) => {
      res.json({ method: req.method, url: req.originalUrl, from: req.query.from ?? null });
    });
    return { app, lines: log.lines };
  }

  /** The sizes of this process's open spool files in `spoolDir` (unlinked, so found through /proc). */
  function spooledSizes(spoolDir: string): number[] {
    const sizes: number[] = [];
    for (const fd of readdirSync('/proc/self/fd')) {
      try {
        if (readlinkSync(`/proc/self/fd/${fd}`).startsWith(`${spoolDir}/express-jsonstore-body-`)) sizes.push(statSync(`/proc/self/fd/${fd}`).size);
      } catch {
        // Closed meanwhile.
      }
    }
    return sizes;
  }

  async function serveScript(script: string, options: Parameters<typeof cgi>[1] = {}) {
    const mounted = mountScript(script, options);
    const listening = await listen(mounted.app);
    servers.push(listening);
    return { ...listening, lines: mounted.lines };
  }

  describe('response', () => {
    it('answers with the script output', async () => {
      const { app } = mountScript('respond.sh');
      const response = await request(app).get('/cgi/respond').expect(200);
      expect(response.headers['content-type']).toBe('text/plain');
      expect(response.text).toBe('default\n');
    });

    it('takes the status from the Status field', async () => {
      const { port } = await serveScript('respond.sh');
      const created = await rawRequest(port, 'GET /cgi/respond?status HTTP/1.1\nHost: x');
      expect([created.status, created.reason]).toEqual([201, 'Created']);
      expect(header(created, 'Status')).toEqual([]);
      expect(created.body.toString()).toBe('created\n');
      const teapot = await rawRequest(port, 'GET /cgi/respond?status-code-only HTTP/1.1\nHost: x');
      expect(teapot.status).toBe(418);
    });

    it('turns an absolute Location into a 302 for the client', async () => {
      const { app } = mountScript('respond.sh');
      const response = await request(app).get('/cgi/respond?client-redirect').expect(302);
      expect(response.headers.location).toBe('http://example.com/elsewhere');
    });

    it('serves a local Location as if that path had been requested (GET, no body)', async () => {
      const { app } = mountScript('respond.sh');
      const response = await request(app).post('/cgi/respond?local-redirect').type('text/plain').send('dropped').expect(200);
      expect(response.body).toEqual({ method: 'GET', url: '/native?from=cgi', from: 'cgi' });
    });

    it('stops a local redirect loop with a 502', async () => {
      // Each hop hands the response on: no listener may be left behind per hop.
      let closeListeners = 0;
      const app = express();
      app.use((_req, res, next) => {
        closeListeners = Math.max(closeListeners, res.listenerCount('close'));
        next();
      });
      app.use('/cgi/respond', cgi(fixture('respond.sh'), { logger: captureLogger().logger }));
      const response = await request(app).get('/cgi/respond?redirect-loop').expect(502);
      expect(response.body.detail).toMatch(/redirected locally more than 10 times/);
      expect(closeListeners).toBeLessThan(5);
    });

    it('keeps several Set-Cookie fields on separate lines and reads CRLF line ends', async () => {
      const { port } = await serveScript('respond.sh');
      const cookies = await rawRequest(port, 'GET /cgi/respond?cookies HTTP/1.1\nHost: x');
      expect(header(cookies, 'Set-Cookie')).toEqual(['a=1; Path=/', 'b=2; Path=/']);
      const crlf = await rawRequest(port, 'GET /cgi/respond?crlf HTTP/1.1\nHost: x');
      expect(header(crlf, 'X-Style')).toEqual(['crlf']);
      expect(crlf.body.toString()).toBe('body\n');
    });

    it('drops hop-by-hop fields the script prints', async () => {
      const { port } = await serveScript('respond.sh');
      const response = await rawRequest(port, 'GET /cgi/respond?hop HTTP/1.1\nHost: x');
      expect(response.status).toBe(200);
      expect(header(response, 'Keep-Alive')).toEqual([]);
      expect(header(response, 'Connection')).toEqual(['close']); // Node's own, for our Connection: close.
      expect(response.body.toString()).toBe('hop\n');
    });

    it('sends no more than a declared Content-Length', async () => {
      const { port } = await serveScript('respond.sh');
      const response = await rawRequest(port, 'GET /cgi/respond?long-body HTTP/1.1\nHost: x');
      expect(header(response, 'Content-Length')).toEqual(['5']);
      expect(response.body.toString()).toBe('Hello');
    });

    it('sends no body for HEAD', async () => {
      const { port } = await serveScript('respond.sh');
      const response = await rawRequest(port, 'HEAD /cgi/respond HTTP/1.1\nHost: x');
      expect(response.status).toBe(200);
      expect(response.body.length).toBe(0);
    });

    it.each(['no-blank-line', 'no-fields', 'bad-line', 'bad-status', 'big-header'])('answers a malformed response (%s) with 502 problem+json', async (shape) => {
      const { app, lines } = mountScript('respond.sh');
      const response = await request(app).get(`/cgi/respond?${shape}`).expect(502);
      expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
      expect(response.body).toEqual({ type: expect.stringMatching(/bad-gateway$/), title: 'Bad gateway', status: 502, detail: expect.any(String) });
      expect(lines.join('\n')).toMatch(/cgi: The CGI script/);
    });

    it('answers a script that exits non-zero before any output with 502, and logs its stderr', async () => {
      const { app, lines } = mountScript('respond.sh');
      const response = await request(app).get('/cgi/respond?fail').expect(502);
      expect(response.body.detail).toMatch(/exited with status 3/);
      expect(lines).toContain('respond.sh: cannot open database');
    });

    it('delivers a complete response whole when the script then exits non-zero, and logs the status', async () => {
      const { port, lines } = await serveScript('respond.sh');
      const response = await rawRequest(port, 'GET /cgi/respond?fail-mid-body HTTP/1.1\nHost: x');
      expect(response.status).toBe(200);
      expect(response.body.toString()).toBe('partial');
      expect(response.complete).toBe(true);
      expect(lines).toContain('cgi: respond.sh exited with status 4 after its response to GET /cgi/respond?fail-mid-body');
    });

    it('keeps the script\'s own 500 (headers only) when it exits 255, as php-cgi does after a fatal error', async () => {
      const { port, lines } = await serveScript('respond.sh');
      const response = await rawRequest(port, 'GET /cgi/respond?fail-after-head HTTP/1.1\nHost: x');
      expect(response.status).toBe(500);
      expect(header(response, 'Content-Type')).toEqual(['text/html']);
      expect(response.complete).toBe(true);
      expect(lines.join('\n')).toMatch(/exited with status 255 after its response/);
    });

    it('cuts the connection when the script is killed by a signal after its output started', async () => {
      const { port, lines } = await serveScript('respond.sh');
      const response = await rawRequest(port, 'GET /cgi/respond?crash-mid-body HTTP/1.1\nHost: x');
      expect(response.status).toBe(200);
      expect(response.body.toString()).toBe('partial');
      expect(response.complete).toBe(false);
      expect(lines.join('\n')).toMatch(/was killed by SIGKILL mid-response/);
    });

    it('keeps the script output out of a malformed-response detail, and logs it', async () => {
      const { app, lines } = mountScript('respond.sh');
      const response = await request(app).get('/cgi/respond?bad-line').expect(502);
      expect(response.body.detail).toBe('The CGI script sent a malformed response (details in the server log).');
      expect(lines.join('\n')).toContain('Content-Type text/plain');
    });

    it('sends stderr to the logger line by line, prefixed with the script name', async () => {
      const { app, lines } = mountScript('respond.sh');
      await request(app).get('/cgi/respond?stderr').expect(200);
      await waitFor(() => lines.length >= 2, 'stderr lines');
      expect(lines).toEqual(['respond.sh: first line', 'respond.sh: second line']);
    });

    it('passes a 404 on to the next middleware with fallthrough', async () => {
      const app = express();
      app.use('/cgi/respond', cgi(fixture('respond.sh'), { fallthrough: true }));
      app.get('/cgi/respond', (_req, res) => {
        res.send('native fallback');
      });
      expect((await request(app).get('/cgi/respond?notfound').expect(200)).text).toBe('native fallback');
      expect((await request(app).get('/cgi/respond?status').expect(201)).text).toBe('created\n');
    });
  });

  describe('request', () => {
    it('reads and drops a body the script never read, so the keep-alive connection serves the next request', async () => {
      const server = await serveScript('respond.sh');
      const result = await postUnreadThenGet(server.port, '/cgi/respond', '/cgi/respond?status');
      expect(result).toEqual({ postStatus: 200, getStatus: 201, sockets: 1 });
    });

    it('runs the script in a clean environment: meta-variables, PATH and the env option only', async () => {
      process.env.GATEWAY_TEST_SECRET = 'must-not-leak';
      try {
        const { app } = mountScript('env.sh', { env: { APP_MODE: 'legacy' } });
        const response = await request(app).get('/cgi/respond/extra?q=1').set('Authorization', 'Basic c2VjcmV0').expect(200);
        const variables = envLines(response.text);
        expect(variables.GATEWAY_TEST_SECRET).toBeUndefined();
        expect(variables.APP_MODE).toBe('legacy');
        expect(variables.PATH).toBeTruthy();
        expect(variables).toMatchObject({
          GATEWAY_INTERFACE: 'CGI/1.1',
          SERVER_SOFTWARE: 'express-jsonstore',
          REQUEST_METHOD: 'GET',
          SCRIPT_NAME: '/cgi/respond',
          PATH_INFO: '/extra',
          QUERY_STRING: 'q=1',
          REMOTE_ADDR: expect.stringMatching(/127\.0\.0\.1$/),
          REMOTE_HOST: expect.stringMatching(/127\.0\.0\.1$/),
        });
        // No body: no CONTENT_LENGTH. Credentials are not handed to scripts by default.
        expect(variables.CONTENT_LENGTH).toBeUndefined();
        expect(variables.HTTP_AUTHORIZATION).toBeUndefined();
        const names = Object.keys(variables).filter((name) => !name.startsWith('HTTP_'));
        const allowed = new Set([
          'GATEWAY_INTERFACE', 'SERVER_SOFTWARE', 'SERVER_NAME', 'SERVER_PORT', 'SERVER_PROTOCOL', 'REQUEST_METHOD',
          'SCRIPT_NAME', 'PATH_INFO', 'QUERY_STRING', 'REMOTE_ADDR', 'REMOTE_HOST', 'CONTENT_TYPE', 'CONTENT_LENGTH',
          'PATH', 'APP_MODE', 'PWD', // PWD: set by the shell itself.
          'REQUEST_URI', 'SCRIPT_FILENAME', 'REDIRECT_STATUS', // Not RFC 3875, but what PHP needs.
        ]);
        expect(variables).toMatchObject({ REQUEST_URI: '/cgi/respond/extra?q=1', SCRIPT_FILENAME: fixture('env.sh'), REDIRECT_STATUS: '200' });
        expect(names.filter((name) => !allowed.has(name))).toEqual([]);
      } finally {
        delete process.env.GATEWAY_TEST_SECRET;
      }
    });

    it('takes env from a function of the request, which may replace SCRIPT_FILENAME but not request variables', async () => {
      const { app } = mountScript('env.sh', {
        env: (req) => ({ TENANT: String(req.headers['x-tenant']), SCRIPT_FILENAME: '/srv/index.php', REQUEST_METHOD: 'PUT' }),
      });
      const variables = envLines((await request(app).get('/cgi/respond').set('X-Tenant', 'acme').expect(200)).text);
      expect(variables).toMatchObject({ TENANT: 'acme', SCRIPT_FILENAME: '/srv/index.php', REQUEST_METHOD: 'GET' });
    });

    it('answers 500 and logs when the env function throws or returns a bad value', async () => {
      const { app, lines } = mountScript('env.sh', { env: () => ({ BAD: 1 }) as never });
      await request(app).get('/cgi/respond').expect(500);
      expect(lines.join('\n')).toMatch(/option "env"/);
    });

    it('passes Authorization with passAuthorization', async () => {
      const { app } = mountScript('env.sh', { passAuthorization: true });
      const response = await request(app).get('/cgi/respond').set('Authorization', 'Basic c2VjcmV0').expect(200);
      expect(envLines(response.text).HTTP_AUTHORIZATION).toBe('Basic c2VjcmV0');
    });

    it('runs the script in its own directory', async () => {
      const { app } = mountScript('env.sh');
      const response = await request(app).get('/cgi/respond').expect(200);
      expect(envLines(response.text).PWD).toBe(dirname(fixture('env.sh')));
    });

    it('gives the body on stdin with CONTENT_LENGTH', async () => {
      const { app } = mountScript('echo.sh');
      const response = await request(app).post('/cgi/respond').type('application/json').send('{"a":1}').expect(200);
      expect(response.headers['x-content-length']).toBe('7');
      expect(response.headers['content-type']).toBe('application/json');
      expect(response.text).toBe('{"a":1}');
    });

    it('reads a chunked body in full first, so CONTENT_LENGTH can be set', async () => {
      const { port } = await serveScript('echo.sh');
      const response = await rawRequest(port, 'POST /cgi/respond HTTP/1.1\nHost: x\nContent-Type: text/plain\nTransfer-Encoding: chunked', '6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n');
      expect(header(response, 'X-Content-Length')).toEqual(['11']);
      expect(header(response, 'X-Stdin')[0]).not.toMatch(/express-jsonstore-body/); // In memory, through the stdin pipe.
      expect(response.body.toString()).toBe('hello world');
    });

    it('spools a chunked body past spoolThreshold to an unlinked temporary file that becomes stdin', async () => {
      const spoolDir = mkdtempSync(join(scratch, 'spool-'));
      const { port } = await serveScript('echo.sh', { spoolThreshold: 100, tempDir: spoolDir });
      const payload = 'x'.repeat(5000);
      const chunks = [payload.slice(0, 64), payload.slice(64, 3000), payload.slice(3000)].map((part) => `${part.length.toString(16)}\r\n${part}\r\n`).join('');
      const response = await rawRequest(port, 'POST /cgi/respond HTTP/1.1\nHost: x\nContent-Type: text/plain\nTransfer-Encoding: chunked', `${chunks}0\r\n\r\n`);
      expect(header(response, 'X-Content-Length')).toEqual(['5000']);
      expect(header(response, 'X-Stdin')[0]).toMatch(new RegExp(`^${spoolDir}/express-jsonstore-body-.* \\(deleted\\)$`));
      expect(response.body.toString()).toBe(payload);
      expect(readdirSync(spoolDir)).toEqual([]);
    });

    it('holds at most maxSpoolTotal of chunked bodies at once: one more is a 503 with Retry-After, and the room comes back once a body is answered', async () => {
      const spoolDir = mkdtempSync(join(scratch, 'spool-'));
      const { port, lines } = await serveScript('echo.sh', { spoolThreshold: 100, maxSpoolTotal: 4000, tempDir: spoolDir });
      const chunked = (text: string) => `${text.length.toString(16)}\r\n${text}\r\n`;
      const head = 'POST /cgi/respond HTTP/1.1\nHost: x\nContent-Type: text/plain\nTransfer-Encoding: chunked';
      // A first upload sends 3 000 bytes and waits: they are in its spool file.
      const first = connect(port, '127.0.0.1');
      const firstAnswer: Buffer[] = [];
      first.on('data', (chunk) => firstAnswer.push(chunk));
      const firstClosed = new Promise((resolve) => first.on('close', resolve));
      first.write(`${head.replace(/\n/g, '\r\n')}\r\nConnection: close\r\n\r\n${chunked('a'.repeat(3000))}`);
      await waitFor(() => spooledSizes(spoolDir).includes(3000), 'the first body, whole, in its spool file');

      // A second one would take the total past 4 000 bytes.
      const refused = await rawRequest(port, head, `${chunked('b'.repeat(2000))}0\r\n\r\n`);
      expect(refused.status).toBe(503);
      expect(header(refused, 'Retry-After')).toEqual(['1']);
      const detail = 'The server is receiving as many request bodies as it holds at once (maxSpoolTotal, 4000 bytes); retry shortly.';
      expect(JSON.parse(refused.body.toString())).toMatchObject({ status: 503, detail });
      expect(lines).toEqual([`cgi: ${detail}`]);

      // The first finishes and is answered in full; then there is room again.
      first.write('0\r\n\r\n');
      await firstClosed;
      const answer = parseRaw(Buffer.concat(firstAnswer), 'POST');
      expect(answer.status).toBe(200);
      expect(answer.body.toString()).toBe('a'.repeat(3000));
      const after = await rawRequest(port, head, `${chunked('c'.repeat(2000))}0\r\n\r\n`);
      expect(after.status).toBe(200);
      expect(after.body.toString()).toBe('c'.repeat(2000));
      expect(readdirSync(spoolDir)).toEqual([]);
    });

    it('a body that cannot be spooled (tempDir gone) is a 500, and the connection closes after it: the rest is unread', async () => {
      const spoolDir = mkdtempSync(join(scratch, 'spool-'));
      const { port } = await serveScript('echo.sh', { spoolThreshold: 100, tempDir: spoolDir });
      rmSync(spoolDir, { recursive: true });
      // Keep-alive asked for (no Connection: close), and the body's end not yet sent.
      const socket = connect(port, '127.0.0.1');
      const received: Buffer[] = [];
      socket.on('data', (chunk) => received.push(chunk));
      const closed = new Promise((resolve) => socket.on('close', resolve));
      socket.write(`POST /cgi/respond HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nbb8\r\n${'f'.repeat(3000)}\r\n`);
      await closed;
      const response = parseRaw(Buffer.concat(received), 'POST');
      expect(response.status).toBe(500);
      expect(header(response, 'Connection')).toEqual(['close']);
    });

    it('a client that leaves mid-upload gives its share of maxSpoolTotal back; a chunked body larger than maxSpoolTotal is a 413', async () => {
      const spoolDir = mkdtempSync(join(scratch, 'spool-'));
      const { port } = await serveScript('echo.sh', { spoolThreshold: 100, maxSpoolTotal: 4000, tempDir: spoolDir });
      const chunked = (text: string) => `${text.length.toString(16)}\r\n${text}\r\n`;
      const head = 'POST /cgi/respond HTTP/1.1\nHost: x\nContent-Type: text/plain\nTransfer-Encoding: chunked';
      const leaving = connect(port, '127.0.0.1');
      leaving.on('error', () => {});
      leaving.write(`${head.replace(/\n/g, '\r\n')}\r\n\r\n${chunked('a'.repeat(3000))}`);
      await waitFor(() => spooledSizes(spoolDir).includes(3000), 'the body in its spool file');
      leaving.destroy();
      await waitFor(() => spooledSizes(spoolDir).length === 0, 'the spool file closed');
      // All 4 000 bytes are free again.
      const whole = await rawRequest(port, head, `${chunked('d'.repeat(4000))}0\r\n\r\n`);
      expect(whole.status).toBe(200);
      expect(whole.body.toString()).toBe('d'.repeat(4000));
      // Over maxSpoolTotal (below the 1 GiB maxBodySize): it could never fit, so 413 rather than a 503 to retry.
      const over = await rawRequest(port, head, `${chunked('e'.repeat(4001))}0\r\n\r\n`);
      expect(over.status).toBe(413);
      expect(JSON.parse(over.body.toString())).toMatchObject({ detail: 'The request body is larger than 4000 bytes.' });
    });

    it('answers 413 to a declared Content-Length over maxBodySize without starting the script, and logs it', async () => {
      const { port, lines } = await serveScript('echo.sh', { maxBodySize: 8 });
      const response = await rawRequest(port, 'POST /cgi/respond HTTP/1.1\nHost: x\nContent-Length: 11', 'hello world');
      expect(response.status).toBe(413);
      expect(lines).toEqual(['cgi: 413 for POST /cgi/respond: Content-Length 11 is over maxBodySize (8)']);
    });

    it('answers 413 to a chunked body over maxBodySize', async () => {
      const { port } = await serveScript('echo.sh', { maxBodySize: 8 });
      const response = await rawRequest(port, 'POST /cgi/respond HTTP/1.1\nHost: x\nTransfer-Encoding: chunked', '6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n');
      expect(response.status).toBe(413);
      expect(JSON.parse(response.body.toString())).toMatchObject({ status: 413 });
    });

    it('answers 413 as a GatewayError: the same problem+json, next(err) gets it with onError: \'next\', and the log says why', async () => {
      const chunked = ['POST /cgi/respond HTTP/1.1\nHost: x\nTransfer-Encoding: chunked', '6\r\nhello \r\n5\r\nworld\r\n0\r\n\r\n'] as const;
      const { port, lines } = await serveScript('echo.sh', { maxBodySize: 8 });
      const answered = await rawRequest(port, ...chunked);
      expect(header(answered, 'Content-Type')).toEqual(['application/problem+json; charset=utf-8']);
      expect(JSON.parse(answered.body.toString())).toEqual({
        type: 'tag:express-jsonstore,2026:payload-too-large',
        title: 'Payload too large',
        status: 413,
        detail: 'The request body is larger than 8 bytes.',
      });
      // Logged with the reason, so a failed upload can be explained.
      expect(lines).toEqual(['cgi: 413 for POST /cgi/respond: the chunked body passed maxBodySize (8); the rest was left unread']);

      let received: unknown;
      const app = express();
      app.use('/cgi/respond', cgi(fixture('echo.sh'), { maxBodySize: 8, onError: 'next' }));
      app.use((error: unknown, _req: unknown, res: { status(code: number): { send(body: string): void } }, _next: unknown) => {
        received = error;
        res.status(413).send('handled');
      });
      const server = await listen(app);
      servers.push(server);
      expect((await rawRequest(server.port, ...chunked)).body.toString()).toBe('handled');
      expect(received).toBeInstanceOf(GatewayError);
      expect(received).toMatchObject({ code: 'payload-too-large', status: 413, title: 'Payload too large' });
    });

    it('gives the already-parsed body when a body parser ran first', async () => {
      const app = express();
      app.use(express.text());
      app.use('/cgi/respond', cgi(fixture('echo.sh')));
      const response = await request(app).post('/cgi/respond').type('text/plain').send('parsed text').expect(200);
      expect(response.headers['x-content-length']).toBe('11');
      expect(response.text).toBe('parsed text');
    });
  });

  describe('process control', () => {
    it('answers 504 when the script overruns its timeout, and kills its process group', async () => {
      const pids = pidFile();
      const { app } = mountScript('sleepy.sh', { timeout: 300, env: { PIDFILE: pids } });
      const response = await request(app).get('/cgi/respond').expect(504);
      expect(response.body).toEqual({ type: expect.stringMatching(/gateway-timeout$/), title: 'Gateway timeout', status: 504, detail: expect.stringMatching(/300 ms/) });
      const [script = 0, sleeper = 0] = readPids(pids);
      // Gone and reaped: not left as a zombie.
      await waitFor(() => !isRunning(script) && !isZombie(script) && !isRunning(sleeper), 'the script and its sleeper to die');
    });

    it('escalates to SIGKILL when the script ignores SIGTERM', async () => {
      const pids = pidFile();
      const { app } = mountScript('stubborn.sh', { timeout: 200, killGrace: 200, env: { PIDFILE: pids } });
      await request(app).get('/cgi/respond').expect(504);
      const [script = 0] = readPids(pids);
      await waitFor(() => !isRunning(script) && !isZombie(script), 'SIGKILL to stop the script');
    });

    it('SIGKILLs the process group after killGrace even when the leader already exited', async () => {
      const pids = pidFile();
      const { app, lines } = mountScript('orphan.sh', { timeout: 200, killGrace: 200, env: { PIDFILE: pids } });
      await request(app).get('/cgi/respond').expect(504);
      expect(lines.join('\n')).toMatch(/orphan\.sh did not answer GET \/cgi\/respond within 200 ms/);
      const [script = 0, grandchild = 0] = readPids(pids);
      await waitFor(() => !isRunning(script), 'the leader to die on SIGTERM');
      await waitFor(() => !isRunning(grandchild), 'the SIGTERM-proof grandchild to be SIGKILLed');
    });

    it('kills the script when the client goes away mid-response', async () => {
      const pids = pidFile();
      const { port } = await serveScript('sleepy.sh', { env: { PIDFILE: pids } });
      await leaveAfterFirstChunk(port, '/cgi/respond?stream');
      const [script = 0, sleeper = 0] = readPids(pids);
      await waitFor(() => !isRunning(script) && !isZombie(script) && !isRunning(sleeper), 'the script and its sleeper to die');
    });
  });
});

describe('cgi outside Express', () => {
  it('turns a local redirect into a 302 when there is no app to re-dispatch to', async () => {
    const middleware = cgi(fixture('respond.sh'));
    const server = await listen((req, res) => middleware(req, res));
    try {
      const response = await request(server.url).get('/?local-redirect').expect(302);
      expect(response.headers.location).toBe('/native?from=cgi');
    } finally {
      await server.close();
    }
  });
});

describe('cgi() options', () => {
  const script = fixture('respond.sh');

  it.each([
    [() => cgi(join(dirname(script), 'missing.sh')), /scriptPath '.*missing\.sh' does not exist/],
    [() => cgi(dirname(script)), /is not a file/],
    [() => cgi(42 as never), /scriptPath must be a non-empty string/],
    [() => cgi(script, { timeout: 0 }), /option "timeout" must be a positive number/],
    [() => cgi(script, { timeout: -5 }), /option "timeout"/],
    [() => cgi(script, { timeout: '10s' } as never), /option "timeout"/],
    [() => cgi(script, { killGrace: Number.NaN }), /option "killGrace"/],
    [() => cgi(script, { maxHeaderSize: 0 }), /option "maxHeaderSize"/],
    [() => cgi(script, { maxBodySize: Infinity }), /option "maxBodySize"/],
    [() => cgi(script, { maxSpoolTotal: 0 }), /option "maxSpoolTotal" must be a positive number/],
    [() => cgi(script, { tempDir: '/no/such/dir' }), /cgi\(\): option "tempDir" \("\/no\/such\/dir"\) is not a directory/],
    [() => cgi(script, { env: { 'A=B': 'x' } }), /option "env"/],
    [() => cgi(script, { env: { A: 1 } } as never), /option "env"/],
    [() => cgi(script, { cwd: '/no/such/dir' }), /option "cwd"/],
    [() => cgi(script, { timout: 5 } as never), /unknown option "timout"/],
  ])('throws a TypeError naming the problem (%#)', (create, message) => {
    expect(create).toThrow(TypeError);
    expect(create).toThrow(message);
  });

  it('refuses a script without the execute bit', async () => {
    const { chmodSync } = await import('node:fs');
    const path = join(dirname(script), 'not-executable.sh');
    chmodSync(path, 0o644); // In case a checkout made it executable.
    expect(() => cgi(path)).toThrow(/is not executable/);
  });
});
