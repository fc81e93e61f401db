/**
 * Odd request shapes with every method: very deep and very long paths,
 * NUL and bad percent-escapes, `..`, huge and non-canonical indexes, `-`.
 * Each answer is 2xx or 4xx, never 5xx, and a refused request leaves the
 * document byte for byte as it was.
 */
import { afterEach, describe, expect, test } from 'vitest';
import type { JsonValue } from '../../src/index.js';
import { closeServers, hosts, serve, type Reply, type Served } from './hosts.js';
import { expectJson, expectProblem, expectUnchanged, snapshot } from './support.js';

afterEach(closeServers);

const JSON_PATCH = 'application/json-patch+json';

/** Paths below the mount point. */
const shapes: Array<[string, string]> = [
  ['2 000 segments', '/d'.repeat(2000)],
  ['1 500 segments into an array', '/list' + '/0'.repeat(1500)],
  ['a key of 8 000 characters', '/' + 'k'.repeat(8000)],
  ['%00 inside a key', '/obj/a%00b'],
  ['a key that is only %00', '/%00'],
  ['a bad percent-escape', '/obj/%zz'],
  ['a truncated UTF-8 escape', '/obj/%E0%A4'],
  ['a lone %', '/%'],
  ['..', '/..'],
  ['.. below a member', '/obj/../list'],
  ['escaped ..', '/%2E%2E/x'],
  ['.', '/./obj'],
  ['an index past 2^64', '/list/99999999999999999999'],
  ['a leading zero', '/list/01'],
  ['- on an array', '/list/-'],
  ['- then more segments', '/list/-/x'],
  ['- on an object', '/obj/-'],
  ['an exponent as index', '/list/1e3'],
  ['a negative index', '/list/-1'],
  ['a step into a string', '/s/x'],
  ['empty segments', '//obj//k//'],
  ['escaped slashes', '/%2F%2F'],
  ['JSON Pointer escapes (ordinary characters here)', '/~0~1'],
  ['a query flag that is not understood', '/obj?shallow=maybe'],
];

interface Attempt {
  name: string;
  send(ctx: Served, path: string): Promise<Reply>;
}

const json = { 'Content-Type': 'application/json' };
const attempts: Attempt[] = [
  { name: 'GET', send: (ctx, path) => ctx.request('GET', path) },
  { name: 'HEAD', send: (ctx, path) => ctx.request('HEAD', path) },
  { name: 'OPTIONS', send: (ctx, path) => ctx.request('OPTIONS', path) },
  { name: 'PUT', send: (ctx, path) => ctx.request('PUT', path, { body: '{"z":1}', headers: json }) },
  { name: 'POST', send: (ctx, path) => ctx.request('POST', path, { body: '{"z":1}', headers: json }) },
  { name: 'PATCH (merge)', send: (ctx, path) => ctx.request('PATCH', path, { body: '{"z":{"y":null}}', headers: { 'Content-Type': 'application/merge-patch+json' } }) },
  { name: 'PATCH (JSON Patch)', send: (ctx, path) => ctx.request('PATCH', path, { body: '[{"op":"add","path":"/z","value":1}]', headers: { 'Content-Type': JSON_PATCH } }) },
  { name: 'PATCH (JSON Patch on "")', send: (ctx, path) => ctx.request('PATCH', path, { body: '[{"op":"add","path":"","value":1},{"op":"remove","path":""}]', headers: { 'Content-Type': JSON_PATCH } }) },
  { name: 'DELETE', send: (ctx, path) => ctx.request('DELETE', path) },
];

