/**
 * fastcgi() against Debian's php-fpm, started by the test on a private Unix
 * socket in a temporary directory (foreground, not a daemon), running the
 * PHP front controller of ./fixtures/php.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { get, type IncomingMessage } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, createServer as createNetServer, type AddressInfo, type Socket } from 'node:net';
import { encodeEndRequest, encodeRecords, RecordReader, RecordType } from '../../src/gateway/fastcgi-protocol.js';
import { fastcgi, type FastCgiMiddleware } from '../../src/gateway/index.js';
import { captureLogger, expressVersions, header, listen, postUnreadThenGet, rawRequest, waitFor, type Listening } from './helpers.js';

const phpFixtures = fileURLToPath(new URL('./fixtures/php', import.meta.url));
const phpFpm = ['/usr/sbin/php-fpm8.2', '/usr/sbin/php-fpm'].find((path) => existsSync(path)) ?? 'php-fpm8.2';

let scratch: string;
let socketPath: string;
let fpm: ChildProcess;
let fpmOutput = '';

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'gateway-fpm-'));
  socketPath = join(scratch, 'php-fpm.sock');
  const config = join(scratch, 'php-fpm.conf');
  writeFileSync(
    config,
    [
      '[global]',
      `pid = ${join(scratch, 'php-fpm.pid')}`,
      `error_log = ${join(scratch, 'php-fpm.log')}`,
      'daemonize = no',
      '[test]',
      `listen = ${socketPath}`,
      'pm = static',
      // Each kept-open connection holds a child: room for every pool below.
      'pm.max_children = 8',
      '',
    ].join('\n'),
  );
  // -F: foreground; -R: allowed to run as root (CI containers); -p: prefix for relative paths.
  fpm = spawn(phpFpm, ['-F', '-R', '-y', config, '-p', scratch], { stdio: ['ignore', 'pipe', 'pipe'] });
  fpm.stdout?.on('data', (chunk: Buffer) => (fpmOutput += chunk.toString()));
  fpm.stderr?.on('data', (chunk: Buffer) => (fpmOutput += chunk.toString()));
  await waitFor(() => existsSync(socketPath) || fpm.exitCode !== null, 'php-fpm to listen');
  if (!existsSync(socketPath)) throw new Error(`php-fpm did not start: ${fpmOutput}`);
});

afterAll(async () => {
  if (fpm !== undefined && fpm.exitCode === null) {
    const exited = new Promise((resolve) => fpm.once('exit', resolve));
    fpm.kill('SIGTERM');
    await exited;
  }
  rmSync(scratch, { recursive: true, force: true });
});

describe.each(expressVersions)('fastcgi() with php-fpm in %s', (_version, express) => {
  let server: Listening;
  let php: FastCgiMiddleware;
  let files: FastCgiMiddleware;
  let log: ReturnType<typeof captureLogger>;

  beforeAll(async () => {
    log = captureLogger();
    php = fastcgi({ socket: socketPath, root: phpFixtures, script: 'index.php', maxConnections: 2, logger: log.logger, timeout: 10_000 });
    files = fastcgi({ socket: socketPath, root: phpFixtures, maxConnections: 1, logger: log.logger });
    const app = express();
    app.use('/php', php);
    app.use('/files', files);
    app.get('/native', (_req, res) => {
      res.send('native');
    });
    server = await listen(app);
  });
  afterAll(async () => {
    await server.close();
    await Promise.all([php.close(), files.close()]);
    expect(php.connections).toMatchObject({ idle: 0, busy: 0 });
  });

  it('routes on REQUEST_URI in a front controller, with SCRIPT_FILENAME and DOCUMENT_ROOT from root and script', async () => {
    expect((await request(server.url).get('/php/hello/ada').expect(200)).text).toBe('hello ada\n');
    expect((await request(server.url).get('/php/nowhere').expect(404)).text).toBe('no route for /nowhere\n');
    const seen = (await request(server.url).get('/php/server?x=1').set('X-Test', 'yes').expect(200)).body;
    expect(seen).toMatchObject({
      REQUEST_URI: '/php/server?x=1',
      SCRIPT_FILENAME: join(phpFixtures, 'index.php'),
      DOCUMENT_ROOT: phpFixtures,
      SCRIPT_NAME: '/php',
      PATH_INFO: '/server',
      QUERY_STRING: 'x=1',
      REQUEST_METHOD: 'GET',
      REDIRECT_STATUS: '200',
      HTTP_X_TEST: 'yes',
    });
  });

  it('maps paths to files under root without a script, and refuses paths that leave root', async () => {
    expect((await request(server.url).get('/files/plain.php').expect(200)).text).toBe('plain plain.php as /files/plain.php\n');
    const escape = await rawRequest(server.port, 'GET /files/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\nHost: x');
    expect(escape.status).toBe(404);
    expect(header(escape, 'Content-Type')).toEqual(['application/problem+json; charset=utf-8']);
  });

  it('splits PATH_INFO off after the .php script, as nginx fastcgi_split_path_info', async () => {
    const split = await request(server.url).get('/files/plain.php/a/b%20c').expect(200);
    expect(split.text).toBe(`plain plain.php as /files/plain.php with PATH_INFO /a/b c translated ${phpFixtures}/a/b c\n`);
    // The script part is still held inside root.
    const escape = await rawRequest(server.port, 'GET /files/%2e%2e/x.php/a HTTP/1.1\nHost: x');
    expect(escape.status).toBe(404);
  });

  it('reads a form POST and a multipart upload', async () => {
    const form = await request(server.url).post('/php/form?from=test').type('form').send({ name: 'Ada' }).expect(200);
    expect(form.body).toEqual({ method: 'POST', post: { name: 'Ada' }, get: { from: 'test' } });
    const data = Buffer.alloc(400_000, 9);
    const upload = await request(server.url).post('/php/upload').field('note', 'hi').attach('file', data, 'data.bin').expect(200);
    expect(upload.body).toMatchObject({ name: 'data.bin', size: 400_000, note: 'hi' });
  });

  it('gives a chunked POST to PHP with its CONTENT_LENGTH (in memory and spooled)', async () => {
    const body = Buffer.alloc(2_500_000, 'q'); // Past the 1 MiB spoolThreshold.
    const parts = [body.subarray(0, 100_000), body.subarray(100_000)];
    const chunked = Buffer.concat([...parts.flatMap((part) => [Buffer.from(`${part.length.toString(16)}\r\n`), part, Buffer.from('\r\n')]), Buffer.from('0\r\n\r\n')]);
    const response = await rawRequest(server.port, 'POST /php/raw HTTP/1.1\nHost: x\nContent-Type: application/octet-stream\nTransfer-Encoding: chunked', chunked);
    expect(JSON.parse(response.body.toString())).toMatchObject({ length: 2_500_000, content_length: '2500000' });
    const small = await rawRequest(server.port, 'POST /php/raw HTTP/1.1\nHost: x\nContent-Type: application/octet-stream\nTransfer-Encoding: chunked', '5\r\nhello\r\n0\r\n\r\n');
    expect(JSON.parse(small.body.toString())).toMatchObject({ length: 5, content_length: '5' });
  });

  it('streams a response as PHP flushes it', async () => {
    const gate = join(scratch, `gate-${Math.random().toString(36).slice(2)}`);
    let text = '';
    const done = new Promise<void>((resolve, reject) => {
      get(`${server.url}/php/stream?gate=${encodeURIComponent(gate)}`, (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (text += chunk));
        res.on('end', resolve);
      }).on('error', reject);
    });
    await waitFor(() => text === 'line 1\n', 'the first line alone');
    writeFileSync(`${gate}.1`, '');
    await waitFor(() => text === 'line 1\nline 2\n', 'the second line');
    writeFileSync(`${gate}.2`, '');
    await done;
    expect(text).toBe('line 1\nline 2\nline 3\n');
  });

  it('reuses its connection (FCGI_KEEP_CONN) for consecutive requests', async () => {
    const reuse = fastcgi({ socket: socketPath, root: phpFixtures, script: 'index.php', maxConnections: 1, logger: log.logger });
    const app = express();
    app.use('/php', reuse);
    const pids = new Set<number>();
    for (let i = 0; i < 5; i++) pids.add((await request(app).get('/php/server').expect(200)).body.pid);
    expect(reuse.connections).toMatchObject({ opened: 1, idle: 1, busy: 0 });
    expect(pids.size).toBe(1); // The one php-fpm child bound to that connection.
    await reuse.close();
    expect(reuse.connections).toMatchObject({ idle: 0, busy: 0 });
  });

  it('keeps PHP\'s own 500 after a fatal error and delivers a page followed by exit(3) whole', async () => {
    const fatal = await rawRequest(server.port, 'GET /php/fatal-page HTTP/1.1\nHost: x');
    expect([fatal.status, fatal.complete, fatal.body.toString()]).toEqual([500, true, '<h1>Something broke</h1>\n']);
    const exit3 = await rawRequest(server.port, 'GET /php/exit3 HTTP/1.1\nHost: x');
    expect(exit3.complete).toBe(true);
    expect(exit3.body.toString()).toBe('0123456789abcdef\n'.repeat(20000));
  });

  it('sends FCGI_STDERR (error_log) to the logger', async () => {
    await request(server.url).get('/php/stderr').expect(200);
    await waitFor(() => log.lines.some((line) => line.startsWith('fastcgi: ') && line.includes('written to the error log')), 'the error_log line');
  });

  it('stops the PHP script when the client leaves mid-response, and serves the next request', async () => {
    const report = join(scratch, `report-${Math.random().toString(36).slice(2)}`);
    await new Promise<void>((resolve, reject) => {
      const req = get(`${server.url}/php/slow?report=${encodeURIComponent(report)}`, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', reject);
    });
    await waitFor(() => existsSync(report), 'PHP to notice the abort');
    const { readFileSync } = await import('node:fs');
    expect(readFileSync(report, 'utf8')).toBe('aborted');
    expect((await request(server.url).get('/php/hello/again').expect(200)).text).toBe('hello again\n');
  });

  it('answers 504 when PHP does not answer within timeout', async () => {
    const slow = fastcgi({ socket: socketPath, root: phpFixtures, script: 'index.php', maxConnections: 1, timeout: 300, logger: log.logger });
    const app = express();
    app.use('/php', slow);
    const gate = join(scratch, `wait-${Math.random().toString(36).slice(2)}`);
    try {
      const response = await request(app).get(`/php/wait?gate=${encodeURIComponent(gate)}`).expect(504);
      expect(response.body).toMatchObject({ status: 504, detail: 'The FastCGI server did not answer within 300 ms.' });
    } finally {
      writeFileSync(gate, ''); // Frees the php-fpm child.
      await slow.close();
    }
    expect(slow.connections.opened).toBe(1);
  });
});

describe('fastcgi() with a scripted FastCGI server', () => {
  it('runs a request again on a fresh connection when a kept-open one was closed by the server as it started', async () => {
    // Answers the first request on each connection; on a second request it
    // closes the connection unanswered, as a recycled php-fpm child does.
    let connectionsSeen = 0;
    const server = createNetServer((socket) => {
      connectionsSeen += 1;
      const reader = new RecordReader();
      let served = 0;
      socket.on('data', (chunk: Buffer) => {
        for (const record of reader.push(chunk)) {
          if (record.type === RecordType.BeginRequest && served === 1) {
            socket.destroy();
            return;
          }
          if (record.type === RecordType.Stdin && record.content.length === 0) {
            served += 1;
            socket.write(Buffer.concat([...encodeRecords(RecordType.Stdout, 1, Buffer.from(`Content-Type: text/plain\r\n\r\nanswer on connection ${connectionsSeen}`)), ...encodeRecords(RecordType.Stdout, 1), encodeEndRequest(1, 0, 0)]));
          }
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const log = captureLogger();
    const middleware = fastcgi({ host: '127.0.0.1', port, maxConnections: 1, logger: log.logger });
    const http = await listen((req, res) => middleware(req, res));
    try {
      expect((await request(http.url).get('/one').expect(200)).text).toBe('answer on connection 1');
      expect((await request(http.url).get('/two').expect(200)).text).toBe('answer on connection 2');
      expect(middleware.connections.opened).toBe(2);
    } finally {
      await http.close();
      await middleware.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });
  it('reads and drops a body the server never read, so the keep-alive connection serves the next request', async () => {
    // Answers each request when the test says so, reading no STDIN: the upload backs up first.
    const answerNow: Array<() => void> = [];
    const sockets: Socket[] = [];
    const server = createNetServer((socket) => {
      sockets.push(socket);
      const reader = new RecordReader();
      let answered = false;
      socket.on('error', () => undefined);
      socket.on('data', (chunk: Buffer) => {
        if (answered) return;
        for (const record of reader.push(chunk)) {
          if (record.type !== RecordType.Params || record.content.length !== 0) continue;
          answered = true;
          const answer = (): void => {
            socket.write(Buffer.concat([...encodeRecords(RecordType.Stdout, 1, Buffer.from('Content-Type: text/plain\r\n\r\nanswered')), ...encodeRecords(RecordType.Stdout, 1), encodeEndRequest(1, 0, 0)]));
          };
          if (answerNow.length === 0) socket.pause(); // The POST: held until the test answers it.
          answerNow.push(answer);
          if (answerNow.length > 1) answer(); // The GET: at once.
          return;
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const middleware = fastcgi({ host: '127.0.0.1', port, maxConnections: 1, logger: captureLogger().logger });
    let uploading: IncomingMessage | undefined;
    const http = await listen((req, res) => {
      if (req.method === 'POST') uploading = req;
      middleware(req, res);
    });
    try {
      const result = await postUnreadThenGet(http.port, '/upload', '/next', undefined, async () => {
        await waitFor(() => uploading?.isPaused() === true && answerNow.length === 1, 'the upload to back up');
        answerNow[0]?.();
      });
      expect(result).toEqual({ postStatus: 200, getStatus: 200, sockets: 1 });
    } finally {
      await http.close();
      await middleware.close();
      for (const socket of sockets) socket.destroy(); // The paused one never sees the end.
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('fastcgi() queue', () => {
  it('answers 503 past maxQueue, and a waiting request whose client left gives up its place', async () => {
    // A FastCGI server that takes connections and never answers (a stuck php-fpm).
    const held: Socket[] = [];
    const server = createNetServer((socket) => {
      held.push(socket);
      socket.on('error', () => undefined);
      socket.resume();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const log = captureLogger();
    const middleware = fastcgi({ host: '127.0.0.1', port, maxConnections: 1, maxQueue: 1, logger: log.logger });
    const http = await listen((req, res) => middleware(req, res));
    const clients: Socket[] = [];
    const openRequest = (path: string): Socket => {
      const socket = connect(http.port, '127.0.0.1');
      socket.on('error', () => undefined);
      socket.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      clients.push(socket);
      return socket;
    };
    try {
      openRequest('/holding');
      await waitFor(() => middleware.connections.busy === 1 && held.length === 1, 'the first request to hold the only connection');
      const waiting = openRequest('/waiting');
      await waitFor(() => middleware.connections.queued === 1, 'the second request to wait');
      const refused = await request(http.url).get('/refused').expect(503);
      expect(refused.body.detail).toBe('All 1 FastCGI connections are busy and 1 requests are already waiting; retry shortly.');
      waiting.destroy();
      await waitFor(() => middleware.connections.queued === 0, 'the request whose client left to leave the queue', 15_000);
    } finally {
      for (const socket of [...clients, ...held]) socket.destroy();
      await http.close();
      await middleware.close();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('fastcgi() without a server', () => {
  it('answers 502 when the server cannot be reached, and logs why', async () => {
    const log = captureLogger();
    const middleware = fastcgi({ socket: join(tmpdir(), `no-such-fpm-${process.pid}.sock`), logger: log.logger });
    const server = await listen((req, res) => middleware(req, res));
    try {
      const response = await request(server.url).get('/x').expect(502);
      expect(response.body.detail).toBe('The FastCGI server could not be reached.');
      expect(log.lines.join('\n')).toMatch(/cannot reach the FastCGI server for GET \/x: connect ENOENT/);
    } finally {
      await server.close();
    }
  });

  it.each([
    [{}, /give the server as/],
    [{ socket: '/s', port: 9000 }, /not both/],
    [{ port: 70000 }, /port from 1 to 65535/],
    [{ port: 9000, root: 'relative' }, /"root" must be an absolute path/],
    [{ port: 9000, root: '/srv', splitPathInfo: '^(.+\\.php)(/.*)$' }, /"splitPathInfo" must be a RegExp/],
    [{ port: 9000, params: 'x' }, /"params"/],
    [{ port: 9000, maxConnections: 0 }, /"maxConnections"/],
    [{ port: 9000, maxSpoolTotal: -1 }, /fastcgi\(\): option "maxSpoolTotal" must be a positive number/],
    [{ port: 9000, tempDir: 42 }, /fastcgi\(\): option "tempDir" \(42\) is not a directory/],
    [{ port: 9000, sokcet: '/s' }, /unknown option "sokcet"/],
  ])('throws a TypeError naming the problem (%#)', (options, message) => {
    expect(() => fastcgi(options as never)).toThrow(TypeError);
    expect(() => fastcgi(options as never)).toThrow(message);
  });
});
