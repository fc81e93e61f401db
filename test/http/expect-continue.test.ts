/**
 * `Expect: 100-continue` on users' own servers with
 * `server.on('checkContinue', continueWhenRead(app))`: what the store refuses
 * before reading is answered without `100 Continue`, so the client never
 * uploads it; what it accepts gets 100, then its answer.
 */
import express from 'express';
import { afterEach, describe, expect, test } from 'vitest';
import { continueWhenRead, jsonStore, type JsonStoreOptions } from '../../src/index.js';
import { sendExpectingContinue, type ContinueExchange } from './expect-client.js';
import { closeServers, hosts, listen, send, type Host } from './hosts.js';
import { expectProblem, PROBLEM_TYPE } from './support.js';

afterEach(closeServers);

/** The store behind `host`, with continueWhenRead() on the server. */
async function serveContinuing(host: Host, options: JsonStoreOptions) {
  const store = jsonStore(options);
  const app = host.app(store);
  const { server, port } = await listen(app);
  server.on('checkContinue', continueWhenRead(app));
  return { store, port, path: (path: string) => host.base + path };
}

/** A refusal sent before the upload: final status first, no 100, no body sent. */
function expectRefusedUnread(exchange: ContinueExchange, status: number, detail: string | RegExp): void {
  expect({ sawContinue: exchange.sawContinue, sentBody: exchange.sentBody, status: exchange.status }).toEqual({ sawContinue: false, sentBody: false, status });
  expect(exchange.headers['content-type']).toBe(PROBLEM_TYPE);
  expectProblem({ status: exchange.status, headers: exchange.headers, text: exchange.text, json: exchange.json }, status, detail);
}

describe.each(hosts)('$name', (host) => {
  test('a Content-Length over the limit is 413 without 100 Continue, and nothing is uploaded or changed', async () => {
    const ctx = await serveContinuing(host, { initial: { a: 1 }, limit: '1kb' });
    const exchange = await sendExpectingContinue(
      ctx.port,
      `PUT ${ctx.path('/a')} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json`,
      '',
      50 * 1024 * 1024,
    );
    expectRefusedUnread(exchange, 413, 'The request body is larger than the limit of 1024 bytes (the limit option)');
    expect(exchange.headers['connection']).toBe('close');
    expect(await ctx.store.get()).toEqual({ a: 1 });
    expect(ctx.store.store.revision).toBe(0);
  });

  test.each([
    ['no Content-Type', {}, '', 415, /^The request has no Content-Type/],
    ['text/plain', {}, '\r\nContent-Type: text/plain', 415, /^Content-Type "text\/plain" is not accepted/],
    ['a read-only store', { readOnly: true }, '\r\nContent-Type: application/json', 405, 'This store is read-only; PUT is not allowed'],
    ['requirePreconditions without one', { requirePreconditions: true }, '\r\nContent-Type: application/json', 428, /^PUT needs If-Match/],
  ] as const)('%s is answered without 100 Continue', async (_name, options, headers, status, detail) => {
    const ctx = await serveContinuing(host, { initial: { a: 1 }, ...options });
    const exchange = await sendExpectingContinue(ctx.port, `PUT ${ctx.path('/a')} HTTP/1.1\r\nHost: localhost${headers}`, '2');
    expectRefusedUnread(exchange, status, detail);
    expect(await ctx.store.get()).toEqual({ a: 1 });
  });

  test('a body the store accepts gets 100 Continue, then its answer', async () => {
    const ctx = await serveContinuing(host, { initial: { list: [] } });
    const exchange = await sendExpectingContinue(ctx.port, `POST ${ctx.path('/list')} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json`, '{"n":1}');
    expect({ sawContinue: exchange.sawContinue, sentBody: exchange.sentBody, status: exchange.status, text: exchange.text }).toEqual({
      sawContinue: true,
      sentBody: true,
      status: 201,
      text: '{"n":1}',
    });
    expect(exchange.headers['location']).toBe(ctx.path('/list/0'));
    expect(await ctx.store.get()).toEqual({ list: [{ n: 1 }] });
  });
});

describe('continueWhenRead() on an Express app with its own routes', () => {
  test("another route's body parser gets its 100 Continue too", async () => {
    const store = jsonStore({ limit: 10 });
    const app = express();
    app.post('/echo', express.json(), (req, res) => {
      res.json(req.body);
    });
    app.use('/store', store);
    const { server, port } = await listen(app);
    server.on('checkContinue', continueWhenRead(app));
    const echo = await sendExpectingContinue(port, 'POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json', '{"hello":"there"}');
    expect({ sawContinue: echo.sawContinue, status: echo.status, text: echo.text }).toEqual({ sawContinue: true, status: 200, text: '{"hello":"there"}' });
    // The same body is over the store's limit of 10 bytes: refused unread.
    const refused = await sendExpectingContinue(port, 'PUT /store/a HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json', '{"hello":"there"}');
    expectRefusedUnread(refused, 413, 'The request body is larger than the limit of 10 bytes (the limit option)');
    // Requests without Expect are untouched.
    expect((await send(port, 'PUT', '/store/a', { json: 1 })).status).toBe(201);
  });

  test('a handler that is not a function is a TypeError', () => {
    expect(() => continueWhenRead(undefined as never)).toThrow(TypeError);
  });
});
