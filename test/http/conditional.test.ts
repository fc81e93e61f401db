/**
 * Conditional requests (RFC 9110 section 13): ETags per path, 304 on reads,
 * 412 on writes whose preconditions fail, 428 when they are required.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { closeServers, hosts, serve, type Served } from './hosts.js';
import { expectJson, expectProblem, expectStrongEtag, expectUnchanged, snapshot } from './support.js';

afterEach(closeServers);

const tagOf = async (ctx: Served, path: string) => expectStrongEtag(await ctx.get(path));

describe.each(hosts)('$name', (host) => {
  describe('ETags', () => {
    test('the ETag of a path changes exactly when the value there changes', async () => {
      const ctx = await serve(host, { initial: { a: { x: 1 }, b: { y: [1] } } });
      const a0 = await tagOf(ctx, '/a');
      const b0 = await tagOf(ctx, '/b');
      const root0 = await tagOf(ctx, '/');

      // A write elsewhere leaves /a alone, but changes /b and every ancestor.
      await ctx.put('/b/y/-', 2);
      expect(await tagOf(ctx, '/a')).toBe(a0);
      const b1 = await tagOf(ctx, '/b');
      expect(b1).not.toBe(b0);
      const root1 = await tagOf(ctx, '/');
      expect(root1).not.toBe(root0);

      // Writing the same value again changes nothing the client can see.
      await ctx.put('/a/x', 1);
      expect(await tagOf(ctx, '/a')).toBe(a0);
      expect(await tagOf(ctx, '/')).toBe(root1);

      // A write below /a changes it; undoing the change brings the tag back.
      await ctx.put('/a/x', 2);
      const a1 = await tagOf(ctx, '/a');
      expect(a1).not.toBe(a0);
      await ctx.put('/a/x', 1);
      expect(await tagOf(ctx, '/a')).toBe(a0);
      expect(await tagOf(ctx, '/b')).toBe(b1);
    });

    test('key order is part of the value: reordering members changes the ETag', async () => {
      const ctx = await serve(host, { initial: { o: { a: 1, b: 2 } } });
      const before = await tagOf(ctx, '/o');
      await ctx.put('/o', { b: 2, a: 1 });
      expect(await tagOf(ctx, '/o')).not.toBe(before);
    });

    test('a write answers with the ETag a GET of the same path then shows', async () => {
      const ctx = await serve(host, { initial: { list: [], o: {} } });
      const put = await ctx.put('/o/k', { v: 1 });
      expect(put.headers.etag).toBe(await tagOf(ctx, '/o/k'));
      const post = await ctx.post('/list', 'x');
      expect(post.headers.etag).toBe(await tagOf(ctx, '/list/0'));
      const patch = await ctx.patch('/o', { n: 1 });
      expect(patch.headers.etag).toBe(await tagOf(ctx, '/o'));
      expect((await ctx.delete('/o/n')).headers.etag).toBeUndefined();
    });

    test('?pretty and compact representations have different ETags', async () => {
      const ctx = await serve(host, { initial: { a: [1, 2] } });
      const compact = await tagOf(ctx, '/a');
      const pretty = await tagOf(ctx, '/a?pretty');
      expect(pretty).not.toBe(compact);
      // Each revalidates only its own representation.
      expect((await ctx.get('/a?pretty', { 'If-None-Match': pretty })).status).toBe(304);
      expectJson(await ctx.get('/a', { 'If-None-Match': pretty }), 200, [1, 2]);
      expect((await ctx.get('/a?pretty', { 'If-None-Match': compact })).status).toBe(200);
    });
  });

  describe('If-None-Match on GET and HEAD', () => {
    test('a matching tag gives 304 with the ETag and no body', async () => {
      const ctx = await serve(host, { initial: { a: { b: 1 } } });
      const etag = await tagOf(ctx, '/a');
      for (const method of ['GET', 'HEAD']) {
        const reply = await ctx.request(method, '/a', { headers: { 'If-None-Match': etag } });
        expect(reply.status).toBe(304);
        expect(reply.text).toBe('');
        expect(reply.headers.etag).toBe(etag);
      }
    });

    test('weak comparison, lists and * are understood', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const etag = await tagOf(ctx, '/a');
      expect((await ctx.get('/a', { 'If-None-Match': `W/${etag}` })).status).toBe(304);
      expect((await ctx.get('/a', { 'If-None-Match': `"other", ${etag}` })).status).toBe(304);
      expect((await ctx.get('/a', { 'If-None-Match': '*' })).status).toBe(304);
      expectJson(await ctx.get('/a', { 'If-None-Match': '"other"' }), 200, 1);
    });

    test('after a change the old tag no longer matches: 200 with the new value', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const etag = await tagOf(ctx, '/a');
      await ctx.put('/a', 2);
      const reply = await ctx.get('/a', { 'If-None-Match': etag });
      expectJson(reply, 200, 2);
      expect(reply.headers.etag).not.toBe(etag);
    });

    test('If-None-Match on a missing path is still 404', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      expectProblem(await ctx.get('/nope', { 'If-None-Match': '"x"' }), 404);
      expectProblem(await ctx.get('/nope', { 'If-None-Match': '*' }), 404);
    });

    test('If-Match on GET fails with 412 when the tag does not match', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const etag = await tagOf(ctx, '/a');
      expectJson(await ctx.get('/a', { 'If-Match': etag }), 200, 1);
      expectProblem(await ctx.get('/a', { 'If-Match': '"stale"' }), 412);
    });

    test('a malformed entity-tag list is 400', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      expectProblem(await ctx.get('/a', { 'If-None-Match': 'abc' }), 400, 'The header value "abc" is not a list of entity tags such as "abc" or *');
    });
  });

  describe('If-Match and If-None-Match on writes', () => {
    test('If-Match with the current tag lets every kind of write through', async () => {
      const ctx = await serve(host, { initial: { a: { n: 1 }, list: [] } });
      expectJson(await ctx.put('/a/n', 2, { 'If-Match': await tagOf(ctx, '/a/n') }), 200, 2);
      expectJson(await ctx.patch('/a', { m: 1 }, undefined, { 'If-Match': await tagOf(ctx, '/a') }), 200, { n: 2, m: 1 });
      expectJson(await ctx.post('/list', 0, { 'If-Match': await tagOf(ctx, '/list') }), 201, 0);
      expect((await ctx.delete('/a/m', { 'If-Match': await tagOf(ctx, '/a/m') })).status).toBe(204);
      expect(await ctx.doc()).toEqual({ a: { n: 2 }, list: [0] });
    });

    test('If-Match with a stale tag is 412 for every kind of write, and changes nothing', async () => {
      const ctx = await serve(host, { initial: { a: { n: 1 }, list: [] } });
      const stale = await tagOf(ctx, '/a');
      await ctx.put('/a/n', 2);
      const before = await snapshot(ctx);
      const headers = { 'If-Match': stale };
      const detail = 'If-Match failed: /a has changed since you read it; GET it again for the current ETag';
      expectProblem(await ctx.put('/a', {}, headers), 412, detail);
      expectProblem(await ctx.patch('/a', { x: 1 }, undefined, headers), 412, detail);
      expectProblem(await ctx.patch('/a', [{ op: 'add', path: '/x', value: 1 }], 'application/json-patch+json', headers), 412, detail);
      expectProblem(await ctx.post('/a', 1, headers), 412, detail);
      expectProblem(await ctx.delete('/a', headers), 412, detail);
      await expectUnchanged(ctx, before);
    });

    test('a tag from ?shallow never stands for the whole value', async () => {
      // The shallow form of {"x":1} is {"x":true}: the same bytes as another whole value.
      const ctx = await serve(host, { initial: { a: { x: 1 } } });
      const shallow = expectStrongEtag(await ctx.get('/a?shallow=true'));
      await ctx.put('/a', { x: true });
      // Nor does If-None-Match with it say the whole value is the one the client has.
      expectJson(await ctx.put('/a', { x: true }, { 'If-None-Match': shallow }), 200, { x: true });
      expect((await ctx.get('/a', { 'If-None-Match': shallow })).status).toBe(200);
      const before = await snapshot(ctx);
      const detail = 'If-Match failed: /a has changed since you read it; GET it again for the current ETag';
      expectProblem(await ctx.put('/a', { x: 2 }, { 'If-Match': shallow }), 412, detail);
      expectProblem(await ctx.patch('/a', { y: 1 }, undefined, { 'If-Match': shallow }), 412, detail);
      expectProblem(await ctx.get('/a', { 'If-Match': shallow }), 412);
      await expectUnchanged(ctx, before);
    });

    test('If-Match needs a strong match: a weak tag never matches', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const etag = await tagOf(ctx, '/a');
      const before = await snapshot(ctx);
      expectProblem(await ctx.put('/a', 2, { 'If-Match': `W/${etag}` }), 412);
      await expectUnchanged(ctx, before);
    });

    test('If-Match accepts any representation tag of the current value, and lists', async () => {
      const ctx = await serve(host, { initial: { a: { b: 1 } } });
      expectJson(await ctx.put('/a/b', 2, { 'If-Match': await tagOf(ctx, '/a/b?pretty') }), 200, 2);
      expectJson(await ctx.put('/a/b', 3, { 'If-Match': `"nope", ${await tagOf(ctx, '/a/b')}` }), 200, 3);
    });

    test('If-Match: * means "exists": 412 for a missing member, allowed for an existing one', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const before = await snapshot(ctx);
      expectProblem(await ctx.put('/b', 1, { 'If-Match': '*' }), 412, 'If-Match failed: /b does not exist');
      expectProblem(await ctx.patch('/b', { x: 1 }, undefined, { 'If-Match': '*' }), 412, 'If-Match failed: /b does not exist');
      // Without If-Match this DELETE would be 404, so it is 404 (RFC 9110 section 13.2.1).
      expectProblem(await ctx.delete('/b', { 'If-Match': '*' }), 404, 'Cannot DELETE /b: it does not exist');
      await expectUnchanged(ctx, before);
      expectJson(await ctx.put('/a', 2, { 'If-Match': '*' }), 200, 2);
    });

    test('If-None-Match: * creates only: 201 when missing, 412 when it exists', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const created = await ctx.put('/b', 'new', { 'If-None-Match': '*' });
      expectJson(created, 201, 'new');
      const before = await snapshot(ctx);
      expectProblem(await ctx.put('/b', 'again', { 'If-None-Match': '*' }), 412, 'If-None-Match: * failed: /b already exists');
      expectProblem(await ctx.patch('/a', { x: 1 }, undefined, { 'If-None-Match': '*' }), 412, 'If-None-Match: * failed: /a already exists');
      await expectUnchanged(ctx, before);
    });

    test('If-None-Match with the current tag refuses the write (412)', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const before = await snapshot(ctx);
      expectProblem(await ctx.put('/a', 2, { 'If-None-Match': await tagOf(ctx, '/a') }), 412, 'If-None-Match failed: /a still has that ETag');
      await expectUnchanged(ctx, before);
    });

    test('a malformed If-Match is 400 and changes nothing', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const before = await snapshot(ctx);
      expectProblem(await ctx.put('/a', 2, { 'If-Match': 'no-quotes' }), 400);
      await expectUnchanged(ctx, before);
    });

    test('optimistic concurrency: the ETag of each write response is the If-Match of the next', async () => {
      const ctx = await serve(host, { initial: { counter: 0 } });
      let etag = await tagOf(ctx, '/counter');
      for (let i = 1; i <= 5; i++) {
        const reply = await ctx.put('/counter', i, { 'If-Match': etag });
        expectJson(reply, 200, i);
        etag = expectStrongEtag(reply);
      }
      // Someone else writes; our tag is now stale.
      await ctx.put('/counter', 100);
      expectProblem(await ctx.put('/counter', 6, { 'If-Match': etag }), 412);
      // Re-read, retry, succeed.
      const fresh = await ctx.get('/counter');
      expectJson(await ctx.put('/counter', 101, { 'If-Match': fresh.headers.etag as string }), 200, 101);
      // PATCH and POST responses work the same way.
      const patched = await ctx.patch('/', { more: [] }, undefined, { 'If-Match': await tagOf(ctx, '/') });
      expect(patched.status).toBe(200);
      expect((await ctx.put('/', { reset: true }, { 'If-Match': patched.headers.etag as string })).status).toBe(200);
    });
  });

  // RFC 9110 section 13.2.1: preconditions are evaluated only when the answer
  // without them would be 2xx or 412. A GET, DELETE, POST or JSON Patch of a
  // missing path is 404 whatever they say; a PUT under a scalar is 409.
  describe('preconditions apply only where the answer would otherwise be 2xx', () => {
    type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'merge PATCH' | 'JSON PATCH' | 'DELETE';
    type Condition = 'If-Match: *' | 'If-Match: its tag' | 'If-Match: another tag' | 'If-None-Match: *' | 'If-None-Match: its tag' | 'If-None-Match: another tag';
    const conditions: Condition[] = ['If-Match: *', 'If-Match: its tag', 'If-Match: another tag', 'If-None-Match: *', 'If-None-Match: its tag', 'If-None-Match: another tag'];
    const initial = { a: { n: 1 }, old: { n: 0 } };
    // The tag of {"n":1}: the value at /a, and what a client that read a
    // since-deleted /b (with that value) still holds.
    const successOf: Record<Method, number> = { GET: 200, HEAD: 200, PUT: 200, POST: 201, 'merge PATCH': 200, 'JSON PATCH': 200, DELETE: 204 };
    const states = {
      existing: { path: '/a', without: successOf },
      missing: { path: '/b', without: { GET: 404, HEAD: 404, PUT: 201, POST: 404, 'merge PATCH': 201, 'JSON PATCH': 404, DELETE: 404 } as Record<Method, number> },
      'under a scalar': { path: '/a/n/x', without: { GET: 404, HEAD: 404, PUT: 409, POST: 404, 'merge PATCH': 409, 'JSON PATCH': 404, DELETE: 404 } as Record<Method, number> },
    };

    function expected(method: Method, state: keyof typeof states, condition: Condition | undefined): number {
      const without = states[state].without[method];
      if (condition === undefined || (without >= 300 && without !== 412)) return without;
      const exists = state === 'existing';
      const read = method === 'GET' || method === 'HEAD';
      switch (condition) {
        case 'If-Match: *':
        case 'If-Match: its tag':
          return exists ? without : 412;
        case 'If-Match: another tag':
          return 412;
        case 'If-None-Match: *':
        case 'If-None-Match: its tag':
          return exists ? (read ? 304 : 412) : without;
        case 'If-None-Match: another tag':
          return without;
      }
    }

    function send(ctx: Served, method: Method, path: string, headers: Record<string, string>) {
      switch (method) {
        case 'GET':
        case 'HEAD':
        case 'DELETE':
          return ctx.request(method, path, { headers });
        case 'PUT':
          return ctx.put(path, { n: 2 }, headers);
        case 'POST':
          return ctx.post(path, { n: 2 }, headers);
        case 'merge PATCH':
          return ctx.patch(path, { m: 2 }, 'application/merge-patch+json', headers);
        case 'JSON PATCH':
          return ctx.patch(path, [{ op: 'add', path: '/m', value: 2 }], 'application/json-patch+json', headers);
      }
    }

    const methods: Method[] = ['GET', 'HEAD', 'PUT', 'POST', 'merge PATCH', 'JSON PATCH', 'DELETE'];
    const cases = methods.flatMap((method) => (Object.keys(states) as Array<keyof typeof states>).map((state) => [method, state] as const));

    test.each(cases)('%s, %s path, under each precondition', async (method, state) => {
      const ctx = await serve(host, { initial });
      const itsTag = await tagOf(ctx, '/a');
      const anotherTag = await tagOf(ctx, '/old');
      const headerOf: Record<Condition, [string, string]> = {
        'If-Match: *': ['If-Match', '*'],
        'If-Match: its tag': ['If-Match', itsTag],
        'If-Match: another tag': ['If-Match', anotherTag],
        'If-None-Match: *': ['If-None-Match', '*'],
        'If-None-Match: its tag': ['If-None-Match', itsTag],
        'If-None-Match: another tag': ['If-None-Match', anotherTag],
      };
      const seen: Record<string, number> = {};
      const wanted: Record<string, number> = {};
      for (const condition of [undefined, ...conditions]) {
        await ctx.store.put('/', initial);
        const before = await snapshot(ctx);
        const headers: Record<string, string> = {};
        if (condition !== undefined) headers[headerOf[condition][0]] = headerOf[condition][1];
        const reply = await send(ctx, method, states[state].path, headers);
        const name = condition ?? 'no precondition';
        seen[name] = reply.status;
        wanted[name] = expected(method, state, condition);
        if (reply.status >= 400 && method !== 'HEAD') expectProblem(reply, reply.status);
        if (reply.status >= 300 && method !== 'GET' && method !== 'HEAD') await expectUnchanged(ctx, before);
      }
      expect(seen).toEqual(wanted);
    });
  });

  describe('requirePreconditions: true', () => {
    test('writes without a precondition are 428 and change nothing; reads are unaffected', async () => {
      const ctx = await serve(host, { initial: { a: 1, list: [] }, requirePreconditions: true });
      const before = await snapshot(ctx);
      const detail = /^(PUT|POST|PATCH|DELETE) needs If-Match with the ETag you last read \(or If-None-Match: \* to create\); this store refuses unconditional writes$/;
      expectProblem(await ctx.put('/a', 2), 428, detail);
      expectProblem(await ctx.post('/list', 2), 428, detail);
      expectProblem(await ctx.patch('/', { a: 2 }), 428, detail);
      expectProblem(await ctx.patch('/', [{ op: 'remove', path: '/a' }], 'application/json-patch+json'), 428, detail);
      expectProblem(await ctx.delete('/a'), 428, detail);
      await expectUnchanged(ctx, before);
      expectJson(await ctx.get('/a'), 200, 1);
    });

    test('writes with If-Match or If-None-Match go through', async () => {
      const ctx = await serve(host, { initial: { a: 1 }, requirePreconditions: true });
      expectJson(await ctx.put('/a', 2, { 'If-Match': await tagOf(ctx, '/a') }), 200, 2);
      expectJson(await ctx.put('/b', 1, { 'If-None-Match': '*' }), 201, 1);
      expect((await ctx.delete('/b', { 'If-Match': '*' })).status).toBe(204);
      expectProblem(await ctx.put('/a', 3, { 'If-Match': '"stale"' }), 412);
      expect(await ctx.doc()).toEqual({ a: 2 });
    });
  });
});
