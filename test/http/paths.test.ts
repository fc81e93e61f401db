/**
 * The URL path below the mount point walks into the document: the talk's
 * example, empty segments, percent-decoding, `~`, canonical array indices.
 */
import { execFile } from 'node:child_process';
import { resolve as resolveReference } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, test } from 'vitest';
import { closeServers, hosts, send, serve, type Reply, type Served } from './hosts.js';
import { expectJson, expectProblem, expectUnchanged, snapshot } from './support.js';

afterEach(closeServers);

const run = promisify(execFile);

/** Follows a write's Location as an RFC 3986 client does: resolve it against the request's URL, then GET. */
async function follow(ctx: Served, requestPath: string, reply: Reply): Promise<Reply> {
  const location = reply.headers.location;
  expect(typeof location).toBe('string');
  const origin = `http://127.0.0.1:${ctx.port}`;
  // Not new URL(): WHATWG parsing takes %2E for a dot as well (see urlPath()).
  const target = resolveReference(origin + ctx.url(requestPath), location as string);
  expect(target.startsWith(origin + '/')).toBe(true);
  return send(ctx.port, 'GET', target.slice(origin.length));
}

const sniffles = {
  sniffles: [{ name: 'fred' }, { name: 'irma' }, { name: 'wobble' }],
  snuffle: { name: 'gundar' },
};

