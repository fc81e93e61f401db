/**
 * Runs the HTTP examples as a user would (node examples/.../server.mjs, on
 * the built package) and talks to them over HTTP.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import { resolve } from 'node:path';
import { afterEach, describe, expect, test } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const running: ChildProcess[] = [];

afterEach(() => {
  for (const child of running.splice(0)) child.kill('SIGKILL');
});

function start(example: string): Promise<string> {
  const child = spawn(process.execPath, [resolve(root, example)], { env: { ...process.env, PORT: '0' }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(child);
  return new Promise((resolveUrl, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      const match = /listening on (http:\/\/\S+)/.exec(out);
      if (match) resolveUrl(match[1]!);
    });
    child.stderr!.on('data', (chunk) => (out += chunk));
    child.on('exit', (code) => reject(new Error(`${example} exited with ${code}: ${out}`)));
  });
}

const json = { 'content-type': 'application/json' };

describe('examples', () => {
  test('talk: the talk example replays exactly', async () => {
    const base = await start('examples/talk/server.mjs');
    const doc = { sniffles: [{ name: 'fred' }, { name: 'irma' }, { name: 'wobble' }], snuffle: { name: 'gundar' } };
    expect((await fetch(base, { method: 'PUT', headers: json, body: JSON.stringify(doc) })).status).toBe(200);
    expect(await (await fetch(`${base}/sniffles/`)).json()).toEqual(doc.sniffles);
    expect(await (await fetch(`${base}/sniffles/0`)).json()).toEqual({ name: 'fred' });
    const put = await fetch(`${base}/sniffles/0/rank`, { method: 'PUT', headers: json, body: '"sniffle chief"' });
    expect(put.status).toBe(201);
    expect(await (await fetch(`${base}/sniffles/0`)).json()).toEqual({ name: 'fred', rank: 'sniffle chief' });
  });

  test('express4-mount: own routes, auth and body parser beside the store', async () => {
    const base = await start('examples/express4-mount/server.mjs');
    const origin = new URL(base).origin;
    expect(await (await fetch(`${origin}/health`)).json()).toEqual({ ok: true });
    expect((await fetch(base)).status).toBe(401);
    const auth = { authorization: 'Bearer let-me-in' };
    expect(await (await fetch(`${base}/theme`, { headers: auth })).json()).toBe('dark');
    const patch = await fetch(`${base}/notifications`, {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/merge-patch+json' },
      body: JSON.stringify({ email: null, sms: true }),
    });
    expect(patch.status).toBe(200);
    expect(await patch.json()).toEqual({ sms: true });
    const put = await fetch(`${base}/theme`, { method: 'PUT', headers: { ...auth, ...json }, body: '"light"' });
    expect(put.status).toBe(200);
    expect(await (await fetch(base, { headers: auth })).json()).toEqual({ theme: 'light', notifications: { sms: true } });
    expect((await fetch(`${origin}/nowhere`)).status).toBe(404);
  });

  test('legacy: WSGI hello_world in JavaScript and Python, Flask, a CGI script, a WSGI-style store, PHP and git beside jsonStore()', async () => {
    const first = await start('examples/legacy/server.mjs');
    const origin = new URL(first).origin;
    const hello = await fetch(`${origin}/hello`);
    expect(hello.status).toBe(200);
    expect(await hello.text()).toBe('Hello world!\n');
    const info = await fetch(`${origin}/cgi-bin/info/extra?x=1`);
    expect(info.status).toBe(200);
    const report = await info.text();
    expect(report).toMatch(/PATH_INFO\W+\/extra/);
    expect(report).toMatch(/QUERY_STRING\W+x=1/);
    expect(await (await fetch(`${origin}/wsgi-store/sniffles/0/name`)).json()).toBe('fred');
    const put = await fetch(`${origin}/store/sniffles/0/rank`, { method: 'PUT', headers: json, body: '"sniffle chief"' });
    expect(put.status).toBe(201);
    // PHP (php-cgi, a front controller) and git http-backend, both through cgi().
    const php = await fetch(`${origin}/php/`, { method: 'POST', body: new URLSearchParams({ name: 'Ada' }) });
    expect(await php.text()).toContain('<h1>Hello, Ada!</h1>');
    expect(await (await fetch(`${origin}/php/server.json`)).json()).toMatchObject({ REQUEST_URI: '/php/server.json', PATH_INFO: '/server.json' });
    // Python, in pools of Python workers: the talk's hello_world and a Flask app.
    expect(await (await fetch(`${origin}/py/hello`)).text()).toBe('Hello world!\n');
    // Two workers, each with memory of its own. A request goes to the first idle worker, so only
    // requests made together reach both: two notes added at once, then read at once.
    const added = await Promise.all(
      ['hello', 'again'].map(async (text) => {
        const response = await fetch(`${origin}/flask/`, { method: 'POST', body: new URLSearchParams({ text }) });
        return { status: response.status, body: (await response.json()) as { added: number } };
      }),
    );
    expect(added.map((answer) => answer.status)).toEqual([201, 201]);
    expect(added.map((answer) => answer.body.added).sort()).toEqual([0, 1]);
    // Every read sees both notes, whichever worker serves it.
    const lists = await Promise.all(Array.from({ length: 6 }, async () => ((await (await fetch(`${origin}/flask/`)).json()) as { notes: string[] }).notes));
    for (const notes of lists) expect([...notes].sort()).toEqual(['again', 'hello']);
    const firstNote = added[0]?.body.added === 0 ? 'hello' : 'again';
    expect(await (await fetch(`${origin}/flask/0`)).json()).toEqual({ text: firstNote });
    const refs = await fetch(`${origin}/git/demo.git/info/refs?service=git-upload-pack`);
    expect(refs.headers.get('content-type')).toBe('application/x-git-upload-pack-advertisement');
  });

  test('node-http: the store as a plain request listener', async () => {
    const base = await start('examples/node-http/server.mjs');
    const patch = await fetch(`${base}/`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json-patch+json' },
      body: JSON.stringify([{ op: 'test', path: '/visits', value: 0 }, { op: 'replace', path: '/visits', value: 1 }]),
    });
    expect(patch.status).toBe(200);
    expect(await patch.json()).toEqual({ visits: 1 });
    // allowedHosts: a request for another host is refused (fetch() cannot set Host).
    const { port } = new URL(base);
    const status = await new Promise<number>((resolveStatus, reject) => {
      http.get({ host: '127.0.0.1', port: Number(port), path: '/', headers: { Host: 'evil.example' } }, (res) => {
        res.resume();
        resolveStatus(res.statusCode ?? 0);
      }).on('error', reject);
    });
    expect(status).toBe(421);
  });
});
