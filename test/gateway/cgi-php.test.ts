/**
 * cgi() with Debian's php-cgi: a front controller that routes on REQUEST_URI
 * (php-cgi mounted itself, SCRIPT_FILENAME from the env option), PHP's exit
 * statuses after complete pages, and a `#!/usr/bin/php-cgi` script.
 */
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cgi } from '../../src/gateway/index.js';
import { captureLogger, expressVersions, fixture, header, listen, rawRequest, waitFor, type Listening } from './helpers.js';

const phpCgi = '/usr/bin/php-cgi';
const phpFixtures = fileURLToPath(new URL('./fixtures/php', import.meta.url));
const frontController = join(phpFixtures, 'index.php');

describe.each(expressVersions)('php-cgi through cgi() in %s', (_version, express) => {
  let server: Listening;
  let log: ReturnType<typeof captureLogger>;
  beforeAll(async () => {
    log = captureLogger();
    const app = express();
    app.use('/php', cgi(phpCgi, { cwd: phpFixtures, env: () => ({ SCRIPT_FILENAME: frontController }), logger: log.logger }));
    app.use('/cgi-bin/hello.php', cgi(fixture('php/hello.php'), { logger: log.logger }));
    server = await listen(app);
  });
  afterAll(() => server.close());

  it('routes on REQUEST_URI in a front controller', async () => {
    expect((await request(server.url).get('/php/hello/ada').expect(200)).text).toBe('hello ada\n');
    expect((await request(server.url).get('/php').expect(200)).text).toBe('home\n');
    const missing = await request(server.url).get('/php/nowhere').expect(404);
    expect(missing.text).toBe('no route for /nowhere\n');
    const seen = (await request(server.url).get('/php/server?x=1').expect(200)).body;
    expect(seen).toMatchObject({ REQUEST_URI: '/php/server?x=1', SCRIPT_FILENAME: frontController, QUERY_STRING: 'x=1', REDIRECT_STATUS: '200' });
  });

  it('reads a form POST and a multipart upload', async () => {
    const form = await request(server.url).post('/php/form?from=test').type('form').send({ name: 'Ada', tags: 'a b' }).expect(200);
    expect(form.body).toEqual({ method: 'POST', post: { name: 'Ada', tags: 'a b' }, get: { from: 'test' } });
    const upload = await request(server.url).post('/php/upload').field('note', 'hi').attach('file', Buffer.alloc(300_000, 7), 'data.bin').expect(200);
    expect(upload.body).toMatchObject({ name: 'data.bin', size: 300_000, note: 'hi' });
  });

  it('keeps PHP\'s own 500 after a fatal error (php-cgi exits 255), and logs the exit status', async () => {
    const bare = await rawRequest(server.port, 'GET /php/fatal HTTP/1.1\nHost: x');
    expect(bare.status).toBe(500);
    expect(bare.complete).toBe(true);
    const page = await rawRequest(server.port, 'GET /php/fatal-page HTTP/1.1\nHost: x');
    expect(page.status).toBe(500);
    expect(page.complete).toBe(true);
    expect(page.body.toString()).toBe('<h1>Something broke</h1>\n');
    await waitFor(() => log.lines.some((line) => line.includes('exited with status 255 after its response to GET /php/fatal-page')), 'the exit status in the log');
    expect(log.lines.join('\n')).toMatch(/Call to undefined function undefined_function_called_on_purpose/);
  });

  it('delivers a full page whole when the script then calls exit(3)', async () => {
    const response = await rawRequest(server.port, 'GET /php/exit3 HTTP/1.1\nHost: x');
    expect(response.status).toBe(200);
    expect(response.complete).toBe(true);
    expect(response.body.toString()).toBe('0123456789abcdef\n'.repeat(20000));
    await waitFor(() => log.lines.some((line) => line.includes('exited with status 3 after its response to GET /php/exit3')), 'the exit status in the log');
  });

  it('gives a chunked POST body to PHP with its CONTENT_LENGTH', async () => {
    const body = Buffer.alloc(70_000, 'z');
    const chunked = `${(40_000).toString(16)}\r\n${body.subarray(0, 40_000).toString()}\r\n${(30_000).toString(16)}\r\n${body.subarray(40_000).toString()}\r\n0\r\n\r\n`;
    const response = await rawRequest(server.port, 'POST /php/raw HTTP/1.1\nHost: x\nContent-Type: application/octet-stream\nTransfer-Encoding: chunked', chunked);
    expect(JSON.parse(response.body.toString())).toMatchObject({ length: 70_000, content_length: '70000' });
  });

  it('runs a #!/usr/bin/php-cgi script (SCRIPT_FILENAME and REDIRECT_STATUS set)', async () => {
    const response = await request(server.url).get('/cgi-bin/hello.php?q=1').expect(200);
    expect(response.text).toBe('hello from hello.php at /cgi-bin/hello.php?q=1\n');
  });

  it('sends error_log() lines to the logger', async () => {
    const response = await rawRequest(server.port, 'GET /php/stderr HTTP/1.1\nHost: x');
    expect(header(response, 'Content-Type')[0]).toMatch(/^text\/plain/);
    await waitFor(() => log.lines.some((line) => line.includes('written to the error log')), 'the error_log line');
  });
});
