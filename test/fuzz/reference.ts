/**
 * An independent reference model of the store's HTTP semantics, written for
 * the fuzz test from docs/http.md, RFC 6902 (JSON Patch), RFC 6901 (JSON
 * Pointer), RFC 7396 (JSON Merge Patch) and RFC 9110 (conditional requests).
 * It shares no code with src/: it works over plain JS values and deep copies,
 * applies a JSON Patch to a copy of its target as a standalone document, and
 * a merge patch with the RFC's own pseudo-code.
 *
 * `predict()` says what one request must answer and, when it succeeds, how
 * the document changes. A write is checked in this order: path, precondition
 * headers' syntax, Content-Type, body; then what planning finds (malformed
 * JSON Patch 400, missing target 404, cannot apply 409), which wins over
 * preconditions (RFC 9110 13.2.1); then preconditions (412); then what
 * applying finds (a JSON Patch operation 409, depth 400). Where the docs leave the order of two failed checks
 * open, a prediction lists every acceptable status; all of them change
 * nothing. Predictions that rely on semantics decided but not yet on every
 * branch name them in `pending` (see PENDING), so a failure says which
 * intended change it is about.
 */
import { createHash } from 'node:crypto';

export type Json = null | boolean | number | string | Json[] | JsonObject;
export interface JsonObject {
  [key: string]: Json;
}

/** Where the fuzz test mounts the store, and the options it gives it. */
export const MOUNT = '/store';
export const MAX_DEPTH = 100;
export const BODY_LIMIT = 64 * 1024;
export const MAX_PATCH_OPERATIONS = 1000;
/** A predicted body that is `{"name":"<key>"}` for the key the store chose (a POST to an object). */
export const POSTED_NAME = '\u0000posted name';
/** The default budget of bytes one write may insert (4 × limit), being added on another branch. */
export const MAX_WRITE_GROWTH = 4 * BODY_LIMIT;

/**
 * Intended semantics being put in place on other branches. A prediction that
 * depends on one of them lists its key; the failure message prints the text.
 */
export const PENDING = {
  'patch-root-add': 'JSON Patch add/copy/move with path "" at a non-root target replaces the target (RFC 6902 4.1), also in an array',
  'patch-remove-target': 'JSON Patch remove "" at a non-root target removes the target and answers 204 (no body, no ETag)',
  'patch-after-remove': 'after remove "" of a non-root target, any later operation of the same patch is refused with 409',
  'non-finite': 'a number that is not finite in JSON (1e400) makes the body 400',
  'preconditions-last':
    'preconditions count only where the answer would otherwise be 2xx (RFC 9110 13.2.1): a missing target of GET/HEAD/DELETE/POST/JSON Patch is 404, ' +
    'a PUT or merge patch that cannot apply (under a scalar, past the end of an array) or a POST to a scalar 409, a malformed JSON Patch 400, whatever If-Match/If-None-Match say',
  'no-content-type': 'a body without Content-Type is 415',
  'patch-too-long': `a JSON Patch with more than ${MAX_PATCH_OPERATIONS} operations is 413`,
  'write-growth': `a write that inserts more than ${MAX_WRITE_GROWTH} bytes of JSON (4 × limit: values added, replaced or copied) may be refused with 413`,
} as const;
export type PendingRule = keyof typeof PENDING;

// ---- values --------------------------------------------------------------------------

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function has(object: JsonObject, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(object, key);
}

/** Sets an own member (keeps its place when it exists); `__proto__` is data. */
export function setKey(object: JsonObject, key: string, value: Json): void {
  Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
}

export function copy<T extends Json>(value: T): T {
  if (Array.isArray(value)) return value.map((item) => copy(item)) as T;
  if (isObject(value)) {
    const out: JsonObject = {};
    for (const key of Object.keys(value)) setKey(out, key, copy(value[key] as Json));
    return out as T;
  }
  return value;
}

/** Equality as RFC 6902 `test` defines it: members in any order, arrays in order, numbers by value. */
export function equal(a: Json, b: Json): boolean {
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item, i) => equal(item, b[i] as Json));
  }
  if (isObject(a) || isObject(b)) {
    if (!isObject(a) || !isObject(b)) return false;
    const keys = Object.keys(a);
    if (keys.length !== Object.keys(b).length) return false;
    return keys.every((key) => has(b, key) && equal(a[key] as Json, b[key] as Json));
  }
  return a === b;
}

