/**
 * Errors are problem+json without stack traces, a rejected request changes
 * nothing, keys are data and never code, read-only stores refuse writes,
 * and no request can crash the process.
 */
import http from 'node:http';
import { afterEach, describe, expect, test } from 'vitest';
import { jsonStore, type StorageAdapter } from '../../src/index.js';
import { closeServers, hosts, serve, type Served } from './hosts.js';
import { expectJson, expectNoStack, expectProblem, expectUnchanged, snapshot } from './support.js';

afterEach(closeServers);

const JSON_PATCH = 'application/json-patch+json';

/** Everything Object.prototype has (names and values), to prove no write reached it. */
function prototypeState(): Array<[string, unknown]> {
  const proto = Object.prototype as unknown as Record<string, unknown>;
  return Object.getOwnPropertyNames(proto)
    .sort()
    .map((name) => [name, name === '__proto__' ? null : proto[name]]);
}

/** Checks no object anywhere in the live document has an unusual prototype. */
async function expectPlainDocument(ctx: Served): Promise<void> {
  const bad = await ctx.store.store.read((root) => {
    const found: string[] = [];
    const walk = (value: unknown, where: string) => {
      if (typeof value !== 'object' || value === null) return;
      const proto = Object.getPrototypeOf(value);
      if (Array.isArray(value) ? proto !== Array.prototype : proto !== Object.prototype) found.push(where || '/');
      for (const key of Object.keys(value)) walk((value as Record<string, unknown>)[key], `${where}/${key}`);
    };
    walk(root, '');
    return found;
  });
  expect(bad).toEqual([]);
}

function expectNoPollution(protoBefore: Array<[string, unknown]>): void {
  expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  expect(prototypeState()).toEqual(protoBefore);
  expect(typeof ({} as { toString: unknown }).toString).toBe('function');
}

/** Waits until the server has closed every connection opened from now on. */
function connectionsClosed(server: http.Server): { wait(): Promise<void> } {
  const open = new Set<Promise<void>>();
  server.on('connection', (socket) => open.add(new Promise((resolve) => socket.on('close', () => resolve()))));
  return { wait: async () => void (await Promise.all(open)) };
}

