/**
 * Seeded random documents and requests for the fuzz test: odd keys, odd
 * paths, every method, valid and invalid bodies, JSON Patch and merge
 * patches, preconditions with tags the store handed out earlier. Everything
 * is drawn from one PRNG, so a seed replays the same run.
 */
import {
  BODY_LIMIT,
  MAX_DEPTH,
  MAX_PATCH_OPERATIONS,
  isObject,
  shallowView,
  valueAt,
  type FuzzRequest,
  type Json,
  type JsonObject,
  type ReferenceStore,
  type Representation,
} from './reference.js';
import { randomSource } from '../support/random.js';

/** The fuzzer's seeded randomness (the shared mulberry32), with the picks it needs. */
export class Random {
  readonly next: () => number;

  constructor(seed: number) {
    this.next = randomSource(seed);
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }

  weighted<T>(entries: ReadonlyArray<readonly [number, T]>): T {
    const total = entries.reduce((sum, [w]) => sum + w, 0);
    let x = this.next() * total;
    for (const [w, value] of entries) {
      x -= w;
      if (x < 0) return value;
    }
    return (entries[entries.length - 1] as readonly [number, T])[1];
  }
}

// ---- values ------------------------------------------------------------------------

/** Keys that have tripped up JSON stores: prototype names, pointer and URL syntax, numbers, unicode. */
export const ODD_KEYS = [
  '__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf',
  '~', '~0', '~1', 'a~1b', '/', 'a/b', '%', '%25', '%2F', '', '.', '..', '-', '*',
  '0', '1', '01', '10', '-1', '4294967295', ' ', 'a b', '?', '#', '+', '&', '=', ';',
  'é', 'ß', '日本', '😀', '\u0000', '\ufeff', 'null', 'true', 'x.y', '"', '\\', '\n', '\ud800',
] as const;
const PLAIN_KEYS = ['a', 'b', 'c', 'n', 'x', 'list', 'name'] as const;

const STRINGS = ['', 'a', 'text', ' ', '"', '\\', '\n', 'é', '😀', '\u0000', '\u2028', '\ud800', '</script>', '~1', '%2F', '{}', 'null'] as const;
const NUMBERS = [0, 1, -1, 42, 0.5, -2.5e-7, 1e21, 2 ** 53, -(2 ** 53), 5e-324, 1.7976931348623157e308, 123456.789] as const;

export function key(r: Random): string {
  return r.chance(0.45) ? r.pick(ODD_KEYS) : r.pick(PLAIN_KEYS);
}

export function scalar(r: Random): Json {
  return r.weighted<() => Json>([
    [1, () => null],
    [1, () => r.chance(0.5)],
    [3, () => r.pick(NUMBERS)],
    [1, () => r.int(1000)],
    [3, () => r.pick(STRINGS)],
    [1, () => key(r)],
  ])();
}

/** A random JSON value at most `depth` containers deep. */
export function value(r: Random, depth: number): Json {
  if (depth <= 0 || r.chance(0.45)) return scalar(r);
  const size = r.weighted([
    [2, 0],
    [3, 1],
    [3, 2],
    [2, 3],
    [1, 5],
    [0.3, 12],
  ]);
  if (r.chance(0.35)) return Array.from({ length: size }, () => value(r, depth - 1));
  const out: JsonObject = {};
  for (let i = 0; i < size; i++) Object.defineProperty(out, key(r), { value: value(r, depth - 1), writable: true, enumerable: true, configurable: true });
  return out;
}

export function document(r: Random): Json {
  return r.weighted<() => Json>([
    [8, () => {
      let doc = value(r, 4);
      while (!isObject(doc)) doc = value(r, 4);
      return doc;
    }],
    [1, () => Array.from({ length: r.int(4) }, () => value(r, 3))],
    [1, () => scalar(r)],
  ])();
}

/** Nested arrays `depth` deep around a scalar. */
function nested(depth: number): Json {
  let out: Json = 0;
  for (let i = 0; i < depth; i++) out = [out];
  return out;
}

// ---- JSON text ---------------------------------------------------------------------

