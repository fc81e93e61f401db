/**
 * jsgi(): JSGI 0.3 / Rack-style apps over real HTTP, in Express 5 and Express 4.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { jsgi, type JsgiApplication, type JsgiRequest } from '../../src/gateway/index.js';
import { bridgeHarness, clientThatDoesNotRead, deferred, expressVersions, header, leaveAfterFirstChunk, rawRequest, settle, waitFor, waitForStall } from './helpers.js';

const plain = { 'content-type': 'text/plain' };

describe.each(expressVersions)('jsgi in %s', (_version, express) => {
  const { mount, serve } = bridgeHarness(express, jsgi);

  describe('request', () => {
    it('has the JSGI 0.3 fields', async () => {
      let seen: JsgiRequest | undefined;
      const { server } = mount((req) => {
        seen = req;
        return [200, plain, ['ok']];
      });
      await request(server).get('/app/a%20b?c=%20').set('X-Multi', 'one').set('Cookie', 'a=1').expect(200);
      expect(seen).toBeDefined();
      const req = seen as JsgiRequest;
      expect(req.method).toBe('GET');
      expect(req.scriptName).toBe('/app');
      expect(req.pathInfo).toBe('/a b');
      expect(req.queryString).toBe('c=%20');
      expect(req.host).toBe('127.0.0.1');
      expect(req.port).toBeGreaterThan(0);
      expect(req.scheme).toBe('http');
      expect(req.headers['x-multi']).toBe('one');
      expect(req.headers.cookie).toBe('a=1');
      expect(req.jsgi).toMatchObject({ version: [0, 3], multithread: false, multiprocess: false, runOnce: false, async: true, cgi: false });
      expect(req.env.REQUEST_METHOD).toBe('GET');
      expect(req.env.HTTP_X_MULTI).toBe('one');
      expect(req.version).toEqual([1, 1]);
      expect(req.remoteAddr).toMatch(/127\.0\.0\.1$/);
    });

    it('joins repeated headers, lower-cases names and drops "_" names and Proxy', async () => {
      let headers: Record<string, string> = {};
      const { port } = await serve((req) => {
        headers = req.headers;
        return [200, plain, ['ok']];
      });
      await rawRequest(
        port,
        ['GET /app HTTP/1.1', 'Host: x', 'X-Multi: a', 'X-MULTI: b', 'Cookie: a=1', 'Cookie: b=2', 'X_Multi: spoof', 'Proxy: http://evil'].join('\n'),
      );
      expect(headers['x-multi']).toBe('a, b');
      expect(headers.cookie).toBe('a=1; b=2');
      expect(headers).not.toHaveProperty('x_multi');
      expect(headers).not.toHaveProperty('proxy');
    });

    it('reads the body through input.read() and input.forEach()', async () => {
      const { server } = mount(async (req) => {
        const first = (await req.input.read(4)).toString();
        const rest: string[] = [];
        await req.input.forEach((chunk) => void rest.push(chunk.toString()));
        return [200, plain, [`${first}|${rest.join('')}`]];
      });
      const response = await request(server).post('/app').type('text/plain').send('head and tail').expect(200);
      expect(response.text).toBe('head| and tail');
    });

    it('writes jsgi.errors to the logger', async () => {
      const { server, lines } = mount((req) => {
        req.jsgi.errors.write('something odd\n');
        return [200, plain, ['ok']];
      });
      await request(server).get('/app').expect(200);
      expect(lines).toEqual(['jsgi.errors: something odd']);
    });
  });

  describe('response forms', () => {
    it.each<[string, JsgiApplication]>([
      ['a tuple', () => [200, plain, ['Hello ', 'world']]],
      ['an object', () => ({ status: 200, headers: plain, body: ['Hello world'] })],
      ['a promise', async () => ({ status: 200, headers: plain, body: ['Hello world'] })],
      ['a string body', () => [200, plain, 'Hello world']],
      ['a Buffer body', () => [200, plain, Buffer.from('Hello world')]],
      ['a generator body', () => [200, plain, (function* () { yield 'Hello '; yield 'world'; })()]],
      ['an async generator body', () => [200, plain, (async function* () { yield 'Hello '; await settle(1); yield 'world'; })()]],
      ['a forEach body', () => [200, plain, { forEach: (write: (chunk: string) => unknown) => { write('Hello '); write('world'); } }]],
      [
        'a forEach body returning a promise',
        () => [200, plain, { forEach: async (write: (chunk: string) => unknown) => { await write('Hello '); await settle(1); await write('world'); } }],
      ],
      ['header pairs', () => ({ status: 200, headers: [['Content-Type', 'text/plain']], body: ['Hello world'] })],
    ])('accepts %s', async (_name, app) => {
      const { server } = mount(app);
      const response = await request(server).get('/app').expect(200);
      expect(response.text).toBe('Hello world');
      expect(response.headers['content-type']).toBe('text/plain');
    });

    it('treats a missing body as empty', async () => {
      const { server } = mount(() => ({ status: 201, headers: { 'x-made': 'yes' } }));
      const response = await request(server).get('/app').expect(201);
      expect(response.headers['x-made']).toBe('yes');
      expect(response.headers['content-length']).toBe('0');
    });

    it('sends array header values as separate lines (Set-Cookie)', async () => {
      const { port } = await serve(() => [200, { ...plain, 'set-cookie': ['a=1', 'b=2'] }, ['ok']]);
      const response = await rawRequest(port, 'GET /app HTTP/1.1\nHost: x');
      expect(header(response, 'set-cookie')).toEqual(['a=1', 'b=2']);
    });

    it('respects a declared content-length and sets one for a known body', async () => {
      const declared = await serve(() => [200, { ...plain, 'content-length': '5' }, (function* () { yield 'Hel'; yield 'lo'; })()]);
      const response = await rawRequest(declared.port, 'GET /app HTTP/1.1\nHost: x');
      expect(header(response, 'content-length')).toEqual(['5']);
      expect(header(response, 'transfer-encoding')).toEqual([]);
      expect(response.body.toString()).toBe('Hello');
      const known = mount(() => [200, plain, ['abc', 'def']]);
      expect((await request(known.server).get('/app')).headers['content-length']).toBe('6');
    });

    it.each<[string, JsgiApplication, RegExp]>([
      ['a status below 200', () => [101, plain, []], /status must be an integer from 200 to 599/],
      ['a non-integer status', () => ['200 OK' as unknown as number, plain, []], /status must be an integer/],
      ['a header value with CRLF', () => [200, { 'x-a': 'b\r\nx-injected: 1' }, []], /CR/],
      ['a header name that is not a token', () => [200, { 'bad name': 'x' }, []], /not a valid HTTP token/],
      ['a hop-by-hop header', () => [200, { 'transfer-encoding': 'chunked' }, []], /hop-by-hop/],
      ['an unknown response shape', () => 'hello' as never, /must return \[status, headers, body\]/],
      ['a body of the wrong type', () => [200, plain, 42 as never], /body must be/],
      ['a chunk of the wrong type', () => [200, plain, [{}] as never], /strings or Uint8Arrays/],
    ])('answers 500 problem+json for %s', async (_name, app, message) => {
      const { server, lines } = mount(app);
      const response = await request(server).get('/app').expect(500);
      expect(response.body).toMatchObject({ status: 500, title: 'Internal error' });
      expect(lines.join('\n')).toMatch(message);
    });
  });

  describe('streaming and close()', () => {

    it('gives a clean 500 when the body fails before its first non-empty chunk', async () => {
      const { server } = mount(() => [
        200,
        { ...plain, 'x-app': 'yes' },
        (function* () {
          yield '';
          throw new Error('no data');
        })(),
      ]);
      const response = await request(server).get('/app').expect(500);
      expect(response.headers['x-app']).toBeUndefined();
    });

    it('cuts the connection when the body fails after the headers went out', async () => {
      const { port } = await serve(() => [
        200,
        plain,
        (function* () {
          yield 'partial';
          throw new Error('late failure');
        })(),
      ]);
      const response = await rawRequest(port, 'GET /app HTTP/1.1\nHost: x');
      expect(response.status).toBe(200);
      expect(response.complete).toBe(false);
    });

    it('calls close() once after success, after an error and after a disconnect', async () => {
      const closes: Record<string, number> = { success: 0, error: 0, disconnect: 0 };
      const gate = deferred();
      const { port } = await serve((req) => {
        const kind = req.queryString;
        const chunks = async function* () {
          yield 'one';
          if (kind === 'error') throw new Error('body failed');
          if (kind === 'disconnect') {
            await gate.promise;
            yield 'two';
          }
        };
        return [200, plain, Object.assign(chunks(), { close: () => void (closes[kind] = (closes[kind] ?? 0) + 1) })];
      });
      await rawRequest(port, 'GET /app?success HTTP/1.1\nHost: x');
      await rawRequest(port, 'GET /app?error HTTP/1.1\nHost: x');
      await leaveAfterFirstChunk(port, '/app?disconnect');
      await waitFor(() => closes.disconnect === 1, 'close() after the disconnect');
      gate.resolve();
      await settle(10);
      expect(closes).toEqual({ success: 1, error: 1, disconnect: 1 });
    });

    it('waits for drain: a client that does not read holds the body back', async () => {
      let produced = 0;
      const chunk = Buffer.alloc(256 * 1024, 97);
      const { port } = await serve(() => [
        200,
        { 'content-type': 'application/octet-stream' },
        (async function* () {
          for (let i = 0; i < 4096; i++) {
            produced++;
            yield chunk;
          }
        })(),
      ]);
      const socket = clientThatDoesNotRead(port);
      await waitForStall(() => produced, 'production to stall');
      expect(produced).toBeLessThan(400);
      socket.destroy();
    });
  });
});

describe('jsgi() options', () => {
  it.each([
    [() => jsgi(42 as never), /app must be a function/],
    [() => jsgi(() => [200, {}, []], { timeout: 5 } as never), /unknown option "timeout"/],
    [() => jsgi(() => [200, {}, []], { fallthrough: [700] }), /option "fallthrough"/],
    [() => jsgi(() => [200, {}, []], { multiprocess: 1 } as never), /option "multiprocess"/],
  ])('throws a TypeError naming the problem (%#)', (create, message) => {
    expect(create).toThrow(TypeError);
    expect(create).toThrow(message);
  });
});
