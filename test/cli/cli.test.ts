/**
 * The jsonstore command as a user runs it: the built dist/cli.js in a child
 * process, talked to over HTTP.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { createClient } from 'redis';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { sendExpectingContinue } from '../http/expect-client.js';
import { eventually } from '../support/wait.js';

const cli = resolve(import.meta.dirname, '../../dist/cli.js');
const run = promisify(execFile);
const children: ChildProcess[] = [];
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'jsonstore-cli-'));
});
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Starts the CLI on a free port; resolves with its base URL once it serves. */
function serve(args: string[], cwd = dir, as: { uid?: number; gid?: number } = {}): Promise<{ base: string; child: ChildProcess; output: () => string }> {
  const child = spawn(process.execPath, [cli, '--port', '0', ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], ...as });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (c) => (out += c));
  child.stderr!.on('data', (c) => (out += c));
  return new Promise((resolveServe, reject) => {
    const check = () => {
      const match = /at (http:\/\/\S+?)\/?(?:\s|$)/.exec(out);
      if (match) resolveServe({ base: match[1]!, child, output: () => out });
    };
    child.stdout!.on('data', check);
    child.on('exit', (code) => reject(new Error(`jsonstore exited with ${code}: ${out}`)));
  });
}

function stop(child: ChildProcess): Promise<number | null> {
  return new Promise((resolveStop) => {
    child.once('exit', (code) => resolveStop(code));
    child.kill('SIGTERM');
  });
}

function failure(args: string[]): Promise<{ code: number; stderr: string }> {
  return failureIn(dir, args);
}

async function failureIn(cwd: string, args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    await run(process.execPath, [cli, '--port', '0', ...args], { cwd, timeout: 20_000 });
  } catch (error) {
    const e = error as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
  throw new Error(`jsonstore ${args.join(' ')} succeeded`);
}

const json = { 'content-type': 'application/json' };

