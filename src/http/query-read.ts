/**
 * GET and HEAD with a collection query: runs the query on the value at the
 * path and answers its result with a strong ETag of its own (a hash of the
 * bytes sent, and of X-Total-Count when there is one), `If-None-Match`
 * revalidation, and json-server's `X-Total-Count` and RFC 8288 `Link`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { JsonStoreError } from '../errors.js';
import { valueAt } from '../document/apply.js';
import { contentTag, formatEtag } from '../document/etag.js';
import { displayPath } from '../document/path.js';
import { runQuery, type PageLinks, type QueryResult } from '../document/query.js';
import type { CollectionQuery } from '../document/query-parse.js';
import type { DocumentStore } from '../document-store.js';
import { isNotModified, preconditionsOf } from './conditional.js';
import { mountPrefix, splitTarget } from './request-target.js';

const JSON_TYPE = 'application/json; charset=utf-8';

/** RFC 8288 links to the neighbouring pages: this request's own target with `_page` changed. */
function linkHeader(req: IncomingMessage, links: PageLinks): string | undefined {
  const target = splitTarget(req.url);
  // `<`, `>` and `"` would end the URI reference or the header's quoted parts early.
  const base = (mountPrefix(req) + target.path).replace(/[<>"\s]/g, (char) => encodeURIComponent(char));
  const parts: string[] = [];
  for (const rel of ['first', 'prev', 'next', 'last'] as const) {
    const page = links[rel];
    if (page === undefined) continue;
    const params = new URLSearchParams(target.query);
    params.set('_page', String(page));
    parts.push(`<${base}?${params.toString()}>; rel="${rel}"`);
  }
  return parts.length === 0 ? undefined : parts.join(', ');
}

export async function answerCollectionQuery(
  store: DocumentStore,
  req: IncomingMessage,
  res: ServerResponse,
  path: string[],
  query: CollectionQuery,
  options: { pretty: boolean; head: boolean; describeMissing: () => Promise<string> },
): Promise<void> {
  const preconditions = preconditionsOf(req.headers);
  const where = displayPath(path);
  const result = await store.read<QueryResult | undefined>((root) => {
    const value = valueAt(root, path);
    return value === undefined ? undefined : runQuery(value, query, { pretty: options.pretty, where });
  });
  if (result === undefined) throw new JsonStoreError('not-found', await options.describeMissing());
  // The count is part of the answer: a page whose members are unchanged while the total grew is not the same answer.
  const etag = formatEtag(contentTag(result.totalCount === undefined ? result.body : `${result.body}\n${result.totalCount}`));
  const headers: Record<string, string> = { ETag: etag, 'Cache-Control': 'no-cache' };
  if (result.totalCount !== undefined) headers['X-Total-Count'] = String(result.totalCount);
  const link = result.links === undefined ? undefined : linkHeader(req, result.links);
  if (link !== undefined) headers['Link'] = link;
  const notModified = isNotModified(preconditions, etag, where);
  res.statusCode = notModified ? 304 : 200;
  for (const name in headers) res.setHeader(name, headers[name] as string);
  if (notModified) {
    res.end();
    return;
  }
  res.setHeader('Content-Type', JSON_TYPE);
  res.setHeader('Content-Length', Buffer.byteLength(result.body));
  res.end(options.head ? undefined : result.body);
}

/** A collection query asked for as a live stream: not offered yet. */
export function liveQueryRefused(): JsonStoreError {
  return new JsonStoreError(
    'bad-request',
    'Live queries are not supported yet: a text/event-stream request cannot carry a query. Stream the whole value without the query, or GET the query as JSON',
  );
}