describe.each(hosts)('$name', (host) => {
  describe('keys are data, never code', () => {
    test.each(['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'])(
      'PUT /%s and below it stores ordinary members',
      async (key) => {
        const protoBefore = prototypeState();
        const ctx = await serve(host);
        expectJson(await ctx.put(`/${key}/polluted`, 'yes'), 201, 'yes');
        expectJson(await ctx.put(`/${key}/prototype/polluted`, 'yes'), 201, 'yes');
        expectJson(await ctx.put(`/obj/${key}`, { polluted: 'yes' }), 201, { polluted: 'yes' });
        expectJson(await ctx.get(`/${key}`), 200, { polluted: 'yes', prototype: { polluted: 'yes' } });
        expect((await ctx.get('/')).text).toBe(`{"${key}":{"polluted":"yes","prototype":{"polluted":"yes"}},"obj":{"${key}":{"polluted":"yes"}}}`);
        await expectPlainDocument(ctx);
        expectNoPollution(protoBefore);
      },
    );

    test('bodies with __proto__ and constructor keys are stored as data (PUT, POST, merge patch)', async () => {
      const protoBefore = prototypeState();
      const ctx = await serve(host, { initial: { list: [], obj: {} } });
      const evil = '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"toString":"no"}';
      const headers = { 'Content-Type': 'application/json' };
      expect((await ctx.request('PUT', '/put', { body: evil, headers })).text).toBe(evil);
      expect((await ctx.request('POST', '/list', { body: evil, headers })).text).toBe(evil);
      expect((await ctx.request('PATCH', '/obj', { body: evil, headers: { 'Content-Type': 'application/merge-patch+json' } })).text).toBe(evil);
      expect((await ctx.request('PATCH', '/fresh', { body: evil, headers: { 'Content-Type': 'application/merge-patch+json' } })).text).toBe(evil);
      expect((await ctx.request('PATCH', '/put', { body: '{"__proto__":{"more":1}}', headers: { 'Content-Type': 'application/merge-patch+json' } })).status).toBe(200);
      expectJson(await ctx.get('/put/__proto__'), 200, { polluted: 'yes', more: 1 });
      expectJson(await ctx.get('/list/0/constructor/prototype'), 200, { polluted: 'yes' });
      expectJson(await ctx.get('/fresh/toString'), 200, 'no');
      await expectPlainDocument(ctx);
      expectNoPollution(protoBefore);
    });

    test('merge patch with __proto__: null removes only the member', async () => {
      const ctx = await serve(host);
      await ctx.request('PUT', '/', { body: '{"__proto__":{"a":1},"b":2}', headers: { 'Content-Type': 'application/json' } });
      const reply = await ctx.request('PATCH', '/', { body: '{"__proto__":null}', headers: { 'Content-Type': 'application/merge-patch+json' } });
      expectJson(reply, 200, { b: 2 });
      expectProblem(await ctx.get('/__proto__'), 404);
    });

    test('JSON Patch add, copy, move and replace at __proto__ and constructor paths stay data', async () => {
      const protoBefore = prototypeState();
      const ctx = await serve(host, { initial: { src: { polluted: 'yes' }, target: {} } });
      const patch = [
        { op: 'add', path: '/__proto__', value: { polluted: 'yes' } },
        { op: 'add', path: '/__proto__/polluted2', value: 'yes' },
        { op: 'add', path: '/target/__proto__', value: { polluted: 'yes' } },
        { op: 'copy', from: '/src', path: '/constructor' },
        { op: 'add', path: '/constructor/prototype', value: { polluted: 'yes' } },
        { op: 'copy', from: '/src', path: '/target/constructor' },
        { op: 'move', from: '/src', path: '/target/prototype' },
        { op: 'replace', path: '/target/__proto__', value: { polluted: 'still data' } },
        { op: 'test', path: '/__proto__', value: { polluted: 'yes', polluted2: 'yes' } },
      ];
      const reply = await ctx.patch('/', patch, JSON_PATCH);
      expect(reply.status).toBe(200);
      expect(await ctx.doc()).toEqual({
        target: { ['__proto__']: { polluted: 'still data' }, constructor: { polluted: 'yes' }, prototype: { polluted: 'yes' } },
        ['__proto__']: { polluted: 'yes', polluted2: 'yes' },
        constructor: { polluted: 'yes', prototype: { polluted: 'yes' } },
      });
      expect(JSON.parse((await ctx.get('/target')).text)).toEqual(JSON.parse('{"__proto__":{"polluted":"still data"},"constructor":{"polluted":"yes"},"prototype":{"polluted":"yes"}}'));
      // Removing them again leaves no trace either.
      expect((await ctx.patch('/', [{ op: 'remove', path: '/__proto__' }, { op: 'remove', path: '/target/__proto__' }], JSON_PATCH)).status).toBe(200);
      expectProblem(await ctx.get('/__proto__'), 404);
      await expectPlainDocument(ctx);
      expectNoPollution(protoBefore);
    });

    test('a failed JSON Patch that touched __proto__ rolls back cleanly', async () => {
      const ctx = await serve(host);
      await ctx.request('PUT', '/', { body: '{"a":1,"__proto__":{"x":1},"z":2}', headers: { 'Content-Type': 'application/json' } });
      const before = await snapshot(ctx);
      expectProblem(await ctx.patch('/', [
        { op: 'remove', path: '/__proto__' },
        { op: 'add', path: '/__proto__', value: 'replaced' },
        { op: 'test', path: '/a', value: 2 },
      ], JSON_PATCH), 409);
      await expectUnchanged(ctx, before);
      expect(before.text).toBe('{"a":1,"__proto__":{"x":1},"z":2}');
      await expectPlainDocument(ctx);
    });

    test('GET /toString or /constructor on a document without such keys is 404', async () => {
      const ctx = await serve(host, { initial: { a: { b: 1 }, list: [1] } });
      for (const path of ['/toString', '/constructor', '/__proto__', '/a/constructor/prototype', '/list/constructor', '/a/__proto__/toString']) {
        expectProblem(await ctx.get(path), 404);
      }
      expectProblem(await ctx.post('/constructor', 1), 404);
      expectProblem(await ctx.patch('/toString', [{ op: 'add', path: '/x', value: 1 }], JSON_PATCH), 404);
    });
  });

  describe('readOnly: true', () => {
    test('every write is 405 with Allow: GET, HEAD, OPTIONS, and changes nothing', async () => {
      const ctx = await serve(host, { readOnly: true, initial: { a: 1, list: [] } });
      const before = await snapshot(ctx);
      const writes = [
        () => ctx.put('/a', 2),
        () => ctx.put('/', {}),
        () => ctx.post('/list', 1),
        () => ctx.patch('/', { a: 2 }),
        () => ctx.patch('/', [{ op: 'remove', path: '/a' }], JSON_PATCH),
        () => ctx.delete('/a'),
        () => ctx.delete('/'),
        () => ctx.put('/a', 2, { 'If-Match': '*' }),
        () => ctx.request('PUT', '/a', { body: 'not json' }),
      ];
      for (const write of writes) {
        const reply = await write();
        expectProblem(reply, 405, /^This store is read-only; (PUT|POST|PATCH|DELETE) is not allowed$/);
        expect(reply.headers.allow).toBe('GET, HEAD, OPTIONS');
      }
      await expectUnchanged(ctx, before);
    });

    test('reads, OPTIONS and other methods still answer', async () => {
      const ctx = await serve(host, { readOnly: true, initial: { a: 1 } });
      expectJson(await ctx.get('/a'), 200, 1);
      expect((await ctx.request('HEAD', '/a')).status).toBe(200);
      const options = await ctx.request('OPTIONS', '/');
      expect([options.status, options.headers.allow, options.headers['accept-patch']]).toEqual([204, 'GET, HEAD, OPTIONS', undefined]);
      const other = await ctx.request('PROPFIND', '/');
      expectProblem(other, 405, 'PROPFIND is not supported here; use GET, HEAD, OPTIONS');
      expect(other.headers.allow).toBe('GET, HEAD, OPTIONS');
    });
  });

  describe('failures never crash the process', () => {
    test('a storage whose commit throws gives 503, changes nothing, and recovers', async () => {
      let failing = false;
      const storage: StorageAdapter = {
        load: () => undefined,
        commit: () => {
          if (failing) throw new Error('disk on fire');
        },
      };
      const errors: unknown[] = [];
      const ctx = await serve(host, { storage, initial: { a: 1, list: [] } });
      ctx.store.on('error', (error) => errors.push(error));
      expectJson(await ctx.put('/a', 2), 200, 2);
      const before = await snapshot(ctx);

      failing = true;
      const writes = [
        () => ctx.put('/a', 3),
        () => ctx.put('/new', 3),
        () => ctx.post('/list', 1),
        () => ctx.patch('/', { a: null }),
        () => ctx.patch('/', [{ op: 'add', path: '/list/-', value: 1 }], JSON_PATCH),
        () => ctx.delete('/a'),
        () => ctx.delete('/'),
      ];
      for (const write of writes) {
        const reply = await write();
        expectProblem(reply, 503, 'The storage could not save the change, so nothing was changed; try again later');
        expect(reply.text).not.toContain('disk on fire');
        expect(reply.headers['retry-after']).toBe('1');
        await expectUnchanged(ctx, before);
      }
      expect(errors.length).toBeGreaterThan(0);

      failing = false;
      expectJson(await ctx.put('/a', 4), 200, 4);
      expect(await ctx.doc()).toEqual({ a: 4, list: [] });
    });

    test('a storage whose commit rejects asynchronously also gives 503 and recovers', async () => {
      let failing = true;
      const storage: StorageAdapter = {
        load: () => ({ document: { a: 1 }, revision: 5 }),
        commit: async () => {
          await new Promise((resolve) => setImmediate(resolve));
          if (failing) throw new Error('network down');
        },
      };
      const ctx = await serve(host, { storage });
      ctx.store.on('error', () => {});
      const before = await snapshot(ctx);
      const replies = await Promise.all([ctx.put('/a', 2), ctx.put('/b', 3), ctx.patch('/', { c: 4 })]);
      for (const reply of replies) expectProblem(reply, 503);
      await expectUnchanged(ctx, before);
      failing = false;
      expectJson(await ctx.put('/a', 2), 200, 2);
      expect(ctx.store.store.revision).toBe(6);
    });

    test('a storage that cannot load gives 503 for reads and writes', async () => {
      const storage: StorageAdapter = {
        load: () => {
          throw new Error('no such bucket');
        },
        commit: () => {},
      };
      const store = jsonStore({ storage });
      const reported: unknown[] = [];
      store.on('error', (error) => reported.push(error));
      const ctx = await serve(host, undefined, { store });
      expectProblem(await ctx.get('/'), 503, 'The storage could not load the document, so nothing was changed; try again later');
      expectProblem(await ctx.put('/a', 1), 503);
      expect(reported.length).toBeGreaterThan(0);
    });

    test('a client that aborts mid-body changes nothing, and the server keeps serving', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const before = await snapshot(ctx);
      const closed = connectionsClosed(ctx.server);
      await new Promise<void>((resolve) => {
        const req = http.request({
          host: '127.0.0.1', port: ctx.port, method: 'PUT', path: ctx.url('/a'), agent: false,
          headers: { 'Content-Type': 'application/json', 'Content-Length': '1000' },
        });
        req.on('error', () => {});
        req.write('{"partial": ', () => {
          setImmediate(() => {
            req.destroy();
            resolve();
          });
        });
      });
      await closed.wait();
      await expectUnchanged(ctx, before);
      expectJson(await ctx.put('/a', 2), 200, 2);
    });

    test('a chunked upload aborted mid-way changes nothing', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const before = await snapshot(ctx);
      const closed = connectionsClosed(ctx.server);
      await new Promise<void>((resolve) => {
        const req = http.request({ host: '127.0.0.1', port: ctx.port, method: 'PATCH', path: ctx.url('/'), agent: false, headers: { 'Content-Type': 'application/merge-patch+json' } });
        req.on('error', () => {});
        req.write('{"a": 2, "b": [1,2,3', () => setImmediate(() => {
          req.destroy();
          resolve();
        }));
      });
      await closed.wait();
      await expectUnchanged(ctx, before);
    });

    test('a change listener that throws does not break the write or the next ones', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const reported: unknown[] = [];
      ctx.store.on('error', (error) => reported.push(error));
      ctx.store.on('change', () => {
        throw new Error('listener bug');
      });
      expectJson(await ctx.put('/a', 2), 200, 2);
      expectJson(await ctx.put('/b', 3), 201, 3);
      expect(await ctx.doc()).toEqual({ a: 2, b: 3 });
      expect(reported.map((e) => (e as Error).message)).toEqual(['listener bug', 'listener bug']);
    });

    test('an unexpected error is a 500 problem without internals, reported on the server', async () => {
      const store = jsonStore({ initial: { a: 1 } });
      const reported: unknown[] = [];
      store.on('error', (error) => reported.push(error));
      const sabotage = (req: http.IncomingMessage, _res: http.ServerResponse, next: () => void) => {
        Object.defineProperty(req, 'headers', {
          get() {
            throw new Error('secret internal failure at /srv/app/config.js:12');
          },
        });
        next();
      };
      const ctx = await serve(host, undefined, { store, before: [sabotage] });
      for (const method of ['GET', 'PUT']) {
        const reply = await ctx.request(method, '/a');
        expectProblem(reply, 500, 'The store failed to handle this request; the error was logged on the server');
        expect(reply.text).not.toContain('secret');
      }
      expect(reported).toHaveLength(2);
      expect((reported[0] as Error).message).toContain('secret internal failure');
    });

    test('a body consumed by another middleware is a 500 that says how to fix it', async () => {
      const store = jsonStore({ initial: { a: 1 } });
      store.on('error', () => {});
      const drain = (req: http.IncomingMessage, _res: http.ServerResponse, next: () => void) => {
        req.resume();
        req.on('end', () => next());
      };
      const ctx = await serve(host, undefined, { store, before: [drain] });
      const before = await snapshot(ctx);
      expectProblem(
        await ctx.put('/a', 2),
        500,
        /^The request body was consumed by another middleware before the store could read it, and it left no parsed body\. Mount the store before that middleware \(app\.use\('\/store', jsonStore\(\)\) first/,
      );
      await expectUnchanged(ctx, before);
    });

    test('no error response of any kind carries a stack trace', async () => {
      const ctx = await serve(host, { initial: { s: 'x', list: [] }, limit: 50 });
      const replies = await Promise.all([
        ctx.get('/nope'),
        ctx.get('/%E0'),
        ctx.put('/s/x', 1),
        ctx.put('/list/9', 1),
        ctx.post('/nope', 1),
        ctx.request('PUT', '/a', { body: '{bad', headers: { 'Content-Type': 'application/json' } }),
        ctx.request('PUT', '/a', { body: '1', headers: { 'Content-Type': 'text/plain' } }),
        ctx.put('/a', 'x'.repeat(100)),
        ctx.patch('/', [{ op: 'bad' }], JSON_PATCH),
        ctx.request('LOCK', '/'),
        ctx.put('/s', 1, { 'If-Match': '"nope"' }),
      ]);
      expect(replies.map((r) => r.status)).toEqual([404, 400, 409, 409, 404, 400, 415, 413, 400, 405, 412]);
      for (const reply of replies) {
        expectProblem(reply, reply.status);
        expectNoStack(reply.text);
      }
    });
  });
});
