/**
 * fetchHandler(): WHATWG `(Request) => Response` handlers over real HTTP, in
 * Express 5 and Express 4.
 */
import { get, request as httpRequest } from 'node:http';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { fetchHandler, type FetchHandler } from '../../src/gateway/index.js';
import { bridgeHarness, clientThatDoesNotRead, deferred, expressVersions, header, rawRequest, settle, waitFor, waitForStall } from './helpers.js';

describe.each(expressVersions)('fetchHandler in %s', (_version, express) => {
  const { mount, serve } = bridgeHarness(express, fetchHandler);

  const echoUrl: FetchHandler = (req) => new Response(req.url);

  describe('request', () => {
    it('gets an absolute URL relative to the mount point', async () => {
      const { port } = await serve(echoUrl);
      const cases: Array<[string, string]> = [
        ['/app', '/'],
        ['/app/', '/'],
        ['/app/x?y=1', '/x?y=1'],
        ['/app/a%20b', '/a%20b'],
      ];
      for (const [target, expected] of cases) {
        const response = await rawRequest(port, `GET ${target} HTTP/1.1\nHost: example.test:8080`);
        expect(response.body.toString()).toBe(`http://example.test:8080${expected}`);
      }
    });

    it('answers 400 problem+json when the Host header cannot make a URL', async () => {
      const { port } = await serve(echoUrl);
      const response = await rawRequest(port, 'GET /app HTTP/1.1\nHost: bad host');
      expect(response.status).toBe(400);
      expect(JSON.parse(response.body.toString())).toMatchObject({ status: 400 });
    });

    it('refuses a Host that is not host[:port], so it cannot move the path past a guard', async () => {
      // The case: a guard on /edge/admin, the router at /edge.
      const router: FetchHandler = (req) => {
        const path = new URL(req.url).pathname;
        return new Response(path === '/admin' ? 'admin secrets' : `public ${path}`);
      };
      const app = express();
      app.use('/edge/admin', (_req, res) => {
        res.status(403).send('guarded');
      });
      app.use('/edge', fetchHandler(router, { logger: () => undefined }));
      const { listen } = await import('./helpers.js');
      const server = await listen(app);
      try {
        for (const host of ['127.0.0.1/admin?', '127.0.0.1/admin#', 'a@127.0.0.1', '127.0.0.1:80/admin', 'x:99999', '127.0.0.1%2fadmin']) {
          const response = await rawRequest(server.port, `GET /edge/public HTTP/1.1\nHost: ${host}`);
          expect(response.status, host).toBe(400);
          expect(JSON.parse(response.body.toString())).toMatchObject({ status: 400, detail: expect.stringMatching(/host\[:port\]/) });
        }
        for (const path of ['/edge/public/../admin', '/edge/public/%2e%2E/admin', '/edge/public\\..\\admin', '/edge/./admin']) {
          const response = await rawRequest(server.port, `GET ${path} HTTP/1.1\nHost: 127.0.0.1`);
          expect(response.status, path).toBe(400);
          expect(response.body.toString()).not.toContain('secrets');
        }
        const fine = await rawRequest(server.port, 'GET /edge/public HTTP/1.1\nHost: [::1]:8080');
        expect(fine.body.toString()).toBe('public /public');
        expect((await rawRequest(server.port, 'GET /edge/admin HTTP/1.1\nHost: 127.0.0.1')).body.toString()).toBe('guarded');
      } finally {
        await server.close();
      }
    });

    it('keeps a root-relative redirect inside the mount with rewriteLocation (the Hono redirect case)', async () => {
      const redirecting: FetchHandler = () => new Response(null, { status: 302, headers: { Location: '/users/9' } });
      const rewritten = await serve(redirecting, { rewriteLocation: true });
      expect(header(await rawRequest(rewritten.port, 'GET /app/users HTTP/1.1\nHost: x'), 'Location')).toEqual(['/app/users/9']);
      const absolute: FetchHandler = () => Response.redirect('http://example.test/users/9', 302);
      const untouched = await serve(absolute, { rewriteLocation: true });
      expect(header(await rawRequest(untouched.port, 'GET /app/users HTTP/1.1\nHost: x'), 'Location')).toEqual(['http://example.test/users/9']);
      const plain = await serve(redirecting);
      expect(header(await rawRequest(plain.port, 'GET /app/users HTTP/1.1\nHost: x'), 'Location')).toEqual(['/users/9']);
    });

    it('gives a Request that is an instanceof Request and works as the init of a new one (proxy style)', async () => {
      const { port } = await serve(async (req) => {
        const copy = new Request('http://upstream.test/echo', req);
        return new Response(JSON.stringify({ instance: req instanceof Request, method: copy.method, header: copy.headers.get('x-a'), body: await copy.text() }));
      });
      const response = await rawRequest(port, 'PUT /app HTTP/1.1\nHost: x\nX-A: 1\nContent-Length: 5', 'hello');
      expect(JSON.parse(response.body.toString())).toEqual({ instance: true, method: 'PUT', header: '1', body: 'hello' });
    });

    it("keeps the mount point in the URL with mountPath: 'keep'", async () => {
      const { port } = await serve(echoUrl, { mountPath: 'keep' });
      const response = await rawRequest(port, 'GET /app/x?y=1 HTTP/1.1\nHost: example.test');
      expect(response.body.toString()).toBe('http://example.test/app/x?y=1');
    });

    it('takes the scheme and host from X-Forwarded-* only with trustProxy', async () => {
      const forwarded = ['X-Forwarded-Proto: https', 'X-Forwarded-Host: public.test'];
      const trusting = await serve(echoUrl, { trustProxy: true });
      const plain = await serve(echoUrl);
      const head = ['GET /app/p HTTP/1.1', 'Host: internal:3000', ...forwarded].join('\n');
      expect((await rawRequest(trusting.port, head)).body.toString()).toBe('https://public.test/p');
      expect((await rawRequest(plain.port, head)).body.toString()).toBe('http://internal:3000/p');
    });

    it('passes headers joined, cookies with "; ", without "_" names, Proxy or hop-by-hop headers', async () => {
      let seen: Headers | undefined;
      const { port } = await serve((req) => {
        seen = req.headers;
        return new Response('ok');
      });
      await rawRequest(
        port,
        ['GET /app HTTP/1.1', 'Host: x', 'X-Multi: a', 'X-Multi: b', 'Cookie: a=1', 'Cookie: b=2', 'X_Multi: spoof', 'Proxy: http://evil', 'Keep-Alive: 5'].join('\n'),
      );
      expect(seen?.get('x-multi')).toBe('a, b');
      expect(seen?.get('cookie')).toBe('a=1; b=2');
      expect(seen?.has('x_multi')).toBe(false);
      expect(seen?.has('proxy')).toBe(false);
      expect(seen?.has('keep-alive')).toBe(false);
      expect(seen?.has('connection')).toBe(false);
      expect(seen?.get('host')).toBe('x');
    });

    it('streams the request body to the handler', async () => {
      const { port } = await serve(async (req) => new Response(`${req.method} ${await req.text()}`));
      const chunked = await rawRequest(port, 'POST /app HTTP/1.1\nHost: x\nTransfer-Encoding: chunked', '3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n');
      expect(chunked.body.toString()).toBe('POST abcdef');
      const sized = await rawRequest(port, 'PUT /app HTTP/1.1\nHost: x\nContent-Length: 5', 'hello');
      expect(sized.body.toString()).toBe('PUT hello');
    });

    it('gets the already-read body when a body parser ran first', async () => {
      const app = express();
      app.use(express.text());
      app.use('/app', fetchHandler(async (req) => new Response(`[${await req.text()}]`)));
      expect((await request(app).post('/app').type('text/plain').send('parsed').expect(200)).text).toBe('[parsed]');
    });

    it('passes the Node request as context.incoming', async () => {
      const app = express();
      app.use((req, _res, next) => {
        (req as unknown as { user: string }).user = 'ada';
        next();
      });
      app.use('/app', fetchHandler((_req, context) => new Response((context.incoming as unknown as { user: string }).user)));
      expect((await request(app).get('/app').expect(200)).text).toBe('ada');
    });

    it('aborts the signal when the client disconnects', async () => {
      let aborted = false;
      const started = deferred();
      const { port } = await serve(
        (req) =>
          new Promise<Response>((resolve) => {
            req.signal.addEventListener('abort', () => {
              aborted = true;
              resolve(new Response('too late'));
            });
            started.resolve();
          }),
      );
      const client = httpRequest({ port, host: '127.0.0.1', path: '/app' });
      client.on('error', () => undefined);
      client.end();
      await started.promise;
      client.destroy();
      await waitFor(() => aborted, 'the abort signal');
      expect(aborted).toBe(true);
    });

    it('does not abort the signal after a normal response', async () => {
      let signal: AbortSignal | undefined;
      const { server } = mount((req) => {
        signal = req.signal;
        return new Response('done');
      });
      await request(server).get('/app').expect(200);
      await settle();
      expect(signal?.aborted).toBe(false);
    });
  });

  describe('response', () => {
    it('sends status, reason and headers, with each Set-Cookie on its own line', async () => {
      const { port } = await serve(() => {
        const headers = new Headers({ 'content-type': 'text/plain', 'x-app': 'yes' });
        headers.append('set-cookie', 'a=1; Path=/');
        headers.append('set-cookie', 'b=2; HttpOnly');
        return new Response('made', { status: 201, statusText: 'Made It', headers });
      });
      const response = await rawRequest(port, 'GET /app HTTP/1.1\nHost: x');
      expect([response.status, response.reason]).toEqual([201, 'Made It']);
      expect(header(response, 'set-cookie')).toEqual(['a=1; Path=/', 'b=2; HttpOnly']);
      expect(header(response, 'x-app')).toEqual(['yes']);
      expect(response.body.toString()).toBe('made');
    });

    it('drops hop-by-hop headers of a proxied response', async () => {
      const { port } = await serve(
        () => new Response('proxied', { headers: { connection: 'keep-alive', 'keep-alive': 'timeout=5', 'transfer-encoding': 'chunked', 'x-kept': '1' } }),
      );
      const response = await rawRequest(port, 'GET /app HTTP/1.1\nHost: x');
      expect(header(response, 'keep-alive')).toEqual([]);
      expect(header(response, 'x-kept')).toEqual(['1']);
      expect(response.body.toString()).toBe('proxied');
      expect(response.complete).toBe(true);
    });

    it('sends a body that is complete up front with a Content-Length, a streamed one chunked', async () => {
      const { port } = await serve((req) =>
        new URL(req.url).pathname === '/known'
          ? new Response('Hello world!\n')
          : new Response(
              new ReadableStream<Uint8Array>({
                start(controller) {
                  controller.enqueue(new TextEncoder().encode('stream'));
                },
                async pull(controller) {
                  // The rest is not there yet when the first chunk is read.
                  await new Promise((resolve) => setTimeout(resolve, 5));
                  controller.enqueue(new TextEncoder().encode('ed'));
                  controller.close();
                },
              }, { highWaterMark: 0 }),
            ),
      );
      const known = await rawRequest(port, 'GET /app/known HTTP/1.1\nHost: x');
      expect(header(known, 'content-length')).toEqual(['13']);
      expect(known.body.toString()).toBe('Hello world!\n');
      const streamed = await rawRequest(port, 'GET /app/streamed HTTP/1.1\nHost: x');
      expect(header(streamed, 'transfer-encoding')).toEqual(['chunked']);
      expect(streamed.body.toString()).toBe('streamed');
      expect(streamed.complete).toBe(true);
    });

    it('respects a declared Content-Length', async () => {
      const { port } = await serve(() => new Response('Hello world', { headers: { 'content-length': '11' } }));
      const response = await rawRequest(port, 'GET /app HTTP/1.1\nHost: x');
      expect(header(response, 'content-length')).toEqual(['11']);
      expect(header(response, 'transfer-encoding')).toEqual([]);
      expect(response.body.toString()).toBe('Hello world');
    });

    it('follows backpressure and cancels the body when the client leaves', async () => {
      let pulls = 0;
      let cancelled = 0;
      const chunk = new Uint8Array(256 * 1024).fill(98);
      const { port } = await serve(
        () =>
          new Response(
            new ReadableStream<Uint8Array>(
              {
                pull(controller) {
                  pulls++;
                  if (pulls > 4096) controller.close();
                  else controller.enqueue(chunk);
                },
                cancel() {
                  cancelled++;
                },
              },
              { highWaterMark: 0 },
            ),
          ),
      );
      const socket = clientThatDoesNotRead(port);
      await waitForStall(() => pulls, 'pulling to stall');
      expect(pulls).toBeLessThan(400);
      socket.destroy();
      await waitFor(() => cancelled === 1, 'the body to be cancelled');
      await settle(10);
      expect(cancelled).toBe(1);
    });

    it('answers 500 when the body stream fails before anything was sent', async () => {
      const { server } = mount(
        () =>
          new Response(
            new ReadableStream<Uint8Array>({
              start(controller) {
                controller.enqueue(new TextEncoder().encode('partial'));
              },
              pull(controller) {
                controller.error(new Error('upstream broke at once'));
              },
            }),
          ),
      );
      // The first chunk was still held back (the gateway checks whether the
      // body is already complete), so a clean answer is possible.
      const response = await request(server).get('/app').expect(500);
      expect(response.body.status).toBe(500);
    });

    it('cuts the connection when the body stream fails after output started', async () => {
      const gate = deferred();
      const { port } = await serve(
        () =>
          new Response(
            new ReadableStream<Uint8Array>({
              start(controller) {
                controller.enqueue(new TextEncoder().encode('partial'));
              },
              async pull(controller) {
                await gate.promise; // Opened once the client has the first chunk.
                controller.error(new Error('upstream broke later'));
              },
            }),
          ),
      );
      const outcome = await new Promise<{ status: number; body: string; complete: boolean }>((resolve, reject) => {
        get({ port, host: '127.0.0.1', path: '/app' }, (res) => {
          let body = '';
          res.on('data', (chunk: Buffer) => {
            body += chunk.toString();
            gate.resolve();
          });
          res.on('error', () => undefined);
          res.on('close', () => resolve({ status: res.statusCode ?? 0, body, complete: res.complete }));
        }).on('error', reject);
      });
      expect(outcome).toEqual({ status: 200, body: 'partial', complete: false });
    });
  });

  describe('errors', () => {
    // A thrown error or rejection: bridges.test.ts, for every bridge.
    it.each<[string, FetchHandler, RegExp]>([
      ['a non-Response', () => ({ status: 200 }) as never, /must return a Response/],
      ['Response.error()', () => Response.error(), /network error/],
    ])('answers %s with a 500 problem and no detail leak', async (_name, handler, logged) => {
      const { server, lines } = mount(handler);
      const response = await request(server).get('/app').expect(500);
      expect(response.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(response.text).not.toContain('secret-token-123');
      expect(lines.join('\n')).toMatch(logged);
    });
  });
});

describe('fetchHandler() options', () => {
  it.each([
    [() => fetchHandler(undefined as never), /handler must be a function/],
    [() => fetchHandler(() => new Response(), { mountPath: 'drop' } as never), /option "mountPath"/],
    [() => fetchHandler(() => new Response(), { rewriteLocation: 'yes' } as never), /option "rewriteLocation"/],
    [() => fetchHandler(() => new Response(), { basePath: '/x' } as never), /unknown option "basePath"/],
  ])('throws a TypeError naming the problem (%#)', (create, message) => {
    expect(create).toThrow(TypeError);
    expect(create).toThrow(message);
  });
});
