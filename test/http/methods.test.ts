/**
 * POST, DELETE, OPTIONS, unsupported methods and Prefer: return=minimal.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { closeServers, hosts, serve, type Served } from './hosts.js';
import { expectJson, expectProblem, expectStrongEtag, expectUnchanged, snapshot } from './support.js';

afterEach(closeServers);

const ALLOW = 'GET, HEAD, PUT, POST, PATCH, DELETE, OPTIONS';

/** The key a POST created, from its Location. */
function keyOf(ctx: Served, location: string | undefined, parent: string): string {
  expect(location?.startsWith(ctx.url(parent) + '/')).toBe(true);
  return decodeURIComponent((location as string).slice(ctx.url(parent).length + 1));
}

describe.each(hosts)('$name', (host) => {
  describe('POST', () => {
    test('to an array appends the body: 201, Location with the index, the stored value', async () => {
      const ctx = await serve(host, { initial: { list: ['a'] } });
      const reply = await ctx.post('/list', { b: true });
      expectJson(reply, 201, { b: true });
      expect(reply.headers.location).toBe(`${host.base}/list/1`);
      expectStrongEtag(reply);
      expect(await ctx.doc()).toEqual({ list: ['a', { b: true }] });
    });

    test('to an object adds the body under a new key, answers the key as Firebase does, and Location leads to it', async () => {
      const ctx = await serve(host, { initial: { people: { existing: 1 } } });
      const reply = await ctx.post('/people', { name: 'fred' });
      const key = keyOf(ctx, reply.headers.location, '/people');
      expectJson(reply, 201, { name: key });
      expect(key).toMatch(/^[-0-9A-Za-z_]{20}$/);
      // The ETag is the new member's, ready for If-Match on its Location.
      expect(reply.headers.etag).toBe((await ctx.get(`/people/${encodeURIComponent(key)}`)).headers.etag);
      expect(reply.headers['preference-applied']).toBeUndefined();
      expect(await ctx.doc()).toEqual({ people: { existing: 1, [key]: { name: 'fred' } } });
      expectJson(await ctx.get(`/people/${encodeURIComponent(key)}`), 200, { name: 'fred' });
    });

    test('to the root object works', async () => {
      const ctx = await serve(host);
      const reply = await ctx.post('/', 'hello');
      const key = keyOf(ctx, reply.headers.location, '');
      expectJson(reply, 201, { name: key });
      expect(await ctx.doc()).toEqual({ [key]: 'hello' });
    });

    test('to an object with Prefer: return=representation answers the stored value; return=minimal no body', async () => {
      const ctx = await serve(host, { initial: { people: {} } });
      const full = await ctx.post('/people', { name: 'fred' }, { Prefer: 'return=representation' });
      expectJson(full, 201, { name: 'fred' });
      expect(full.headers['preference-applied']).toBe('return=representation');
      const minimal = await ctx.post('/people', { name: 'ann' }, { Prefer: 'return=minimal' });
      expect([minimal.status, minimal.text]).toEqual([201, '']);
      expect(Object.keys((await ctx.doc()) as { people: object }).length).toBe(1);
      expect(Object.values(((await ctx.doc()) as { people: object }).people)).toEqual([{ name: 'fred' }, { name: 'ann' }]);
    });

    test('200 quick POSTs get unique keys that sort as strings in creation order', async () => {
      const ctx = await serve(host, { initial: { log: {} } });
      const keys: string[] = [];
      for (let i = 0; i < 200; i++) {
        const reply = await ctx.post('/log', i);
        expect(reply.status).toBe(201);
        keys.push(keyOf(ctx, reply.headers.location, '/log'));
      }
      expect(new Set(keys).size).toBe(200);
      expect([...keys].sort()).toEqual(keys);
      const log = (await ctx.doc()) as { log: Record<string, number> };
      expect(Object.keys(log.log)).toEqual(keys);
      expect(Object.keys(log.log).map((k) => log.log[k])).toEqual([...Array(200).keys()]);
    });

    test('200 concurrent POSTs: keys sort in the order the writes were applied', async () => {
      const ctx = await serve(host, { initial: { log: {} } });
      const replies = await Promise.all([...Array(200).keys()].map((i) => ctx.post('/log', i)));
      expect(replies.map((r) => r.status)).toEqual(Array(200).fill(201));
      const created = Object.keys(((await ctx.doc()) as { log: Record<string, number> }).log);
      expect(created).toHaveLength(200);
      expect([...created].sort()).toEqual(created);
    });

    test('to a missing target is 404 and changes nothing', async () => {
      const ctx = await serve(host, { initial: { a: {} } });
      const before = await snapshot(ctx);
      expectProblem(await ctx.post('/nope', 1), 404, 'Cannot POST to /nope: it does not exist; create it first with PUT');
      expectProblem(await ctx.post('/a/b/c', 1), 404, 'Cannot POST to /a/b/c: it does not exist; create it first with PUT');
      await expectUnchanged(ctx, before);
    });

    test('to a scalar is 409 and changes nothing', async () => {
      const ctx = await serve(host, { initial: { s: 'text', n: null, k: 1 } });
      const before = await snapshot(ctx);
      expectProblem(await ctx.post('/s', 1), 409, 'Cannot POST to /s: it is a string; POST adds to an array or an object');
      expectProblem(await ctx.post('/n', 1), 409, 'Cannot POST to /n: it is null; POST adds to an array or an object');
      expectProblem(await ctx.post('/k', 1), 409, 'Cannot POST to /k: it is a number; POST adds to an array or an object');
      await expectUnchanged(ctx, before);
    });
  });

  describe('DELETE', () => {
    test('removes an object member: 204, no body', async () => {
      const ctx = await serve(host, { initial: { a: 1, b: { c: 2 } } });
      const reply = await ctx.delete('/b');
      expect(reply.status).toBe(204);
      expect(reply.text).toBe('');
      expect(reply.headers['content-type']).toBeUndefined();
      expect(await ctx.doc()).toEqual({ a: 1 });
      expectProblem(await ctx.get('/b'), 404);
    });

    test('removes an array element; the elements after it shift down', async () => {
      const ctx = await serve(host, { initial: { list: ['a', 'b', 'c', 'd'] } });
      expect((await ctx.delete('/list/1')).status).toBe(204);
      expect(await ctx.doc()).toEqual({ list: ['a', 'c', 'd'] });
      expectJson(await ctx.get('/list/1'), 200, 'c');
    });

    test('a missing member is 404 and changes nothing', async () => {
      const ctx = await serve(host, { initial: { a: 1, list: [0], s: 'x' } });
      const before = await snapshot(ctx);
      expectProblem(await ctx.delete('/nope'), 404, 'Cannot DELETE /nope: it does not exist');
      expectProblem(await ctx.delete('/list/1'), 404, 'Cannot DELETE /list/1: it does not exist');
      expectProblem(await ctx.delete('/list/-'), 404, 'Cannot DELETE /list/-: it does not exist');
      expectProblem(await ctx.delete('/s/0'), 404, 'Cannot DELETE /s/0: it does not exist');
      expectProblem(await ctx.delete('/toString'), 404, 'Cannot DELETE /toString: it does not exist');
      await expectUnchanged(ctx, before);
    });

    test('on the root leaves the empty document {}', async () => {
      const ctx = await serve(host, { initial: { a: [1, 2] } });
      expect((await ctx.delete('/')).status).toBe(204);
      expectJson(await ctx.get('/'), 200, {});
      expect((await ctx.delete('/')).status).toBe(204);
      expectJson(await ctx.get('/'), 200, {});
    });

    test('a member holding null exists and can be deleted', async () => {
      const ctx = await serve(host, { initial: { a: null } });
      expect((await ctx.delete('/a')).status).toBe(204);
      expect(await ctx.doc()).toEqual({});
    });
  });

  describe('OPTIONS and other methods', () => {
    test('OPTIONS is 204 with Allow and Accept-Patch, at any path', async () => {
      const ctx = await serve(host);
      for (const path of ['/', '/any/where']) {
        const reply = await ctx.request('OPTIONS', path);
        expect(reply.status).toBe(204);
        expect(reply.text).toBe('');
        expect(reply.headers.allow).toBe(ALLOW);
        expect(reply.headers['accept-patch']).toBe('application/merge-patch+json, application/json-patch+json');
      }
    });

    test.each(['PROPFIND', 'LOCK', 'PURGE', 'MKCOL', 'COPY', 'SEARCH', 'REPORT', 'TRACE'])('%s is 405 with Allow, and changes nothing', async (method) => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const before = await snapshot(ctx);
      const reply = await ctx.request(method, '/a', { json: { b: 2 } });
      expectProblem(reply, 405, `${method} is not supported here; use ${ALLOW}`);
      expect(reply.headers.allow).toBe(ALLOW);
      await expectUnchanged(ctx, before);
    });
  });

  describe('Prefer: return=minimal', () => {
    test('writes keep their status and headers, and send no body', async () => {
      const ctx = await serve(host, { initial: { list: [], obj: { a: 1 } } });
      const minimal = { Prefer: 'return=minimal' };

      const created = await ctx.put('/new', { x: 1 }, minimal);
      expect([created.status, created.text]).toEqual([201, '']);
      expect(created.headers.location).toBe(`${host.base}/new`);
      expect(created.headers['preference-applied']).toBe('return=minimal');
      expect(created.headers['content-type']).toBeUndefined();
      expect(created.headers.etag).toBe((await ctx.get('/new')).headers.etag);

      const replaced = await ctx.put('/new', { x: 2 }, minimal);
      expect([replaced.status, replaced.text]).toEqual([200, '']);

      const posted = await ctx.post('/list', 'v', minimal);
      expect([posted.status, posted.text, posted.headers.location]).toEqual([201, '', `${host.base}/list/0`]);

      const patched = await ctx.patch('/obj', { b: 2 }, 'application/merge-patch+json', minimal);
      expect([patched.status, patched.text]).toEqual([200, '']);

      const jsonPatched = await ctx.patch('/obj', [{ op: 'remove', path: '/a' }], 'application/json-patch+json', { Prefer: 'respond-async, return=minimal' });
      expect([jsonPatched.status, jsonPatched.text]).toEqual([200, '']);

      const deleted = await ctx.delete('/list/0', minimal);
      expect([deleted.status, deleted.text]).toEqual([204, '']);

      expect(await ctx.doc()).toEqual({ list: [], obj: { b: 2 }, new: { x: 2 } });
    });

    test('return=representation (or no Prefer) sends the body', async () => {
      const ctx = await serve(host);
      expectJson(await ctx.put('/a', 1, { Prefer: 'return=representation' }), 201, 1);
      expectJson(await ctx.put('/a', 2), 200, 2);
    });

    test('errors still carry their problem body', async () => {
      const ctx = await serve(host);
      expectProblem(await ctx.post('/missing', 1, { Prefer: 'return=minimal' }), 404);
    });
  });
});
