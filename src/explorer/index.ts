/**
 * The explorer: a browser that navigates to any path of the store (Accept
 * prefers text/html, see accept.ts) gets a page showing the value there as a
 * tree, editable through the same HTTP API. Opt-in for the middleware
 * (`explorer: true`), on by default in the CLI.
 */
import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { valueAt } from '../document/apply.js';
import { displayPath, parseUrlPath } from '../document/path.js';
import type { DocumentStore } from '../document-store.js';
import { checkHost } from '../http/host.js';
import { mountPrefix, splitTarget } from '../http/request-target.js';
import { wantsHtml } from './accept.js';
import { explorerCsp, explorerPage } from './page.js';

export { wantsHtml } from './accept.js';

export interface ExplorerOptions {
  readOnly: boolean;
  allowedHosts: ReadonlySet<string> | undefined;
}

/** Adds `Accept` to Vary, keeping what is there: the same URL answers HTML or JSON by it. */
export function varyOnAccept(res: ServerResponse): void {
  const current = res.getHeader('Vary');
  const names = current === undefined ? [] : String(current).split(',').map((name) => name.trim()).filter((name) => name !== '');
  if (!names.some((name) => name.toLowerCase() === 'accept' || name === '*')) names.push('Accept');
  res.setHeader('Vary', names.join(', '));
}

/**
 * Answers a browser's request with the explorer page and resolves true; or
 * resolves false without touching the response (not a browser, a path that
 * is not valid, a host not allowed, storage away): the store answers then.
 */
export async function serveExplorer(store: DocumentStore, options: ExplorerOptions, req: IncomingMessage, res: ServerResponse): Promise<boolean> {
  if (!wantsHtml(req)) return false;
  if (options.allowedHosts !== undefined) {
    try {
      checkHost(req, options.allowedHosts);
    } catch {
      return false;
    }
  }
  const target = splitTarget(req.url);
  // A query (?pretty, collection queries) asks for data: the page is for a plain path.
  if (target.query !== '') return false;
  let path: string[];
  try {
    path = parseUrlPath(target.path);
  } catch {
    return false;
  }
  const rootUrl = mountPrefix(req);
  const urlPath = (rootUrl + target.path).replace(/\/+$/, '');
  const nonce = randomBytes(16).toString('base64');
  let html: { page: string; found: boolean };
  try {
    // Rendered inside the read: the view must not keep or change the document.
    html = await store.read((root) => {
      const value = valueAt(root, path);
      return {
        page: explorerPage({ value, urlPath, rootUrl, documentPath: displayPath(path), readOnly: options.readOnly, nonce }),
        found: value !== undefined,
      };
    });
  } catch {
    return false;
  }
  const body = Buffer.from(html.page, 'utf8');
  res.statusCode = html.found ? 200 : 404;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Content-Length', body.length);
  res.setHeader('Content-Security-Policy', explorerCsp(nonce));
  res.setHeader('X-Content-Type-Options', 'nosniff');
  res.setHeader('Referrer-Policy', 'no-referrer');
  res.setHeader('Cache-Control', 'no-store');
  varyOnAccept(res);
  res.end(req.method === 'HEAD' ? undefined : body);
  return true;
}
