/**
 * The cases every callable bridge (wsgi, jsgi, fetchHandler) answers the same
 * way, as one table over the bridges, over real HTTP in Express 5 and
 * Express 4. What belongs to one interface stays in its own file; cgi, whose
 * apps are scripts, has its versions of these in cgi.test.ts.
 */
import { get } from 'node:http';
import request from 'supertest';
import { afterEach, describe, expect, it } from 'vitest';
import { fetchHandler, jsgi, wsgi, type GatewayMiddleware, type GatewayOptions } from '../../src/gateway/index.js';
import { captureLogger, deferred, expressVersions, header, listen, rawRequest, settle, type Listening } from './helpers.js';

/** One app per case, written to each bridge's interface. */
interface Bridge {
  name: string;
  /** Fails with `failure` before its response starts: thrown at once, or as a rejected promise. */
  failing(failure: Error, how: 'throws' | 'rejects', options: GatewayOptions): GatewayMiddleware;
  /** Sends 'first;', then waits for `gate` before it sends 'second'. */
  streaming(gate: Promise<void>, options: GatewayOptions): GatewayMiddleware;
  /** Answers the status in the query string (200 without one) with an `X-Status` header and the body 'must not be sent'. */
  statusFromQuery(options: GatewayOptions): GatewayMiddleware;
  /** Answers `/legacy` with 200 `from <name>`, anything else with a 404 `<name> 404` whose body calls `released` when the bridge lets go of it. */
  legacy(released: () => void, options: GatewayOptions): GatewayMiddleware;
}

const text: [string, string] = ['Content-Type', 'text/plain'];
const plain = { 'content-type': 'text/plain' };
const encoder = new TextEncoder();

/** An app for any bridge that fails with `failure` before its response: thrown at once, or as a rejected promise. */
function failingApp(failure: Error, how: 'throws' | 'rejects'): () => Promise<never> {
  return how === 'throws'
    ? () => {
        throw failure;
      }
    : () => Promise.reject(failure);
}

const bridges: Bridge[] = [
  {
    name: 'wsgi',
    failing: (failure, how, options) => wsgi(failingApp(failure, how), options),
    streaming: (gate, options) =>
      wsgi(async function* (_environ, startResponse) {
        startResponse('200 OK', [text]);
        yield 'first;';
        await gate; // Only the client receiving "first;" opens the gate.
        yield 'second';
      }, options),
    statusFromQuery: (options) =>
      wsgi(function* (environ, startResponse) {
        const status = Number(environ.QUERY_STRING || 200);
        startResponse(`${status} Whatever`, [['ETag', '"v1"'], ['X-Status', String(status)]]);
        yield 'must not be sent';
      }, options),
    legacy: (released, options) =>
      wsgi((environ, startResponse) => {
        if (environ.PATH_INFO === '/legacy') {
          startResponse('200 OK', [text]);
          return ['from wsgi'];
        }
        startResponse('404 Not Found', [text]);
        return Object.assign(['wsgi 404'], { close: released });
      }, options),
  },
  {
    name: 'jsgi',
    failing: (failure, how, options) => jsgi(failingApp(failure, how), options),
    streaming: (gate, options) =>
      jsgi(
        () => [
          200,
          plain,
          (async function* () {
            yield '';
            yield 'first;';
            await gate;
            yield 'second';
          })(),
        ],
        options,
      ),
    statusFromQuery: (options) =>
      jsgi((req) => {
        const status = Number(req.queryString || 200);
        return [status, { ...plain, 'x-status': String(status) }, ['must not be sent']];
      }, options),
    legacy: (released, options) =>
      jsgi(
        (req) => (req.pathInfo === '/legacy' ? [200, plain, ['from jsgi']] : [404, plain, Object.assign(['jsgi 404'], { close: released })]),
        options,
      ),
  },
  {
    name: 'fetchHandler',
    failing: (failure, how, options) => fetchHandler(failingApp(failure, how), options),
    streaming: (gate, options) =>
      fetchHandler(
        () =>
          new Response(
            new ReadableStream<Uint8Array>({
              async start(controller) {
                controller.enqueue(encoder.encode('first;'));
                await gate;
                controller.enqueue(encoder.encode('second'));
                controller.close();
              },
            }),
          ),
        options,
      ),
    statusFromQuery: (options) =>
      fetchHandler((req) => {
        const status = Number(new URL(req.url).search.slice(1) || 200);
        // A Response for 204 or 304 cannot even be given a body.
        return new Response(status === 200 ? 'must not be sent' : null, { status, headers: { 'x-status': String(status) } });
      }, options),
    legacy: (released, options) =>
      fetchHandler(
        (req) =>
          new URL(req.url).pathname === '/legacy'
            ? new Response('from fetchHandler')
            : new Response(
                // Never closed: a body the bridge stops reading is owed a cancel.
                new ReadableStream({ start: (controller) => controller.enqueue(encoder.encode('fetchHandler 404')), cancel: released }),
                { status: 404 },
              ),
        options,
      ),
  },
];

