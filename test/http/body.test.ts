/**
 * Request bodies: JSON only (415 otherwise), 400 saying where invalid JSON
 * broke, 413 over `limit` enforced while reading, 400 past `maxDepth`.
 */
import http from 'node:http';
import { afterEach, describe, expect, test } from 'vitest';
import { closeServers, hosts, serve, type Reply, type Served } from './hosts.js';
import { expectJson, expectProblem, expectUnchanged, snapshot } from './support.js';

afterEach(closeServers);

/** `{"a":{"a":...{}}}` with `depth` levels of objects. */
function nested(depth: number): unknown {
  let value: unknown = {};
  for (let i = 1; i < depth; i++) value = { a: value };
  return value;
}

/**
 * Sends a chunked request without Content-Length, writing `chunk` over and
 * over until the response arrives (or `cap` bytes were written).
 */
function streamUntilAnswered(ctx: Served, method: string, path: string, chunk: Buffer, cap: number): Promise<{ reply: Reply; sent: number }> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let answered = false;
    const req = http.request(
      { host: '127.0.0.1', port: ctx.port, method, path: ctx.url(path), agent: false, headers: { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked' } },
      (res) => {
        answered = true;
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({ reply: { status: res.statusCode ?? 0, headers: res.headers, text, json: () => JSON.parse(text) as unknown }, sent });
        });
        res.on('error', reject);
      },
    );
    // Once the server answered and closed, further writes fail: expected.
    req.on('error', (error) => {
      if (!answered) reject(error);
    });
    const pump = () => {
      if (answered || req.destroyed) return;
      if (sent >= cap) {
        req.end();
        return;
      }
      sent += chunk.length;
      req.write(chunk, () => setImmediate(pump));
    };
    req.write('[');
    pump();
  });
}