function spellString(r: Random, s: string): string {
  if (!r.chance(0.15)) return JSON.stringify(s);
  // The same string, with some characters as \u escapes and "/" as "\/".
  let out = '"';
  for (const c of s) {
    if (c === '"' || c === '\\' || c.charCodeAt(0) < 0x20 || (c.length === 1 && c >= '\ud800' && c <= '\udfff')) out += JSON.stringify(c).slice(1, -1);
    else if (c === '/' && r.chance(0.5)) out += '\\/';
    else if (r.chance(0.3)) {
      for (let i = 0; i < c.length; i++) {
        const hex = c.charCodeAt(i).toString(16).padStart(4, '0');
        out += '\\u' + (r.chance(0.5) ? hex.toUpperCase() : hex);
      }
    }
    else out += c;
  }
  return out + '"';
}

function spellNumber(r: Random, n: number): string {
  const plain = JSON.stringify(n);
  if (!r.chance(0.2)) return plain;
  if (Number.isInteger(n) && Math.abs(n) < 1e15) return r.pick([`${plain}.0`, `${plain}e0`, `${plain}E+0`, `${plain}.000e-0`]);
  return plain.toUpperCase();
}

function ws(r: Random): string {
  return r.chance(0.1) ? r.pick([' ', '\n', '\t', '\r\n', '  ']) : '';
}

/** JSON text for `v`, spelled in one of the many ways that mean the same value. */
export function spell(r: Random, v: Json): string {
  if (typeof v === 'string') return spellString(r, v);
  if (typeof v === 'number') return spellNumber(r, v);
  if (Array.isArray(v)) return '[' + ws(r) + v.map((item) => spell(r, item)).join(ws(r) + ',' + ws(r)) + ws(r) + ']';
  if (isObject(v)) {
    return '{' + ws(r) + Object.keys(v).map((k) => spellString(r, k) + ws(r) + ':' + ws(r) + spell(r, v[k] as Json)).join(',' + ws(r)) + ws(r) + '}';
  }
  return JSON.stringify(v);
}

