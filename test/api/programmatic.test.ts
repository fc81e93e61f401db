/**
 * The programmatic API on the middleware: the same store for server code,
 * change events, close(), and TypeErrors for values that are not JSON.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { jsonStore, JsonStoreError, StorageError, type ChangeEvent, type StorageAdapter } from '../../src/index.js';
import { closeServers, hosts, serve } from '../http/hosts.js';
import { expectJson, expectProblem } from '../http/support.js';

afterEach(closeServers);

const sniffles = { sniffles: [{ name: 'fred' }, { name: 'irma' }], snuffle: { name: 'gundar' } };

/** A call that must fail with a TypeError, whether it throws or rejects. */
async function expectTypeError(call: () => unknown, message?: RegExp): Promise<void> {
  let thrown: unknown;
  try {
    await call();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(TypeError);
  if (message) expect((thrown as Error).message).toMatch(message);
}

/** A call that must reject with a JsonStoreError of this status. */
async function expectRejects(call: () => Promise<unknown>, status: number, detail?: string): Promise<JsonStoreError> {
  let thrown: unknown;
  try {
    await call();
  } catch (error) {
    thrown = error;
  }
  expect(thrown).toBeInstanceOf(JsonStoreError);
  expect((thrown as JsonStoreError).status).toBe(status);
  if (detail !== undefined) expect((thrown as JsonStoreError).message).toBe(detail);
  return thrown as JsonStoreError;
}

describe('ready()', () => {
  test('resolves once the document is loaded', async () => {
    const store = jsonStore({ storage: { load: async () => ({ document: { loaded: true }, revision: 3 }), commit: () => {} } });
    await expect(store.ready()).resolves.toBeUndefined();
    expect(await store.get()).toEqual({ loaded: true });
    expect(store.store.revision).toBe(3);
  });

  test('rejects with a StorageError when the storage cannot load', async () => {
    const store = jsonStore({
      storage: {
        load: () => {
          throw new Error('no such bucket');
        },
        commit: () => {},
      },
    });
    const reported: unknown[] = [];
    store.on('error', (error) => reported.push(error));
    let thrown: unknown;
    await store.ready().catch((error: unknown) => (thrown = error));
    expect(thrown).toBeInstanceOf(StorageError);
    expect((thrown as StorageError).status).toBe(503);
    expect((thrown as StorageError).message).toBe('The storage could not load the document, so nothing was changed; try again later (no such bucket)');
    expect(reported).toHaveLength(1);
  });

  test('on(), off() and once() return the middleware, for chaining', () => {
    const store = jsonStore();
    const listener = () => {};
    expect(store.on('change', listener)).toBe(store);
    expect(store.once('change', listener)).toBe(store);
    expect(store.off('change', listener)).toBe(store);
  });
});

describe('reads', () => {
  test('get() takes a URL-style string or an array of segments', async () => {
    const store = jsonStore({ initial: { ...sniffles, 'a/b': { '~': 1 } } });
    await store.ready();
    expect(await store.get()).toEqual({ ...sniffles, 'a/b': { '~': 1 } });
    expect(await store.get('/')).toEqual(await store.get());
    expect(await store.get('/sniffles/0')).toEqual({ name: 'fred' });
    expect(await store.get(['sniffles', '0'])).toEqual({ name: 'fred' });
    expect(await store.get('/sniffles/1/name/')).toBe('irma');
    expect(await store.get('/a%2Fb/~')).toBe(1);
    expect(await store.get(['a/b', '~'])).toBe(1);
    expect(await store.get([])).toEqual(await store.get());
  });

  test('get() of a missing path is undefined', async () => {
    const store = jsonStore({ initial: sniffles });
    expect(await store.get('/nope')).toBeUndefined();
    expect(await store.get('/sniffles/2')).toBeUndefined();
    expect(await store.get('/sniffles/01')).toBeUndefined();
    expect(await store.get('/snuffle/name/0')).toBeUndefined();
    expect(await store.get('/toString')).toBeUndefined();
    expect(await store.get(['__proto__'])).toBeUndefined();
  });

  test('get() returns a copy: changing it does not change the store', async () => {
    const store = jsonStore({ initial: sniffles });
    const value = (await store.get('/sniffles')) as Array<{ name: string }>;
    value[0]!.name = 'changed';
    value.push({ name: 'extra' });
    expect(await store.get('/sniffles')).toEqual(sniffles.sniffles);
  });

  test('initial is not copied but never changed: writes copy what they change, and two stores on one initial stay apart', async () => {
    const initial = { a: { b: 1, c: [1, 2] }, d: { e: 1 } };
    const before = structuredClone(initial);
    const one = jsonStore({ initial });
    const two = jsonStore({ initial });
    await one.patch('/a', { b: 2 });
    await one.post('/a/c', 3);
    await one.delete('/d/e');
    await one.patch('/', [{ op: 'move', from: '/a/c', path: '/d/c' }], { type: 'json-patch' });
    expect(initial).toEqual(before);
    expect(await one.get()).toEqual({ a: { b: 2 }, d: { c: [1, 2, 3] } });
    expect(await two.get()).toEqual(before);
  });

  test('a path that is neither a string nor an array of strings is a TypeError', async () => {
    const store = jsonStore();
    await expectTypeError(() => store.get(42 as never), /path must be/);
    await expectTypeError(() => store.get([1] as never), /path must be/);
    await expectTypeError(() => store.put({} as never, 1), /path must be/);
  });
});

describe('writes', () => {
  test('put() answers like PUT: created, the real path, the value, its ETag, the revision', async () => {
    const store = jsonStore({ initial: sniffles });
    const created = await store.put('/sniffles/0/rank', 'sniffle chief');
    expect(created).toEqual({
      created: true,
      path: ['sniffles', '0', 'rank'],
      value: 'sniffle chief',
      etag: expect.stringMatching(/^"[^"]+"$/) as unknown as string,
      revision: 1,
    });
    const replaced = await store.put(['sniffles', '0', 'rank'], 'boss');
    expect([replaced.created, replaced.revision, replaced.value]).toEqual([false, 2, 'boss']);
    const appended = await store.put('/sniffles/-', { name: 'wobble' });
    expect(appended.path).toEqual(['sniffles', '2']);
    expect(await store.get('/sniffles/0')).toEqual({ name: 'fred', rank: 'boss' });
  });

  test('put() copies the value: changing it afterwards does not change the store', async () => {
    const store = jsonStore();
    const value = { list: [1] };
    await store.put('/v', value);
    value.list.push(2);
    expect(await store.get('/v')).toEqual({ list: [1] });
  });

  test('post() appends to arrays and adds push keys to objects', async () => {
    const store = jsonStore({ initial: { list: [], people: {} } });
    expect((await store.post('/list', 'a')).path).toEqual(['list', '0']);
    const first = await store.post('/people', { name: 'fred' });
    const second = await store.post(['people'], { name: 'irma' });
    expect(first.created).toBe(true);
    expect(first.path[1]! < second.path[1]!).toBe(true);
    expect(Object.keys((await store.get('/people')) as object)).toEqual([first.path[1], second.path[1]]);
    await expectRejects(() => store.post('/missing', 1), 404, 'Cannot POST to /missing: it does not exist; create it first with PUT');
    await expectRejects(() => store.post('/list/0', 1), 409);
  });

  test('patch() is a merge patch by default and a JSON Patch with type json-patch', async () => {
    const store = jsonStore({ initial: { a: { b: 1, c: 2 } } });
    expect((await store.patch('/a', { b: null, d: 3 })).value).toEqual({ c: 2, d: 3 });
    expect((await store.patch('/a', [{ op: 'move', from: '/c', path: '/e' }], { type: 'json-patch' })).value).toEqual({ d: 3, e: 2 });
    expect((await store.patch('/new', { x: 1 })).created).toBe(true);
    await expectRejects(() => store.patch('/a', [{ op: 'test', path: '/d', value: 4 }], { type: 'json-patch' }), 409);
    await expectRejects(() => store.patch('/a', { op: 'add' }, { type: 'json-patch' }), 400);
    expect(await store.get()).toEqual({ a: { d: 3, e: 2 }, new: { x: 1 } });
  });

  test('delete() removes a member, and on the root leaves {}', async () => {
    const store = jsonStore({ initial: { list: [1, 2, 3], a: 1 } });
    const removed = await store.delete('/list/0');
    expect([removed.value, removed.etag, removed.created]).toEqual([undefined, undefined, false]);
    expect(await store.get('/list')).toEqual([2, 3]);
    await expectRejects(() => store.delete('/nope'), 404, 'Cannot DELETE /nope: it does not exist');
    await store.delete();
    expect(await store.get()).toEqual({});
  });

  test('refused writes reject with the same errors as HTTP and change nothing', async () => {
    const store = jsonStore({ initial: { s: 'x', list: [] } });
    await expectRejects(() => store.put('/s/x', 1), 409, 'Cannot PUT /s/x: /s is a string');
    await expectRejects(() => store.put('/list/5', 1), 409);
    expect(await store.get()).toEqual({ s: 'x', list: [] });
    expect(store.store.revision).toBe(0);
  });

  test('a precondition runs atomically with the write and can refuse it', async () => {
    const store = jsonStore({ initial: { n: 1 } });
    const refuse = (current: unknown) => {
      if (current !== 2) throw new JsonStoreError('precondition-failed', 'n is not 2');
    };
    await expectRejects(() => store.put('/n', 3, { precondition: refuse }), 412, 'n is not 2');
    expect(await store.get('/n')).toBe(1);
    await store.put('/n', 2);
    expect((await store.put('/n', 3, { precondition: refuse })).value).toBe(3);
  });

  test.each([
    ['undefined', undefined],
    ['a function', () => 1],
    ['NaN', Number.NaN],
    ['Infinity', Number.NEGATIVE_INFINITY],
    ['a Date', new Date(0)],
    ['a Map', new Map([[1, 2]])],
    ['a nested undefined', { a: { b: undefined } }],
    ['an array with a function', [1, () => 2]],
    ['a symbol', Symbol('s')],
    ['a bigint', BigInt(10)],
  ])('put(), post() and patch() refuse %s with a TypeError, and change nothing', async (_name, value) => {
    const store = jsonStore({ initial: { list: [], obj: {} } });
    await expectTypeError(() => store.put('/x', value as never), /^value is not JSON: /);
    await expectTypeError(() => store.post('/list', value as never), /^value is not JSON: /);
    await expectTypeError(() => store.patch('/obj', value as never), /^value is not JSON: /);
    await expectTypeError(() => store.patch('/obj', [{ op: 'add', path: '/a', value }] as never, { type: 'json-patch' }), /^value is not JSON: /);
    expect(await store.get()).toEqual({ list: [], obj: {} });
    expect(store.store.revision).toBe(0);
  });

  test('the TypeError names the member that is not JSON', async () => {
    const store = jsonStore({ initial: { obj: {} } });
    await expectTypeError(() => store.put('/x', { a: { b: [1, Infinity] } } as never), /^value is not JSON: Infinity at \/a\/b\/1 is not a JSON number$/);
    await expectTypeError(() => store.patch('/obj', [{ op: 'add', path: '/n', value: Number.NaN }] as never, { type: 'json-patch' }), /^value is not JSON: NaN at \/0\/value is not a JSON number$/);
    await expectTypeError(() => store.put('/x', { when: new Date(0) } as never), /^value is not JSON: Date at \/when is not a plain JSON object$/);
    await expectTypeError(() => store.put('/x', Number.NEGATIVE_INFINITY as never), /^value is not JSON: -Infinity is not a JSON number$/);
    expect(await store.get()).toEqual({ obj: {} });
  });

  test('a value with a cycle is a TypeError', async () => {
    const store = jsonStore();
    const cycle: Record<string, unknown> = {};
    cycle['me'] = { again: cycle };
    await expectTypeError(() => store.put('/x', cycle as never), /cycle/);
    expect(await store.get()).toEqual({});
  });
});

describe('change events', () => {
  test('every write emits revision, absolute RFC 6902 ops and origin local', async () => {
    const store = jsonStore({ initial: { list: ['a'], obj: { k: 1 } } });
    const events: ChangeEvent[] = [];
    store.on('change', (event) => events.push(structuredClone(event)));
    await store.put('/list/-', 'b');
    await store.patch('/obj', { k: null, m: 2 });
    await store.patch('/obj', [{ op: 'test', path: '/m', value: 2 }, { op: 'copy', from: '/m', path: '/n' }], { type: 'json-patch' });
    await store.delete('/list/0');
    expect(events).toEqual([
      { revision: 1, ops: [{ op: 'add', path: '/list/1', value: 'b' }], origin: 'local' },
      { revision: 2, ops: [{ op: 'remove', path: '/obj/k' }, { op: 'add', path: '/obj/m', value: 2 }], origin: 'local' },
      { revision: 3, ops: [{ op: 'copy', from: '/obj/m', path: '/obj/n' }], origin: 'local' },
      { revision: 4, ops: [{ op: 'remove', path: '/list/0' }], origin: 'local' },
    ]);
  });

  test('refused writes emit nothing; off() stops listening', async () => {
    const store = jsonStore({ initial: { s: 'x' } });
    const events: ChangeEvent[] = [];
    const listener = (event: ChangeEvent) => events.push(event);
    store.on('change', listener);
    await store.put('/s/x', 1).catch(() => {});
    expect(events).toEqual([]);
    store.off('change', listener);
    await store.put('/t', 1);
    expect(events).toEqual([]);
  });

  test('a JSON Patch of only tests, or a move onto itself, commits nothing and emits nothing', async () => {
    const commits: number[] = [];
    const store = jsonStore({ initial: { a: 1 }, storage: { load: () => undefined, commit: (change) => void commits.push(change.revision) } });
    const events: ChangeEvent[] = [];
    store.on('change', (event) => events.push(event));
    const tested = await store.patch('/', [{ op: 'test', path: '/a', value: 1 }], { type: 'json-patch' });
    const moved = await store.patch('/', [{ op: 'move', from: '/a', path: '/a' }], { type: 'json-patch' });
    expect([tested.revision, moved.revision]).toEqual([0, 0]);
    expect(commits).toEqual([]);
    expect(events).toEqual([]);
    expect(await store.get('/')).toEqual({ a: 1 });
  });

  test('once() hears one change', async () => {
    const store = jsonStore();
    const events: ChangeEvent[] = [];
    store.once('change', (event) => events.push(event));
    await store.put('/a', 1);
    await store.put('/b', 2);
    expect(events.map((e) => e.revision)).toEqual([1]);
  });
});

describe.each(hosts)('with HTTP on $name', (host) => {
  test('an HTTP write fires change with its ops (real index, pointer escapes)', async () => {
    const ctx = await serve(host, { initial: { sniffles: [{ name: 'fred' }] } });
    const events: ChangeEvent[] = [];
    ctx.store.on('change', (event) => events.push(structuredClone(event)));
    await ctx.put('/sniffles/-', { name: 'irma' });
    await ctx.put('/sniffles/0/rank', 'sniffle chief');
    await ctx.put('/a%2Fb/~c', 1);
    await ctx.patch('/sniffles/1', [{ op: 'replace', path: '/name', value: 'Irma' }], 'application/json-patch+json');
    await ctx.delete('/a%2Fb');
    expect(events).toEqual([
      { revision: 1, ops: [{ op: 'add', path: '/sniffles/1', value: { name: 'irma' } }], origin: 'local' },
      { revision: 2, ops: [{ op: 'add', path: '/sniffles/0/rank', value: 'sniffle chief' }], origin: 'local' },
      { revision: 3, ops: [{ op: 'add', path: '/a~1b', value: { '~c': 1 } }], origin: 'local' },
      { revision: 4, ops: [{ op: 'replace', path: '/sniffles/1/name', value: 'Irma' }], origin: 'local' },
      { revision: 5, ops: [{ op: 'remove', path: '/a~1b' }], origin: 'local' },
    ]);
  });

  test('a refused HTTP write fires nothing', async () => {
    const ctx = await serve(host, { initial: { s: 'x' } });
    const events: ChangeEvent[] = [];
    ctx.store.on('change', (event) => events.push(event));
    expectProblem(await ctx.put('/s/x', 1), 409);
    expectProblem(await ctx.patch('/', [{ op: 'add', path: '/y', value: 1 }, { op: 'test', path: '/s', value: 'z' }], 'application/json-patch+json'), 409);
    expect(events).toEqual([]);
  });

  test('a programmatic write shows up over HTTP, with the same ETag', async () => {
    const ctx = await serve(host);
    const result = await ctx.store.put('/sniffles', [{ name: 'fred' }]);
    const reply = await ctx.get('/sniffles/0');
    expectJson(reply, 200, { name: 'fred' });
    const whole = await ctx.get('/sniffles');
    expect(whole.headers.etag).toBe(result.etag);
    await ctx.store.post('/sniffles', { name: 'irma' });
    expectJson(await ctx.get('/sniffles/1/name'), 200, 'irma');
  });

  test('close() finishes pending writes; later requests get 503', async () => {
    const ctx = await serve(host, { initial: { list: [] } });
    const writes = [...Array(20).keys()].map((i) => ctx.store.put(`/k${i}`, i));
    const posts = [...Array(5).keys()].map((i) => ctx.store.post('/list', i));
    const closing = ctx.store.close();
    const results = await Promise.all([...writes, ...posts]);
    await closing;
    expect(results.map((r) => r.revision)).toEqual([...Array(25).keys()].map((i) => i + 1));

    for (const reply of [await ctx.get('/'), await ctx.put('/a', 1), await ctx.delete('/list')]) {
      expectProblem(reply, 503, 'The store is closed');
      expect(reply.headers['retry-after']).toBe('1');
    }
    let thrown: unknown;
    await ctx.store.put('/late', 1).catch((error: unknown) => (thrown = error));
    expect(thrown).toBeInstanceOf(StorageError);
    await expect(ctx.store.close()).resolves.toBeUndefined();
  });
});

describe('close()', () => {
  test('waits for slow storage to confirm writes, then closes the adapter once', async () => {
    const committed: number[] = [];
    let closes = 0;
    const storage: StorageAdapter = {
      load: () => undefined,
      commit: async (change) => {
        await new Promise((resolve) => setTimeout(resolve, 5));
        committed.push(change.revision);
      },
      close: () => {
        closes++;
      },
    };
    const store = jsonStore({ storage });
    await store.ready();
    const writes = [store.put('/a', 1), store.put('/b', 2), store.patch('/', { c: 3 })];
    const closing = store.close();
    await Promise.all(writes);
    await closing;
    await store.close();
    expect(committed).toEqual([1, 2, 3]);
    expect(closes).toBe(1);
  });

  test('writes called before ready() and then close() still land', async () => {
    const store = jsonStore();
    const write = store.put('/a', 1);
    await store.close();
    expect((await write).value).toBe(1);
  });
});