/** One request with this Host header (fetch() cannot set Host). */
function withHost(base: string, method: string, path: string, host: string, body?: string): Promise<{ status: number; text: string }> {
  const { hostname, port } = new URL(base);
  return new Promise((resolveRequest, reject) => {
    const headers: Record<string, string> = { Host: host };
    if (body !== undefined) Object.assign(headers, json, { 'content-length': String(Buffer.byteLength(body)) });
    const req = http.request({ host: hostname, port: Number(port), method, path, headers, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolveRequest({ status: res.statusCode ?? 0, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('jsonstore command', () => {
  test('--help prints the usage and exits 0', async () => {
    const { stdout } = await run(process.execPath, [cli, '--help']);
    expect(stdout).toMatch(/^Usage: jsonstore/);
    expect(stdout).toMatch(/--file <path>/);
    expect(stdout).toMatch(/--redis <url>/);
    expect(stdout).toMatch(/--fsync <mode>/);
    expect(stdout).toMatch(/--max-document-size <size>[\s\S]*default 100mb/);
    expect(stdout).toMatch(/--max-write-growth <size>/);
    expect(stdout).toMatch(/--max-patch-operations <n>[\s\S]*default 1000/);
  });

  test.each([
    [['--bogus'], /Unknown option '--bogus'/],
    [['--port', 'abc'], /--port must be a whole number/],
    [['--port', '70000'], /--port must be a whole number/],
    [['--port', '0x2B0C'], /--port must be a whole number from 0 to 65535 \(0 picks a free port\), got "0x2B0C"/],
    [['--port', ''], /--port must be a whole number from 0 to 65535 \(0 picks a free port\), got ""/],
    [['--port', '1e3'], /--port must be a whole number/],
    [['--port'], /Option '(?:-p, )?--port <value>' argument missing/],
    [['--port', '--memory'], /Option '--port' argument is ambiguous/],
    [['--cors', 'ftp://a.example'], /--cors "ftp:\/\/a.example" is not an origin/],
    [['--cors', 'https://a.example/path'], /--cors "https:\/\/a.example\/path" is not an origin/],
    [['--memory', '--no-watch'], /--watch and --no-watch go with file storage/],
    [['--memory', '--initial', 'no-such-file.json'], /--initial no-such-file.json: no such file/],
    [['--memory', '--static', 'no-such-folder'], /--static no-such-folder: no such folder/],
    [['--memory', '--file', 'x.json'], /choose one storage: --memory or --file/],
    [['--key', 'doc'], /--key goes with --redis/],
    [['--redis', 'localhost:6379'], /--redis needs a URL such as redis:\/\//],
    [['--limit', 'lots'], /option "limit" must be/],
    [['--fsync', 'sometimes'], /--fsync must be always or never, got "sometimes"/],
    [['--memory', '--fsync', 'never'], /--fsync goes with file storage/],
    [['--allowed-host', 'example.com:3000'], /--allowed-host "example.com:3000" is not a host name/],
    [['--allowed-host', 'http://example.com'], /--allowed-host "http:\/\/example.com" is not a host name/],
    [['--max-patch-operations', '0'], /--max-patch-operations must be a whole number of at least 1, got "0"/],
    [['--max-patch-operations', '1e3'], /--max-patch-operations must be a whole number of at least 1, got "1e3"/],
    [['--max-document-size', 'huge'], /option "maxDocumentSize" must be a positive number of bytes/],
    [['--max-write-growth', '0'], /option "maxWriteGrowth" must be a positive number of bytes/],
  ])('%j is refused with a clear error and status 2', async (args, message) => {
    const { code, stderr } = await failure(args);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
  });

  test('serves a file store by default that keeps data across restarts', async () => {
    const work = await mkdtemp(join(dir, 'default-'));
    const first = await serve([], work);
    expect(first.output()).toMatch(/file \.\/data\/store\.json/);
    const put = await fetch(`${first.base}/sniffles/0/rank`, { method: 'PUT', headers: json, body: '"sniffle chief"' });
    expect(put.status).toBe(201);
    expect(await stop(first.child)).toBe(0);
    expect(JSON.parse(await readFile(join(work, 'data/store.json'), 'utf8'))).toEqual({ sniffles: { '0': { rank: 'sniffle chief' } } });

    const second = await serve([], work);
    expect(await (await fetch(`${second.base}/sniffles/0/rank`)).json()).toBe('sniffle chief');
    await stop(second.child);
  });

  test('--file PATH --fsync never serves and keeps that file', async () => {
    const work = await mkdtemp(join(dir, 'fsync-'));
    const { base, child, output } = await serve(['--file', 'elsewhere/doc.json', '--fsync', 'never'], work);
    expect(output()).toMatch(/file elsewhere\/doc\.json \(no fsync\)/);
    expect((await fetch(`${base}/a`, { method: 'PUT', headers: json, body: '[1]' })).status).toBe(201);
    expect(await stop(child)).toBe(0);
    expect(JSON.parse(await readFile(join(work, 'elsewhere/doc.json'), 'utf8'))).toEqual({ a: [1] });
  });

  test('--memory keeps nothing on disk; --readonly refuses writes with 405', async () => {
    const work = await mkdtemp(join(dir, 'memory-'));
    const { base, child } = await serve(['--memory', '--readonly'], work);
    const put = await fetch(`${base}/a`, { method: 'PUT', headers: json, body: '1' });
    expect(put.status).toBe(405);
    expect(put.headers.get('allow')).toBe('GET, HEAD, OPTIONS');
    expect(await (await fetch(base + '/')).json()).toEqual({});
    await stop(child);
    await expect(readFile(join(work, 'data/store.json'))).rejects.toThrow(/ENOENT/);
  });

  // DNS rebinding: a page on evil.example made to resolve to 127.0.0.1 would
  // reach the CLI as its own origin; its requests still say Host: evil.example.
  test('listens on 127.0.0.1 and answers only requests for localhost, 127.0.0.1 and [::1]; others are 421 and change nothing', async () => {
    const { base, child } = await serve(['--memory']);
    expect(base).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const statuses = [];
    for (const host of ['localhost', 'localhost:3000', '127.0.0.1:80', '[::1]:8080']) statuses.push((await withHost(base, 'PUT', '/ok', host, JSON.stringify(host))).status);
    expect(statuses).toEqual([201, 200, 200, 200]);
    const before = await (await fetch(`${base}/`)).text();
    for (const [method, body] of [['GET'], ['PUT', '1'], ['POST', '1'], ['DELETE'], ['PATCH', '{"x":1}']] as const) {
      const reply = await withHost(base, method, '/ok', 'evil.example', body);
      expect(reply.status).toBe(421);
      expect(JSON.parse(reply.text)).toMatchObject({ status: 421, detail: /does not answer for the host "evil.example"/ });
    }
    expect(await (await fetch(`${base}/`)).text()).toBe(before);
    expect(JSON.parse(before)).toEqual({ ok: '[::1]:8080' });
    await stop(child);
  });

  test("--allowed-host adds names; --allowed-host '*' answers any host", async () => {
    const named = await serve(['--memory', '--allowed-host', 'Store.Example', '--allowed-host', 'other.example']);
    expect((await withHost(named.base, 'PUT', '/a', 'store.example:3000', '1')).status).toBe(201);
    expect((await withHost(named.base, 'GET', '/a', 'other.example', undefined)).status).toBe(200);
    expect((await withHost(named.base, 'GET', '/a', 'localhost', undefined)).status).toBe(200);
    expect((await withHost(named.base, 'GET', '/a', 'evil.example', undefined)).status).toBe(421);
    await stop(named.child);
    const any = await serve(['--memory', '--allowed-host', '*']);
    expect((await withHost(any.base, 'PUT', '/a', 'evil.example', '1')).status).toBe(201);
    await stop(any.child);
  });

  test('--host 0.0.0.0 says which names it answers; a non-loopback --host address is answered', async () => {
    const all = await serve(['--memory', '--host', '0.0.0.0']);
    await expect.poll(all.output).toMatch(/answering only requests for localhost, 127\.0\.0\.1, \[::1\]; add the names clients use with --allowed-host NAME/);
    const port = new URL(all.base).port;
    expect((await withHost(`http://127.0.0.1:${port}`, 'GET', '/', '0.0.0.0', undefined)).status).toBe(421);
    await stop(all.child);
    // 127.0.0.2 is a loopback address, but not one of the default names: it
    // stands in for a LAN address, which a test machine may not have.
    const bound = await serve(['--memory', '--host', '127.0.0.2']);
    expect((await withHost(bound.base, 'GET', '/', `127.0.0.2:${new URL(bound.base).port}`, undefined)).status).toBe(200);
    expect((await withHost(bound.base, 'GET', '/', 'evil.example', undefined)).status).toBe(421);
    await stop(bound.child);
  });

  test('Expect: 100-continue with a body over --limit is 413 before any upload; a small body gets 100, then 201', async () => {
    const { base, child } = await serve(['--memory', '--limit', '1kb']);
    const port = Number(new URL(base).port);
    const big = await sendExpectingContinue(port, 'PUT /big HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json', '', 64 * 1024 * 1024);
    expect({ sawContinue: big.sawContinue, sentBody: big.sentBody, status: big.status }).toEqual({ sawContinue: false, sentBody: false, status: 413 });
    expect(big.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(big.json()).toMatchObject({ status: 413, detail: 'The request body is larger than the limit of 1024 bytes (the limit option)' });
    const form = await sendExpectingContinue(port, 'POST / HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded', 'a=1');
    expect({ sawContinue: form.sawContinue, status: form.status }).toEqual({ sawContinue: false, status: 415 });
    const small = await sendExpectingContinue(port, 'PUT /small HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json', '{"fits":true}');
    expect({ sawContinue: small.sawContinue, status: small.status, text: small.text }).toEqual({ sawContinue: true, status: 201, text: '{"fits":true}' });
    expect(await (await fetch(`${base}/`)).json()).toEqual({ small: { fits: true } });
    await stop(child);
  });

  test('--redis with Redis away: serves 503 problem+json instead of exiting', async () => {
    const { base, child, output } = await serve(['--redis', 'redis://127.0.0.1:1', '--key', 'nowhere']);
    const reply = await fetch(`${base}/`);
    expect(reply.status).toBe(503);
    expect(reply.headers.get('content-type')).toBe('application/problem+json; charset=utf-8');
    expect(((await reply.json()) as { detail: string }).detail).toMatch(/try again later/);
    expect(output()).toMatch(/requests get 503 until the storage answers/);
    expect(await stop(child)).toBe(0);
  });

  test('a JSON Patch that doubles the document 30 times is 413, and the process goes on serving', async () => {
    const { base, child } = await serve(['--memory']);
    const put = await fetch(`${base}/`, { method: 'PUT', headers: json, body: '{"a":["0123456789"]}' });
    expect(put.status).toBe(200);
    const doubling = JSON.stringify(Array.from({ length: 30 }, () => ({ op: 'copy', from: '/a', path: '/a/-' })));
    const reply = await fetch(`${base}/`, { method: 'PATCH', headers: { 'content-type': 'application/json-patch+json' }, body: doubling });
    expect(reply.status).toBe(413);
    expect(((await reply.json()) as { detail: string }).detail).toMatch(/the limit is 4194304 bytes \(the maxWriteGrowth option\)/);
    expect(await (await fetch(`${base}/`)).text()).toBe('{"a":["0123456789"]}');
    expect(child.exitCode).toBeNull();
    expect(await stop(child)).toBe(0);
  });

  test('--max-patch-operations, --max-write-growth and --max-document-size set the budgets', async () => {
    const { base, child } = await serve(['--memory', '--max-patch-operations', '2', '--max-write-growth', '100', '--max-document-size', '1kb']);
    const detail = async (reply: Response) => {
      expect(reply.status).toBe(413);
      return ((await reply.json()) as { detail: string }).detail;
    };
    const patch = (ops: unknown[]) => fetch(`${base}/`, { method: 'PATCH', headers: { 'content-type': 'application/json-patch+json' }, body: JSON.stringify(ops) });
    const put = (path: string, value: unknown) => fetch(`${base}${path}`, { method: 'PUT', headers: json, body: JSON.stringify(value) });
    const test = { op: 'test', path: '', value: {} };
    expect(await detail(await patch([test, test, test]))).toBe('This JSON Patch has 3 operations; the limit is 2 (the maxPatchOperations option); nothing was changed');
    expect((await patch([test, test])).status).toBe(200);
    expect(await detail(await put('/s', 'x'.repeat(99)))).toMatch(/insert at least 101 bytes of JSON; the limit is 100 bytes \(the maxWriteGrowth option\)/);
    for (let i = 0; i < 10; i++) expect((await put(`/k${i}`, 'x'.repeat(90))).status).toBe(201);
    expect(await detail(await put('/k10', 'x'.repeat(90)))).toMatch(/the limit is 1024 bytes \(the maxDocumentSize option\)/);
    await stop(child);
  });

  test('a damaged file store stops the command with a message naming the file', async () => {
    const work = await mkdtemp(join(dir, 'damaged-'));
    await mkdir(join(work, 'data'));
    await writeFile(join(work, 'data/store.json'), '{"oops": ');
    const { code, stderr } = await failureIn(work, []);
    expect(code).toBe(1);
    expect(stderr).toMatch(/store\.json/);
  });

  test('--redis shares one document between two processes', async () => {
    const url = process.env['REDIS_URL'] ?? 'redis://127.0.0.1:6379';
    const probe = createClient({ url, disableOfflineQueue: true });
    probe.on('error', () => {});
    const reachable = await probe.connect().then(
      () => true,
      () => false,
    );
    if (!reachable) {
      if (process.env['JSONSTORE_REQUIRE_REDIS'] === '1') throw new Error(`Redis is required but ${url} does not answer`);
      console.warn(`skipping --redis CLI test: no Redis at ${url}`);
      return;
    }
    const key = `jsonstore-cli-test-${process.pid}-${Date.now()}`;
    try {
      const a = await serve(['--redis', url, '--key', key]);
      const b = await serve(['--redis', url, '--key', key]);
      const put = await fetch(`${a.base}/counter`, { method: 'PUT', headers: json, body: '41' });
      expect(put.status).toBe(201);
      expect(await (await fetch(`${b.base}/counter`)).json()).toBe(41);
      await stop(a.child);
      await stop(b.child);
    } finally {
      const keys = await probe.keys(`{${key}}*`);
      if (keys.length > 0) await probe.del(keys);
      await probe.close();
    }
  });
});

describe('jsonstore command: polish', () => {
  test('--version and -v print the package version', async () => {
    const { version } = JSON.parse(await readFile(resolve(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
    for (const flag of ['--version', '-v']) expect((await run(process.execPath, [cli, flag])).stdout).toBe(`${version}\n`);
  });

  test('logs one line per request (method, path, status, ms); --quiet logs none', async () => {
    const { base, child, output } = await serve(['--memory']);
    await fetch(`${base}/a/b`, { method: 'PUT', headers: json, body: '1' });
    await fetch(`${base}/a?pretty`);
    await fetch(`${base}/missing`);
    await eventually('the log lines', () => /GET \/missing 404 \d+\.\d ms/.test(output()));
    expect(output()).toMatch(/PUT \/a\/b 201 \d+\.\d ms/);
    expect(output()).toMatch(/GET \/a\?pretty 200 \d+\.\d ms/);
    await stop(child);

    // json-server's short names: -q, -p, -H.
    const quiet = await serve(['--memory', '-q', '-p', '0', '-H', '127.0.0.1']);
    expect((await fetch(`${quiet.base}/missing`)).status).toBe(404);
    expect(await stop(quiet.child)).toBe(0);
    expect(quiet.output()).not.toMatch(/GET \/missing/);
  });

  test('--initial FILE seeds a memory store, on every start', async () => {
    const work = await mkdtemp(join(dir, 'initial-'));
    await writeFile(join(work, 'db.json'), JSON.stringify({ posts: [{ id: 1, title: 'hello' }] }));
    for (let start = 0; start < 2; start++) {
      const { base, child } = await serve(['--memory', '--initial', 'db.json'], work);
      expect(await (await fetch(`${base}/posts/0/title`)).json()).toBe('hello');
      expect((await fetch(`${base}/posts/0/title`, { method: 'PUT', headers: json, body: '"changed"' })).status).toBe(200);
      await stop(child);
    }
    await writeFile(join(work, 'broken.json'), '{"posts": [');
    const { code, stderr } = await failureIn(work, ['--memory', '--initial', 'broken.json']);
    expect(code).toBe(2);
    expect(stderr).toMatch(/--initial broken.json is not valid JSON/);
  });

  test('--static DIR serves files for GET/HEAD; other paths and methods go to the store; nothing outside the folder', async () => {
    const work = await mkdtemp(join(dir, 'static-'));
    await mkdir(join(work, 'public/css'), { recursive: true });
    await writeFile(join(work, 'public/index.html'), '<h1>app</h1>');
    await writeFile(join(work, 'public/css/site.css'), 'h1{}');
    await writeFile(join(work, 'secret.json'), '{"secret":true}');
    const { base, child } = await serve(['--memory', '--static', 'public'], work);
    const index = await fetch(`${base}/`);
    expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await index.text()).toBe('<h1>app</h1>');
    const css = await fetch(`${base}/css/site.css`);
    expect([css.status, css.headers.get('content-type'), await css.text()]).toEqual([200, 'text/css; charset=utf-8', 'h1{}']);
    expect((await fetch(`${base}/posts`, { method: 'PUT', headers: json, body: '[1]' })).status).toBe(201);
    expect(await (await fetch(`${base}/posts`)).json()).toEqual([1]);
    // A write to a file's path is the store's: files are read-only.
    expect((await fetch(`${base}/index.html`, { method: 'PUT', headers: json, body: '2' })).status).toBe(201);
    for (const escape of ['/../secret.json', '/%2e%2e/secret.json', '/css/..%2f..%2fsecret.json']) {
      const reply = await withHost(base, 'GET', escape, 'localhost');
      expect(reply.text).not.toContain('"secret":true');
    }
    await stop(child);
  });

  test('a port in use: one clear message, exit 1, and no ./data folder created', async () => {
    const work = await mkdtemp(join(dir, 'in-use-'));
    const blocker = http.createServer();
    await new Promise<void>((done) => blocker.listen(0, '127.0.0.1', done));
    const port = (blocker.address() as { port: number }).port;
    try {
      const { stdout, stderr } = await run(process.execPath, [cli, '--port', String(port)], { cwd: work, timeout: 20_000 }).then(
        () => ({ stdout: 'exited 0', stderr: '' }),
        (error: { code: number; stdout: string; stderr: string }) => {
          expect(error.code).toBe(1);
          return error;
        },
      );
      expect(stdout).toBe('');
      expect(stderr).toBe(`jsonstore: port ${port} is in use on 127.0.0.1 (another jsonstore or server?); stop it, or choose another port with --port N (--port 0 picks a free one)\n`);
      await expect(readFile(join(work, 'data/store.json'))).rejects.toThrow(/ENOENT/);
      expect(existsSync(join(work, 'data'))).toBe(false);
    } finally {
      blocker.close();
    }
  });

  test('a start-up error is printed once', async () => {
    const work = await mkdtemp(join(dir, 'once-'));
    await mkdir(join(work, 'data'));
    await writeFile(join(work, 'data/store.json'), '{"oops": ');
    const { code, stderr } = await failureIn(work, []);
    expect(code).toBe(1);
    expect(stderr.match(/is not valid JSON/g)).toHaveLength(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });

  test('--readonly serves a file store from a folder it cannot write to: no lock file, writes 405', async () => {
    const work = await mkdtemp(join(dir, 'readonly-'));
    const folder = join(work, 'data');
    await mkdir(folder);
    await writeFile(join(folder, 'store.json'), '{"posts":[{"id":1}]}', { mode: 0o644 });
    // As root, permissions do not stop writes: run the command as nobody instead.
    const asRoot = process.getuid?.() === 0;
    for (const reachable of [dir, work]) await chmod(reachable, 0o755);
    await chmod(folder, 0o555);
    // nobody must reach the checkout's dist/ and node_modules/: a clone made
    // in a `mktemp -d` folder (mode 0700) would stop it. Restored afterwards.
    const opened: Array<{ path: string; mode: number }> = [];
    if (asRoot) {
      for (let path = dirname(cli); path !== dirname(path); path = dirname(path)) {
        const { mode } = await stat(path);
        if ((mode & 0o005) !== 0o005) {
          opened.push({ path, mode: mode & 0o7777 });
          await chmod(path, (mode & 0o7777) | 0o005);
        }
      }
    }
    try {
      const { base, child } = await serve(['--readonly', '--file', 'data/store.json'], work, asRoot ? { uid: 65534, gid: 65534 } : {});
      expect(await (await fetch(`${base}/posts/0/id`)).json()).toBe(1);
      expect((await fetch(`${base}/posts`, { method: 'POST', headers: json, body: '{}' })).status).toBe(405);
      expect(readdirSync(folder)).toEqual(['store.json']);
      expect(await stop(child)).toBe(0);
      expect(readdirSync(folder)).toEqual(['store.json']);
    } finally {
      await chmod(folder, 0o755);
      for (const { path, mode } of opened) await chmod(path, mode);
    }
  });
});

describe('jsonstore command: CORS', () => {
  const origin = 'https://app.example';
  const preflight = (base: string, from: string, method: string, headers: string) =>
    fetch(`${base}/posts/1`, { method: 'OPTIONS', headers: { origin: from, 'access-control-request-method': method, 'access-control-request-headers': headers } });

  test('without --cors: no CORS headers, a preflight is not granted', async () => {
    const { base, child } = await serve(['--memory']);
    const reply = await preflight(base, origin, 'PATCH', 'content-type');
    expect(reply.headers.get('access-control-allow-origin')).toBeNull();
    expect((await fetch(`${base}/`, { headers: { origin } })).headers.get('access-control-allow-origin')).toBeNull();
    await stop(child);
  });

  test('--cors: any origin, preflight for PATCH with the JSON media types and precondition headers; ETag, Location, Link exposed', async () => {
    const { base, child } = await serve(['--memory', '--cors']);
    const reply = await preflight(base, origin, 'PATCH', 'content-type,if-match,idempotency-key');
    expect(reply.status).toBe(204);
    expect(reply.headers.get('access-control-allow-origin')).toBe('*');
    expect(reply.headers.get('access-control-allow-methods')).toMatch(/\bPATCH\b/);
    const allowedHeaders = reply.headers.get('access-control-allow-headers')!.toLowerCase();
    for (const name of ['content-type', 'if-match', 'if-none-match', 'idempotency-key']) expect(allowedHeaders).toContain(name);
    const created = await fetch(`${base}/`, { method: 'POST', headers: { ...json, origin }, body: '{"title":"a"}' });
    expect(created.status).toBe(201);
    expect(created.headers.get('access-control-allow-origin')).toBe('*');
    const exposed = created.headers.get('access-control-expose-headers')!.toLowerCase();
    for (const name of ['etag', 'location', 'link']) expect(exposed).toContain(name);
    const patch = await fetch(`${base}${created.headers.get('location')}`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/merge-patch+json', origin, 'if-match': created.headers.get('etag')! },
      body: '{"title":"b"}',
    });
    expect(patch.status).toBe(200);
    await stop(child);
  });

  test('--cors ORIGINS: only those origins, with Vary: Origin; others get no CORS headers', async () => {
    const { base, child } = await serve(['--memory', '--cors', `${origin},http://localhost:5173`]);
    const granted = await preflight(base, 'http://localhost:5173', 'PUT', 'content-type');
    expect([granted.status, granted.headers.get('access-control-allow-origin')]).toEqual([204, 'http://localhost:5173']);
    const read = await fetch(`${base}/`, { headers: { origin } });
    expect(read.headers.get('access-control-allow-origin')).toBe(origin);
    expect(read.headers.get('vary')).toMatch(/Origin/);
    const refused = await preflight(base, 'https://evil.example', 'PUT', 'content-type');
    expect(refused.headers.get('access-control-allow-origin')).toBeNull();
    expect((await fetch(`${base}/`, { headers: { origin: 'https://evil.example' } })).headers.get('access-control-allow-origin')).toBeNull();
    await stop(child);
  });
});

describe('jsonstore command: watching the file', () => {
  test('an edit of the file while the server runs is served within about a second; an invalid one is logged and ignored; the next start loads the edit', async () => {
    const work = await mkdtemp(join(dir, 'watch-'));
    const file = join(work, 'data/store.json');
    const first = await serve([], work);
    expect((await fetch(`${first.base}/posts`, { method: 'PUT', headers: json, body: '[{"id":1}]' })).status).toBe(201);
    const before = (await fetch(`${first.base}/`)).headers.get('etag');
    // The store folds its journal into the file once writes pause, so a person sees the whole document.
    await eventually('the file to hold the write', async () => JSON.parse(await readFile(file, 'utf8')).posts?.length === 1);
    await writeFile(file, JSON.stringify({ posts: [{ id: 1 }, { id: 2, by: 'hand' }] }, null, 4));
    const edited = await eventually('the edit to be served', async () => {
      const reply = await fetch(`${first.base}/posts/1/by`);
      return reply.status === 200 ? reply : undefined;
    });
    expect(await edited.json()).toBe('hand');
    expect((await fetch(`${first.base}/`)).headers.get('etag')).not.toBe(before);
    await writeFile(file, '{"posts": [');
    await eventually('the invalid edit to be reported', () => /ignored an edit of .*store\.json/.test(first.output()));
    expect(await (await fetch(`${first.base}/posts/1/by`)).json()).toBe('hand');
    await writeFile(file, JSON.stringify({ posts: [], again: true }));
    await eventually('the next valid edit to be served', async () => (await (await fetch(`${first.base}/again`)).status) === 200);
    expect(await stop(first.child)).toBe(0);
    expect(first.output()).not.toMatch(/JSONSTORE_COMPACTION_FAILED|could not fold/);

    const second = await serve([], work);
    expect(await (await fetch(`${second.base}/`)).json()).toEqual({ posts: [], again: true });
    await stop(second.child);
  });

  test('--no-watch: an edit made while the server runs is served after the restart, and the start does not refuse', async () => {
    const work = await mkdtemp(join(dir, 'nowatch-'));
    const file = join(work, 'data/store.json');
    const first = await serve(['--no-watch'], work);
    await fetch(`${first.base}/n`, { method: 'PUT', headers: json, body: '1' });
    await fetch(`${first.base}/n`, { method: 'PUT', headers: json, body: '2' });
    await writeFile(file, JSON.stringify({ n: 'by hand' }));
    await fetch(`${first.base}/n`, { method: 'PUT', headers: json, body: '3' });
    expect(await stop(first.child)).toBe(0);
    const second = await serve(['--no-watch'], work);
    expect(await (await fetch(`${second.base}/n`)).json()).toBe('by hand');
    expect(second.output()).toMatch(/the journal was moved to .*store\.json\.journal\.superseded-\d+/);
    await stop(second.child);
  });
});

describe('jsonstore command: explorer', () => {
  const browser = { accept: 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8' };
  test('browsers get the explorer page by default, API clients JSON; --no-explorer turns it off', async () => {
    const on = await serve(['--memory']);
    const page = await fetch(`${on.base}/`, { headers: browser });
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await page.text()).toMatch(/<details|<main id="tree"/);
    expect((await fetch(`${on.base}/`, { headers: { accept: '*/*' } })).headers.get('content-type')).toBe('application/json; charset=utf-8');
    await stop(on.child);
    const off = await serve(['--memory', '--no-explorer']);
    expect((await fetch(`${off.base}/`, { headers: browser })).headers.get('content-type')).toBe('application/json; charset=utf-8');
    await stop(off.child);
  });
});

describe('jsonstore command: live streams at shutdown', () => {
  test('SIGTERM ends an open stream with event: cancel before the connection closes, and exits 0', async () => {
    const { base, child } = await serve(['--memory']);
    const { hostname, port } = new URL(base);
    let received = '';
    const ended = new Promise<void>((resolveEnd, reject) => {
      const req = http.get({ host: hostname, port: Number(port), path: '/', headers: { accept: 'text/event-stream' }, agent: false }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (received += chunk));
        res.on('end', () => resolveEnd());
        res.on('error', reject);
        res.on('aborted', () => reject(new Error(`stream cut without an end; received: ${received}`)));
      });
      req.on('error', reject);
    });
    await eventually('the first event', () => received.includes('event: put'));
    const code = await stop(child);
    await ended;
    expect(received).toMatch(/event: cancel\ndata: "?the store is closing/);
    expect(code).toBe(0);
  });
});
