/**
 * Collection queries over real HTTP: Firebase's REST parameters and
 * json-server 0.17's, their errors, ETags and paging headers.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { closeServers, hosts, serve, type Served } from './hosts.js';
import { expectJson, expectProblem, expectStrongEtag } from './support.js';
import type { JsonValue } from '../../src/document/json.js';

afterEach(closeServers);

const dinosaurs = {
  lambeosaurus: { height: 2.1, length: 12.5, weight: 5000, dimensions: { height: 2.1 } },
  stegosaurus: { height: 4, length: 9, weight: 2500, dimensions: { height: 4 } },
  bruhathkayosaurus: { height: 25, length: 44, weight: 135000, dimensions: { height: 25 } },
  linhenykus: { height: 0.6, length: 1, weight: 3, dimensions: { height: 0.6 } },
  pterodactyl: { height: 1.1, length: 1.5, weight: 8 },
};

const posts: JsonValue[] = [
  { id: 1, title: 'json-server', author: { name: 'typicode' }, views: 100, tags: ['rest'] },
  { id: 2, title: 'Firebase REST', author: { name: 'google' }, views: 250, tags: ['db', 'rest'] },
  { id: 3, title: 'express', author: { name: 'tj' }, views: 250 },
  { id: 4, title: 'Koa', author: { name: 'tj' }, views: 40, draft: true },
  { id: 5, title: 'fastify', author: { name: 'matteo' }, views: 90 },
];


/** The answer's text, to check member order exactly (JSON.parse would reorder integer-like keys). */
async function text(ctx: Served, path: string): Promise<string> {
  const reply = await ctx.get(path);
  expect(reply.status, reply.text).toBe(200);
  return reply.text;
}

const chosen = [hosts[0], hosts[3], hosts[6]].filter((host) => host !== undefined);

