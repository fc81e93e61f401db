/**
 * Living with the host app: body parsers that ran before the store, and an
 * Express app with its own routes and auth middleware next to the mount.
 */
import http from 'node:http';
import express from 'express';
import express4 from 'express4';
import connect from 'connect';
import { afterEach, describe, expect, test } from 'vitest';
import { jsonStore } from '../../src/index.js';
import { closeServers, hosts, listen, send, serve, type Host, type Middleware } from './hosts.js';
import { expectJson, expectProblem, expectUnchanged, snapshot } from './support.js';

afterEach(closeServers);

const JSON_PATCH = 'application/json-patch+json';

/** The host's own express.json(): body-parser 1 for Express 4, body-parser 2 otherwise. */
function jsonParser(host: Host, options?: Parameters<typeof express.json>[0]): Middleware {
  return (host.framework === 'express4' ? express4.json(options) : express.json(options)) as unknown as Middleware;
}

describe.each(hosts)('$name', (host) => {
  describe('with express.json() (default options) before the store', () => {
    test('objects and arrays work for PUT, POST and both kinds of PATCH', async () => {
      const ctx = await serve(host, { initial: { list: [] } }, { before: [jsonParser(host)] });
      expectJson(await ctx.put('/a', { b: 1 }), 201, { b: 1 });
      expectJson(await ctx.post('/list', [1, 2]), 201, [1, 2]);
      expectJson(await ctx.patch('/a', { c: 2 }, 'application/json'), 200, { b: 1, c: 2 });
      expectJson(await ctx.patch('/a', { d: 3 }, 'application/merge-patch+json'), 200, { b: 1, c: 2, d: 3 });
      expectJson(await ctx.patch('/a', [{ op: 'remove', path: '/b' }], JSON_PATCH), 200, { c: 2, d: 3 });
      // A JSON type express.json() does not parse by default: the store reads the body itself.
      expectJson(await ctx.request('PUT', '/raw', { body: '"not parsed"', headers: { 'Content-Type': 'application/vnd.example+json' } }), 201, 'not parsed');
      expect(await ctx.doc()).toEqual({ list: [[1, 2]], a: { c: 2, d: 3 }, raw: 'not parsed' });
    });

    test('the store still enforces maxDepth on a body the parser already parsed', async () => {
      const ctx = await serve(host, { maxDepth: 2 }, { before: [jsonParser(host)] });
      const before = await snapshot(ctx);
      expectProblem(await ctx.put('/', { a: { b: {} } }), 400, 'The request body nests more than 2 levels deep (the maxDepth option)');
      await expectUnchanged(ctx, before);
    });

    test('the store still refuses numbers out of range on a body the parser already parsed', async () => {
      const ctx = await serve(host, { initial: { a: 1 } }, { before: [jsonParser(host)] });
      const before = await snapshot(ctx);
      expectProblem(
        await ctx.request('PUT', '/a', { body: '{"b":[1e400]}', headers: { 'Content-Type': 'application/json' } }),
        400,
        /^The number at \/b\/0 in the request body is out of range: it reads as Infinity/,
      );
      await expectUnchanged(ctx, before);
    });

    test("the store's own limit still applies to a body the parser already read", async () => {
      const ctx = await serve(host, { limit: 50 }, { before: [jsonParser(host)] });
      const before = await snapshot(ctx);
      expectProblem(await ctx.put('/a', { text: 'x'.repeat(100) }), 413, 'The request body is larger than the limit of 50 bytes (the limit option)');
      await expectUnchanged(ctx, before);
      expect((await ctx.put('/a', { text: 'short' })).status).toBe(201);
    });

    test('__proto__ keys parsed by body-parser stay data', async () => {
      const ctx = await serve(host, {}, { before: [jsonParser(host)] });
      const reply = await ctx.request('PUT', '/x', { body: '{"__proto__":{"polluted":1}}', headers: { 'Content-Type': 'application/json' } });
      expect([reply.status, reply.text]).toEqual([201, '{"__proto__":{"polluted":1}}']);
      expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
    });

    test('strict mode: body-parser itself rejects a scalar application/json body with 400, before the store sees it', async () => {
      const ctx = await serve(host, { initial: { a: 1 } }, { before: [jsonParser(host)] });
      const before = await snapshot(ctx);
      const reply = await ctx.request('PUT', '/a', { body: '"sniffle chief"', headers: { 'Content-Type': 'application/json' } });
      expect(reply.status).toBe(400);
      await expectUnchanged(ctx, before);
    });
  });

  describe("with express.json({ strict: false, type: ['application/json', 'application/*+json'] }) before the store", () => {
    const parser = (h: Host) => jsonParser(h, { strict: false, type: ['application/json', 'application/*+json'] });

    test('scalars, null and every write work as without a parser', async () => {
      const ctx = await serve(host, { initial: { list: [] } }, { before: [parser(host)] });
      expectJson(await ctx.put('/s', 'sniffle chief'), 201, 'sniffle chief');
      expectJson(await ctx.put('/n', null), 201, null);
      expectJson(await ctx.put('/f', false), 201, false);
      expectJson(await ctx.post('/list', 0), 201, 0);
      expectJson(await ctx.patch('/o', { a: 1, b: null }, 'application/merge-patch+json'), 201, { a: 1 });
      expectJson(await ctx.patch('/o', [{ op: 'add', path: '/c', value: 'x' }], JSON_PATCH), 200, { a: 1, c: 'x' });
      expect(await ctx.doc()).toEqual({ list: [0], s: 'sniffle chief', n: null, f: false, o: { a: 1, c: 'x' } });
    });

    test('a JSON string body sent chunked (no Content-Length) is still the string value', async () => {
      const ctx = await serve(host, {}, { before: [parser(host)] });
      const chunked = await new Promise<number>((resolve, reject) => {
        const req = http.request(
          { host: '127.0.0.1', port: ctx.port, method: 'PUT', path: ctx.url('/s'), agent: false, headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' } },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.write('"{\\"not\\": ');
        req.end('\\"an object\\"}"');
      });
      expect(chunked).toBe(201);
      expect(await ctx.doc()).toEqual({ s: '{"not": "an object"}' });
    });

    test('a malformed JSON Patch parsed by body-parser is still our 400', async () => {
      const ctx = await serve(host, { initial: { a: 1 } }, { before: [parser(host)] });
      const before = await snapshot(ctx);
      expectProblem(await ctx.patch('/', { op: 'add' }, JSON_PATCH), 400, /^A JSON Patch document must be an array/);
      await expectUnchanged(ctx, before);
    });
  });

  describe('with a raw or text body parser before the store', () => {
    const raw = (h: Host): Middleware => (h.framework === 'express4' ? express4.raw({ type: '*/*' }) : express.raw({ type: '*/*' })) as unknown as Middleware;
    const text = (h: Host): Middleware => (h.framework === 'express4' ? express4.text({ type: '*/*' }) : express.text({ type: '*/*' })) as unknown as Middleware;

    test.each([
      ['express.raw()', raw],
      ['express.text()', text],
    ])('%s leaves the JSON text, which the store parses', async (_name, parser) => {
      const ctx = await serve(host, { initial: { list: [] } }, { before: [parser(host)] });
      expectJson(await ctx.put('/a', { b: 'c' }), 201, { b: 'c' });
      expectJson(await ctx.put('/s', 'text'), 201, 'text');
      expectJson(await ctx.patch('/a', [{ op: 'add', path: '/d', value: 1 }], JSON_PATCH), 200, { b: 'c', d: 1 });
      expectProblem(await ctx.request('PUT', '/a', { body: '{oops', headers: { 'Content-Type': 'application/json' } }), 400, /^The request body is not valid JSON: at line 1, column 2/);
      expect(await ctx.doc()).toEqual({ list: [], a: { b: 'c', d: 1 }, s: 'text' });
    });
  });
});

describe.each([
  ['Express 4', express4],
  ['Express 5', express],
] as const)('an %s app with its own routes and auth next to the store', (_name, framework) => {
  async function app() {
    const store = jsonStore({ initial: { notes: [] } });
    const app = framework();
    const seen: string[] = [];
    app.use((req: http.IncomingMessage, _res: http.ServerResponse, next: () => void) => {
      seen.push(`${req.method} ${req.url}`);
      next();
    });
    app.get('/health', (_req: unknown, res: { json(v: unknown): void }) => res.json({ ok: true }));
    app.post('/echo', framework.json(), (req: { body: unknown }, res: { json(v: unknown): void }) => res.json({ echoed: req.body }));
    const auth = (req: http.IncomingMessage, res: http.ServerResponse, next: () => void) => {
      if (req.headers.authorization === 'Bearer secret') return next();
      res.statusCode = 401;
      res.setHeader('WWW-Authenticate', 'Bearer');
      res.end('unauthorized');
    };
    app.use('/store', auth, store);
    app.use((_req: unknown, res: http.ServerResponse) => {
      res.statusCode = 404;
      res.end('app 404');
    });
    const { port } = await listen(app as unknown as http.RequestListener);
    return { store, port, seen };
  }
  const authorized = { Authorization: 'Bearer secret' };

  test('the store answers below /store for authorized requests', async () => {
    const { port } = await app();
    const put = await send(port, 'PUT', '/store/notes/-', { json: 'hello', headers: authorized });
    expectJson(put, 201, 'hello');
    expect(put.headers.location).toBe('/store/notes/0');
    expectJson(await send(port, 'GET', '/store/notes', { headers: authorized }), 200, ['hello']);
  });

  test('the auth middleware in front of the store still refuses, and nothing changes', async () => {
    const { port, store } = await app();
    const reply = await send(port, 'PUT', '/store/notes/-', { json: 'sneaky' });
    expect([reply.status, reply.text, reply.headers['www-authenticate']]).toEqual([401, 'unauthorized', 'Bearer']);
    expect((await send(port, 'GET', '/store')).status).toBe(401);
    expect(await store.get()).toEqual({ notes: [] });
  });

  test("the app's own routes and its 404 keep working", async () => {
    const { port, seen } = await app();
    expectJson(await send(port, 'GET', '/health'), 200, { ok: true });
    expectJson(await send(port, 'POST', '/echo', { json: { a: 1 } }), 200, { echoed: { a: 1 } });
    for (const path of ['/nowhere', '/storefront', '/stor']) {
      const reply = await send(port, 'GET', path, { headers: authorized });
      expect([path, reply.status, reply.text]).toEqual([path, 404, 'app 404']);
    }
    expect(seen).toContain('GET /health');
  });

  test('errors of the store are its own problem+json, not the app 404', async () => {
    const { port } = await app();
    expectProblem(await send(port, 'GET', '/store/missing', { headers: authorized }), 404, 'Nothing at /missing: / has no member "missing"');
    expectProblem(await send(port, 'PUT', '/store/notes/9', { json: 1, headers: authorized }), 409);
  });
});

describe('nested mounts', () => {
  test('Express: Location includes every router prefix', async () => {
    for (const framework of [express, express4]) {
      const store = jsonStore({ initial: { list: [] } });
      const app = framework();
      const api = framework.Router();
      api.use('/store', store);
      app.use('/api/v1', api);
      const { port } = await listen(app as unknown as http.RequestListener);
      const reply = await send(port, 'POST', '/api/v1/store/list', { json: 'x' });
      expectJson(reply, 201, 'x');
      expect(reply.headers.location).toBe('/api/v1/store/list/0');
      expectJson(await send(port, 'GET', '/api/v1/store/list/0'), 200, 'x');
    }
  });

  test('connect: Location includes every app prefix', async () => {
    const store = jsonStore({ initial: { list: [] } });
    const inner = connect();
    inner.use('/store', store);
    const outer = connect();
    outer.use('/api', inner);
    const { port } = await listen(outer);
    const reply = await send(port, 'PUT', '/api/store/list/-', { json: 'x' });
    expectJson(reply, 201, 'x');
    expect(reply.headers.location).toBe('/api/store/list/0');
  });
});