/** A body for `v`; now and then broken, not finite, too large, too deep, or not UTF-8. */
export function bodyOf(r: Random, v: Json, breakage = 0.06): Buffer {
  const text = ws(r) + spell(r, v) + ws(r);
  if (!r.chance(breakage)) return Buffer.from(text);
  return r.weighted<() => Buffer>([
    [3, () => Buffer.from(text.slice(0, r.int(text.length)))],
    [1, () => Buffer.from(text + r.pick([' x', ',', '}', ']', ' 1', '"']))],
    [1, () => Buffer.from(text.replace(/"/g, "'"))],
    [2, () => Buffer.from(r.pick(['NaN', 'Infinity', '-Infinity', 'undefined', '{a:1}', '[1,]', '{"a":1,}', '', '   ', '/* c */1', '01', '.5', '+1', '"\t"', "'a'", 'nul']))],
    [1, () => Buffer.from('\ufeff' + text)],
    [1, () => Buffer.concat([Buffer.from('"a'), Buffer.from([r.pick([0xff, 0xc3, 0xed, 0x80])]), Buffer.from('"')])],
    [2, () => Buffer.from(r.pick(['1e400', '[-1e999]', '{"a":1E400}', '[1,2e308]']))],
    [1, () => Buffer.from(r.pick(['1e-400', '[-0]', '-0.0e-0']))],
    // Exactly at the size limit, or a byte over it.
    [1, () => Buffer.from(JSON.stringify('x'.repeat(BODY_LIMIT - 2 + r.int(2))))],
    [1, () => Buffer.from(JSON.stringify(nested(MAX_DEPTH - 1 + r.int(3))))],
  ])();
}

// ---- paths -------------------------------------------------------------------------

/** Characters RFC 3986 allows raw in a path segment. */
const PCHAR = /[A-Za-z0-9\-._~!$&'()*+,;=:@]/;

function encodeSegment(r: Random, segment: string): string {
  let utf8: Buffer;
  if (/[\ud800-\udfff]/.test(segment.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ''))) {
    // A lone surrogate has no UTF-8: send the bytes a careless encoder would (400).
    return encodeURIComponent(segment.replace(/[\ud800-\udfff]/g, '')) + '%ED%A0%80';
  }
  const style = r.weighted([
    [8, 'component'],
    [1, 'all'],
    [1, 'pchar'],
  ]);
  if (style === 'component') return encodeURIComponent(segment);
  let out = '';
  for (const c of segment) {
    if (style === 'pchar' && PCHAR.test(c)) {
      out += c;
      continue;
    }
    utf8 = Buffer.from(c, 'utf8');
    for (const byte of utf8) {
      const hex = byte.toString(16).padStart(2, '0');
      out += '%' + (r.chance(0.5) ? hex.toUpperCase() : hex);
    }
  }
  return out;
}

/** The raw URL path for `segments`, with now and then empty segments, a trailing slash or a bad escape. */
export function urlOf(r: Random, segments: readonly string[]): string {
  const parts = segments.map((s) => encodeSegment(r, s));
  if (r.chance(0.03)) parts.splice(r.int(parts.length + 1), 0, r.pick(['%', '%G1', '%C3', '%ED%A0%80', '%FF', 'a%2', '%c3%28']));
  let out = '';
  for (const part of parts) out += (r.chance(0.05) ? '//' : '/') + part;
  if (out === '' || r.chance(0.08)) out += '/';
  return out;
}

function members(v: Json): string[] {
  if (Array.isArray(v)) return v.map((_, i) => String(i));
  if (isObject(v)) return Object.keys(v);
  return [];
}

/** The paths of every container in `node` (at `path`), `node` included. */
function containersIn(node: Json, path: string[]): string[][] {
  if (!Array.isArray(node) && !isObject(node)) return [];
  return [path, ...members(node).flatMap((m) => containersIn(valueAt(node, [m]) as Json, [...path, m]))];
}

/** A random existing path: a walk from `root` that stops now and then. */
export function existingPath(r: Random, root: Json, stop = 0.35): string[] {
  const path: string[] = [];
  let node = root;
  for (;;) {
    const children = members(node);
    if (children.length === 0 || r.chance(stop)) return path;
    const child = r.pick(children);
    path.push(child);
    node = valueAt(node, [child]) as Json;
  }
}

const ODD_INDEXES = ['01', '-1', '+1', '1.0', '1e0', ' 1', '99999999999999999999', '4294967296', '00'] as const;

/** A path into `root`: existing, one step past it (new key, append, past the end, odd index), or made up. */
export function anyPath(r: Random, root: Json): string[] {
  return r.weighted<() => string[]>([
    [6, () => existingPath(r, root)],
    [4, () => {
      const path = existingPath(r, root);
      const at = valueAt(root, path) as Json;
      if (Array.isArray(at)) return [...path, r.weighted([[3, String(at.length)], [3, '-'], [2, String(at.length + 1 + r.int(3))], [2, r.pick(ODD_INDEXES)]])];
      const extra = [key(r)];
      if (r.chance(0.3)) extra.push(key(r));
      return [...path, ...extra];
    }],
    [1, () => Array.from({ length: 1 + r.int(3) }, () => key(r))],
    [1, () => []],
  ])();
}

// ---- JSON Patch and merge patch -------------------------------------------------------

/** An RFC 6901 pointer for `path`; now and then a malformed one. */
function pointer(r: Random, path: readonly string[], malformed = 0.03): unknown {
  if (r.chance(malformed)) return r.pick<unknown>(['a', 'a/b', '/~2', '/a~', '~1', 5, null, ['/a'], { p: '/' }]);
  return path.map((s) => '/' + s.replace(/~/g, '~0').replace(/\//g, '~1')).join('');
}

/** A path for a JSON Patch operation relative to `target`. */
function patchPath(r: Random, target: Json, forAdd: boolean): string[] {
  if (r.chance(0.08)) return [];
  if (!forAdd || r.chance(0.5)) {
    const path = existingPath(r, target, 0.3);
    if (path.length > 0 || r.chance(0.3)) return path;
  }
  return anyPath(r, target);
}

/** `v` with its members in another order (equal for `test`, different bytes). */
function reordered(r: Random, v: Json): Json {
  if (Array.isArray(v)) return v.map((item) => reordered(r, item));
  if (!isObject(v)) return v;
  const keys = Object.keys(v);
  if (r.chance(0.5)) keys.reverse();
  const out: JsonObject = {};
  for (const k of keys) Object.defineProperty(out, k, { value: reordered(r, v[k] as Json), writable: true, enumerable: true, configurable: true });
  return out;
}

export function jsonPatch(r: Random, target: Json | undefined): Json {
  const base: Json = target === undefined ? {} : target;
  const count = r.weighted([
    [1, 0],
    [6, 1],
    [4, 2],
    [2, 3],
    [1, 5],
    [0.5, 9],
  ]);
  const ops: Json[] = [];
  for (let i = 0; i < count; i++) {
    const op = r.weighted([
      [5, 'add'],
      [3, 'remove'],
      [3, 'replace'],
      [2, 'move'],
      [2, 'copy'],
      [3, 'test'],
      [1, 'broken'],
    ]);
    if (op === 'broken') {
      ops.push(
        r.pick<Json>([
          1, null, [], 'add', {}, { path: '/a' }, { op: 'bogus', path: '' }, { op: 'ADD', path: '', value: 1 }, { op: 1, path: '' },
          { op: 'add', path: '/x' }, { op: 'replace', path: '' }, { op: 'test', path: '' }, { op: 'move', path: '/x' }, { op: 'copy', path: '/x', from: 7 },
          { op: 'add', value: 1 }, { op: 'remove' },
        ]),
      );
      continue;
    }
    const entry: JsonObject = { op };
    const path = r.chance(0.1) && (op === 'remove' || op === 'add' || op === 'move' || op === 'copy') ? [] : patchPath(r, base, op === 'add' || op === 'move' || op === 'copy');
    entry['path'] = pointer(r, path) as Json;
    if (op === 'move' || op === 'copy') entry['from'] = pointer(r, r.chance(0.1) ? [] : patchPath(r, base, false)) as Json;
    if (op === 'add' || op === 'replace') entry['value'] = value(r, 2);
    if (op === 'test') {
      const actual = valueAt(base, path);
      entry['value'] = actual !== undefined && r.chance(0.7) ? reordered(r, actual) : value(r, 2);
    }
    if (r.chance(0.05)) entry[r.pick(['extra', 'from', 'value'])] = 'ignored';
    ops.push(entry);
  }
  if (r.chance(0.02)) return r.pick<Json>([{ op: 'add', path: '/a', value: 1 }, 'patch', null]);
  return ops;
}

export function mergePatchFor(r: Random, target: Json | undefined): Json {
  if (!isObject(target) || r.chance(0.15)) {
    if (r.chance(0.5)) return value(r, 3);
  }
  const out: JsonObject = {};
  const existing = members(target ?? null);
  const size = 1 + r.int(4);
  for (let i = 0; i < size; i++) {
    const k = existing.length > 0 && r.chance(0.6) ? r.pick(existing) : key(r);
    const current = isObject(target) && Object.prototype.hasOwnProperty.call(target, k) ? target[k] : undefined;
    const v = r.weighted<() => Json>([
      [3, () => null],
      [4, () => value(r, 2)],
      [2, () => mergePatchFor(r, current)],
    ])();
    Object.defineProperty(out, k, { value: v, writable: true, enumerable: true, configurable: true });
  }
  return out;
}

// ---- requests ------------------------------------------------------------------------

const JSON_TYPES = ['application/json', 'application/json; charset=utf-8', 'application/json;charset=UTF-8', 'application/vnd.api+json', 'Application/JSON'] as const;
const MERGE_TYPES = ['application/merge-patch+json', 'application/merge-patch+json; charset=utf-8', 'application/json'] as const;
const PATCH_TYPES = ['application/json-patch+json', 'application/json-patch+json; charset="utf-8"'] as const;
const BAD_TYPES = ['text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'application/xml', 'json', 'application/json-seq'] as const;

function contentType(r: Random, good: readonly string[]): string | undefined {
  if (r.chance(0.02)) return r.pick(BAD_TYPES);
  if (r.chance(0.005)) return undefined;
  return r.pick(good);
}

/** A tag list: the current tag, a stale one, made-up, weak, a list; or `*`, or malformed. */
function tagHeader(r: Random, currentTag: string | undefined, pool: readonly string[]): string {
  const some = () => (pool.length > 0 ? r.pick(pool) : '"unseen"');
  return r.weighted<() => string>([
    [3, () => '*'],
    [5, () => currentTag ?? some()],
    [2, () => some()],
    [1, () => `"nope-${r.int(100)}"`],
    [1, () => `W/${currentTag ?? some()}`],
    [1, () => `"nope", ${currentTag ?? some()}`],
    [1, () => r.pick(['abc', '"unterminated', 'W/abc', '*, "a"', '"a" "b"', 'w/"a"'])],
  ])();
}

/**
 * If-Match / If-None-Match with tags the store handed out. Tags of ?shallow
 * responses go only into If-None-Match of reads: what they match elsewhere
 * is not specified.
 */
function preconditions(r: Random, model: ReferenceStore, current: Json | undefined, headers: Record<string, string>, read?: { rep: Representation }): void {
  const content = model.tags.contentTags();
  const compact = current === undefined ? undefined : JSON.stringify(current);
  const contentTag = compact === undefined ? undefined : (model.tags.tagOf('', compact) ?? model.tags.tagOf('pretty', compact));
  const which = r.weighted([
    [6, 'if-match'],
    [4, 'if-none-match'],
    [1, 'both'],
  ]);
  const shallow = read !== undefined && read.rep.startsWith('shallow');
  if ((which === 'if-match' || which === 'both') && !shallow) headers['if-match'] = tagHeader(r, contentTag, content);
  if (which === 'if-none-match' || which === 'both') {
    if (read === undefined) {
      headers['if-none-match'] = tagHeader(r, contentTag, content);
    } else {
      const shown = current === undefined ? undefined : JSON.stringify(shallow ? shallowView(current) : current);
      const readTag = shown === undefined ? undefined : model.tags.tagOf(read.rep, shown);
      headers['if-none-match'] = tagHeader(r, readTag, model.tags.allTags());
    }
  }
}

export type RequestKind = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'DELETE' | 'MERGE' | 'JSON-PATCH' | 'OPTIONS' | 'OTHER' | 'RESET' | 'DEEP' | 'LONG-PATCH';

export interface Generated {
  kind: RequestKind;
  request: FuzzRequest;
}

const OTHER_METHODS = ['propfind', 'purge', 'lock', 'copy', 'search', 'report', 'mkcol'] as const;

export function nextRequest(r: Random, model: ReferenceStore): Generated {
  const doc = model.doc;
  const big = JSON.stringify(doc).length > 6000;
  const kind = r.weighted<RequestKind>([
    [12, 'GET'],
    [3, 'HEAD'],
    [16, 'PUT'],
    [7, 'POST'],
    [big ? 30 : 6, 'DELETE'],
    [14, 'MERGE'],
    [20, 'JSON-PATCH'],
    [1, 'OPTIONS'],
    [1, 'OTHER'],
    [big ? 4 : 1, 'RESET'],
    [1, 'DEEP'],
    [0.05, 'LONG-PATCH'],
  ]);
  const headers: Record<string, string> = {};
  const request = (method: string, segments: readonly string[], body?: Buffer, query = ''): Generated => ({
    kind,
    request: { method, path: urlOf(r, segments), query, headers, ...(body === undefined ? {} : { body }) },
  });
  const write = (segments: readonly string[]) => {
    if (r.chance(0.2)) preconditions(r, model, valueAt(doc, segments), headers, undefined);
    if (r.chance(0.1)) headers['prefer'] = r.pick(['return=minimal', 'return=representation', 'return="minimal"', 'respond-async, return=minimal']);
  };
  switch (kind) {
    case 'GET':
    case 'HEAD': {
      const segments = anyPath(r, doc);
      const flags = r.chance(0.25)
        ? r.weighted([
            [3, 'shallow'],
            [2, 'pretty'],
            [1, 'shallow=true&pretty'],
            [1, 'shallow=false'],
            [1, 'pretty=true'],
            [1, r.pick(['shallow=yes', 'pretty=2', 'shallow=TRUE'])],
            [1, '_other=1'],
          ])
        : '';
      if (r.chance(0.2)) {
        const shallow = /shallow(?!=false)/.test(flags);
        const pretty = /pretty(?!=false)/.test(flags);
        const rep = ((shallow ? 'shallow' : '') + (shallow && pretty ? '-' : '') + (pretty ? 'pretty' : '')) as Representation;
        preconditions(r, model, valueAt(doc, segments), headers, { rep });
      }
      return request(kind, segments, undefined, flags);
    }
    case 'PUT': {
      const segments = anyPath(r, doc);
      write(segments);
      const type = contentType(r, JSON_TYPES);
      if (type !== undefined) headers['content-type'] = type;
      return request('PUT', segments, bodyOf(r, value(r, 3)), r.chance(0.03) ? 'pretty' : '');
    }
    case 'RESET': {
      headers['content-type'] = 'application/json';
      return request('PUT', [], bodyOf(r, document(r), 0));
    }
    case 'DEEP': {
      // A value whose depth puts the document right at the limit, or one past it.
      const how = r.pick(['PUT', 'POST', 'MERGE', 'JSON-PATCH'] as const);
      const arrays = how === 'JSON-PATCH' ? containersIn(doc, []).filter((path) => Array.isArray(valueAt(doc, path))) : [];
      const segments = arrays.length > 0 ? r.pick(arrays) : r.chance(0.7) ? existingPath(r, doc, 0.1) : anyPath(r, doc);
      const depth = Math.max(0, MAX_DEPTH - segments.length - 1 + r.int(3));
      if (how === 'JSON-PATCH') {
        headers['content-type'] = 'application/json-patch+json';
        const target = valueAt(doc, segments);
        const deep = nested(Math.min(depth, MAX_DEPTH - 2));
        let ops: Json[] = [{ op: 'add', path: Array.isArray(target) ? '/0' : '/deep', value: deep }];
        // Shift the deep value along after adding it (an insertion or a removal before it):
        // its depth must be checked where it ends up.
        if (Array.isArray(target)) {
          ops = r.weighted<Json[]>([
            [3, [...ops, { op: 'add', path: '/0', value: 0 }]],
            [3, [{ op: 'add', path: '/-', value: deep }, { op: 'remove', path: '/0' }]],
            [2, ops],
          ]);
        }
        return request('PATCH', segments, Buffer.from(JSON.stringify(ops)));
      }
      headers['content-type'] = how === 'MERGE' ? 'application/merge-patch+json' : 'application/json';
      return request(how === 'MERGE' ? 'PATCH' : how, segments, Buffer.from(JSON.stringify(nested(depth))));
    }
    case 'POST': {
      const segments = r.chance(0.7) ? existingPath(r, doc) : anyPath(r, doc);
      write(segments);
      const type = contentType(r, JSON_TYPES);
      if (type !== undefined) headers['content-type'] = type;
      return request('POST', segments, bodyOf(r, value(r, 2)));
    }
    case 'DELETE': {
      const segments = r.chance(0.03) ? [] : r.chance(0.8) ? existingPath(r, doc, 0.25) : anyPath(r, doc);
      if (segments.length === 0 && r.chance(0.7)) segments.push(key(r));
      write(segments);
      return request('DELETE', segments);
    }
    case 'MERGE': {
      const segments = r.chance(0.6) ? existingPath(r, doc) : anyPath(r, doc);
      write(segments);
      const type = contentType(r, MERGE_TYPES);
      if (type !== undefined) headers['content-type'] = type;
      return request('PATCH', segments, bodyOf(r, mergePatchFor(r, valueAt(doc, segments))));
    }
    case 'JSON-PATCH': {
      const segments = r.chance(0.85) ? existingPath(r, doc) : anyPath(r, doc);
      write(segments);
      const type = contentType(r, PATCH_TYPES);
      if (type !== undefined) headers['content-type'] = type;
      return request('PATCH', segments, bodyOf(r, jsonPatch(r, valueAt(doc, segments)), 0.03));
    }
    case 'LONG-PATCH': {
      // Right at the operation limit, or one past it: moves of the root onto itself, which change nothing.
      const ops = Array.from({ length: MAX_PATCH_OPERATIONS + r.int(2) }, () => ({ op: 'move', from: '', path: '' }));
      headers['content-type'] = 'application/json-patch+json';
      return request('PATCH', [], Buffer.from(JSON.stringify(ops)));
    }
    case 'OPTIONS':
      return request('OPTIONS', anyPath(r, doc));
    case 'OTHER': {
      const method = r.pick(OTHER_METHODS);
      return request(method.toUpperCase(), anyPath(r, doc));
    }
  }
}
