/**
 * GET and HEAD: any JSON value at the path, strong ETags, 404s that say
 * what is missing, ?shallow and ?pretty.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { closeServers, hosts, serve } from './hosts.js';
import { JSON_TYPE, expectJson, expectProblem, expectStrongEtag } from './support.js';

afterEach(closeServers);

const doc = {
  str: 'text',
  num: 4.5,
  yes: true,
  no: false,
  nothing: null,
  list: [1, { deep: ['x'] }, []],
  obj: { a: { b: 'c' }, empty: {} },
};

describe.each(hosts)('$name', (host) => {
  test('GET answers the value at the path, whatever its type, with a strong ETag', async () => {
    const ctx = await serve(host, { initial: doc });
    const cases: Array<[string, unknown]> = [
      ['/', doc],
      ['/str', 'text'],
      ['/num', 4.5],
      ['/yes', true],
      ['/no', false],
      ['/nothing', null],
      ['/list', doc.list],
      ['/list/1/deep/0', 'x'],
      ['/list/2', []],
      ['/obj/empty', {}],
    ];
    for (const [path, value] of cases) {
      const reply = await ctx.get(path);
      expectJson(reply, 200, value);
      expectStrongEtag(reply);
      expect(reply.headers['cache-control']).toBe('no-cache');
    }
  });

  test('a scalar or null document is served as is', async () => {
    for (const initial of [null, 0, 'just text', false, []]) {
      const ctx = await serve(host, { initial });
      expectJson(await ctx.get('/'), 200, initial);
    }
  });

  test('equal values have equal ETags, different values different ones', async () => {
    const ctx = await serve(host, { initial: { a: { x: 1 }, b: { x: 1 }, c: { x: 2 } } });
    const a = expectStrongEtag(await ctx.get('/a'));
    const b = expectStrongEtag(await ctx.get('/b'));
    const c = expectStrongEtag(await ctx.get('/c'));
    expect(a).toBe(b);
    expect(a).not.toBe(c);
    expect(expectStrongEtag(await ctx.get('/a'))).toBe(a);
  });

  test('a missing key is 404 naming the deepest part that exists', async () => {
    const ctx = await serve(host, { initial: doc });
    expectProblem(await ctx.get('/missing'), 404, 'Nothing at /missing: / has no member "missing"');
    expectProblem(await ctx.get('/obj/a/nope/deeper'), 404, 'Nothing at /obj/a/nope/deeper: /obj/a has no member "nope"');
  });

  test('an index out of range is 404', async () => {
    const ctx = await serve(host, { initial: doc });
    expectProblem(await ctx.get('/list/3'), 404, 'Nothing at /list/3: the array at /list has 3 elements');
    expectProblem(await ctx.get('/list/1/deep/1'), 404, 'Nothing at /list/1/deep/1: the array at /list/1/deep has 1 element');
    expectProblem(await ctx.get('/list/-'), 404, 'Nothing at /list/-: /list is an array, and "-" is not an index');
  });

  test('a step into a scalar is 404', async () => {
    const ctx = await serve(host, { initial: doc });
    expectProblem(await ctx.get('/str/0'), 404, 'Nothing at /str/0: /str is a string');
    expectProblem(await ctx.get('/str/length'), 404, 'Nothing at /str/length: /str is a string');
    expectProblem(await ctx.get('/nothing/x'), 404, 'Nothing at /nothing/x: /nothing is null');
    expectProblem(await ctx.get('/num/x/y'), 404, 'Nothing at /num/x/y: /num is a number');
    expectProblem(await ctx.get('/yes/x'), 404, 'Nothing at /yes/x: /yes is a boolean');
  });

  test('inherited names are not members: /toString, /constructor, /__proto__, /list/length are 404', async () => {
    const ctx = await serve(host, { initial: doc });
    for (const name of ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf']) {
      expectProblem(await ctx.get(`/${name}`), 404, `Nothing at /${name}: / has no member "${name}"`);
      expectProblem(await ctx.get(`/obj/${name}`), 404, `Nothing at /obj/${name}: /obj has no member "${name}"`);
    }
    expectProblem(await ctx.get('/list/length'), 404, 'Nothing at /list/length: /list is an array, and "length" is not an index');
  });

  test('HEAD sends the same status and headers as GET, and no body', async () => {
    const ctx = await serve(host, { initial: doc });
    for (const path of ['/', '/list', '/str', '/nothing', '/list?pretty', '/obj?shallow=true']) {
      const get = await ctx.get(path);
      const head = await ctx.request('HEAD', path);
      expect(head.status).toBe(200);
      expect(head.text).toBe('');
      for (const name of ['content-type', 'content-length', 'etag', 'cache-control']) {
        expect([name, head.headers[name]]).toEqual([name, get.headers[name]]);
      }
    }
  });

  test('HEAD of a missing path is 404 with the problem headers and no body', async () => {
    const ctx = await serve(host, { initial: doc });
    const get = await ctx.get('/missing');
    const head = await ctx.request('HEAD', '/missing');
    expect(head.status).toBe(404);
    expect(head.text).toBe('');
    expect(head.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(head.headers['content-length']).toBe(get.headers['content-length']);
  });

  test('?shallow=true replaces each child of a container with true', async () => {
    const ctx = await serve(host, { initial: doc });
    expectJson(await ctx.get('/?shallow=true'), 200, {
      str: true, num: true, yes: true, no: true, nothing: true, list: true, obj: true,
    });
    expectJson(await ctx.get('/list?shallow=true'), 200, [true, true, true]);
    expectJson(await ctx.get('/obj?shallow'), 200, { a: true, empty: true });
    expectJson(await ctx.get('/obj/empty?shallow=true'), 200, {});
    expectJson(await ctx.get('/str?shallow=true'), 200, 'text');
    expectJson(await ctx.get('/obj?shallow=false'), 200, doc.obj);
  });

  test('?shallow keeps keys that are data, such as __proto__', async () => {
    const ctx = await serve(host);
    await ctx.request('PUT', '/', { body: '{"__proto__":{"x":1},"constructor":2}', headers: { 'Content-Type': 'application/json' } });
    const reply = await ctx.get('/?shallow=true');
    expect(reply.status).toBe(200);
    expect(reply.text).toBe('{"__proto__":true,"constructor":true}');
  });

  test('?pretty indents the output; the value is the same', async () => {
    const ctx = await serve(host, { initial: doc });
    for (const query of ['?pretty', '?pretty=true', '?pretty=1']) {
      const reply = await ctx.get(`/obj${query}`);
      expect(reply.status).toBe(200);
      expect(reply.headers['content-type']).toBe(JSON_TYPE);
      expect(reply.text).toBe(JSON.stringify(doc.obj, null, 2) + '\n');
    }
    const both = await ctx.get('/obj?shallow=true&pretty');
    expect(both.text).toBe('{\n  "a": true,\n  "empty": true\n}\n');
    expectJson(await ctx.get('/obj?pretty=false'), 200, doc.obj);
  });

  test('a flag with a value it does not understand is 400', async () => {
    const ctx = await serve(host, { initial: doc });
    expectProblem(await ctx.get('/?pretty=yes'), 400, '?pretty=yes is not understood; use ?pretty=true or ?pretty=false');
    expectProblem(await ctx.get('/?shallow=2'), 400, '?shallow=2 is not understood; use ?shallow=true or ?shallow=false');
  });

  test("jQuery's cache buster _ is ignored; any other parameter is a query (see query.test.ts)", async () => {
    const ctx = await serve(host, { initial: doc });
    expectJson(await ctx.get('/obj/a?_=123'), 200, { b: 'c' });
    expectJson(await ctx.get('/str?_=123'), 200, 'text');
    // A json-server field filter: no member has the field, so nothing matches.
    expectJson(await ctx.get('/obj/a?cachebust=123'), 200, {});
  });

  test('the representations ?pretty, ?shallow and compact have different ETags', async () => {
    const ctx = await serve(host, { initial: doc });
    const tags = await Promise.all(['/obj', '/obj?pretty', '/obj?shallow=true', '/obj?shallow=true&pretty'].map(async (p) => expectStrongEtag(await ctx.get(p))));
    expect(new Set(tags).size).toBe(4);
  });
});
