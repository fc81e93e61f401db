/**
 * wsgi(): the PEP 3333 rules, over real HTTP, in Express 5 and Express 4.
 */
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { GatewayProtocolError, wsgi, type StartResponse, type WsgiApplication, type WsgiEnviron } from '../../src/gateway/index.js';
import { bridgeHarness, clientThatDoesNotRead, deferred, expressVersions, header, leaveAfterFirstChunk, rawRequest, settle, waitFor, waitForStall } from './helpers.js';

const text: [string, string] = ['Content-Type', 'text/plain'];

describe.each(expressVersions)('wsgi in %s', (_version, express) => {
  const { mount, serve } = bridgeHarness(express, wsgi);

  describe('hello world', () => {
    it("serves the classic app with status, headers and body", async () => {
      const { server } = mount((_environ, startResponse) => {
        startResponse('200 OK', [text]);
        return ['Hello world!\n'];
      });
      const response = await request(server).get('/app').expect(200);
      expect(response.text).toBe('Hello world!\n');
      expect(response.headers['content-type']).toBe('text/plain');
      // A body known in full gets a Content-Length rather than chunked framing.
      expect(response.headers['content-length']).toBe('13');
    });

    it('sends strings as UTF-8 and accepts Uint8Array chunks', async () => {
      const { server } = mount((_environ, startResponse) => {
        startResponse('200 OK', [['Content-Type', 'text/plain; charset=utf-8']]);
        return ['café ', new Uint8Array([0xe2, 0x82, 0xac])];
      });
      const response = await request(server).get('/app').expect(200);
      expect(response.text).toBe('café €');
      expect(response.headers['content-length']).toBe(String(Buffer.byteLength('café €')));
    });

    it('uses the reason phrase the app gave', async () => {
      const { port } = await serve((_environ, startResponse) => {
        startResponse('299 Quite Fine', [text]);
        return ['ok'];
      });
      const response = await rawRequest(port, 'GET /app HTTP/1.1\nHost: x');
      expect([response.status, response.reason]).toEqual([299, 'Quite Fine']);
    });

    it('waits for an async app and streams an async generator', async () => {
      const { server } = mount(async (_environ, startResponse) => {
        await settle(1);
        startResponse('200 OK', [text]);
        return (async function* () {
          yield 'one ';
          await settle(1);
          yield 'two';
        })();
      });
      const response = await request(server).get('/app').expect(200);
      expect(response.text).toBe('one two');
      expect(response.headers['transfer-encoding']).toBe('chunked');
    });

    it('lets start_response be called from inside a generator', async () => {
      const { server } = mount(function* (_environ, startResponse) {
        startResponse('201 Created', [text]);
        yield 'made';
      });
      const response = await request(server).get('/app').expect(201);
      expect(response.text).toBe('made');
    });
  });

  describe('start_response', () => {
    it('refuses a second call without excInfo', async () => {
      let caught: unknown;
      const { server } = mount((_environ, startResponse) => {
        startResponse('200 OK', [text]);
        try {
          startResponse('201 Created', [text]);
        } catch (error) {
          caught = error;
          startResponse('500 Internal Server Error', [text], error);
          return [(error as Error).message];
        }
        return ['second call accepted'];
      });
      const response = await request(server).get('/app').expect(500);
      expect(caught).toBeInstanceOf(GatewayProtocolError);
      expect(response.text).toMatch(/already called/);
    });

    it('lets excInfo replace the status and headers before anything was sent', async () => {
      const { server } = mount(function* (_environ, startResponse) {
        startResponse('200 OK', [text, ['X-First', 'yes']]);
        yield '';
        try {
          throw new Error('database down');
        } catch (error) {
          startResponse('503 Service Unavailable', [text, ['Retry-After', '5']], error);
          yield 'try again later';
        }
      });
      const response = await request(server).get('/app').expect(503);
      expect(response.text).toBe('try again later');
      expect(response.headers['retry-after']).toBe('5');
      expect(response.headers['x-first']).toBeUndefined();
    });

    it('rethrows excInfo after the headers went out and cuts the connection', async () => {
      let rethrown: unknown;
      const failure = new Error('failed mid-stream');
      const { port, lines } = await serve(function* (_environ, startResponse) {
        startResponse('200 OK', [text]);
        yield 'partial ';
        try {
          startResponse('500 Internal Server Error', [text], failure);
        } catch (error) {
          rethrown = error;
          throw error;
        }
        yield 'not reached';
      });
      const response = await rawRequest(port, 'GET /app HTTP/1.1\nHost: x');
      expect(rethrown).toBe(failure);
      expect(response.status).toBe(200);
      expect(response.body.toString()).toBe('partial ');
      expect(response.complete).toBe(false);
      await waitFor(() => lines.some((line) => line.includes('failed mid-stream')), 'the error to be logged');
    });

    it('still cuts the connection when the app swallows the rethrown excInfo and goes on', async () => {
      const { port } = await serve(function* (_environ, startResponse) {
        startResponse('200 OK', [text]);
        yield 'partial ';
        try {
          startResponse('500 Internal Server Error', [text], new Error('late'));
        } catch {
          // An app that ignores the rule.
        }
        yield 'looks complete';
      });
      const response = await rawRequest(port, 'GET /app HTTP/1.1\nHost: x');
      expect(response.complete).toBe(false);
      expect(response.body.toString()).not.toContain('looks complete');
    });

    it.each([
      ['200OK'],
      ['200'],
      ['20 OK'],
      ['2000 OK'],
      ['abc OK'],
      ['200 '],
      ['200 OK\r\nX-Injected: 1'],
      ['200 O\u0000K'],
      ['100 Continue'],
      ['600 Beyond'],
    ])('rejects the status %j inside start_response', async (status) => {
      let caught: unknown;
      const { server } = mount((_environ, startResponse) => {
        try {
          startResponse(status, [text]);
        } catch (error) {
          caught = error;
        }
        startResponse('400 Bad Request', [text]);
        return [String((caught as Error | undefined)?.message)];
      });
      const response = await request(server).get('/app');
      expect(caught).toBeInstanceOf(GatewayProtocolError);
      expect(response.status).toBe(400);
    });

    it.each([
      ['Bad Name', 'x', /not a valid HTTP token/],
      ['X:Y', 'x', /not a valid HTTP token/],
      ['', 'x', /not a valid HTTP token/],
      ['X-Split', 'a\r\nSet-Cookie: evil=1', /CR/],
      ['X-Newline', 'a\nb', /LF/],
      ['X-Nul', 'a\u0000b', /NUL/],
      ['X-Wide', 'snowman \u2603', /Latin-1/],
      ['Connection', 'close', /hop-by-hop/],
      ['Transfer-Encoding', 'chunked', /hop-by-hop/],
      ['Keep-Alive', 'timeout=5', /hop-by-hop/],
      ['Upgrade', 'websocket', /hop-by-hop/],
      ['Content-Length', 'ten', /Content-Length/],
    ])('rejects the header %j: %j inside start_response', async (name, value, message) => {
      let caught: unknown;
      const { server } = mount((_environ, startResponse) => {
        try {
          startResponse('200 OK', [text, [name, value]]);
        } catch (error) {
          caught = error;
        }
        startResponse('400 Bad Request', [text]);
        return ['rejected'];
      });
      const response = await request(server).get('/app');
      expect(caught).toBeInstanceOf(GatewayProtocolError);
      expect((caught as Error).message).toMatch(message);
      expect(response.status).toBe(400);
    });

    it('answers 500 problem+json when the app does not catch a start_response error', async () => {
      const { server } = mount((_environ, startResponse) => {
        startResponse('200 OK', [['Connection', 'close']]);
        return ['never sent'];
      });
      const response = await request(server).get('/app').expect(500);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.body).toMatchObject({ status: 500, title: 'Internal error' });
    });
  });

  describe('response streaming', () => {
    it('sends no headers before the first non-empty chunk', async () => {
      const { server } = mount(function* (_environ, startResponse) {
        startResponse('200 OK', [text, ['X-App', 'yes']]);
        yield '';
        yield new Uint8Array(0);
        throw new Error('failed before any byte');
      });
      // Still able to answer cleanly: nothing had been sent.
      const response = await request(server).get('/app').expect(500);
      expect(response.headers['x-app']).toBeUndefined();
      expect(response.body.status).toBe(500);
    });

    it('sends the headers with the first non-empty chunk, then cannot take them back', async () => {
      const { port } = await serve(function* (_environ, startResponse) {
        startResponse('200 OK', [text, ['X-App', 'yes']]);
        yield 'a';
        throw new Error('failed after a byte');
      });
      const response = await rawRequest(port, 'GET /app HTTP/1.1\nHost: x');
      expect(response.status).toBe(200);
      expect(header(response, 'X-App')).toEqual(['yes']);
      expect(response.complete).toBe(false);
    });

    it('follows backpressure and stops producing for a client that does not read', async () => {
      let produced = 0;
      let finallyRuns = 0;
      let closes = 0;
      const chunk = Buffer.alloc(256 * 1024, 120);
      const { port } = await serve((_environ, startResponse) => {
        startResponse('200 OK', [['Content-Type', 'application/octet-stream']]);
        const body = (async function* () {
          try {
            for (let i = 0; i < 4096; i++) {
              produced++;
              yield chunk; // 1 GiB in all, if nothing held the app back.
            }
          } finally {
            finallyRuns++;
          }
        })();
        return Object.assign(body, { close: () => void closes++ });
      });
      const socket = clientThatDoesNotRead(port);
      // Wait until production stalls (socket buffers full), then check it stalled early.
      await waitForStall(() => produced, 'production to stall');
      await settle(20);
      expect(produced).toBeLessThan(400);
      socket.destroy();
      await waitFor(() => closes === 1 && finallyRuns === 1, 'close() after the client left');
      await settle(10);
      expect([closes, finallyRuns]).toEqual([1, 1]);
      expect(produced).toBeLessThan(400);
    });

    it('respects an app-declared Content-Length (no chunked framing)', async () => {
      const { port } = await serve(function* (_environ, startResponse) {
        startResponse('200 OK', [text, ['Content-Length', '11']]);
        yield 'Hello ';
        yield 'world';
      });
      const response = await rawRequest(port, 'GET /app HTTP/1.1\nHost: x');
      expect(header(response, 'Content-Length')).toEqual(['11']);
      expect(header(response, 'Transfer-Encoding')).toEqual([]);
      expect(response.body.toString()).toBe('Hello world');
      expect(response.complete).toBe(true);
    });

    it('sends no more than the declared Content-Length', async () => {
      const { port, lines } = await serve((_environ, startResponse) => {
        startResponse('200 OK', [text, ['Content-Length', '5']]);
        return ['Hello', ' world'];
      });
      const response = await rawRequest(port, 'GET /app HTTP/1.1\nHost: x');
      expect(header(response, 'Content-Length')).toEqual(['5']);
      expect(response.raw.toString()).not.toContain('world');
      expect(response.body.toString()).toBe('Hello');
      expect(lines.join('\n')).toMatch(/more than its Content-Length/);
    });

    it('cuts the connection when the body is shorter than the declared Content-Length', async () => {
      const { port } = await serve((_environ, startResponse) => {
        startResponse('200 OK', [text, ['Content-Length', '20']]);
        return ['only 9 b'];
      });
      const response = await rawRequest(port, 'GET /app HTTP/1.1\nHost: x');
      expect(response.status).toBe(200);
      expect(response.complete).toBe(false);
    });

    it('keeps several Set-Cookie headers on separate lines', async () => {
      const { port } = await serve((_environ, startResponse) => {
        startResponse('200 OK', [text, ['Set-Cookie', 'a=1; Path=/'], ['Set-Cookie', 'b=2; HttpOnly']]);
        return ['cookies'];
      });
      const response = await rawRequest(port, 'GET /app HTTP/1.1\nHost: x');
      expect(header(response, 'Set-Cookie')).toEqual(['a=1; Path=/', 'b=2; HttpOnly']);
    });

    it('sends no body for HEAD, with the Content-Length a GET would have', async () => {
      const app: WsgiApplication = (_environ, startResponse) => {
        startResponse('200 OK', [text]);
        return ['Hello world!\n'];
      };
      const { port } = await serve(app);
      const response = await rawRequest(port, 'HEAD /app HTTP/1.1\nHost: x');
      expect(response.status).toBe(200);
      expect(header(response, 'Content-Length')).toEqual(['13']);
      expect(response.body.length).toBe(0);
    });

    it('supports the imperative write() returned by start_response', async () => {
      const { server } = mount(async (_environ, startResponse) => {
        const write = startResponse('200 OK', [text]);
        await write('written, ');
        await write(Buffer.from('then '));
        return ['returned'];
      });
      const response = await request(server).get('/app').expect(200);
      expect(response.text).toBe('written, then returned');
    });

    it('fails with a 500 when the app yields a body before start_response', async () => {
      const { server, lines } = mount(function* () {
        yield 'too early';
      });
      await request(server).get('/app').expect(500);
      expect(lines.join('\n')).toMatch(/before calling start_response/);
    });

    it('fails with a 500 on a chunk that is not bytes or a string', async () => {
      const { server, lines } = mount((_environ, startResponse) => {
        startResponse('200 OK', [text]);
        return ['fine', 42] as unknown as string[];
      });
      await request(server).get('/app').expect(500);
      expect(lines.join('\n')).toMatch(/strings or Uint8Arrays, got number/);
    });
  });

  describe('close()', () => {
    function closable(chunks: Array<string | Error>, counters: { closes: number; returns: number }) {
      let index = 0;
      return {
        [Symbol.iterator]() {
          return {
            next(): IteratorResult<string> {
              const item = chunks[index++];
              if (item === undefined) return { done: true, value: undefined };
              if (item instanceof Error) throw item;
              return { done: false, value: item };
            },
            return(): IteratorResult<string> {
              counters.returns++;
              return { done: true, value: undefined };
            },
          };
        },
        close() {
          counters.closes++;
        },
      };
    }

    it('is called once after success', async () => {
      const counters = { closes: 0, returns: 0 };
      const { server } = mount((_environ, startResponse) => {
        startResponse('200 OK', [text]);
        return closable(['a', 'b'], counters);
      });
      expect((await request(server).get('/app').expect(200)).text).toBe('ab');
      await settle();
      // The iterator ran to its end, so return() is not owed.
      expect(counters).toEqual({ closes: 1, returns: 0 });
    });

    it('is called once when the iterable throws before the response started', async () => {
      const counters = { closes: 0, returns: 0 };
      const { server } = mount((_environ, startResponse) => {
        startResponse('200 OK', [text]);
        return closable([new Error('boom')], counters);
      });
      await request(server).get('/app').expect(500);
      await settle();
      expect(counters.closes).toBe(1);
    });

    it('is called once, with return(), when the gateway stops early after an error', async () => {
      const counters = { closes: 0, returns: 0 };
      const { port } = await serve((_environ, startResponse) => {
        startResponse('200 OK', [text]);
        return closable(['fine', 7 as unknown as string, 'never'], counters);
      });
      const response = await rawRequest(port, 'GET /app HTTP/1.1\nHost: x');
      expect(response.complete).toBe(false);
      await settle();
      expect(counters).toEqual({ closes: 1, returns: 1 });
    });

    it('is called once, with return(), when the client disconnects mid-stream', async () => {
      const counters = { closes: 0, returns: 0 };
      const gate = deferred();
      const { port } = await serve((_environ, startResponse) => {
        startResponse('200 OK', [text]);
        let sent = 0;
        return {
          [Symbol.asyncIterator]() {
            return {
              async next(): Promise<IteratorResult<string>> {
                if (sent++ === 0) return { done: false, value: 'first' };
                await gate.promise; // Blocks until the test says so.
                return { done: false, value: 'more' };
              },
              async return(): Promise<IteratorResult<string>> {
                counters.returns++;
                return { done: true, value: undefined };
              },
            };
          },
          close() {
            counters.closes++;
          },
        };
      });
      await leaveAfterFirstChunk(port, '/app');
      await waitFor(() => counters.closes === 1, 'close() after the disconnect');
      gate.resolve(); // The pending next() now settles; the gateway must not ask again or close again.
      await settle(10);
      expect(counters).toEqual({ closes: 1, returns: 1 });
    });

    it("runs a generator's finally block once when the client leaves", async () => {
      let finallyRuns = 0;
      const { port } = await serve(function* (_environ, startResponse) {
        startResponse('200 OK', [text]);
        try {
          for (;;) yield 'x'.repeat(64 * 1024);
        } finally {
          finallyRuns++;
        }
      });
      await leaveAfterFirstChunk(port, '/app');
      await waitFor(() => finallyRuns === 1, 'the generator to be closed');
      await settle(10);
      expect(finallyRuns).toBe(1);
    });
  });

  describe('errors', () => {
    it('survives throwing non-Errors, failing close() and bad return values', async () => {
      const apps: WsgiApplication[] = [
        () => {
          throw 'a string';
        },
        () => 42 as unknown as string[],
        () => null as unknown as string[],
        (_environ, startResponse) => {
          startResponse('200 OK', [text]);
          return Object.assign(['fine'], {
            close() {
              throw new Error('close failed');
            },
          });
        },
        (_environ, startResponse) => {
          startResponse('200 OK', [text]);
          return Object.assign(['fine'], { close: () => Promise.reject(new Error('async close failed')) });
        },
      ];
      const statuses: number[] = [];
      for (const app of apps) {
        const { server } = mount(app);
        statuses.push((await request(server).get('/app')).status);
      }
      expect(statuses).toEqual([500, 500, 500, 200, 200]);
      await settle();
      const { server } = mount((_environ, startResponse) => {
        startResponse('200 OK', [text]);
        return ['still alive'];
      });
      expect((await request(server).get('/app').expect(200)).text).toBe('still alive');
    });
  });

  describe('fallthrough', () => {
    const legacy: WsgiApplication = (environ, startResponse) => {
      if (environ.PATH_INFO === '/legacy') {
        startResponse('200 OK', [text]);
        return ['from wsgi'];
      }
      startResponse('404 Not Found', [text]);
      return ['wsgi 404'];
    };

    it("sends the app's 404 when fallthrough is off", async () => {
      const app = express();
      app.use(wsgi(legacy));
      app.get('/native', (_req, res) => {
        res.send('from express');
      });
      expect((await request(app).get('/native').expect(404)).text).toBe('wsgi 404');
    });

    it('falls through on the statuses listed', async () => {
      const app = express();
      app.use(
        wsgi((_environ, startResponse) => {
          startResponse('405 Method Not Allowed', [text, ['Allow', 'GET']]);
          return ['no'];
        }, { fallthrough: [404, 405] }),
      );
      app.post('/thing', (_req, res) => {
        res.status(201).send('created natively');
      });
      expect((await request(app).post('/thing').expect(201)).text).toBe('created natively');
    });
  });

  describe('environ and wsgi.input', () => {
    function echoEnviron(pick: (environ: WsgiEnviron) => Promise<unknown> | unknown): WsgiApplication {
      return async (environ, startResponse) => {
        const value = await pick(environ);
        startResponse('200 OK', [['Content-Type', 'application/json']]);
        return [JSON.stringify(value)];
      };
    }

    it('has the wsgi.* keys', async () => {
      const { server } = mount(
        echoEnviron((environ) => ({
          version: environ['wsgi.version'],
          scheme: environ['wsgi.url_scheme'],
          multithread: environ['wsgi.multithread'],
          multiprocess: environ['wsgi.multiprocess'],
          runOnce: environ['wsgi.run_once'],
          terminated: environ['wsgi.input_terminated'],
          hasInput: typeof environ['wsgi.input'].read === 'function',
          requestUri: environ.REQUEST_URI,
          contentType: environ.CONTENT_TYPE,
          contentLength: environ.CONTENT_LENGTH,
        })),
      );
      const response = await request(server).get('/app/x?y=%20').expect(200);
      expect(response.body).toEqual({
        version: [1, 0],
        scheme: 'http',
        multithread: false,
        multiprocess: false,
        runOnce: false,
        terminated: true,
        hasInput: true,
        requestUri: '/app/x?y=%20',
        contentType: '',
        contentLength: '',
      });
    });

    it('believes X-Forwarded-Proto only with trustProxy', async () => {
      const pick = echoEnviron((environ) => environ['wsgi.url_scheme']);
      const trusting = mount(pick, { trustProxy: true }).server;
      const plain = mount(pick).server;
      expect((await request(trusting).get('/app').set('X-Forwarded-Proto', 'https').expect(200)).body).toBe('https');
      expect((await request(plain).get('/app').set('X-Forwarded-Proto', 'https').expect(200)).body).toBe('http');
    });

    it('sends wsgi.errors to the logger, line by line', async () => {
      const { server, lines } = mount((environ, startResponse) => {
        environ['wsgi.errors'].write('first line\nsecond ');
        environ['wsgi.errors'].writelines(['line\n', 'unterminated']);
        startResponse('200 OK', [text]);
        return ['ok'];
      });
      await request(server).get('/app').expect(200);
      await settle();
      expect(lines).toEqual(['wsgi.errors: first line', 'wsgi.errors: second line', 'wsgi.errors: unterminated']);
    });

    it('logs at most 1 MiB of wsgi.errors per request, then one line saying the rest was dropped; the next request logs again', async () => {
      const line = 'e'.repeat(999);
      const { server, lines } = mount((environ, startResponse) => {
        // 3 000 lines of 1 000 characters: about 3 MB.
        for (let i = 0; i < 3000; i++) environ['wsgi.errors'].write(`${line}\n`);
        environ['wsgi.errors'].write('after the budget');
        startResponse('200 OK', [text]);
        return ['ok'];
      });
      await request(server).get('/app').expect(200);
      await settle();
      const logged = lines.filter((entry) => entry === `wsgi.errors: ${line}`).length;
      // Each line counts with its prefix and line break.
      expect(logged).toBe(Math.floor((1024 * 1024) / ('wsgi.errors: '.length + 999 + 1)));
      expect(lines.length).toBe(logged + 1);
      expect(lines.at(-1)).toBe('wsgi.errors: … (this request logged more than 1048576 characters; the rest of its output is dropped)');
      // Each request has its own budget.
      await request(server).get('/app').expect(200);
      await settle();
      expect(lines.length).toBe(2 * (logged + 1));
    });

    it.each([
      ['empty lines', () => '\n', 1024 * 1024 / ('wsgi.errors: '.length + 1)],
      // Lines that use up the budget exactly: the next one brings the notice.
      ['lines ending exactly at the budget', () => `${'x'.repeat(1024 - 'wsgi.errors: '.length - 1)}\n`, 1024],
    ])('the log budget holds for %s, and the notice comes once', async (_name, next, fit) => {
      const { server, lines } = mount((environ, startResponse) => {
        for (let i = 0; i < 2 * fit; i++) environ['wsgi.errors'].write(next());
        startResponse('200 OK', [text]);
        return ['ok'];
      });
      await request(server).get('/app').expect(200);
      expect(lines.length).toBe(Math.floor(fit) + 1);
      expect(lines.at(-1)).toMatch(/^wsgi\.errors: … \(this request logged more than 1048576 characters/);
    });

    it('reads the body with read(size), readline() and line iteration', async () => {
      const { server } = mount(
        echoEnviron(async (environ) => {
          const input = environ['wsgi.input'];
          const first = (await input.read(3)).toString();
          const line = (await input.readline()).toString();
          const rest: string[] = [];
          for await (const next of input) rest.push(next.toString());
          const after = (await input.read()).length;
          return { first, line, rest, after };
        }),
      );
      const response = await request(server).post('/app').type('text/plain').send('abcdef\nline two\nline three').expect(200);
      expect(response.body).toEqual({ first: 'abc', line: 'def\n', rest: ['line two\n', 'line three'], after: 0 });
    });

    it('reads a chunked request body to its end', async () => {
      const { port } = await serve(echoEnviron(async (environ) => (await environ['wsgi.input'].read()).toString()));
      const body = '5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n';
      const response = await rawRequest(port, 'POST /app HTTP/1.1\nHost: x\nTransfer-Encoding: chunked', body);
      expect(response.body.toString()).toBe('"hello world"');
    });

    it('feeds an empty input when a body parser already consumed the body, and the raw body when one is kept', async () => {
      const pick = echoEnviron(async (environ) => [environ.CONTENT_LENGTH, (await environ['wsgi.input'].read()).toString()]);
      const parsed = express();
      parsed.use(express.json());
      parsed.use('/app', wsgi(pick));
      // CONTENT_LENGTH describes what the app can read.
      expect((await request(parsed).post('/app').send({ a: 1 }).expect(200)).body).toEqual(['0', '']);

      const kept = express();
      kept.use(express.json({ verify: (req, _res, buffer) => void ((req as unknown as { rawBody: Buffer }).rawBody = buffer) }));
      kept.use('/app', wsgi(pick));
      expect((await request(kept).post('/app').send({ a: 1 }).expect(200)).body).toEqual(['7', '{"a":1}']);

      const text = express();
      text.use(express.text());
      text.use('/app', wsgi(pick));
      expect((await request(text).post('/app').type('text/plain').send('plain words').expect(200)).body).toEqual(['11', 'plain words']);

      const untouched = express();
      untouched.use(express.json()); // Not JSON: the parser leaves the stream alone.
      untouched.use('/app', wsgi(pick));
      expect((await request(untouched).post('/app').type('text/plain').send('raw stream').expect(200)).body).toEqual(['10', 'raw stream']);
    });
  });
});