/** Nesting depth: scalars 0, `[]` and `{}` 1. */
export function depthOf(value: Json): number {
  if (Array.isArray(value)) return 1 + value.reduce<number>((max, item) => Math.max(max, depthOf(item)), 0);
  if (isObject(value)) return 1 + Object.keys(value).reduce((max, key) => Math.max(max, depthOf(value[key] as Json)), 0);
  return 0;
}

function hasNonFinite(value: unknown): boolean {
  if (typeof value === 'number') return !Number.isFinite(value);
  if (Array.isArray(value)) return value.some(hasNonFinite);
  if (isObject(value)) return Object.keys(value).some((key) => hasNonFinite(value[key]));
  return false;
}

/** `?shallow`: each child of a container replaced by `true`. */
export function shallowView(value: Json): Json {
  if (Array.isArray(value)) return value.map(() => true);
  if (isObject(value)) {
    const out: JsonObject = {};
    for (const key of Object.keys(value)) setKey(out, key, true);
    return out;
  }
  return value;
}

const canonicalIndex = /^(?:0|[1-9][0-9]*)$/;

/** The value at `path`, or undefined: arrays are indexed by canonical integers only. */
export function valueAt(root: Json, path: readonly string[]): Json | undefined {
  let node: Json | undefined = root;
  for (const segment of path) {
    if (Array.isArray(node)) node = canonicalIndex.test(segment) ? node[Number(segment)] : undefined;
    else if (isObject(node)) node = has(node, segment) ? node[segment] : undefined;
    else return undefined;
    if (node === undefined) return undefined;
  }
  return node;
}

/** Writes `value` over the existing member at `path` (keeps its place); the root returns the new root. */
function replaceExisting(root: Json, path: readonly string[], value: Json): Json {
  if (path.length === 0) return value;
  const parent = valueAt(root, path.slice(0, -1));
  const key = path[path.length - 1] as string;
  if (Array.isArray(parent)) parent[Number(key)] = value;
  else setKey(parent as JsonObject, key, value);
  return root;
}

function removeExisting(root: Json, path: readonly string[]): void {
  const parent = valueAt(root, path.slice(0, -1));
  const key = path[path.length - 1] as string;
  if (Array.isArray(parent)) parent.splice(Number(key), 1);
  else delete (parent as JsonObject)[key];
}

// ---- requests --------------------------------------------------------------------------

export interface FuzzRequest {
  method: string;
  /** The raw path below the mount point, as sent (percent-escapes and all). */
  path: string;
  /** The raw query without `?`, or ''. */
  query: string;
  /** Lower-case header names. */
  headers: Record<string, string>;
  body?: Buffer;
}

export type Representation = '' | 'pretty' | 'shallow' | 'shallow-pretty';

export interface Prediction {
  /** Acceptable statuses, the expected one first; more than one only for failures whose order is open. */
  statuses: number[];
  /** The exact body of a success, or undefined for none. Errors are checked as problem+json. */
  body?: string;
  /** The ETag must be the tag of this representation bytes; `null`: no ETag. Unset for errors. */
  etag?: { rep: Representation; shown: string } | null;
  /** 201: the decoded path (below the mount) `Location` must name. */
  location?: string[];
  /** POST to an object: `Location` names a new key under this path, chosen by the store. */
  postInto?: string[];
  /** `Prefer: return=minimal` honoured on a write with a body. */
  minimal?: boolean;
  /** OPTIONS / 405: the Allow header. */
  allow?: string;
  /** Statuses that are also acceptable for a predicted success, as a refusal that changes nothing (a budget the docs leave open). */
  refusals?: number[];
  pending: PendingRule[];
  /** Why, in a few words, for failure messages. */
  why: string;
  /** Commits the change to the model (successes only); a POST to an object gets the new key. */
  commit?: (newKey?: string) => string | undefined;
}

const ALLOW = 'GET, HEAD, PUT, POST, PATCH, DELETE, OPTIONS';

class Refusal {
  constructor(
    readonly statuses: number[],
    readonly why: string,
    readonly pending: PendingRule[] = [],
  ) {}
}

function refuse(status: number | number[], why: string, pending: PendingRule[] = []): never {
  throw new Refusal(Array.isArray(status) ? status : [status], why, pending);
}

/** Splits the URL path on `/`, drops empty segments, percent-decodes each as UTF-8. */
export function parseUrlPath(raw: string): string[] | undefined {
  const segments: string[] = [];
  const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });
  const encoder = new TextEncoder();
  for (const part of raw.split('/')) {
    if (part === '') continue;
    const bytes: number[] = [];
    for (let i = 0; i < part.length; i++) {
      const c = part[i] as string;
      if (c === '%') {
        const hex = part.slice(i + 1, i + 3);
        if (!/^[0-9a-fA-F]{2}$/.test(hex)) return undefined;
        bytes.push(parseInt(hex, 16));
        i += 2;
      } else {
        bytes.push(...encoder.encode(c));
      }
    }
    try {
      segments.push(decoder.decode(new Uint8Array(bytes)));
    } catch {
      return undefined;
    }
  }
  return segments;
}