describe.each(expressVersions)('every callable bridge in %s', (_version, express) => {
  let servers: Listening[] = [];
  afterEach(async () => {
    await Promise.all(servers.map((server) => server.close()));
    servers = [];
  });

  async function serve(middleware: GatewayMiddleware): Promise<Listening> {
    const app = express();
    app.use('/app', middleware);
    const listening = await listen(app);
    servers.push(listening);
    return listening;
  }

  describe.each(bridges.map((bridge) => [bridge.name, bridge] as const))('%s', (_name, bridge) => {
    it.each(['throws', 'rejects'] as const)('answers an app that %s before its response with a 500 problem, no stack trace', async (how) => {
      const log = captureLogger();
      const app = express();
      app.use('/app', bridge.failing(new Error('secret connection string postgres://admin:hunter2@db'), how, { logger: log.logger }));
      const response = await request(app).get('/app').expect(500);
      expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
      expect(response.body).toEqual({
        type: expect.stringMatching(/internal-error$/),
        title: 'Internal error',
        status: 500,
        detail: expect.any(String),
      });
      expect(response.text).not.toContain('hunter2');
      expect(response.text).not.toMatch(/at .*\.ts/);
      expect(log.lines.join('\n')).toContain('hunter2'); // The stack goes to the server log only.
    });

    it.each(['throws', 'rejects'] as const)("hands the error to next(err) with onError: 'next' when the app %s", async (how) => {
      const failure = new Error('for the error handler');
      const app = express();
      app.use('/app', bridge.failing(failure, how, { onError: 'next', logger: captureLogger().logger }));
      let received: unknown;
      app.use((error: unknown, _req: unknown, res: { status(code: number): { send(body: string): void } }, _next: unknown) => {
        received = error;
        res.status(599).send('handled');
      });
      const response = await request(app).get('/app').expect(599);
      expect(response.text).toBe('handled');
      expect(received).toBe(failure);
    });

    it('streams each chunk as it comes', async () => {
      const gate = deferred();
      const { port } = await serve(bridge.streaming(gate.promise, { logger: captureLogger().logger }));
      const body = await new Promise<string>((resolve, reject) => {
        get({ port, host: '127.0.0.1', path: '/app' }, (res) => {
          let received = '';
          res.setEncoding('utf8');
          res.on('data', (chunk: string) => {
            received += chunk;
            if (received === 'first;') gate.resolve();
          });
          res.on('end', () => resolve(received));
        }).on('error', reject);
      });
      expect(body).toBe('first;second');
    });

    it('sends no body for HEAD, 204 and 304', async () => {
      const { port } = await serve(bridge.statusFromQuery({ logger: captureLogger().logger }));
      for (const [head, status] of [['HEAD /app', 200], ['GET /app?204', 204], ['GET /app?304', 304]] as const) {
        const response = await rawRequest(port, `${head} HTTP/1.1\nHost: x`);
        expect(response.status).toBe(status);
        expect(header(response, 'x-status')).toEqual([String(status)]);
        expect(response.body.length).toBe(0);
        expect(response.raw.toString()).not.toContain('must not be sent');
      }
    });

    it('passes an app 404 on to the next middleware with fallthrough, releasing its body', async () => {
      let released = 0;
      const app = express();
      app.use(bridge.legacy(() => void released++, { fallthrough: true, logger: captureLogger().logger }));
      app.get('/native', (_req, res) => {
        res.type('text/plain').send('from express');
      });
      expect((await request(app).get('/legacy').expect(200)).text).toBe(`from ${bridge.name}`);
      expect((await request(app).get('/native').expect(200)).text).toBe('from express');
      const missing = await request(app).get('/nowhere').expect(404);
      expect(missing.text).not.toBe(`${bridge.name} 404`); // Express's own 404 answered.
      await settle();
      expect(released).toBe(2);
    });
  });
});
