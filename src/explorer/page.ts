/**
 * The explorer page: the value at a path as a tree of nested
 * <details>/<summary>, readable without JavaScript. The inline script (no
 * build step, no CDN) then makes it editable through the store's own HTTP
 * API, and live. Everything from the document is escaped; a CSP with a
 * per-response nonce allows only the page's own script and style.
 */
import type { JsonValue } from '../document/json.js';
import { explorerScript } from './script.js';
import { explorerStyle } from './style.js';

const htmlEscapes: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => htmlEscapes[c] as string);
}

/** Most nodes rendered on the server; the script renders the rest on demand. */
const maxServerNodes = 2000;
/** Containers open on load up to this depth. */
const openDepth = 1;

export interface ExplorerPageInput {
  /** The value at the path, or undefined when there is none (404). */
  value: JsonValue | undefined;
  /** The URL path the browser asked for (mount prefix included, still percent-encoded), without a trailing slash. */
  urlPath: string;
  /** The document path, for display: '/' or '/a/b'. */
  documentPath: string;
  /** The URL path of the store's root, for the breadcrumb. */
  rootUrl: string;
  readOnly: boolean;
  nonce: string;
}

function scalarHtml(value: JsonValue): string {
  const kind = value === null ? 'null' : typeof value;
  return `<span class="v ${kind}">${escapeHtml(JSON.stringify(value))}</span>`;
}

function summaryOf(value: JsonValue): string {
  if (Array.isArray(value)) return `<span class="meta">[${value.length}]</span>`;
  if (value !== null && typeof value === 'object') return `<span class="meta">{${Object.keys(value).length}}</span>`;
  return scalarHtml(value);
}

/** The read-only tree: links lead to each member's own page. */
function treeHtml(value: JsonValue, href: string, budget: { left: number }, depth: number): string {
  if (value === null || typeof value !== 'object') return scalarHtml(value);
  const entries: Array<[string, JsonValue]> = Array.isArray(value) ? value.map((v, i) => [String(i), v]) : Object.entries(value);
  const items: string[] = [];
  for (const [key, member] of entries) {
    if (budget.left <= 0) {
      items.push(`<li class="more">… ${entries.length - items.length} more: <a href="${escapeHtml(href)}?pretty">see the JSON</a></li>`);
      break;
    }
    budget.left--;
    const memberHref = `${href}/${encodeURIComponent(key)}`;
    const label = `<a class="k" href="${escapeHtml(memberHref)}">${escapeHtml(key)}</a>`;
    if (member !== null && typeof member === 'object') {
      items.push(`<li><details${depth < openDepth ? ' open' : ''}><summary>${label} ${summaryOf(member)}</summary>${treeHtml(member, memberHref, budget, depth + 1)}</details></li>`);
    } else {
      items.push(`<li>${label}: ${scalarHtml(member)}</li>`);
    }
  }
  return `<ul>${items.join('')}</ul>`;
}

function breadcrumb(input: ExplorerPageInput): string {
  const below = input.urlPath.slice(input.rootUrl.length).split('/').filter((s) => s !== '');
  const parts = [`<a href="${escapeHtml(input.rootUrl === '' ? '/' : input.rootUrl)}">root</a>`];
  let href = input.rootUrl;
  for (const segment of below) {
    href += `/${segment}`;
    let shown = segment;
    try {
      shown = decodeURIComponent(segment);
    } catch {
      // shown as sent
    }
    parts.push(`<a href="${escapeHtml(href)}">${escapeHtml(shown)}</a>`);
  }
  return parts.join(' / ');
}

export function explorerPage(input: ExplorerPageInput): string {
  const { value, nonce } = input;
  const body =
    value === undefined
      ? `<p class="missing">Nothing at ${escapeHtml(input.documentPath)}.</p>`
      : value !== null && typeof value === 'object'
        ? treeHtml(value, input.urlPath, { left: maxServerNodes }, 0)
        : `<p>${scalarHtml(value)}</p>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(input.documentPath)} · jsonstore</title>
<style nonce="${nonce}">${explorerStyle}</style>
</head>
<body>
<header>
<nav aria-label="Path">${breadcrumb(input)}</nav>
<p class="hint">JSON: <a href="${escapeHtml(input.urlPath === '' ? '/' : input.urlPath)}?pretty">this path as JSON</a> · <span id="live">read-only view</span></p>
</header>
<main id="tree" data-read-only="${input.readOnly ? 'true' : 'false'}" data-missing="${value === undefined ? 'true' : 'false'}">${body}</main>
<p id="status" role="status" aria-live="polite"></p>
<script nonce="${nonce}">${explorerScript}</script>
</body>
</html>
`;
}

/** The page's Content-Security-Policy: nothing but its own inline script and style, and requests to this origin. */
export function explorerCsp(nonce: string): string {
  return [
    "default-src 'none'",
    `script-src 'nonce-${nonce}'`,
    `style-src 'nonce-${nonce}'`,
    "connect-src 'self'",
    "img-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}