/** RFC 9110: `*` or a comma-separated list of entity tags; undefined when malformed. */
export function parseTagList(header: string): '*' | Array<{ weak: boolean; opaque: string }> | undefined {
  const trimmed = header.trim();
  if (trimmed === '*') return '*';
  const items = trimmed.split(',').map((item) => item.trim());
  const tags: Array<{ weak: boolean; opaque: string }> = [];
  for (const item of items) {
    const match = /^(W\/)?"([\x21\x23-\x7e]*)"$/.exec(item);
    if (!match) return undefined;
    tags.push({ weak: match[1] !== undefined, opaque: match[2] as string });
  }
  return tags;
}

/** A digest of a representation's bytes: the book keeps many tags, not many documents. */
function digest(rep: Representation, shown: string): string {
  return rep + ':' + createHash('sha256').update(shown).digest('base64');
}

/**
 * The tags the store has shown, each with (a digest of) the representation
 * bytes it was the tag of. The same bytes must always get the same tag, and
 * different bytes never the same one.
 */
export class TagBook {
  private readonly byTag = new Map<string, { rep: Representation; digest: string }>();
  private readonly byContent = new Map<string, string>();
  /** Recent tags, for requests to draw from. */
  private readonly recentContent: string[] = [];
  private readonly recentAll: string[] = [];

  /** Records a tag seen on a response; returns a complaint if it contradicts earlier ones. */
  observe(tag: string, rep: Representation, shown: string): string | undefined {
    if (!/^"[\x21\x23-\x7e]+"$/.test(tag)) return `ETag ${tag} is not a strong entity tag`;
    const key = digest(rep, shown);
    const known = this.byTag.get(tag);
    if (known !== undefined && known.digest !== key) return `ETag ${tag} was earlier the tag of different bytes`;
    const earlier = this.byContent.get(key);
    if (earlier !== undefined && earlier !== tag) return `the same bytes had ETag ${earlier} before, ${tag} now`;
    if (known === undefined) {
      this.byTag.set(tag, { rep, digest: key });
      this.byContent.set(key, tag);
      const remember = (list: string[]) => {
        list.push(tag);
        if (list.length > 200) list.shift();
      };
      remember(this.recentAll);
      if (rep === '' || rep === 'pretty') remember(this.recentContent);
    }
    return undefined;
  }

  tagOf(rep: Representation, shown: string): string | undefined {
    return this.byContent.get(digest(rep, shown));
  }

  /** Whether `tag` is the tag of the compact or pretty representation of `value`. */
  isContentTagOf(tag: string, value: Json): boolean {
    const known = this.byTag.get(tag);
    if (known === undefined || (known.rep !== '' && known.rep !== 'pretty')) return false;
    return known.digest === digest(known.rep, JSON.stringify(value));
  }

  /** Recent tags usable in write preconditions and GET If-Match (compact or pretty representations). */
  contentTags(): readonly string[] {
    return this.recentContent;
  }

  allTags(): readonly string[] {
    return this.recentAll;
  }
}

interface Preconditions {
  ifMatch?: '*' | Array<{ weak: boolean; opaque: string }>;
  ifNoneMatch?: '*' | Array<{ weak: boolean; opaque: string }>;
}

function preconditionsOf(req: FuzzRequest): Preconditions {
  const out: Preconditions = {};
  for (const [name, field] of [
    ['if-match', 'ifMatch'],
    ['if-none-match', 'ifNoneMatch'],
  ] as const) {
    const header = req.headers[name];
    if (header === undefined) continue;
    const list = parseTagList(header);
    if (list === undefined) refuse(400, `a malformed ${name}`);
    out[field] = list;
  }
  return out;
}

type BodyKind = 'json' | 'merge-patch' | 'json-patch';

