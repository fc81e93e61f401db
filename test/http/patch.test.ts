/**
 * PATCH: RFC 7396 merge patch (application/merge-patch+json and
 * application/json) and RFC 6902 JSON Patch (application/json-patch+json),
 * pointers relative to the request path, all or nothing.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { closeServers, hosts, serve } from './hosts.js';
import { expectJson, expectProblem, expectUnchanged, snapshot } from './support.js';

afterEach(closeServers);

const MERGE = 'application/merge-patch+json';
const JSON_PATCH = 'application/json-patch+json';

/** RFC 7396 Appendix A, as [original, patch, result]. */
const rfc7396: Array<[unknown, unknown, unknown]> = [
  [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
  [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
  [{ a: 'b' }, { a: null }, {}],
  [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
  [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
  [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
  [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
  [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
  [['a', 'b'], ['c', 'd'], ['c', 'd']],
  [{ a: 'b' }, ['c'], ['c']],
  [{ a: 'foo' }, null, null],
  [{ a: 'foo' }, 'bar', 'bar'],
  [{ e: null }, { a: 1 }, { e: null, a: 1 }],
  [[1, 2], { a: 'b', c: null }, { a: 'b' }],
  [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
];

interface Rfc6902Case {
  name: string;
  doc: unknown;
  patch: unknown;
  /** The result, or the 409 detail (operations are named as sent, paths absolute) for the examples that must fail. */
  result?: unknown;
  error?: (at: string) => string;
}

/** RFC 6902 Appendix A. */
const rfc6902: Rfc6902Case[] = [
  { name: 'A.1 adding an object member', doc: { foo: 'bar' }, patch: [{ op: 'add', path: '/baz', value: 'qux' }], result: { foo: 'bar', baz: 'qux' } },
  { name: 'A.2 adding an array element', doc: { foo: ['bar', 'baz'] }, patch: [{ op: 'add', path: '/foo/1', value: 'qux' }], result: { foo: ['bar', 'qux', 'baz'] } },
  { name: 'A.3 removing an object member', doc: { baz: 'qux', foo: 'bar' }, patch: [{ op: 'remove', path: '/baz' }], result: { foo: 'bar' } },
  { name: 'A.4 removing an array element', doc: { foo: ['bar', 'qux', 'baz'] }, patch: [{ op: 'remove', path: '/foo/1' }], result: { foo: ['bar', 'baz'] } },
  { name: 'A.5 replacing a value', doc: { baz: 'qux', foo: 'bar' }, patch: [{ op: 'replace', path: '/baz', value: 'boo' }], result: { baz: 'boo', foo: 'bar' } },
  {
    name: 'A.6 moving a value',
    doc: { foo: { bar: 'baz', waldo: 'fred' }, qux: { corge: 'grault' } },
    patch: [{ op: 'move', from: '/foo/waldo', path: '/qux/thud' }],
    result: { foo: { bar: 'baz' }, qux: { corge: 'grault', thud: 'fred' } },
  },
  {
    name: 'A.7 moving an array element',
    doc: { foo: ['all', 'grass', 'cows', 'eat'] },
    patch: [{ op: 'move', from: '/foo/1', path: '/foo/3' }],
    result: { foo: ['all', 'cows', 'eat', 'grass'] },
  },
  {
    name: 'A.8 testing a value: success',
    doc: { baz: 'qux', foo: ['a', 2, 'c'] },
    patch: [
      { op: 'test', path: '/baz', value: 'qux' },
      { op: 'test', path: '/foo/1', value: 2 },
    ],
    result: { baz: 'qux', foo: ['a', 2, 'c'] },
  },
  { name: 'A.9 testing a value: error', doc: { baz: 'qux' }, patch: [{ op: 'test', path: '/baz', value: 'bar' }], error: (at) => `JSON Patch operation 0 (test "/baz"): the value at ${at}/baz is not the expected one` },
  {
    name: 'A.10 adding a nested member object',
    doc: { foo: 'bar' },
    patch: [{ op: 'add', path: '/child', value: { grandchild: {} } }],
    result: { foo: 'bar', child: { grandchild: {} } },
  },
  {
    name: 'A.11 ignoring unrecognized elements',
    doc: { foo: 'bar' },
    patch: [{ op: 'add', path: '/baz', value: 'qux', xyz: 123 }],
    result: { foo: 'bar', baz: 'qux' },
  },
  { name: 'A.12 adding to a nonexistent target', doc: { foo: 'bar' }, patch: [{ op: 'add', path: '/baz/bat', value: 'qux' }], error: (at) => `JSON Patch operation 0 (add "/baz/bat"): ${at}/baz does not exist` },
  { name: 'A.14 ~ escape ordering', doc: { '/': 9, '~1': 10 }, patch: [{ op: 'test', path: '/~01', value: 10 }], result: { '/': 9, '~1': 10 } },
  { name: 'A.15 comparing strings and numbers', doc: { '/': 9, '~1': 10 }, patch: [{ op: 'test', path: '/~01', value: '10' }], error: (at) => `JSON Patch operation 0 (test "/~01"): the value at ${at}/~1 is not the expected one` },
  { name: 'A.16 adding an array value', doc: { foo: ['bar'] }, patch: [{ op: 'add', path: '/foo/-', value: ['abc', 'def'] }], result: { foo: ['bar', ['abc', 'def']] } },
];

describe.each(hosts)('$name', (host) => {
  describe('merge patch (RFC 7396)', () => {
    test.each(rfc7396)('Appendix A at the root: %j + %j = %j', async (original, patch, result) => {
      const ctx = await serve(host, { initial: original as never });
      expectJson(await ctx.patch('/', patch, MERGE), 200, result);
      expect(await ctx.doc()).toEqual(result);
    });

    test.each(rfc7396)('Appendix A below the root: %j + %j = %j', async (original, patch, result) => {
      const ctx = await serve(host, { initial: { before: 1, doc: original as never, after: 2 } });
      expectJson(await ctx.patch('/doc', patch, MERGE), 200, result);
      expect(await ctx.doc()).toEqual({ before: 1, doc: result, after: 2 });
    });

    test('the RFC 7396 section 3 example', async () => {
      const ctx = await serve(host, {
        initial: { title: 'Goodbye!', author: { givenName: 'John', familyName: 'Doe' }, tags: ['example', 'sample'], content: 'This will be unchanged' },
      });
      const reply = await ctx.patch('/', { title: 'Hello!', phoneNumber: '+01-123-456-7890', author: { familyName: null }, tags: ['example'] });
      expectJson(reply, 200, { title: 'Hello!', author: { givenName: 'John' }, tags: ['example'], content: 'This will be unchanged', phoneNumber: '+01-123-456-7890' });
    });

    test('application/json is a merge patch too', async () => {
      const ctx = await serve(host, { initial: { a: 1, b: 2 } });
      expectJson(await ctx.patch('/', { b: null, c: 3 }, 'application/json'), 200, { a: 1, c: 3 });
      expectJson(await ctx.patch('/', { d: 4 }, 'application/json; charset=utf-8'), 200, { a: 1, c: 3, d: 4 });
    });

    test('a PATCH without Content-Type is 415 with Accept-Patch, and changes nothing', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const before = await snapshot(ctx);
      const reply = await ctx.request('PATCH', '/', { body: '{"a":null,"b":2}' });
      expectProblem(reply, 415, /^The request has no Content-Type; send the body as application\/merge-patch\+json, /);
      expect(reply.headers['accept-patch']).toBe('application/merge-patch+json, application/json-patch+json');
      await expectUnchanged(ctx, before);
    });

    test('a missing target counts as null, so it is created: 201 with Location', async () => {
      const ctx = await serve(host, { initial: { a: {} } });
      const reply = await ctx.patch('/a/b/c', { x: 1, y: null, z: { w: null } });
      expectJson(reply, 201, { x: 1, z: {} });
      expect(reply.headers.location).toBe(`${host.base}/a/b/c`);
      expect(await ctx.doc()).toEqual({ a: { b: { c: { x: 1, z: {} } } } });
    });

    test('merging into a missing array element appends at index == length', async () => {
      const ctx = await serve(host, { initial: { list: [{ a: 1 }] } });
      const reply = await ctx.patch('/list/1', { b: 2 });
      expectJson(reply, 201, { b: 2 });
      expect(reply.headers.location).toBe(`${host.base}/list/1`);
    });

    test('members keep their place; new members go last', async () => {
      const ctx = await serve(host, { initial: { a: 1, b: 2, c: 3 } });
      const reply = await ctx.patch('/', { a: 10, d: 4, b: null });
      expect(reply.text).toBe('{"a":10,"c":3,"d":4}');
    });

    test('a merge patch on a path through a scalar is 409 and changes nothing', async () => {
      const ctx = await serve(host, { initial: { s: 'text' } });
      const before = await snapshot(ctx);
      expectProblem(await ctx.patch('/s/x', { a: 1 }), 409, 'Cannot PATCH /s/x: /s is a string');
      await expectUnchanged(ctx, before);
    });

    test('an empty merge patch changes nothing and answers the value', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const before = await snapshot(ctx);
      expectJson(await ctx.patch('/', {}), 200, { a: 1 });
      await expectUnchanged(ctx, before);
    });
  });

  describe('JSON Patch (RFC 6902)', () => {
    test.each(rfc6902)('Appendix $name', async ({ doc, patch, result, error }) => {
      for (const at of ['', '/nested/doc']) {
        const initial = at === '' ? doc : { nested: { doc }, other: 1 };
        const ctx = await serve(host, { initial: initial as never });
        const before = await snapshot(ctx);
        const reply = await ctx.patch(at, patch, JSON_PATCH);
        if (error) {
          expectProblem(reply, 409, error(at));
          await expectUnchanged(ctx, before);
        } else {
          expectJson(reply, 200, result);
          expect(await ctx.doc()).toEqual(at === '' ? result : { nested: { doc: result }, other: 1 });
        }
      }
    });

    test('Appendix A.13: a duplicated "op" member is not treated as "add"', async () => {
      // JSON leaves duplicate names undefined; this store takes the last one,
      // so the operation is a "remove" of a member that does not exist.
      const ctx = await serve(host, { initial: { foo: 'bar' } });
      const before = await snapshot(ctx);
      const reply = await ctx.request('PATCH', '/', {
        body: '[{ "op": "add", "path": "/baz", "value": "qux", "op": "remove" }]',
        headers: { 'Content-Type': JSON_PATCH },
      });
      expectProblem(reply, 409, 'JSON Patch operation 0 (remove "/baz"): /baz does not exist');
      await expectUnchanged(ctx, before);
    });

    test('pointers are relative to the request path', async () => {
      const ctx = await serve(host, { initial: { users: { fred: { tags: ['a'] } }, tags: ['root'] } });
      const reply = await ctx.patch('/users/fred', [
        { op: 'add', path: '/tags/-', value: 'b' },
        { op: 'copy', from: '/tags/0', path: '/first' },
        { op: 'move', from: '/first', path: '/renamed' },
        { op: 'test', path: '/tags', value: ['a', 'b'] },
      ], JSON_PATCH);
      expectJson(reply, 200, { tags: ['a', 'b'], renamed: 'a' });
      expect(await ctx.doc()).toEqual({ users: { fred: { tags: ['a', 'b'], renamed: 'a' } }, tags: ['root'] });
    });

    test('JSON Pointer escapes apply inside the patch: ~0 is "~", ~1 is "/"', async () => {
      const ctx = await serve(host, { initial: { 'a/b': 1, 'm~n': 2 } });
      const reply = await ctx.patch('/', [
        { op: 'replace', path: '/a~1b', value: 10 },
        { op: 'replace', path: '/m~0n', value: 20 },
        { op: 'add', path: '/~01', value: 30 },
      ], JSON_PATCH);
      expectJson(reply, 200, { 'a/b': 10, 'm~n': 20, '~1': 30 });
    });

    test('a patch at a key that contains "/" (reached with %2F) rebases its pointers correctly', async () => {
      const ctx = await serve(host, { initial: { 'a/b': { c: 1 }, a: { b: { c: 'wrong' } } } });
      expectJson(await ctx.patch('/a%2Fb', [{ op: 'replace', path: '/c', value: 2 }], JSON_PATCH), 200, { c: 2 });
      expect(await ctx.doc()).toEqual({ 'a/b': { c: 2 }, a: { b: { c: 'wrong' } } });
    });

    test('a patch with an empty path operates on the value at the request path', async () => {
      const ctx = await serve(host, { initial: { a: { b: 1 }, z: 0 } });
      expectJson(await ctx.patch('/a', [{ op: 'replace', path: '', value: [1] }], JSON_PATCH), 200, [1]);
      expect(await ctx.doc()).toEqual({ a: [1], z: 0 });
    });

    test('the empty patch [] changes nothing and answers the value', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const before = await snapshot(ctx);
      expectJson(await ctx.patch('/', [], JSON_PATCH), 200, { a: 1 });
      await expectUnchanged(ctx, before);
    });

    test('a failed multi-operation patch changes nothing: document, ETag and key order', async () => {
      const initial = { a: 1, b: { x: [1, 2, 3], y: 'keep' }, c: 'last', list: ['p', 'q'] };
      const ctx = await serve(host, { initial });
      const before = await snapshot(ctx);
      const tagB = (await ctx.get('/b')).headers.etag;
      const reply = await ctx.patch('/', [
        { op: 'remove', path: '/a' },
        { op: 'add', path: '/a', value: 'moved to the end' },
        { op: 'replace', path: '/b/y', value: 'changed' },
        { op: 'remove', path: '/b/x/0' },
        { op: 'add', path: '/list/0', value: 'new' },
        { op: 'move', from: '/c', path: '/d' },
        { op: 'copy', from: '/b', path: '/e' },
        { op: 'replace', path: '', value: { even: 'the root' } },
        { op: 'add', path: '/f', value: 1 },
        { op: 'test', path: '/f', value: 2 },
      ], JSON_PATCH);
      expectProblem(reply, 409, 'JSON Patch operation 9 (test "/f"): the value at /f is not the expected one');
      await expectUnchanged(ctx, before);
      expect(before.text).toBe(JSON.stringify(initial));
      expect((await ctx.get('/b')).headers.etag).toBe(tagB);
    });

    test('RFC 6902 section 5: replace then a failing test applies nothing', async () => {
      const ctx = await serve(host, { initial: { a: { b: { c: 'orig' } } } });
      const before = await snapshot(ctx);
      expectProblem(await ctx.patch('/', [
        { op: 'replace', path: '/a/b/c', value: 42 },
        { op: 'test', path: '/a/b/c', value: 'C' },
      ], JSON_PATCH), 409, 'JSON Patch operation 1 (test "/a/b/c"): the value at /a/b/c is not the expected one');
      await expectUnchanged(ctx, before);
    });

    test.each([
      ['remove of a missing member', [{ op: 'remove', path: '/nope' }], 'JSON Patch operation 0 (remove "/nope"): /nope does not exist'],
      ['replace of a missing member', [{ op: 'replace', path: '/nope', value: 1 }], 'JSON Patch operation 0 (replace "/nope"): /nope does not exist, so it cannot be replaced'],
      ['test of a missing member', [{ op: 'test', path: '/nope', value: 1 }], 'JSON Patch operation 0 (test "/nope"): /nope does not exist'],
      ['move from a missing member', [{ op: 'move', from: '/nope', path: '/x' }], 'JSON Patch operation 0 (move "/x"): /nope does not exist'],
      ['copy from a missing member', [{ op: 'copy', from: '/nope', path: '/x' }], 'JSON Patch operation 0 (copy "/x"): /nope does not exist'],
      ['add past the end of an array', [{ op: 'add', path: '/list/3', value: 1 }], 'JSON Patch operation 0 (add "/list/3"): index 3 is out of range for the array at /list (length 2)'],
      ['add with a non-index on an array', [{ op: 'add', path: '/list/01', value: 1 }], 'JSON Patch operation 0 (add "/list/01"): "01" is not an index into the array at /list'],
      ['remove at "-"', [{ op: 'remove', path: '/list/-' }], 'JSON Patch operation 0 (remove "/list/-"): "-" is not an index into the array at /list'],
      ['add into a scalar', [{ op: 'add', path: '/s/x', value: 1 }], 'JSON Patch operation 0 (add "/s/x"): /s is a string, which has no members'],
      ['move into its own child', [{ op: 'move', from: '/o', path: '/o/child' }], 'JSON Patch operation 0 (move "/o/child"): cannot move /o into its own child'],
      ['move of a missing member onto itself', [{ op: 'move', from: '/nope', path: '/nope' }], 'JSON Patch operation 0 (move "/nope"): /nope does not exist'],
      ['inherited names are not members', [{ op: 'remove', path: '/toString' }], 'JSON Patch operation 0 (remove "/toString"): /toString does not exist'],
    ])('%s is 409 and changes nothing', async (_name, patch, detail) => {
      const ctx = await serve(host, { initial: { list: [1, 2], s: 'text', o: { k: 1 } } });
      const before = await snapshot(ctx);
      expectProblem(await ctx.patch('/', [{ op: 'add', path: '/first', value: 'applied first' }, ...patch], JSON_PATCH), 409, detail.replace('operation 0', 'operation 1'));
      await expectUnchanged(ctx, before);
    });

    test.each([
      ['not an array', { op: 'add', path: '/a', value: 1 }, 'A JSON Patch document must be an array of operations, such as [{"op":"replace","path":"/name","value":"x"}]'],
      ['an operation that is not an object', ['add'], 'JSON Patch operation 0: must be an object'],
      ['an unknown op', [{ op: 'merge', path: '/a', value: 1 }], 'JSON Patch operation 0: "op" must be one of add, remove, replace, move, copy, test'],
      ['a missing op', [{ path: '/a', value: 1 }], 'JSON Patch operation 0: "op" must be one of add, remove, replace, move, copy, test'],
      ['a missing path', [{ op: 'add', value: 1 }], 'JSON Patch operation 0: "add" needs a "path"'],
      ['a path that is not a string', [{ op: 'remove', path: 1 }], 'JSON Patch operation 0: "path" must be a JSON Pointer string'],
      ['a path without a leading "/"', [{ op: 'remove', path: 'a' }], 'JSON Patch operation 0: "path" "a" is not a JSON Pointer: it must be empty or start with "/"'],
      ['a bad "~" escape', [{ op: 'remove', path: '/a~2' }], 'JSON Patch operation 0: "path" "/a~2" has "~" not followed by 0 or 1'],
      ['add without value', [{ op: 'add', path: '/a' }], 'JSON Patch operation 0: "add" needs a "value"'],
      ['replace without value', [{ op: 'replace', path: '/a' }], 'JSON Patch operation 0: "replace" needs a "value"'],
      ['test without value', [{ op: 'test', path: '/a' }], 'JSON Patch operation 0: "test" needs a "value"'],
      ['move without from', [{ op: 'move', path: '/a' }], 'JSON Patch operation 0: "move" needs a "from"'],
      ['copy with a bad from', [{ op: 'copy', from: 'a', path: '/b' }], 'JSON Patch operation 0: "from" "a" is not a JSON Pointer: it must be empty or start with "/"'],
      ['a malformed operation after good ones', [{ op: 'add', path: '/b', value: 1 }, { op: 'nope' }], 'JSON Patch operation 1: "op" must be one of add, remove, replace, move, copy, test'],
    ])('a malformed patch (%s) is 400 and changes nothing', async (_name, patch, detail) => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const before = await snapshot(ctx);
      expectProblem(await ctx.patch('/', patch, JSON_PATCH), 400, detail);
      await expectUnchanged(ctx, before);
    });

    test('a JSON Patch on a missing target is 404 and changes nothing', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      const before = await snapshot(ctx);
      expectProblem(await ctx.patch('/nope', [{ op: 'add', path: '/x', value: 1 }], JSON_PATCH), 404, 'Cannot PATCH /nope: it does not exist');
      await expectUnchanged(ctx, before);
    });

    test('test compares JSON values structurally, ignoring member order', async () => {
      const ctx = await serve(host, { initial: { o: { a: 1, b: [1, { c: null }] }, n: 1 } });
      expectJson(await ctx.patch('/', [
        { op: 'test', path: '/o', value: { b: [1, { c: null }], a: 1 } },
        { op: 'test', path: '/n', value: 1.0 },
        { op: 'replace', path: '/n', value: 2 },
      ], JSON_PATCH), 200, { o: { a: 1, b: [1, { c: null }] }, n: 2 });
    });

    test('test distinguishes null, missing, false, 0 and ""', async () => {
      const ctx = await serve(host, { initial: { n: null } });
      for (const value of [false, 0, '', [], {}]) {
        expectProblem(await ctx.patch('/', [{ op: 'test', path: '/n', value }], JSON_PATCH), 409);
      }
      expectJson(await ctx.patch('/', [{ op: 'test', path: '/n', value: null }], JSON_PATCH), 200, { n: null });
    });

    test('a move onto itself changes nothing', async () => {
      const ctx = await serve(host, { initial: { a: 1, b: 2 } });
      const before = await snapshot(ctx);
      expectJson(await ctx.patch('/', [{ op: 'move', from: '/a', path: '/a' }], JSON_PATCH), 200, { a: 1, b: 2 });
      // Text and ETag only: the engine still counts a revision (and emits a
      // change with no operations) for a write whose operations were all no-ops.
      const after = await snapshot(ctx);
      expect([after.text, after.etag]).toEqual([before.text, before.etag]);
    });

    test('copy makes an independent copy', async () => {
      const ctx = await serve(host, { initial: { a: { list: [1] } } });
      await ctx.patch('/', [{ op: 'copy', from: '/a', path: '/b' }, { op: 'add', path: '/b/list/-', value: 2 }], JSON_PATCH);
      expect(await ctx.doc()).toEqual({ a: { list: [1] }, b: { list: [1, 2] } });
    });

    describe('the empty pointer "" is the target itself, also below the root', () => {
      test('add "" replaces an array element instead of inserting before it', async () => {
        const ctx = await serve(host);
        expectJson(await ctx.put('/', { a: [{ x: 1 }, 2] }), 200, { a: [{ x: 1 }, 2] });
        expectJson(await ctx.patch('/a/0', [{ op: 'add', path: '', value: 9 }], JSON_PATCH), 200, 9);
        expect((await ctx.get('/')).text).toBe('{"a":[9,2]}');
      });

      test('add "" replaces an object member in its place', async () => {
        const ctx = await serve(host, { initial: { o: { t: { x: 1 }, after: 2 } } });
        expectJson(await ctx.patch('/o/t', [{ op: 'add', path: '', value: [9] }], JSON_PATCH), 200, [9]);
        expect((await ctx.get('/')).text).toBe('{"o":{"t":[9],"after":2}}');
      });

      test.each([
        ['an array element', '/a/0', { a: [{ x: { y: 1 }, z: 3 }, 2] }, '{"a":[{"y":1},2]}'],
        ['an object member', '/o/t', { o: { t: { x: { y: 1 }, z: 3 }, after: 2 } }, '{"o":{"t":{"y":1},"after":2}}'],
      ])('copy and move onto "" replace %s with the value from inside it', async (_name, target, initial, result) => {
        for (const op of ['copy', 'move']) {
          const ctx = await serve(host, { initial: initial as never });
          expectJson(await ctx.patch(target, [{ op, from: '/x', path: '' }], JSON_PATCH), 200, { y: 1 });
          expect((await ctx.get('/')).text).toBe(result);
        }
      });

      test('copy "" onto "" and move "" onto "" leave an array element as it was', async () => {
        const ctx = await serve(host, { initial: { a: [{ x: 1 }, 2] } });
        const before = await snapshot(ctx);
        expectJson(await ctx.patch('/a/0', [{ op: 'copy', from: '', path: '' }, { op: 'move', from: '', path: '' }], JSON_PATCH), 200, { x: 1 });
        const after = await snapshot(ctx);
        expect([after.text, after.etag]).toEqual([before.text, before.etag]);
      });

      test('operations after add "" apply to the new value, at the same place', async () => {
        const ctx = await serve(host, { initial: { a: [{ x: 1 }, 2] } });
        const reply = await ctx.patch('/a/0', [
          { op: 'add', path: '', value: { fresh: true } },
          { op: 'add', path: '/more', value: 1 },
          { op: 'test', path: '', value: { fresh: true, more: 1 } },
        ], JSON_PATCH);
        expectJson(reply, 200, { fresh: true, more: 1 });
        expect((await ctx.get('/')).text).toBe('{"a":[{"fresh":true,"more":1},2]}');
      });

      test('a failure after add "" in an array changes nothing', async () => {
        const ctx = await serve(host, { initial: { a: [{ x: 1 }, 2] } });
        const before = await snapshot(ctx);
        expectProblem(
          await ctx.patch('/a/0', [{ op: 'move', from: '/x', path: '' }, { op: 'test', path: '', value: 2 }], JSON_PATCH),
          409,
          'JSON Patch operation 1 (test ""): the value at /a/0 is not the expected one',
        );
        expectProblem(
          await ctx.patch('/a/0', [{ op: 'copy', from: '/nope', path: '' }], JSON_PATCH),
          409,
          'JSON Patch operation 0 (copy ""): /a/0/nope does not exist',
        );
        await expectUnchanged(ctx, before);
      });

      test.each([
        ['an array element', '/a/0', '{"a":[2],"o":{"t":{"x":1},"after":2}}'],
        ['an object member', '/o/t', '{"a":[{"x":1},2],"o":{"after":2}}'],
      ])('remove "" removes %s itself: 204, nothing is left at the path', async (_name, target, result) => {
        const ctx = await serve(host, { initial: { a: [{ x: 1 }, 2], o: { t: { x: 1 }, after: 2 } } });
        const reply = await ctx.patch(target, [{ op: 'test', path: '/x', value: 1 }, { op: 'remove', path: '' }], JSON_PATCH);
        expect({ status: reply.status, text: reply.text, etag: reply.headers.etag }).toEqual({ status: 204, text: '', etag: undefined });
        expect((await ctx.get('/')).text).toBe(result);
      });

      test.each(['/a/0', '/o/t'])('any operation after remove "" at %s is 409, and nothing changes', async (target) => {
        const ctx = await serve(host, { initial: { a: [{ x: 1 }, 2], o: { t: { x: 1 }, after: 2 } } });
        const before = await snapshot(ctx);
        for (const later of [{ op: 'replace', path: '', value: 0 }, { op: 'test', path: '', value: 2 }, { op: 'add', path: '/y', value: 1 }]) {
          expectProblem(
            await ctx.patch(target, [{ op: 'remove', path: '' }, later], JSON_PATCH),
            409,
            `JSON Patch operation 1 (${later.op} ${JSON.stringify(later.path)}): operation 0 removed ${target}, the value this patch was sent to, so no operation may follow it`,
          );
          await expectUnchanged(ctx, before);
        }
      });

      test('at the root, remove "" still leaves {} and later operations apply to it', async () => {
        const ctx = await serve(host, { initial: { a: 1 } });
        expectJson(await ctx.patch('/', [{ op: 'remove', path: '' }, { op: 'add', path: '/b', value: 2 }], JSON_PATCH), 200, { b: 2 });
        expectJson(await ctx.patch('/', [{ op: 'remove', path: '' }], JSON_PATCH), 200, {});
      });

      test('the programmatic API reports remove "" as leaving nothing', async () => {
        const ctx = await serve(host, { initial: { a: [{ x: 1 }, 2] } });
        const result = await ctx.store.patch('/a/0', [{ op: 'remove', path: '' }], { type: 'json-patch' });
        expect({ value: result.value, etag: result.etag }).toEqual({ value: undefined, etag: undefined });
        expect(await ctx.doc()).toEqual({ a: [2] });
      });
    });

    test('JSON Patch may replace or remove the root it was sent to', async () => {
      const ctx = await serve(host, { initial: { a: 1 } });
      expectJson(await ctx.patch('/', [{ op: 'replace', path: '', value: ['new'] }], JSON_PATCH), 200, ['new']);
      expect(await ctx.doc()).toEqual(['new']);
    });
  });
});