describe('wsgi() options', () => {
  const app: WsgiApplication = () => [];

  it.each([
    [() => wsgi('not a function' as unknown as WsgiApplication), /app must be a function/],
    [() => wsgi(app, { fallthru: true } as never), /unknown option "fallthru"/],
    [() => wsgi(app, { fallthrough: 'yes' } as never), /option "fallthrough"/],
    [() => wsgi(app, { fallthrough: [99] }), /option "fallthrough"/],
    [() => wsgi(app, { onError: 'ignore' } as never), /option "onError"/],
    [() => wsgi(app, { logger: 'stderr' } as never), /option "logger"/],
    [() => wsgi(app, { trustProxy: 1 } as never), /option "trustProxy"/],
    [() => wsgi(app, { multiprocess: 'no' } as never), /option "multiprocess"/],
    [() => wsgi(app, 'options' as never), /options must be an object/],
  ])('throws a TypeError naming the problem (%#)', (create, message) => {
    expect(create).toThrow(TypeError);
    expect(create).toThrow(message);
  });

  it('accepts valid options', () => {
    const startResponse: StartResponse | undefined = undefined;
    expect(startResponse).toBeUndefined();
    expect(typeof wsgi(app, { fallthrough: [404], onError: 'next', logger: () => undefined, trustProxy: true, multiprocess: true })).toBe('function');
  });
});
