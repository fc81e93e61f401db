/**
 * Side by side with the real json-server 0.17 on the same data: the same
 * json-server queries give the same members in the same order, the same
 * X-Total-Count and the same Link relations and pages.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import jsonServer from 'json-server';
import { jsonStore } from '../../src/index.js';
import type { JsonValue } from '../../src/document/json.js';
import { randomSource } from '../support/random.js';

const random = randomSource(1417);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
const authors = ['ann', 'bob', 'Cleo', 'dan', null] as const;
const words = ['alpha', 'Beta', 'gamma', 'delta', 'Epsilon', 'zeta', 'eta', 'theta'];

/** Posts with ties, nulls, missing fields, nested objects, mixed-case strings. */
const posts: JsonValue[] = Array.from({ length: 37 }, (_, i) => {
  const post: Record<string, JsonValue> = {
    id: i + 1,
    title: `${pick(words)} ${pick(words)}`,
    views: Math.floor(random() * 20) * 10,
    author: { name: pick(authors), age: 20 + Math.floor(random() * 5) },
  };
  if (random() < 0.3) post['draft'] = random() < 0.5;
  if (random() < 0.2) post['rating'] = null;
  else if (random() < 0.7) post['rating'] = Math.floor(random() * 5);
  return post;
});

const queries = [
  '_sort=views',
  '_sort=views&_order=desc',
  '_sort=views,title',
  '_sort=views,title&_order=desc,asc',
  '_sort=rating',
  '_sort=rating&_order=desc',
  '_sort=author.name,id',
  '_sort=title&_limit=5',
  '_sort=views&_start=3&_end=9',
  '_sort=views&_start=4&_limit=6',
  '_limit=4',
  '_end=3',
  '_page=1',
  '_page=2&_limit=5',
  '_page=4&_limit=10',
  '_page=8&_limit=5',
  '_page=99&_limit=5',
  '_sort=id&_order=desc&_page=3&_limit=7',
  'views=50',
  'views=50&views=100',
  'views_gte=100',
  'views_lte=30&_sort=views',
  'views_gte=50&views_lte=120&_sort=views&_order=desc',
  'views_ne=0',
  'views_ne=0&views_ne=190',
  'title_like=^a',
  'title_like=eta$',
  'title_like=ALPHA',
  'author.name=ann',
  'author.name_like=^c',
  'author.age_gte=23',
  'draft=true',
  'draft=false',
  'rating=0',
  'rating_gte=2&_sort=rating',
  'q=beta',
  'q=CLEO',
  'q=23',
  'q=beta&_sort=views&_limit=3',
  'views_gte=100&_page=2&_limit=4',
];

interface Answer {
  status: number;
  body: unknown;
  total: string | undefined;
  /** rel → the `_page` it points to. */
  links: Record<string, string>;
}

function linksOf(header: string | undefined): Record<string, string> {
  const links: Record<string, string> = {};
  // json-server 0.17 sends an empty Link header when there are no links.
  if (header === undefined || header === '') return links;
  for (const part of header.split(/,\s*(?=<)/)) {
    const match = /^<([^>]*)>;\s*rel="([^"]+)"$/.exec(part.trim());
    if (!match) throw new Error(`not an RFC 8288 link: ${part}`);
    const page = new URL(match[1] as string, 'http://x').searchParams.get('_page');
    links[match[2] as string] = page ?? '';
  }
  return links;
}

async function answer(port: number, path: string): Promise<Answer> {
  const reply = await fetch(`http://127.0.0.1:${port}${path}`);
  return {
    status: reply.status,
    body: (await reply.json()) as unknown,
    total: reply.headers.get('x-total-count') ?? undefined,
    links: linksOf(reply.headers.get('link') ?? undefined),
  };
}

const servers: http.Server[] = [];
let jsonServerPort = 0;
let storePort = 0;

async function listen(app: http.RequestListener): Promise<number> {
  const server = http.createServer(app);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  const reference = jsonServer.create();
  reference.use(jsonServer.router(structuredClone({ posts }) as object));
  jsonServerPort = await listen(reference as unknown as http.RequestListener);
  storePort = await listen(jsonStore({ initial: { posts } }) as unknown as http.RequestListener);
});

afterAll(async () => {
  for (const server of servers) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

describe('the same queries as json-server 0.17, on the same data', () => {
  test.each(queries)('GET /posts?%s', async (query) => {
    const expected = await answer(jsonServerPort, `/posts?${query}`);
    const actual = await answer(storePort, `/posts?${query}`);
    expect(expected.status).toBe(200);
    expect(actual).toEqual(expected);
  });

  test('the data exercises what it should: ties, nulls, missing fields, several pages', () => {
    const views = posts.map((post) => (post as { views: number }).views);
    expect(new Set(views).size).toBeLessThan(views.length);
    expect(posts.some((post) => (post as { rating?: unknown }).rating === null)).toBe(true);
    expect(posts.some((post) => !('rating' in (post as object)))).toBe(true);
    expect(posts.some((post) => (post as { author: { name: unknown } }).author.name === null)).toBe(true);
  });
});
