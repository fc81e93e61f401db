/**
 * Whether a request comes from a browser navigating to the store: its Accept
 * header names HTML and prefers it to JSON. API clients never get the page:
 * `*\/*`, `application/json` or no Accept at all mean JSON.
 */
import type { IncomingMessage } from 'node:http';

interface Range {
  type: string;
  subtype: string;
  q: number;
}

function parseAccept(header: string): Range[] {
  const ranges: Range[] = [];
  for (const part of header.split(',')) {
    const [mediaRange = '', ...params] = part.split(';').map((piece) => piece.trim().toLowerCase());
    const slash = mediaRange.indexOf('/');
    if (slash <= 0) continue;
    let q = 1;
    for (const param of params) {
      if (!param.startsWith('q=')) continue;
      const value = Number(param.slice(2));
      q = Number.isFinite(value) && value >= 0 && value <= 1 ? value : 0;
    }
    ranges.push({ type: mediaRange.slice(0, slash), subtype: mediaRange.slice(slash + 1), q });
  }
  return ranges;
}

/** The q the Accept ranges give a media type: the most specific range that matches wins (RFC 9110 section 12.5.1). */
function qualityOf(ranges: readonly Range[], type: string, subtype: string): number {
  let best: { specificity: number; q: number } = { specificity: -1, q: 0 };
  for (const range of ranges) {
    const specificity =
      range.type === type && range.subtype === subtype ? 2 : range.type === type && range.subtype === '*' ? 1 : range.type === '*' && range.subtype === '*' ? 0 : -1;
    if (specificity > best.specificity) best = { specificity, q: range.q };
  }
  return best.q;
}

/** True for a GET or HEAD that names text/html (or XHTML) and ranks it above JSON. */
export function wantsHtml(req: IncomingMessage): boolean {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  const header = req.headers.accept;
  if (header === undefined) return false;
  const ranges = parseAccept(header);
  // Named explicitly: a wildcard alone is an API client's "anything".
  const named = ranges.some((range) => range.q > 0 && range.type === 'text' && range.subtype === 'html') || ranges.some((range) => range.q > 0 && range.type === 'application' && range.subtype === 'xhtml+xml');
  if (!named) return false;
  const html = Math.max(qualityOf(ranges, 'text', 'html'), qualityOf(ranges, 'application', 'xhtml+xml'));
  return html > qualityOf(ranges, 'application', 'json');
}
