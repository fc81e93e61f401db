/**
 * PUT: stores the body at the path; 201 + Location for a new member, 200 for
 * a replaced one; missing parent objects are created; arrays append at
 * length or "-"; everything else in an array or a scalar is 409.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { closeServers, hosts, serve } from './hosts.js';
import { expectJson, expectProblem, expectStrongEtag, expectUnchanged, snapshot } from './support.js';

afterEach(closeServers);

describe.each(hosts)('$name', (host) => {
  test('PUT on the root replaces the whole document with any JSON value (200)', async () => {
    const ctx = await serve(host, { initial: { old: true } });
    for (const value of [{ a: [1, 2] }, [1, 'two'], 'text', 42, true, null, {}]) {
      const reply = await ctx.put('/', value);
      expectJson(reply, 200, value);
      expect(reply.headers.location).toBeUndefined();
      expect(await ctx.doc()).toEqual(value);
      expectJson(await ctx.get('/'), 200, value);
    }
  });

  test('PUT on the mount point without a trailing slash is the root too', async () => {
    const ctx = await serve(host);
    expectJson(await ctx.request('PUT', '', { json: [1] }), 200, [1]);
    expect(await ctx.doc()).toEqual([1]);
  });

  test('a new member is 201 with Location (mount prefix included) and the stored value', async () => {
    const ctx = await serve(host, { initial: { a: {} } });
    const reply = await ctx.put('/a/b', { c: [1] });
    expectJson(reply, 201, { c: [1] });
    expect(reply.headers.location).toBe(`${host.base}/a/b`);
    expect(reply.headers['cache-control']).toBe('no-store');
    const etag = expectStrongEtag(reply);
    expect((await ctx.get('/a/b')).headers.etag).toBe(etag);
  });

  test('replacing a member is 200 without Location; it keeps its place in the object', async () => {
    const ctx = await serve(host, { initial: { a: 1, b: 2, c: 3 } });
    const reply = await ctx.put('/b', 'two');
    expectJson(reply, 200, 'two');
    expect(reply.headers.location).toBeUndefined();
    expect((await ctx.get('/')).text).toBe('{"a":1,"b":"two","c":3}');
  });

  test('missing parent objects are created, never arrays', async () => {
    const ctx = await serve(host, { initial: { keep: 1 } });
    const reply = await ctx.put('/x/0/y/1', 'deep');
    expectJson(reply, 201, 'deep');
    expect(reply.headers.location).toBe(`${host.base}/x/0/y/1`);
    expect(await ctx.doc()).toEqual({ keep: 1, x: { '0': { y: { '1': 'deep' } } } });
  });

  test('a value of null is stored (it is not a delete)', async () => {
    const ctx = await serve(host, { initial: { a: 1 } });
    expectJson(await ctx.put('/a', null), 200, null);
    expectJson(await ctx.put('/b', null), 201, null);
    expect(await ctx.doc()).toEqual({ a: null, b: null });
    expectJson(await ctx.get('/b'), 200, null);
  });

  test('an existing array element is replaced (200)', async () => {
    const ctx = await serve(host, { initial: { list: ['a', 'b', 'c'] } });
    expectJson(await ctx.put('/list/1', 'B'), 200, 'B');
    expect(await ctx.doc()).toEqual({ list: ['a', 'B', 'c'] });
  });

  test('index == length appends (201) and Location carries the index', async () => {
    const ctx = await serve(host, { initial: { list: ['a', 'b', 'c'] } });
    const reply = await ctx.put('/list/3', 'd');
    expectJson(reply, 201, 'd');
    expect(reply.headers.location).toBe(`${host.base}/list/3`);
    expect(await ctx.doc()).toEqual({ list: ['a', 'b', 'c', 'd'] });
  });

  test('"-" appends (201) and Location carries the real index, not "-"', async () => {
    const ctx = await serve(host, {
      initial: { sniffles: [{ name: 'fred' }, { name: 'irma' }, { name: 'wobble' }] },
    });
    const reply = await ctx.put('/sniffles/-', { name: 'new' });
    expectJson(reply, 201, { name: 'new' });
    expect(reply.headers.location).toBe(`${host.base}/sniffles/3`);
    expectJson(await ctx.get('/sniffles/3'), 200, { name: 'new' });
  });

  test('"-" followed by more segments appends a new object and creates the rest', async () => {
    const ctx = await serve(host, { initial: { list: [] } });
    const reply = await ctx.put('/list/-/name', 'x');
    expectJson(reply, 201, 'x');
    expect(reply.headers.location).toBe(`${host.base}/list/0/name`);
    expect(await ctx.doc()).toEqual({ list: [{ name: 'x' }] });
  });

  test('an index past the end is 409 and changes nothing', async () => {
    const ctx = await serve(host, { initial: { list: ['a', 'b'] } });
    const before = await snapshot(ctx);
    expectProblem(
      await ctx.put('/list/3', 'x'),
      409,
      'Cannot PUT /list/3: index 3 is past the end of the array at /list (length 2); use 2 or - to append',
    );
    expectProblem(await ctx.put('/list/3/y', 'x'), 409, /^Cannot PUT \/list\/3\/y: index 3 is past the end/);
    await expectUnchanged(ctx, before);
  });

  test('a non-index segment on an array is 409 and changes nothing', async () => {
    const ctx = await serve(host, { initial: { list: ['a'] } });
    const before = await snapshot(ctx);
    expectProblem(
      await ctx.put('/list/name', 'x'),
      409,
      'Cannot PUT /list/name: /list is an array, and "name" is not an index (use 0, 1, ... or - to append)',
    );
    await expectUnchanged(ctx, before);
  });

  test('a step into a scalar is 409 in plain words, and changes nothing', async () => {
    const ctx = await serve(host, {
      initial: { sniffles: [{ name: 'fred' }], n: null, k: 3, t: true },
    });
    const before = await snapshot(ctx);
    expectProblem(await ctx.put('/sniffles/0/name/first', 'Fred'), 409, 'Cannot PUT /sniffles/0/name/first: /sniffles/0/name is a string');
    expectProblem(await ctx.put('/sniffles/0/name/first/x', 'Fred'), 409, 'Cannot PUT /sniffles/0/name/first/x: /sniffles/0/name is a string');
    expectProblem(await ctx.put('/n/a', 1), 409, 'Cannot PUT /n/a: /n is null');
    expectProblem(await ctx.put('/k/0', 1), 409, 'Cannot PUT /k/0: /k is a number');
    expectProblem(await ctx.put('/t/x', 1), 409, 'Cannot PUT /t/x: /t is a boolean');
    await expectUnchanged(ctx, before);
  });

  test('a scalar root cannot be walked into (409) but can be replaced', async () => {
    const ctx = await serve(host, { initial: 'text' });
    expectProblem(await ctx.put('/a', 1), 409, 'Cannot PUT /a: / is a string');
    expectJson(await ctx.put('/', { a: 1 }), 200, { a: 1 });
  });

  test('an array root is indexed like any array', async () => {
    const ctx = await serve(host, { initial: ['x'] });
    const reply = await ctx.put('/-', 'y');
    expectJson(reply, 201, 'y');
    expect(reply.headers.location).toBe(`${host.base}/1`);
    expectJson(await ctx.put('/0', 'X'), 200, 'X');
    expect(await ctx.doc()).toEqual(['X', 'y']);
  });

  test('Location percent-encodes keys so that a client can follow it', async () => {
    const ctx = await serve(host);
    const reply = await ctx.put('/a%20b/%C3%A9%3F', 1);
    expectJson(reply, 201, 1);
    expect(reply.headers.location).toBe(`${host.base}/a%20b/%C3%A9%3F`);
    expect(await ctx.doc()).toEqual({ 'a b': { 'é?': 1 } });
    const follow = await ctx.request('GET', (reply.headers.location as string).slice(host.base.length));
    expectJson(follow, 200, 1);
  });

  test('the stored value is exactly the body, key order included', async () => {
    const ctx = await serve(host);
    const body = '{"z":1,"a":{"y":[1,{"b":2,"a":1}],"x":"é\\u0000"},"m":-0.5e3}';
    const reply = await ctx.request('PUT', '/v', { body, headers: { 'Content-Type': 'application/json' } });
    expect(reply.status).toBe(201);
    expect(reply.text).toBe(JSON.stringify(JSON.parse(body)));
    expect((await ctx.get('/v')).text).toBe(JSON.stringify(JSON.parse(body)));
  });
});