describe.each(hosts)('$name', (host) => {
  describe('content types', () => {
    test.each([
      ['application/json', 'application/json'],
      ['application/json with charset=utf-8', 'application/json; charset=utf-8'],
      ['application/json with charset=UTF-8 and upper-case type', 'Application/JSON; charset=UTF-8'],
      ['an application/*+json type', 'application/vnd.example+json'],
      ['application/merge-patch+json on PUT', 'application/merge-patch+json'],
    ])('%s is parsed as JSON', async (_name, type) => {
      const ctx = await serve(host);
      const reply = await ctx.request('PUT', '/a', { body: '{"b":[1,"2"]}', headers: { 'Content-Type': type } });
      expectJson(reply, 201, { b: [1, '2'] });
      expect(await ctx.doc()).toEqual({ a: { b: [1, '2'] } });
    });

    test.each(['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'text/json', 'application/jsonx', 'nonsense'])(
      'Content-Type %s is 415 naming the accepted types, and changes nothing',
      async (type) => {
        const ctx = await serve(host, { initial: { a: 1, list: [] } });
        const before = await snapshot(ctx);
        const hint = type === 'application/x-www-form-urlencoded' ? ' (with curl, use --json or -H "Content-Type: application/json")' : '';
        const detail = `Content-Type ${JSON.stringify(type)} is not accepted; send application/json (or any application/*+json type)${hint}`;
        for (const method of ['PUT', 'POST']) {
          const reply = await ctx.request(method, method === 'PUT' ? '/a' : '/list', { body: '{"b":1}', headers: { 'Content-Type': type } });
          expectProblem(reply, 415, detail);
        }
        const patch = await ctx.request('PATCH', '/', { body: '{"b":1}', headers: { 'Content-Type': type } });
        expectProblem(patch, 415, `Content-Type ${JSON.stringify(type)} is not accepted; send application/merge-patch+json, application/json-patch+json or application/json${hint}`);
        expect(patch.headers['accept-patch']).toBe('application/merge-patch+json, application/json-patch+json');
        await expectUnchanged(ctx, before);
      },
    );

    // A page on any site can send these without a CORS preflight:
    // fetch(url, { method: 'POST', mode: 'no-cors', body: new Blob([json]) })
    // sends no Content-Type at all. Taken as JSON, they would be cross-site writes.
    test('a body without Content-Type is 415 saying how to label it, and changes nothing', async () => {
      const ctx = await serve(host, { initial: { a: 1, list: [] } });
      const before = await snapshot(ctx);
      const crossSite = { Origin: 'https://evil.example', 'Sec-Fetch-Site': 'cross-site', 'Sec-Fetch-Mode': 'no-cors' };
      const curl = ' (with curl, use --json or -H "Content-Type: application/json")';
      for (const method of ['PUT', 'POST']) {
        for (const body of ['{"b":1}', '']) {
          const reply = await ctx.request(method, method === 'PUT' ? '/a' : '/list', { body, headers: crossSite });
          expectProblem(reply, 415, `The request has no Content-Type; send the body as application/json (or any application/*+json type)${curl}`);
        }
      }
      const patch = await ctx.request('PATCH', '/', { body: '{"b":1}', headers: crossSite });
      expectProblem(patch, 415, `The request has no Content-Type; send the body as application/merge-patch+json, application/json-patch+json or application/json${curl}`);
      expect(patch.headers['accept-patch']).toBe('application/merge-patch+json, application/json-patch+json');
      await expectUnchanged(ctx, before);
      // A DELETE has no body, and needs no Content-Type.
      expect((await ctx.request('DELETE', '/a')).status).toBe(204);
      expect(await ctx.doc()).toEqual({ list: [] });
    });

    test('a compressed body is 415 naming the encoding, and changes nothing', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const before = await snapshot(ctx);
      const reply = await ctx.request('PUT', '/a', { body: '2', headers: { 'Content-Type': 'application/json', 'Content-Encoding': 'gzip' } });
      expectProblem(reply, 415, 'Content-Encoding "gzip" is not supported; send the body uncompressed');
      await expectUnchanged(ctx, before);
    });

    test('a charset other than UTF-8 is 415', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const before = await snapshot(ctx);
      expectProblem(
        await ctx.request('PUT', '/a', { body: '2', headers: { 'Content-Type': 'application/json; charset=latin1' } }),
        415,
        'The body must be UTF-8 JSON; charset=latin1 is not supported',
      );
      await expectUnchanged(ctx, before);
    });
  });

  describe('invalid JSON', () => {
    test.each([
      ['{"a": 1,}', 'The request body is not valid JSON: at line 1, column 9, expected a property name in double quotes but found "}"'],
      ['{\n  "a": 1\n  "b": 2\n}', 'The request body is not valid JSON: at line 3, column 3, expected "," or "}" in an object but found "\\""'],
      ["{'a': 1}", 'The request body is not valid JSON: at line 1, column 2, expected a property name in double quotes but found "\'"'],
      ['[1, 2', 'The request body is not valid JSON: at line 1, column 6, expected "," or "]" in an array but the text ended'],
      ['sniffle chief', 'The request body is not valid JSON: at line 1, column 1, expected a JSON value but found "s"'],
      ['{"a": 1} {"b": 2}', 'The request body is not valid JSON: at line 1, column 10, unexpected "{" after the JSON value'],
      ['"unterminated', 'The request body is not valid JSON: at line 1, column 14, a string is not closed (missing ")'],
      ['NaN', 'The request body is not valid JSON: at line 1, column 1, expected a JSON value but found "N"'],
      ['{"a": 01}', 'The request body is not valid JSON: at line 1, column 8, expected "," or "}" in an object but found "1"'],
    ])('%j is 400 saying where it broke, and changes nothing', async (body, detail) => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const before = await snapshot(ctx);
      for (const method of ['PUT', 'POST', 'PATCH']) {
        const reply = await ctx.request(method, '/', { body, headers: { 'Content-Type': 'application/json' } });
        expectProblem(reply, 400, detail);
      }
      await expectUnchanged(ctx, before);
    });

    test('an empty body is 400', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const before = await snapshot(ctx);
      for (const body of ['', '  \n']) {
        expectProblem(
          await ctx.request('PUT', '/a', { body, headers: { 'Content-Type': 'application/json' } }),
          400,
          'The request body is empty; send a JSON value (for example {} or "text")',
        );
      }
      expectProblem(await ctx.request('POST', '/', { headers: { 'Content-Type': 'application/json' } }), 400, 'The request body is empty; send a JSON value (for example {} or "text")');
      await expectUnchanged(ctx, before);
    });

    test('a body that is not UTF-8 is 400', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const before = await snapshot(ctx);
      const body = Buffer.from([0x22, 0xc3, 0x28, 0x22]);
      expectProblem(await ctx.request('PUT', '/a', { body, headers: { 'Content-Type': 'application/json' } }), 400, 'The request body is not valid UTF-8');
      await expectUnchanged(ctx, before);
    });

    test('a scalar body is a JSON value like any other', async () => {
      const ctx = await serve(host);
      for (const body of ['"sniffle chief"', '42', 'true', 'null', ' -1.5e2 ']) {
        const reply = await ctx.request('PUT', '/v', { body, headers: { 'Content-Type': 'application/json' } });
        expect([reply.status, reply.text]).toEqual([reply.status === 201 ? 201 : 200, JSON.stringify(JSON.parse(body))]);
      }
      expect(await ctx.doc()).toEqual({ v: -150 });
    });
  });

  describe('numbers', () => {
    const range = 'numbers must lie between -1.7976931348623157e308 and 1.7976931348623157e308';

    test.each([
      ['PUT', '/a', '{"b":[1, 1e400]}', 'The number at /b/1 in the request body is out of range: it reads as Infinity'],
      ['PUT', '/a', '1e400', 'The request body is a number out of range: it reads as Infinity'],
      ['PUT', '/', '{"a":{"b":[0,-1e400]}}', 'The number at /a/b/1 in the request body is out of range: it reads as -Infinity'],
      ['POST', '/list', '{"deep":{"x":[{"y":123456789e999}]}}', 'The number at /deep/x/0/y in the request body is out of range: it reads as Infinity'],
      ['PATCH', '/obj', '{"k":2e308}', 'The number at /k in the request body is out of range: it reads as Infinity'],
      ['PATCH', '/new', '{"k":{"a%2Fb/c":1e400}}', 'The number at /k/a%252Fb%2Fc in the request body is out of range: it reads as Infinity'],
      ['PATCH', '/obj', '[{"op":"add","path":"/n","value":{"v":[1e400]}}]', 'The number at /0/value/v/0 in the request body is out of range: it reads as Infinity'],
      ['PATCH', '/obj', '[{"op":"test","path":"/k","value":-1e999}]', 'The number at /0/value in the request body is out of range: it reads as -Infinity'],
    ])('%s %s with %s is 400 naming the member, and changes nothing', async (method, path, body, detail) => {
      const ctx = await serve(host, { initial: { list: [], obj: { k: 1 } } });
      const before = await snapshot(ctx);
      const type = body.startsWith('[{"op"') ? 'application/json-patch+json' : 'application/json';
      expectProblem(await ctx.request(method, path, { body, headers: { 'Content-Type': type } }), 400, `${detail}, which JSON cannot represent; ${range}`);
      await expectUnchanged(ctx, before);
    });

    test('the largest doubles are stored; integers past 2^53 are stored as JavaScript reads them (rounded)', async () => {
      const ctx = await serve(host);
      const body = '{"max":1.7976931348623157e308,"min":-1.7976931348623157e308,"tiny":5e-324,"under":1e-400,"big":9007199254740993}';
      expectJson(await ctx.request('PUT', '/n', { body, headers: { 'Content-Type': 'application/json' } }), 201, {
        max: 1.7976931348623157e308,
        min: -1.7976931348623157e308,
        tiny: 5e-324,
        under: 0,
        big: 9007199254740992,
      });
      expect((await ctx.get('/n/big')).text).toBe('9007199254740992');
    });
  });

  describe('limit', () => {
    test('the default limit is 1mb: 1048576 bytes pass, one more is 413', async () => {
      const ctx = await serve(host);
      const fits = JSON.stringify('x'.repeat(1024 * 1024 - 2));
      expect(Buffer.byteLength(fits)).toBe(1024 * 1024);
      expect((await ctx.request('PUT', '/big', { body: fits, headers: { 'Content-Type': 'application/json' }, })).status).toBe(201);
      const before = await snapshot(ctx);
      const reply = await ctx.request('PUT', '/big', { body: fits + ' ', headers: { 'Content-Type': 'application/json' } });
      expectProblem(reply, 413, 'The request body is larger than the limit of 1048576 bytes (the limit option)');
      await expectUnchanged(ctx, before);
    });

    test('a number limit is bytes', async () => {
      const ctx = await serve(host, { limit: 10 });
      const headers = { 'Content-Type': 'application/json' };
      expect((await ctx.request('PUT', '/a', { body: '"12345678"', headers })).status).toBe(201);
      expectProblem(await ctx.request('PUT', '/a', { body: '"123456789"', headers }), 413, 'The request body is larger than the limit of 10 bytes (the limit option)');
      expect(await ctx.doc()).toEqual({ a: '12345678' });
    });

    test("a string limit such as '1kb' is parsed", async () => {
      const ctx = await serve(host, { limit: '1kb' });
      expect((await ctx.put('/a', 'x'.repeat(1022))).status).toBe(201);
      expectProblem(await ctx.put('/a', 'x'.repeat(1023)), 413, 'The request body is larger than the limit of 1024 bytes (the limit option)');
    });

    test('the limit applies to PATCH and POST bodies too', async () => {
      const ctx = await serve(host, { limit: 20, initial: { list: [] } });
      const before = await snapshot(ctx);
      expectProblem(await ctx.post('/list', 'x'.repeat(30)), 413);
      expectProblem(await ctx.patch('/', { a: 'x'.repeat(30) }), 413);
      expectProblem(await ctx.patch('/', [{ op: 'add', path: '/a', value: 'x'.repeat(30) }], 'application/json-patch+json'), 413);
      await expectUnchanged(ctx, before);
    });

    test('a chunked body without Content-Length gets 413 long before it is finished', async () => {
      const ctx = await serve(host, { limit: '16kb' });
      const before = await snapshot(ctx);
      const cap = 256 * 1024 * 1024;
      const chunk = Buffer.from('1,'.repeat(8 * 1024));
      const { reply, sent } = await streamUntilAnswered(ctx, 'PUT', '/big', chunk, cap);
      expectProblem(reply, 413, 'The request body is larger than the limit of 16384 bytes (the limit option)');
      expect(reply.headers.connection).toBe('close');
      // Had the server buffered the whole body first, it would have answered only after `cap`.
      expect(sent).toBeLessThan(16 * 1024 * 1024);
      // The server is still fine, and nothing was written.
      await expectUnchanged(ctx, before);
    });

    test('a declared Content-Length over the limit is 413 before the body is sent', async () => {
      const ctx = await serve(host, { limit: 100 });
      const reply = await new Promise<{ status: number; text: string }>((resolve, reject) => {
        const req = http.request(
          { host: '127.0.0.1', port: ctx.port, method: 'PUT', path: ctx.url('/a'), agent: false, headers: { 'Content-Type': 'application/json', 'Content-Length': String(50 * 1024 * 1024) } },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (text += c));
            res.on('end', () => {
              req.destroy();
              resolve({ status: res.statusCode ?? 0, text });
            });
          },
        );
        req.on('error', reject);
        req.flushHeaders();
        req.write('"only the start of a very long string');
      });
      expect(reply.status).toBe(413);
      expect(JSON.parse(reply.text)).toMatchObject({ status: 413, detail: 'The request body is larger than the limit of 100 bytes (the limit option)' });
      expect(await ctx.doc()).toEqual({});
    });
  });

  describe('maxDepth', () => {
    test('a body nesting deeper than the default 100 is 400; 100 levels are fine', async () => {
      const ctx = await serve(host);
      expect((await ctx.put('/', nested(100))).status).toBe(200);
      const before = await snapshot(ctx);
      expectProblem(await ctx.put('/', nested(101)), 400, 'The request body nests more than 100 levels deep (the maxDepth option)');
      expectProblem(await ctx.put('/', [nested(100)]), 400, 'The request body nests more than 100 levels deep (the maxDepth option)');
      await expectUnchanged(ctx, before);
    });

    test('a hostile body 100000 levels deep is 400, and the server survives', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const before = await snapshot(ctx);
      const body = '['.repeat(100_000) + ']'.repeat(100_000);
      expectProblem(await ctx.request('PUT', '/x', { body, headers: { 'Content-Type': 'application/json' } }), 400, 'The request body nests more than 100 levels deep (the maxDepth option)');
      const broken = '['.repeat(100_000);
      expectProblem(await ctx.request('PUT', '/x', { body: broken, headers: { 'Content-Type': 'application/json' } }), 400);
      await expectUnchanged(ctx, before);
    });

    test('a shallow body at a deep path is 400 when path plus value pass maxDepth', async () => {
      const ctx = await serve(host);
      const deep = (n: number) => '/k'.repeat(n);
      expect((await ctx.put(deep(100), 1)).status).toBe(201);
      const before = await snapshot(ctx);
      // A path deeper than maxDepth is refused on its own, before anything is planned.
      expectProblem(await ctx.put(deep(99) + '/j/i', 1), 400, 'The path has 101 segments, more than the 100 levels a write may reach (the maxDepth option)');
      expectProblem(await ctx.put('/other' + deep(100), 1), 400, 'The path has 101 segments, more than the 100 levels a write may reach (the maxDepth option)');
      expectProblem(await ctx.put('/other' + deep(99), { j: 1 }), 400, `The value written at /other would nest the document more than 100 levels deep (the maxDepth option)`);
      expectProblem(await ctx.put(deep(99) + '/j', {}), 400, `The value written at ${deep(99)}/j would nest the document more than 100 levels deep (the maxDepth option)`);
      await expectUnchanged(ctx, before);
    });

    test('the maxDepth option is enforced for every kind of write', async () => {
      const ctx = await serve(host, { maxDepth: 3, initial: { a: { b: {} }, list: [] } });
      const before = await snapshot(ctx);
      const tooDeep = /would nest the document more than 3 levels deep \(the maxDepth option\)$/;
      expectProblem(await ctx.put('/', nested(4)), 400, 'The request body nests more than 3 levels deep (the maxDepth option)');
      expectProblem(await ctx.put('/x', nested(3)), 400, tooDeep);
      expectProblem(await ctx.put('/a/b/c', {}), 400, tooDeep);
      expectProblem(await ctx.post('/list', [[]]), 400, tooDeep);
      expectProblem(await ctx.patch('/a', { b: { c: { d: 1 } } }), 400, tooDeep);
      expectProblem(await ctx.patch('/new/deep', { x: {} }), 400, tooDeep);
      expectProblem(await ctx.patch('/', [{ op: 'add', path: '/a/b/c', value: [] }], 'application/json-patch+json'), 400, tooDeep);
      expectProblem(await ctx.patch('/', [{ op: 'copy', from: '/a', path: '/a/b/copy' }], 'application/json-patch+json'), 400, tooDeep);
      expectProblem(await ctx.patch('/', [{ op: 'move', from: '/list', path: '/a/b/moved' }], 'application/json-patch+json'), 400, tooDeep);
      await expectUnchanged(ctx, before);
      expect((await ctx.put('/a/b/c', 1)).status).toBe(201);
    });
  });
});