/** Content types: `application/json` or `application/*+json`, UTF-8; for PATCH, json-patch+json is RFC 6902. */
function bodyKindOf(header: string | undefined, method: string): BodyKind {
  const isPatch = method === 'PATCH';
  if (header === undefined) refuse(415, 'a body without Content-Type', ['no-content-type']);
  const match = /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\/([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*((?:;\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+=(?:[!#$%&'*+.^_`|~0-9A-Za-z-]+|"[^"\\]*")\s*)*)$/.exec(
    header,
  );
  if (!match) refuse(415, 'a Content-Type that does not parse');
  const type = `${match[1]}/${match[2]}`.toLowerCase();
  for (const param of (match[3] as string).split(';').slice(1)) {
    const [name, rawValue] = param.trim().split('=') as [string, string];
    const value = rawValue.startsWith('"') ? rawValue.slice(1, -1) : rawValue;
    if (name.toLowerCase() === 'charset' && value.toLowerCase() !== 'utf-8') refuse(415, 'a charset other than UTF-8');
  }
  if (isPatch && type === 'application/json-patch+json') return 'json-patch';
  const subtype = type.slice('application/'.length);
  if (type === 'application/json' || (type.startsWith('application/') && subtype.endsWith('+json') && subtype.length > '+json'.length)) {
    return isPatch ? 'merge-patch' : 'json';
  }
  return refuse(415, 'a Content-Type that is not JSON');
}

/** The body as JSON: under the size limit, UTF-8 (a leading BOM may be ignored, RFC 8259 8.1), valid, finite, not too deep. */
function parseBody(body: Buffer | undefined): Json {
  const bytes = body ?? Buffer.alloc(0);
  if (bytes.length > BODY_LIMIT) refuse(413, 'a body over the size limit');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    return refuse(400, 'body is not UTF-8');
  }
  let value: Json;
  try {
    value = JSON.parse(text) as Json;
  } catch {
    return refuse(400, 'body is not JSON');
  }
  if (hasNonFinite(value)) refuse(400, 'body has a number that is not finite', ['non-finite']);
  if (depthOf(value) > MAX_DEPTH) refuse(400, 'body nests too deep');
  return value;
}

// ---- JSON Patch (RFC 6902) on a standalone document -------------------------------------

type PatchOp =
  | { op: 'add' | 'replace' | 'test'; path: string[]; value: Json }
  | { op: 'remove'; path: string[] }
  | { op: 'move' | 'copy'; path: string[]; from: string[] };

/** RFC 6901: '' or '/'-separated reference tokens with ~1 and ~0 escapes. */
export function parsePointer(pointer: unknown): string[] | undefined {
  if (typeof pointer !== 'string') return undefined;
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) return undefined;
  const tokens = pointer.slice(1).split('/');
  if (tokens.some((token) => /~(?![01])/.test(token))) return undefined;
  return tokens.map((token) => token.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/** Validates a JSON Patch document; a malformed one is 400 before anything applies. */
function parsePatch(body: Json): PatchOp[] {
  if (!Array.isArray(body)) refuse(400, 'malformed JSON Patch: not an array');
  return body.map((entry, index) => {
    if (!isObject(entry)) return refuse(400, 'malformed JSON Patch: an operation is not an object');
    const op = has(entry, 'op') ? entry['op'] : undefined;
    if (op !== 'add' && op !== 'remove' && op !== 'replace' && op !== 'move' && op !== 'copy' && op !== 'test') {
      return refuse(400, 'malformed JSON Patch: no valid "op"');
    }
    const path = has(entry, 'path') ? parsePointer(entry['path']) : undefined;
    if (path === undefined) return refuse(400, 'malformed JSON Patch: no valid "path"');
    if (op === 'remove') return { op, path };
    if (op === 'move' || op === 'copy') {
      const from = has(entry, 'from') ? parsePointer(entry['from']) : undefined;
      if (from === undefined) return refuse(400, 'malformed JSON Patch: no valid "from"');
      return { op, path, from };
    }
    if (!has(entry, 'value')) return refuse(400, 'malformed JSON Patch: no "value"');
    return { op, path, value: entry['value'] as Json };
  });
}

class PatchFailure extends Error {}

function fail(why: string): never {
  throw new PatchFailure(why);
}

/** The container that holds the last token of `path` (which is not empty). */
function parentOf(doc: Json, path: string[]): Json[] | JsonObject {
  const parent = valueAt(doc, path.slice(0, -1));
  if (parent === undefined) fail('the parent does not exist');
  if (!Array.isArray(parent) && !isObject(parent)) fail('the parent is a scalar');
  return parent;
}

function arrayIndex(array: Json[], token: string, allowEnd: boolean): number {
  if (allowEnd && token === '-') return array.length;
  if (!canonicalIndex.test(token)) fail('a token that is not an array index');
  const index = Number(token);
  if (index > (allowEnd ? array.length : array.length - 1)) fail('an index out of range');
  return index;
}

function addAt(doc: Json, path: string[], value: Json): Json {
  if (path.length === 0) return value;
  const parent = parentOf(doc, path);
  const token = path[path.length - 1] as string;
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, token, true), 0, value);
  else setKey(parent, token, value);
  return doc;
}

function removeAt(doc: Json, path: string[]): void {
  const parent = parentOf(doc, path);
  const token = path[path.length - 1] as string;
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, token, false), 1);
  else if (has(parent, token)) delete parent[token];
  else fail('the member does not exist');
}

function replaceAt(doc: Json, path: string[], value: Json): Json {
  if (path.length === 0) return value;
  const parent = parentOf(doc, path);
  const token = path[path.length - 1] as string;
  if (Array.isArray(parent)) parent[arrayIndex(parent, token, false)] = value;
  else if (has(parent, token)) setKey(parent, token, value);
  else fail('the member does not exist');
  return doc;
}

function samePath(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((token, i) => token === b[i]);
}

function isProperPrefix(prefix: string[], path: string[]): boolean {
  return prefix.length < path.length && prefix.every((token, i) => token === path[i]);
}

interface PatchOutcome {
  /** The patched target, or 'removed' after `remove ""` at a non-root target. */
  result: Json | 'removed';
  pending: PendingRule[];
  /** Bytes of compact JSON the patch inserts: values added or replaced, values copied. */
  growth: number;
}

function sizeOf(value: Json): number {
  return Buffer.byteLength(JSON.stringify(value));
}

/**
 * Applies `ops` to a copy of `target` as a standalone document (pointers are
 * relative to the target). At a non-root target, `remove ""` removes the
 * target itself and nothing may follow it; at the root it leaves `{}`.
 */
function applyPatch(target: Json, ops: PatchOp[], atRoot: boolean, inArray: boolean, targetDepth: number): PatchOutcome {
  let doc = copy(target);
  // No value is ever placed deeper than MAX_DEPTH, not even for a moment: each
  // step that puts a value in is checked where it puts it, once it can apply.
  const placed = (at: string[], value: Json) => {
    if (targetDepth + at.length + depthOf(value) > MAX_DEPTH) refuse(400, 'a step of the patch nests the document too deep');
  };
  let removed = false;
  let growth = 0;
  const pending = new Set<PendingRule>();
  ops.forEach((op, index) => {
    if (removed) {
      pending.add('patch-after-remove');
      fail('an operation follows remove "" of the target');
    }
    switch (op.op) {
      case 'test': {
        const actual = valueAt(doc, op.path);
        if (actual === undefined) fail('test of a missing value');
        if (!equal(actual, op.value)) fail('test of a different value');
        return;
      }
      case 'add':
        if (op.path.length === 0 && !atRoot && inArray) pending.add('patch-root-add');
        growth += sizeOf(op.value);
        doc = addAt(doc, op.path, copy(op.value));
        placed(op.path, op.value);
        return;
      case 'replace':
        growth += sizeOf(op.value);
        doc = replaceAt(doc, op.path, copy(op.value));
        placed(op.path, op.value);
        return;
      case 'remove':
        if (op.path.length === 0) {
          if (atRoot) doc = {};
          else {
            removed = true;
            // In an object the current code already answers 204; in an array it showed the next element.
            if (inArray) pending.add('patch-remove-target');
          }
          return;
        }
        removeAt(doc, op.path);
        return;
      case 'copy': {
        const value = valueAt(doc, op.from);
        if (value === undefined) fail('copy from a missing value');
        if (op.path.length === 0 && !atRoot && inArray) pending.add('patch-root-add');
        growth += sizeOf(value);
        const inserted = copy(value); // `value` may be the very container it goes into
        doc = addAt(doc, op.path, inserted);
        placed(op.path, inserted);
        return;
      }
      case 'move': {
        if (isProperPrefix(op.from, op.path)) fail('move into its own child');
        const value = valueAt(doc, op.from);
        if (value === undefined) fail('move from a missing value');
        if (samePath(op.from, op.path)) return;
        if (op.path.length === 0 && !atRoot && inArray) pending.add('patch-root-add');
        removeAt(doc, op.from);
        doc = addAt(doc, op.path, value);
        placed(op.path, value);
        return;
      }
    }
  });
  return { result: removed ? 'removed' : doc, pending: [...pending], growth };
}

// ---- RFC 7396 ----------------------------------------------------------------------------

/** RFC 7396 section 2, as written (mutates and returns `target` when both are objects). */
export function mergePatch(target: Json | undefined, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const out: JsonObject = isObject(target) ? target : {};
  for (const name of Object.keys(patch)) {
    const value = patch[name] as Json;
    if (value === null) {
      if (has(out, name)) delete out[name];
    } else {
      setKey(out, name, mergePatch(has(out, name) ? out[name] : undefined, value));
    }
  }
  return out;
}

// ---- the model -----------------------------------------------------------------------------

/** Nests `value` in new objects, one per segment. */
function nest(segments: string[], value: Json): Json {
  let out = value;
  for (let i = segments.length - 1; i >= 0; i--) {
    const wrapper: JsonObject = {};
    setKey(wrapper, segments[i] as string, out);
    out = wrapper;
  }
  return out;
}

interface PutOutcome {
  root: Json;
  created: boolean;
  /** Where the value lives: an append's real index instead of `-`. */
  at: string[];
}

/**
 * PUT semantics on a copy: creates missing parent objects (never arrays); in
 * an array index == length or `-` appends, a larger index or a non-index is
 * 409, and so is a step into a scalar.
 */
function putAt(root: Json, path: string[], value: Json): PutOutcome {
  if (path.length === 0) return { root: value, created: false, at: [] };
  let node: Json = root;
  for (let i = 0; i < path.length; i++) {
    const segment = path[i] as string;
    const rest = path.slice(i + 1);
    if (Array.isArray(node)) {
      if (segment === '-' || (canonicalIndex.test(segment) && Number(segment) === node.length)) {
        const at = [...path.slice(0, i), String(node.length)];
        node.push(nest(rest, value));
        return { root, created: true, at: [...at, ...rest] };
      }
      if (!canonicalIndex.test(segment)) refuse(409, 'a segment that is not an index into an array');
      if (Number(segment) > node.length) refuse(409, 'an index past the end of an array');
      if (rest.length === 0) {
        node[Number(segment)] = value;
        return { root, created: false, at: [...path] };
      }
      node = node[Number(segment)] as Json;
    } else if (isObject(node)) {
      if (!has(node, segment)) {
        setKey(node, segment, nest(rest, value));
        return { root, created: true, at: [...path] };
      }
      if (rest.length === 0) {
        setKey(node, segment, value);
        return { root, created: false, at: [...path] };
      }
      node = node[segment] as Json;
    } else {
      refuse(409, 'a step into a scalar');
    }
  }
  throw new Error('unreachable');
}

function compact(value: Json): string {
  return JSON.stringify(value);
}

export class ReferenceStore {
  readonly tags = new TagBook();
  /** Keys the store chose for POSTs, in order: they must sort as strings in creation order. */
  lastPushKey = '';

  constructor(public doc: Json) {}

  /** The document as GET / must show it, byte for byte. */
  text(): string {
    return compact(this.doc);
  }

  predict(req: FuzzRequest): Prediction {
    try {
      return this.predictOrRefuse(req);
    } catch (error) {
      if (error instanceof Refusal) return { statuses: error.statuses, pending: error.pending, why: error.why };
      throw error;
    }
  }

  private predictOrRefuse(req: FuzzRequest): Prediction {
    const path = parseUrlPath(req.path);
    if (path === undefined) refuse(400, 'a bad percent-escape or bad UTF-8 in the path');
    switch (req.method) {
      case 'GET':
      case 'HEAD':
        return this.read(req, path);
      case 'PUT':
      case 'POST':
      case 'PATCH':
      case 'DELETE':
        return this.write(req, path);
      case 'OPTIONS':
        return { statuses: [204], pending: [], why: 'OPTIONS', allow: ALLOW };
      default:
        return { statuses: [405], pending: [], why: `${req.method} is not supported`, allow: ALLOW };
    }
  }

  private read(req: FuzzRequest, path: string[]): Prediction {
    const params = new URLSearchParams(req.query);
    // Any other parameter is a collection query; the generator sends only unknown `_` names, which are 400.
    for (const name of params.keys()) if (name !== 'shallow' && name !== 'pretty') refuse(400, `unknown query parameter ${name}`);
    const flag = (name: string): boolean => {
      const value = params.get(name);
      if (value === null || value === 'false' || value === '0') return false;
      if (value === '' || value === 'true' || value === '1') return true;
      return refuse(400, `?${name} with a value that is not a flag`);
    };
    const shallow = flag('shallow');
    const pretty = flag('pretty');
    const rep = ((shallow ? 'shallow' : '') + (shallow && pretty ? '-' : '') + (pretty ? 'pretty' : '')) as Representation;
    const pre = preconditionsOf(req);
    const value = valueAt(this.doc, path);
    if (value === undefined) {
      const pending: PendingRule[] = pre.ifMatch !== undefined ? ['preconditions-last'] : [];
      refuse(404, 'nothing at the path', pending);
    }
    const shown = compact(shallow ? shallowView(value) : value);
    const contentMatches = (list: Array<{ weak: boolean; opaque: string }>) => list.some((t) => !t.weak && this.tags.isContentTagOf(`"${t.opaque}"`, value));
    if (pre.ifMatch !== undefined && !(pre.ifMatch === '*' || contentMatches(pre.ifMatch))) {
      refuse(412, 'If-Match does not match the value');
    }
    const head = req.method === 'HEAD';
    const currentTag = this.tags.tagOf(rep, shown);
    if (pre.ifNoneMatch !== undefined) {
      const matches = pre.ifNoneMatch === '*' || pre.ifNoneMatch.some((t) => currentTag !== undefined && `"${t.opaque}"` === currentTag);
      if (matches) return { statuses: [304], pending: [], why: 'If-None-Match matches', etag: { rep, shown } };
    }
    const text = pretty ? JSON.stringify(shallow ? shallowView(value) : value, null, 2) + '\n' : shown;
    return { statuses: [200], body: head ? undefined : text, etag: { rep, shown }, pending: [], why: 'read' };
  }

  /** Whether a tag list names the content of `value` (compact or pretty tags; weak ones only for weak comparison). */
  private listMatches(list: Array<{ weak: boolean; opaque: string }>, value: Json, strong: boolean): boolean {
    return list.some((t) => (!strong || !t.weak) && this.tags.isContentTagOf(`"${t.opaque}"`, value));
  }

  /** Whether the preconditions hold for the current value at the target (undefined: missing). */
  private preconditionsHold(pre: Preconditions, current: Json | undefined): boolean {
    if (pre.ifMatch !== undefined) {
      if (current === undefined) return false;
      if (pre.ifMatch !== '*' && !this.listMatches(pre.ifMatch, current, true)) return false;
    }
    if (pre.ifNoneMatch !== undefined && current !== undefined) {
      if (pre.ifNoneMatch === '*' || this.listMatches(pre.ifNoneMatch, current, false)) return false;
    }
    return true;
  }

  private write(req: FuzzRequest, path: string[]): Prediction {
    const method = req.method;
    if (req.query !== '') refuse(400, 'a query string on a write');
    const pre = preconditionsOf(req);
    const conditional = pre.ifMatch !== undefined || pre.ifNoneMatch !== undefined;
    let kind: BodyKind | undefined;
    let body: Json = null;
    if (method !== 'DELETE') {
      // No Content-Type and no body either: whether that is "a body without Content-Type" is open.
      if (req.headers['content-type'] === undefined && (req.body === undefined || req.body.length === 0)) refuse([415, 400], 'no Content-Type and no body', ['no-content-type']);
      kind = bodyKindOf(req.headers['content-type'], method);
      body = parseBody(req.body);
    }
    const current = valueAt(this.doc, path);
    const holds = this.preconditionsHold(pre, current);
    const root = copy(this.doc);
    // Refusals found while planning the write win over preconditions, which
    // count only where the answer would otherwise be 2xx (RFC 9110 13.2.1).
    const planning = (status: number, why: string, pending: PendingRule[] = []): never =>
      refuse(status, why, holds ? pending : [...pending, 'preconditions-last']);
    let ops: PatchOp[] | undefined;
    let put: PutOutcome | undefined;
    if (kind === 'json-patch') {
      try {
        ops = parsePatch(body);
      } catch (error) {
        if (error instanceof Refusal) planning(400, error.why);
        throw error;
      }
      if (ops.length > MAX_PATCH_OPERATIONS) planning(413, 'too many JSON Patch operations', ['patch-too-long']);
      if (current === undefined) planning(404, 'nothing at the path to PATCH');
      // No operation may follow `remove ""` of a non-root target: its pointers would address a sibling.
      const removal = path.length > 0 ? ops.findIndex((op) => op.op === 'remove' && op.path.length === 0) : -1;
      if (removal !== -1 && removal < ops.length - 1) planning(409, 'an operation follows remove "" of the target', ['patch-after-remove']);
    } else if (method === 'POST' || method === 'DELETE') {
      if (current === undefined) planning(404, `nothing at the path to ${method}`);
      if (method === 'POST' && !Array.isArray(current) && !isObject(current)) planning(409, 'POST to a scalar');
    } else if (method === 'PUT' || current === undefined) {
      // PUT, or a merge patch on a missing target (which counts as null, so it is created like PUT).
      try {
        put = putAt(root, path, kind === 'merge-patch' ? mergePatch(undefined, body) : body);
      } catch (error) {
        if (error instanceof Refusal) planning(error.statuses[0] as number, error.why);
        throw error;
      }
    }
    if (!holds) refuse(412, 'precondition failed');

    const minimal = /(?:^|[,;\s])return\s*=\s*"?minimal"?/i.test(req.headers['prefer'] ?? '');
    const representation = !minimal && /(?:^|[,;\s])return\s*=\s*"?representation"?/i.test(req.headers['prefer'] ?? '');
    if (method === 'DELETE') {
      if (path.length === 0) return this.success(204, {}, undefined, false, [], 'DELETE / leaves {}');
      removeExisting(root, path);
      return this.success(204, root, undefined, false, [], 'DELETE removes the member');
    }
    if (method === 'POST') {
      const target = valueAt(root, path) as Json;
      if (Array.isArray(target)) {
        target.push(body);
        return this.success(201, root, [...path, String(target.length - 1)], minimal, [], 'POST appends');
      }
      return this.postToObject(path, body, minimal, representation);
    }
    if (put !== undefined) {
      const why = method === 'PUT' ? (put.created ? 'PUT creates' : 'PUT replaces') : 'merge patch creates the missing target';
      return this.success(put.created ? 201 : 200, put.root, put.at, minimal, [], why, put.created);
    }
    if (kind === 'merge-patch') {
      const merged = mergePatch(copy(current as Json), body);
      return this.success(200, replaceExisting(root, path, merged), path, minimal, [], 'merge patch');
    }
    // JSON Patch on an existing target.
    const parent = valueAt(this.doc, path.slice(0, -1));
    let outcome: PatchOutcome;
    try {
      outcome = applyPatch(current as Json, ops as PatchOp[], path.length === 0, Array.isArray(parent), path.length);
    } catch (error) {
      if (error instanceof PatchFailure) {
        // Which rule made it fail matters when it is a pending one.
        const pending: PendingRule[] = error.message.includes('follows remove ""') ? ['patch-after-remove'] : [];
        refuse(409, `JSON Patch cannot apply: ${error.message}`, pending);
      }
      throw error;
    }
    const refusals = outcome.growth > MAX_WRITE_GROWTH ? { refusals: [413], pending: [...outcome.pending, 'write-growth' as const] } : { pending: outcome.pending };
    if (outcome.result === 'removed') {
      removeExisting(root, path);
      return { ...this.success(204, root, undefined, false, outcome.pending, 'JSON Patch removed its target'), ...refusals };
    }
    return { ...this.success(200, replaceExisting(root, path, outcome.result), path, minimal, outcome.pending, 'JSON Patch'), ...refusals };
  }

  /** A successful write: the new document (if within the depth limit), and what the answer carries. */
  private success(
    status: number,
    root: Json,
    at: string[] | undefined,
    minimal: boolean,
    pending: PendingRule[],
    why: string,
    created = false,
  ): Prediction {
    if (depthOf(root) > MAX_DEPTH) refuse(400, 'the document would nest too deep', pending);
    const commit = () => {
      this.doc = root;
      return undefined;
    };
    if (status === 204 || at === undefined) return { statuses: [status], body: undefined, etag: null, pending, why, commit };
    const value = valueAt(root, at) as Json;
    const shown = compact(value);
    return {
      statuses: [status],
      body: minimal ? undefined : shown,
      etag: { rep: '', shown },
      location: status === 201 || created ? at : undefined,
      minimal,
      pending,
      why,
      commit,
    };
  }

  private postToObject(path: string[], body: Json, minimal: boolean, representation: boolean): Prediction {
    if (path.length + 1 + depthOf(body) > MAX_DEPTH) refuse(400, 'the document would nest too deep');
    const shown = compact(body);
    return {
      statuses: [201],
      // Firebase's answer, the new key, unless the value is asked for.
      body: minimal ? undefined : representation ? shown : POSTED_NAME,
      etag: { rep: '', shown },
      postInto: path,
      minimal,
      pending: [],
      why: 'POST adds under a new key',
      commit: (key) => {
        if (key === undefined) return 'POST to an object answered without a new key';
        const root = copy(this.doc);
        const target = valueAt(root, path) as JsonObject;
        if (has(target, key)) return `POST chose the existing key ${JSON.stringify(key)}`;
        if (!/^[-0-9A-Za-z_]{20}$/.test(key)) return `POST key ${JSON.stringify(key)} is not 20 push-id characters`;
        if (key <= this.lastPushKey) return `POST key ${key} does not sort after the previous one ${this.lastPushKey}`;
        setKey(target, key, copy(body));
        this.doc = root;
        this.lastPushKey = key;
        return undefined;
      },
    };
  }
}