describe.each(hosts)('$name', (host) => {
  test("the talk's example works exactly", async () => {
    const ctx = await serve(host);
    expectJson(await ctx.put('', sniffles), 200, sniffles);
    expectJson(await ctx.get('/sniffles/'), 200, sniffles.sniffles);
    expectJson(await ctx.get('/sniffles/0'), 200, { name: 'fred' });
    const put = await ctx.put('/sniffles/0/rank', 'sniffle chief');
    expectJson(put, 201, 'sniffle chief');
    expect(put.headers.location).toBe(`${host.base}/sniffles/0/rank`);
    expectJson(await ctx.get('/sniffles/0'), 200, { name: 'fred', rank: 'sniffle chief' });
    expect(await ctx.doc()).toEqual({
      sniffles: [{ name: 'fred', rank: 'sniffle chief' }, { name: 'irma' }, { name: 'wobble' }],
      snuffle: { name: 'gundar' },
    });
  });

  test('the mount point itself, with or without a trailing slash, is the root', async () => {
    const ctx = await serve(host, { initial: { a: 1 } });
    if (host.base !== '') expectJson(await ctx.request('GET', ''), 200, { a: 1 });
    expectJson(await ctx.get('/'), 200, { a: 1 });
    expectJson(await ctx.get('//'), 200, { a: 1 });
  });

  test('empty segments are ignored, for reads and writes', async () => {
    const ctx = await serve(host, { initial: sniffles });
    expectJson(await ctx.get('/sniffles/'), 200, sniffles.sniffles);
    expectJson(await ctx.get('//sniffles//1//'), 200, { name: 'irma' });
    const put = await ctx.put('//snuffle///rank/', 'boss');
    expectJson(put, 201, 'boss');
    expect(put.headers.location).toBe(`${host.base}/snuffle/rank`);
    expectJson(await ctx.get('/snuffle'), 200, { name: 'gundar', rank: 'boss' });
  });

  test('segments are percent-decoded as UTF-8; %2F reaches a key that contains "/"', async () => {
    const ctx = await serve(host, { initial: { 'a/b': { c: 1 }, 'ä ö': 2, 'x%y': 3, 'q?': 4, 'h#': 5 } });
    expectJson(await ctx.get('/a%2Fb'), 200, { c: 1 });
    expectJson(await ctx.get('/a%2fb/c'), 200, 1);
    expectJson(await ctx.get('/%C3%A4%20%C3%B6'), 200, 2);
    expectJson(await ctx.get('/x%25y'), 200, 3);
    expectJson(await ctx.get('/q%3F'), 200, 4);
    expectJson(await ctx.get('/h%23'), 200, 5);
    // "/a/b" is two segments, not the key "a/b".
    expectProblem(await ctx.get('/a/b'), 404, 'Nothing at /a/b: / has no member "a"');
  });

  test('a key with "/" is written with %2F and its Location escapes it again', async () => {
    const ctx = await serve(host);
    const put = await ctx.put('/dir%2Ffile/size', 12);
    expectJson(put, 201, 12);
    expect(put.headers.location).toBe(`${host.base}/dir%2Ffile/size`);
    expect(await ctx.doc()).toEqual({ 'dir/file': { size: 12 } });
    expectJson(await ctx.get('/dir%2Ffile'), 200, { size: 12 });
  });

  test.each([
    ['%C3%28', 'invalid UTF-8'],
    ['%E0%A4%A', 'a truncated escape'],
    ['%', 'a lone %'],
    ['%zz', 'a non-hex escape'],
    ['%FF', 'a byte that is never UTF-8'],
  ])('a segment with %s (%s) is 400, for reads and writes, and changes nothing', async (segment) => {
    const ctx = await serve(host, { initial: { a: 1 } });
    const before = await snapshot(ctx);
    const detail = `The path segment "${segment}" has a bad percent-escape or is not valid UTF-8; write "%" itself as %25`;
    expectProblem(await ctx.get(`/${segment}`), 400, detail);
    expectProblem(await ctx.get(`/a/${segment}/b`), 400, detail);
    expectProblem(await ctx.put(`/${segment}`, 1), 400, detail);
    expectProblem(await ctx.delete(`/${segment}`), 400, detail);
    expectProblem(await ctx.patch(`/${segment}`, { b: 1 }), 400, detail);
    await expectUnchanged(ctx, before);
  });

  // A Location of /a/.. would be resolved by clients (RFC 3986 section 5.2.4)
  // to /, another resource; %2E%2E is left alone and decodes back to "..".
  test('keys named "." and ".." get a Location (%2E, %2E%2E) that leads back to them', async () => {
    const ctx = await serve(host, { initial: { a: {}, c: {} } });
    const up = await ctx.put('/a/%2E%2E', 'up');
    expectJson(up, 201, 'up');
    expect(up.headers.location).toBe(`${host.base}/a/%2E%2E`);
    expectJson(await follow(ctx, '/a/%2E%2E', up), 200, 'up');

    // Sent literally by a client that does not remove dot segments: the same key.
    const literal = await ctx.put('/c/..', 'literal');
    expect(literal.headers.location).toBe(`${host.base}/c/%2E%2E`);
    expectJson(await follow(ctx, '/c/..', literal), 200, 'literal');

    const here = await ctx.patch('/a/%2E', { x: 1 });
    expectJson(here, 201, { x: 1 });
    expect(here.headers.location).toBe(`${host.base}/a/%2E`);
    expectJson(await follow(ctx, '/a/%2E', here), 200, { x: 1 });

    await ctx.put('/list/%2E%2E', []);
    const posted = await ctx.post('/list/%2E%2E', 'item');
    expect(posted.headers.location).toBe(`${host.base}/list/%2E%2E/0`);
    expectJson(await follow(ctx, '/list/%2E%2E', posted), 200, 'item');

    // curl, as a user would run it, on the Location it was given.
    const { stdout } = await run('curl', ['-sS', `http://127.0.0.1:${ctx.port}${up.headers.location as string}`]);
    expect(stdout).toBe('"up"');
    expect(await ctx.doc()).toEqual({ a: { '..': 'up', '.': { x: 1 } }, c: { '..': 'literal' }, list: { '..': ['item'] } });
  });

  test('"~" is an ordinary character in URL paths (JSON Pointer escapes do not apply)', async () => {
    const ctx = await serve(host, { initial: { '~1': 'tilde-one', 'a~b': 'tilde', '/': 'slash' } });
    expectJson(await ctx.get('/~1'), 200, 'tilde-one');
    expectJson(await ctx.get('/a~b'), 200, 'tilde');
    expectJson(await ctx.get('/%7E1'), 200, 'tilde-one');
    expectJson(await ctx.get('/%2F'), 200, 'slash');
    const put = await ctx.put('/~0', 'zero');
    expectJson(put, 201, 'zero');
    expect(put.headers.location).toBe(`${host.base}/~0`);
    expect(await ctx.doc()).toEqual({ '~1': 'tilde-one', 'a~b': 'tilde', '/': 'slash', '~0': 'zero' });
  });

  test('arrays are indexed by canonical non-negative integers only', async () => {
    const list = ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm'];
    const ctx = await serve(host, { initial: { list } });
    expectJson(await ctx.get('/list/0'), 200, 'a');
    expectJson(await ctx.get('/list/12'), 200, 'm');
    for (const bad of ['01', '-1', '+1', '1.0', '1e1', '%201', '0x1', 'one']) {
      expectProblem(await ctx.get(`/list/${bad}`), 404, new RegExp(`/list is an array, and ".*" is not an index$`));
    }
    expectProblem(await ctx.get('/list/13'), 404, 'Nothing at /list/13: the array at /list has 13 elements');
  });

  test('a non-canonical index is 409 for PUT and 404 for DELETE, and changes nothing', async () => {
    const ctx = await serve(host, { initial: { list: ['a', 'b'] } });
    const before = await snapshot(ctx);
    for (const bad of ['01', '-1', '+1', '1.0']) {
      expectProblem(await ctx.put(`/list/${bad}`, 'x'), 409, `Cannot PUT /list/${bad}: /list is an array, and "${bad}" is not an index (use 0, 1, ... or - to append)`);
      expectProblem(await ctx.delete(`/list/${bad}`), 404, `Cannot DELETE /list/${bad}: it does not exist`);
    }
    await expectUnchanged(ctx, before);
  });

  test('a numeric segment on an object is an ordinary key', async () => {
    const ctx = await serve(host, { initial: { map: { '01': 'zero-one', '1': 'one' } } });
    expectJson(await ctx.get('/map/01'), 200, 'zero-one');
    expectJson(await ctx.get('/map/1'), 200, 'one');
    const put = await ctx.put('/map/-1', 'minus');
    expectJson(put, 201, 'minus');
    expectJson(await ctx.get('/map/-1'), 200, 'minus');
  });

  test('the query string is not part of the path', async () => {
    const ctx = await serve(host, { initial: { a: { b: 1 } } });
    expectJson(await ctx.get('/a?pretty=false'), 200, { b: 1 });
    // An empty query string is no query: writes take it.
    const put = await ctx.put('/a/c?', 2);
    expectJson(put, 201, 2);
    expect(put.headers.location).toBe(`${host.base}/a/c`);
  });
});