describe.each(chosen)('$name', (host) => {
  describe('Firebase dialect', () => {
    test('orderBy a child with limitToFirst answers an object in the order asked', async () => {
      const ctx = await serve(host, { initial: { dinosaurs } });
      expect(await text(ctx, '/dinosaurs?orderBy="height"&limitToFirst=2')).toBe(
        JSON.stringify({ linhenykus: dinosaurs.linhenykus, pterodactyl: dinosaurs.pterodactyl }),
      );
      expect(Object.keys(JSON.parse(await text(ctx, '/dinosaurs?orderBy="height"&limitToLast=2')) as object)).toEqual([
        'stegosaurus',
        'bruhathkayosaurus',
      ]);
      // A nested child path; members without it come first.
      expect(Object.keys(JSON.parse(await text(ctx, '/dinosaurs?orderBy="dimensions/height"')) as object)).toEqual([
        'pterodactyl',
        'linhenykus',
        'lambeosaurus',
        'stegosaurus',
        'bruhathkayosaurus',
      ]);
    });

    test('startAt, endAt and equalTo take JSON values', async () => {
      const ctx = await serve(host, { initial: { dinosaurs } });
      expect(Object.keys(JSON.parse(await text(ctx, '/dinosaurs?orderBy="height"&startAt=2&endAt=10')) as object)).toEqual([
        'lambeosaurus',
        'stegosaurus',
      ]);
      expect(JSON.parse(await text(ctx, '/dinosaurs?orderBy="weight"&equalTo=2500'))).toEqual({ stegosaurus: dinosaurs.stegosaurus });
      expect(Object.keys(JSON.parse(await text(ctx, '/dinosaurs?orderBy="$key"&startAt="l"&endAt="m"')) as object)).toEqual([
        'lambeosaurus',
        'linhenykus',
      ]);
      // URL-encoded JSON works the same.
      expect(JSON.parse(await text(ctx, `/dinosaurs?orderBy=${encodeURIComponent('"$key"')}&equalTo=${encodeURIComponent('"stegosaurus"')}`))).toEqual({
        stegosaurus: dinosaurs.stegosaurus,
      });
    });

    test('$value orders mixed types as Firebase does: null, false, true, numbers, strings, objects; ties by key', async () => {
      const mixed = { s: 'b', n3: 3, z: null, t: true, f: false, o2: { x: 1 }, n1: 1, a: 'a', o1: [1], t2: true, 10: 1, 9: 1 };
      const ctx = await serve(host, { initial: { mixed } });
      // Keys that read as 32-bit integers sort before the others, numerically.
      expect(await text(ctx, '/mixed?orderBy="$value"')).toBe(
        '{"z":null,"f":false,"t":true,"t2":true,"9":1,"10":1,"n1":1,"n3":3,"a":"a","s":"b","o1":[1],"o2":{"x":1}}',
      );
      expect(await text(ctx, '/mixed?orderBy="$key"&limitToFirst=3')).toBe('{"9":1,"10":1,"a":"a"}');
      expect(await text(ctx, '/mixed?orderBy="$value"&startAt=true&endAt=1')).toBe('{"t":true,"t2":true,"9":1,"10":1,"n1":1}');
      expect(await text(ctx, '/mixed?orderBy="$value"&equalTo=null')).toBe('{"z":null}');
    });

    test('on an array the answer is an array of the selected elements, in order', async () => {
      const ctx = await serve(host, { initial: { posts } });
      expectJson(await ctx.get('/posts?orderBy="views"&limitToLast=2'), 200, [posts[1], posts[2]]);
      expectJson(await ctx.get('/posts?orderBy="$key"&startAt="3"'), 200, [posts[3], posts[4]]);
      expectJson(await ctx.get('/posts?orderBy="author/name"&equalTo="tj"'), 200, [posts[2], posts[3]]);
      expectJson(await ctx.get('/posts?orderBy="draft"&equalTo=true'), 200, [posts[3]]);
    });

    test('?pretty indents a query answer and keeps its order', async () => {
      const ctx = await serve(host, { initial: { m: { b: 2, a: 1 } } });
      expect(await text(ctx, '/m?orderBy="$value"&pretty')).toBe('{\n  "a": 1,\n  "b": 2\n}\n');
      expect(await text(ctx, '/m?orderBy="$value"&print=pretty')).toBe('{\n  "a": 1,\n  "b": 2\n}\n');
    });

    test.each([
      ['/dinosaurs?orderBy=height', /orderBy must be a JSON string.*orderBy=height/],
      ['/dinosaurs?limitToFirst=2', /limitToFirst needs orderBy/],
      ['/dinosaurs?orderBy="height"&limitToFirst=0', /limitToFirst must be a positive integer/],
      ['/dinosaurs?orderBy="height"&limitToFirst=2&limitToLast=2', /cannot be combined/],
      ['/dinosaurs?orderBy="height"&startAt={}', /startAt must be a JSON string, number, boolean or null/],
      ['/dinosaurs?orderBy="height"&equalTo=1&startAt=0', /equalTo cannot be combined with startAt/],
      ['/dinosaurs?orderBy="$key"&startAt=3', /With orderBy="\$key", startAt must be a JSON string/],
      ['/dinosaurs?orderBy="$priority"', /no priorities/],
      ['/dinosaurs?orderby="height"', /Unknown query parameter orderby; did you mean orderBy\?/],
      ['/dinosaurs?orderBy="height"&orderBy="weight"', /orderBy is given 2 times/],
    ])('%s is 400 and says why', async (path, detail) => {
      const ctx = await serve(host, { initial: { dinosaurs } });
      expectProblem(await ctx.get(path), 400, detail);
    });
  });

  describe('json-server dialect', () => {
    test('_sort by several fields, descending with - or _order', async () => {
      const ctx = await serve(host, { initial: { posts } });
      const ids = async (query: string) => ((JSON.parse(await text(ctx, `/posts?${query}`)) as Array<{ id: number }>).map((post) => post.id));
      expect(await ids('_sort=views')).toEqual([4, 5, 1, 2, 3]);
      expect(await ids('_sort=views&_order=desc')).toEqual([2, 3, 1, 5, 4]);
      expect(await ids('_sort=-views,title')).toEqual([2, 3, 1, 5, 4]);
      expect(await ids('_sort=views,id&_order=desc,desc')).toEqual([3, 2, 1, 5, 4]);
      expect(await ids('_sort=author.name,-id')).toEqual([2, 5, 4, 3, 1]);
    });

    test('field filters: equality, ranges, _ne, _like, nested fields, repeated values', async () => {
      const ctx = await serve(host, { initial: { posts } });
      const ids = async (query: string) => ((JSON.parse(await text(ctx, `/posts?${query}`)) as Array<{ id: number }>).map((post) => post.id));
      expect(await ids('views=250')).toEqual([2, 3]);
      expect(await ids('id=1&id=4')).toEqual([1, 4]);
      expect(await ids('views_gte=100&views_lte=250')).toEqual([1, 2, 3]);
      expect(await ids('views_ne=250')).toEqual([1, 4, 5]);
      expect(await ids('title_like=^f')).toEqual([2, 5]);
      expect(await ids('author.name=tj')).toEqual([3, 4]);
      expect(await ids('draft=true')).toEqual([4]);
      expect(await ids('tags=db,rest')).toEqual([2]);
      expect(await ids('q=REST')).toEqual([1, 2]);
      expect(await ids('q=tj&_sort=-id')).toEqual([4, 3]);
      expect(await ids('nosuchfield=1')).toEqual([]);
    });

    test('_start, _end and _limit cut a window and send X-Total-Count', async () => {
      const ctx = await serve(host, { initial: { posts } });
      const limited = await ctx.get('/posts?_sort=-views&_limit=2');
      expectJson(limited, 200, [posts[1], posts[2]]);
      expect(limited.headers['x-total-count']).toBe('5');
      const sliced = await ctx.get('/posts?views_gte=90&_start=1&_end=3');
      expectJson(sliced, 200, [posts[1], posts[2]]);
      expect(sliced.headers['x-total-count']).toBe('4');
      expectJson(await ctx.get('/posts?_start=1&_limit=1'), 200, [posts[1]]);
      expect((await ctx.get('/posts?_sort=id')).headers['x-total-count']).toBeUndefined();
    });

    test('_page answers a page with X-Total-Count and RFC 8288 Link to first, prev, next and last', async () => {
      const ctx = await serve(host, { initial: { posts } });
      const page = await ctx.get('/posts?_page=2&_limit=2');
      expectJson(page, 200, [posts[2], posts[3]]);
      expect(page.headers['x-total-count']).toBe('5');
      const at = ctx.url('/posts');
      expect(page.headers.link).toBe(
        `<${at}?_page=1&_limit=2>; rel="first", <${at}?_page=1&_limit=2>; rel="prev", <${at}?_page=3&_limit=2>; rel="next", <${at}?_page=3&_limit=2>; rel="last"`,
      );
      const last = await ctx.get('/posts?_per_page=2&_page=3');
      expectJson(last, 200, [posts[4]]);
      expect(last.headers.link).toBe(`<${at}?_per_page=2&_page=1>; rel="first", <${at}?_per_page=2&_page=2>; rel="prev", <${at}?_per_page=2&_page=3>; rel="last"`);
      // The default page size is 10, as in json-server 0.17.
      const all = await ctx.get('/posts?_page=1');
      expectJson(all, 200, posts);
      expect(all.headers.link).toBeUndefined();
      expectJson(await ctx.get('/posts?_page=9'), 200, []);
    });

    test('on an object the members keep their keys', async () => {
      const ctx = await serve(host, { initial: { dinosaurs } });
      expect(Object.keys(JSON.parse(await text(ctx, '/dinosaurs?_sort=-weight&_limit=2')) as object)).toEqual(['bruhathkayosaurus', 'lambeosaurus']);
      expect(JSON.parse(await text(ctx, '/dinosaurs?weight_lte=8'))).toEqual({ linhenykus: dinosaurs.linhenykus, pterodactyl: dinosaurs.pterodactyl });
    });

    test.each([
      ['/posts?_sortt=views', /Unknown query parameter _sortt; accepted parameters are .*orderBy.*_sort/],
      ['/posts?_embed=comments', /_embed is not supported: relations/],
      ['/posts?_limit=-1', /_limit must be a non-negative integer/],
      ['/posts?_order=desc', /_order needs _sort/],
      ['/posts?_sort=id&_order=up', /_order takes asc or desc/],
      ['/posts?title_like=(', /title_like is not a valid regular expression/],
      ['/posts?title_like=(a%2B)%2B%24', /repeated group/],
      ['/posts?title_like=(.*a){20}', /repeated group/],
      ['/posts?title_like=(a)\\1', /backreferences/],
      [`/posts?title_like=${'a'.repeat(201)}`, /at most 200/],
      ['/posts?_page=1&_start=2', /_page cannot be combined with _start/],
    ])('%s is 400 and says why', async (path, detail) => {
      const ctx = await serve(host, { initial: { posts } });
      expectProblem(await ctx.get(path), 400, detail);
    });
  });

  describe('both dialects', () => {
    test('mixing dialects, a query on a scalar, and shallow with a query are 400', async () => {
      const ctx = await serve(host, { initial: { posts, title: 'x' } });
      expectProblem(await ctx.get('/posts?orderBy="id"&_limit=2'), 400, /mixes Firebase parameters \(orderBy\) with json-server parameters \(_limit\)/);
      expectProblem(await ctx.get('/title?_sort=id'), 400, 'Queries apply to arrays and objects; /title is a string. GET it without query parameters');
      expectProblem(await ctx.get('/posts?shallow=true&_sort=id'), 400, /shallow cannot be combined with a query/);
      // A missing path is 404, query or not.
      expectProblem(await ctx.get('/nothing?_sort=id'), 404, /Nothing at \/nothing/);
    });

    test('a query answer has its own strong ETag and honours If-None-Match', async () => {
      const ctx = await serve(host, { initial: { posts } });
      const first = await ctx.get('/posts?_sort=-views&_limit=2');
      const etag = expectStrongEtag(first);
      expect(etag).not.toBe((await ctx.get('/posts')).headers.etag);
      const again = await ctx.get('/posts?_sort=-views&_limit=2', { 'If-None-Match': etag });
      expect(again.status).toBe(304);
      expect(again.text).toBe('');
      expect(again.headers.etag).toBe(etag);
      // A change outside the window still changes the count, so the tag.
      expect((await ctx.post('/posts', { id: 6, views: 1 })).status).toBe(201);
      const after = await ctx.get('/posts?_sort=-views&_limit=2', { 'If-None-Match': etag });
      expectJson(after, 200, [posts[1], posts[2]]);
      expect(after.headers.etag).not.toBe(etag);
      expect(after.headers['x-total-count']).toBe('6');
      const firebase = await ctx.get('/posts?orderBy="views"&limitToLast=1');
      expect((await ctx.get('/posts?orderBy="views"&limitToLast=1', { 'If-None-Match': firebase.headers.etag as string })).status).toBe(304);
    });

    test('HEAD sends the headers of the query answer without a body', async () => {
      const ctx = await serve(host, { initial: { posts } });
      const get = await ctx.get('/posts?_page=1&_limit=2');
      const head = await ctx.request('HEAD', '/posts?_page=1&_limit=2');
      expect(head.status).toBe(200);
      expect(head.text).toBe('');
      for (const name of ['etag', 'content-length', 'x-total-count', 'link']) expect(head.headers[name]).toBe(get.headers[name]);
    });

    test('a query with Accept: text/event-stream is 400: live queries are not supported yet', async () => {
      const ctx = await serve(host, { initial: { posts } });
      expectProblem(await ctx.get('/posts?_sort=id', { Accept: 'text/event-stream' }), 400, /Live queries are not supported yet/);
    });

    test('without live updates (live: false) a query asked for as text/event-stream gets its JSON answer', async () => {
      const ctx = await serve(host, { initial: { posts }, live: false });
      const reply = await ctx.get('/posts?_limit=1', { Accept: 'text/event-stream' });
      expect({ status: reply.status, type: reply.headers['content-type'], total: reply.headers['x-total-count'] }).toEqual({
        status: 200,
        type: 'application/json; charset=utf-8',
        total: String(posts.length),
      });
    });

    test('writes take no query string; reads keep ?shallow, ?pretty and jQuery cache busting', async () => {
      const ctx = await serve(host, { initial: { posts, m: { a: 1 } } });
      expectProblem(await ctx.put('/m/b?_sort=id', 2), 400, /PUT takes no query parameters \(got _sort\)/);
      expectProblem(await ctx.post('/posts?x=1', {}), 400, /POST takes no query parameters/);
      expectProblem(await ctx.delete('/m/a?orderBy="$key"'), 400, /DELETE takes no query parameters/);
      expect(await ctx.doc()).toEqual({ posts, m: { a: 1 } });
      expectJson(await ctx.get('/m?shallow=true'), 200, { a: true });
      expectJson(await ctx.get('/m?_=1700000000000'), 200, { a: 1 });
      expectProblem(await ctx.get('/m?shallow=maybe'), 400, '?shallow=maybe is not understood; use ?shallow=true or ?shallow=false');
    });
  });
});