describe.each(hosts)('$name', (host) => {
  test.each(shapes)('%s: every method answers 2xx or 4xx, and a refusal changes nothing', async (_name, path) => {
    const ctx = await serve(host, { initial: { list: [1, 2], obj: { k: 1 }, s: 'text' } });
    ctx.store.on('error', () => {});
    for (const attempt of attempts) {
      const before = await snapshot(ctx);
      const reply = await attempt.send(ctx, path);
      expect(reply.status, `${attempt.name} ${path.slice(0, 40)}: ${reply.text.slice(0, 300)}`).toBeLessThan(500);
      if (reply.status >= 400) {
        if (attempt.name !== 'HEAD') expectProblem(reply, reply.status);
        await expectUnchanged(ctx, before);
      } else {
        expect(reply.status).toBeGreaterThanOrEqual(200);
      }
    }
    // The server still answers normally afterwards.
    expect((await ctx.get('/')).status).toBe(200);
  });

  test('a write at a path deeper than maxDepth is 400 naming the option, whatever the method; a read is 404', async () => {
    const ctx = await serve(host, { initial: { a: 1 } });
    const before = await snapshot(ctx);
    const deep = '/d'.repeat(2000);
    const detail = 'The path has 2000 segments, more than the 100 levels a write may reach (the maxDepth option)';
    expectProblem(await ctx.put(deep, 1), 400, detail);
    expectProblem(await ctx.post(deep, 1), 400, detail);
    expectProblem(await ctx.patch(deep, { x: 1 }), 400, detail);
    expectProblem(await ctx.patch(deep, [{ op: 'add', path: '/x', value: 1 }], JSON_PATCH), 400, detail);
    expectProblem(await ctx.delete(deep), 400, detail);
    expectProblem(await ctx.put('/a' + '/d'.repeat(100), 1), 400, 'The path has 101 segments, more than the 100 levels a write may reach (the maxDepth option)');
    expectProblem(await ctx.get(deep), 404, /^Nothing at \/d\/d\/d.*: \/ has no member "d"$/);
    await expectUnchanged(ctx, before);
    await expect(ctx.store.put(deep.split('/').slice(1), 1)).rejects.toThrow(detail);
  });

  test('a JSON Patch cannot pass maxDepth by shifting a deep value away from the path it was written at', async () => {
    let shallow: JsonValue = 0;
    for (let i = 0; i < 90; i++) shallow = [shallow]; // 90 levels at /y: 91 in all
    const w = { p: { p: { p: { p: { p: { p: { p: { p: { p: { p: {} } } } } } } } } } }; // /w/p/... 11 levels of objects
    const ctx = await serve(host, { initial: { x: { a: [0] }, y: shallow, w } });
    const before = await snapshot(ctx);
    let nested: unknown = 0;
    for (let i = 0; i < 98; i++) nested = [nested]; // 98 levels at /x/a/1: 101 in all
    const detail = /would nest the document more than 100 levels deep \(the maxDepth option\)/;
    // Added at the end, then shifted down by removing the element before it.
    expectProblem(await ctx.patch('/x/a', [{ op: 'add', path: '/-', value: nested }, { op: 'remove', path: '/0' }], JSON_PATCH), 400, detail);
    // Added at 0, then shifted up by inserting another element before it.
    expectProblem(await ctx.patch('/x/a', [{ op: 'add', path: '/0', value: nested }, { op: 'add', path: '/0', value: 0 }], JSON_PATCH), 400, detail);
    // Copied or moved deeper than it was.
    expectProblem(await ctx.patch('/', [{ op: 'copy', from: '/y', path: '/y' + '/0'.repeat(20) }], JSON_PATCH), 400, detail);
    expectProblem(await ctx.patch('/', [{ op: 'move', from: '/y', path: '/w' + '/p'.repeat(10) + '/y' }], JSON_PATCH), 400, detail);
    await expectUnchanged(ctx, before);
  });

  test('with maxDepth at its largest (1000), a write 1000 levels deep works and one level more is 400', async () => {
    const ctx = await serve(host, { maxDepth: 1000 });
    const path = '/d'.repeat(1000);
    expectJson(await ctx.put(path, 'bottom'), 201, 'bottom');
    expectJson(await ctx.get(path), 200, 'bottom');
    expect((await ctx.get('/')).text).toBe('{"d":'.repeat(1000) + '"bottom"' + '}'.repeat(1000));
    const before = await snapshot(ctx);
    expectProblem(await ctx.put(path + '/e', 1), 400, 'The path has 1001 segments, more than the 1000 levels a write may reach (the maxDepth option)');
    expectProblem(await ctx.put('/d'.repeat(999) + '/e', { f: 1 }), 400, /would nest the document more than 1000 levels deep \(the maxDepth option\)$/);
    await expectUnchanged(ctx, before);
  });
});
