/**
 * `allowedHosts`: requests whose Host is not listed are 421 and change
 * nothing (DNS rebinding: a page on evil.example resolved to this server
 * still sends `Host: evil.example`). Without the option, any host is served.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { jsonStore } from '../../src/index.js';
import { rawRequest } from '../gateway/helpers.js';
import { closeServers, hosts, send, serve, type Served } from './hosts.js';
import { expectJson, expectProblem, expectUnchanged, snapshot } from './support.js';

afterEach(closeServers);

const allowedHosts = ['localhost', 'Example.COM', '::1', '127.0.0.1'];
const refusal = (host: string) =>
  `This server does not answer for the host ${JSON.stringify(host)}; if this server should answer it, add the name to allowedHosts (jsonstore: --allowed-host NAME)`;

/** A request to the store with this Host header (absolute document path). */
function withHost(ctx: Served, method: string, path: string, host: string, json?: unknown) {
  return send(ctx.port, method, ctx.url(path), { headers: { Host: host }, ...(json === undefined ? {} : { json }) });
}

describe.each(hosts)('$name', (host) => {
  test('a request for another host is 421 whatever its method, and changes nothing', async () => {
    const ctx = await serve(host, { initial: { a: 1, list: [] }, allowedHosts });
    const before = await snapshot(ctx);
    for (const name of ['evil.example', 'evil.example:80', 'localhost.evil.example', 'example.com.evil', '127.0.0.2', '[::2]:3000', 'localhost:abc']) {
      const replies = [
        await withHost(ctx, 'GET', '/a', name),
        await withHost(ctx, 'PUT', '/a', name, 2),
        await withHost(ctx, 'POST', '/list', name, 2),
        await withHost(ctx, 'PATCH', '/', name, { b: 1 }),
        await withHost(ctx, 'DELETE', '/a', name),
        await withHost(ctx, 'OPTIONS', '/', name),
      ];
      for (const reply of replies) expectProblem(reply, 421, refusal(name));
      const head = await withHost(ctx, 'HEAD', '/a', name);
      expect({ status: head.status, text: head.text }).toEqual({ status: 421, text: '' });
    }
    await expectUnchanged(ctx, before);
  });

  test('listed hosts are served on any port, in any case, with or without a trailing dot', async () => {
    const ctx = await serve(host, { initial: { a: 1 }, allowedHosts });
    for (const name of ['localhost', 'localhost:3000', 'LOCALHOST:80', 'example.com', 'example.com.:8080', 'EXAMPLE.com', '[::1]', '[::1]:3000', '127.0.0.1:1']) {
      expectJson(await withHost(ctx, 'GET', '/a', name), 200, 1);
    }
    expect((await withHost(ctx, 'PUT', '/a', 'example.com', 2)).status).toBe(200);
    expect(await ctx.doc()).toEqual({ a: 2 });
  });

  test('an absolute-form target names the host instead of the Host header (RFC 9112 section 3.2.2)', async () => {
    const ctx = await serve(host, { initial: { a: 1 }, allowedHosts });
    const before = await snapshot(ctx);
    expectProblem(await send(ctx.port, 'PUT', `http://evil.example${ctx.url('/a')}`, { headers: { Host: 'localhost' }, json: 2 }), 421, refusal('evil.example'));
    await expectUnchanged(ctx, before);
    expectJson(await send(ctx.port, 'GET', `http://localhost:1${ctx.url('/a')}`, { headers: { Host: 'evil.example' } }), 200, 1);
  });

  test('a request with an empty Host, or none (HTTP/1.0), is 421', async () => {
    const ctx = await serve(host, { initial: { a: 1 }, allowedHosts });
    const none = await rawRequest(ctx.port, `GET ${ctx.url('/a')} HTTP/1.0`);
    expect(none.status).toBe(421);
    expect(JSON.parse(none.body.toString('utf8'))).toMatchObject({ status: 421, detail: 'The request has no Host header; this server answers only requests that name one of its hosts' });
    const empty = await rawRequest(ctx.port, `GET ${ctx.url('/a')} HTTP/1.1\nHost:`);
    expect(empty.status).toBe(421);
    expect(JSON.parse(empty.body.toString('utf8'))).toMatchObject({ status: 421, detail: refusal('') });
  });

  test('without the option, any host is served', async () => {
    const ctx = await serve(host, { initial: { a: 1 } });
    expectJson(await withHost(ctx, 'GET', '/a', 'evil.example'), 200, 1);
  });
});

describe('allowedHosts is checked when the store is created', () => {
  test.each([
    [[], /option "allowedHosts" must be a non-empty array of host names/],
    ['localhost', /option "allowedHosts" must be a non-empty array of host names/],
    [['*'], /option "allowedHosts": "\*" is not a host name; leave the option out to answer any host/],
    [['localhost:3000'], /option "allowedHosts": "localhost:3000" is not a host name without a scheme, port or path/],
    [['http://example.com'], /"http:\/\/example.com" is not a host name/],
    [['example.com/path'], /"example.com\/path" is not a host name/],
    [['[::1'], /"\[::1" is not a host name/],
    [[''], /"" is not a host name/],
    [[42], /42 is not a host name/],
  ])('%j is a TypeError naming the option', (value, message) => {
    expect(() => jsonStore({ allowedHosts: value as never })).toThrow(TypeError);
    expect(() => jsonStore({ allowedHosts: value as never })).toThrow(message);
  });

  test('host names, IPv4 and IPv6 addresses (with or without brackets) are accepted', () => {
    expect(() => jsonStore({ allowedHosts: ['localhost', 'my-host.example.com', 'under_score.local', '10.0.0.1', '::1', '[fe80::1]', 'example.com.'] })).not.toThrow();
  });
});
