/**
 * Query strings of reads, parsed into a typed collection query. Two dialects
 * users already know: Firebase's REST parameters (`orderBy="height"`,
 * `limitToFirst=2`, JSON values) and json-server 0.17's (`_sort=views`,
 * `title_like=^a`, `_page=2`). Anything else, or both dialects at once, is a
 * 400 naming the parameter and the accepted ones: a misspelt parameter must
 * never silently return the whole collection.
 */
import { JsonStoreError } from '../errors.js';
import type { JsonPrimitive } from './json.js';

/** What a Firebase `orderBy` names. */
export type FirebaseOrder = { by: 'key' } | { by: 'value' } | { by: 'child'; path: string[] };

export interface FirebaseQuery {
  dialect: 'firebase';
  orderBy: FirebaseOrder;
  startAt?: JsonPrimitive;
  endAt?: JsonPrimitive;
  equalTo?: JsonPrimitive;
  limitToFirst?: number;
  limitToLast?: number;
}

export type FieldOperator = 'eq' | 'gte' | 'lte' | 'ne' | 'like';

/** `field=value`, `field_gte=value`, ...: repeated values of one parameter are alternatives (`_ne`: all must hold). */
export interface FieldFilter {
  /** The parameter as sent, for error messages. */
  param: string;
  path: string[];
  operator: FieldOperator;
  values: string[];
  /** `_like` patterns, compiled once. */
  patterns?: RegExp[];
}

export interface SortField {
  path: string[];
  descending: boolean;
}

/** Which members to answer, by position after filtering and sorting: `[start, end)`. */
export interface Window {
  start: number;
  end: number | undefined;
  /** Set for `_page`: the page asked for and its size, for `Link`. */
  page?: { number: number; size: number };
}

export interface JsonServerQuery {
  dialect: 'json-server';
  filters: FieldFilter[];
  /** Full-text search, lower-cased. */
  text: string | undefined;
  sort: SortField[];
  window: Window | undefined;
}

export type CollectionQuery = FirebaseQuery | JsonServerQuery;

/** Query parameters of a read that are not a collection query. */
export interface ReadFlags {
  shallow: boolean;
  pretty: boolean;
}

export interface ParsedReadQuery extends ReadFlags {
  collection: CollectionQuery | undefined;
}

const firebaseParams = ['orderBy', 'startAt', 'endAt', 'equalTo', 'limitToFirst', 'limitToLast'] as const;
const jsonServerParams = ['_sort', '_order', '_start', '_end', '_limit', '_page', '_per_page', 'q'] as const;
const flagParams = ['shallow', 'pretty', 'print'] as const;
/** Parameters other servers take that this one does not, with what to do instead. */
const unsupported: Record<string, string> = {
  _embed: 'relations between collections are not supported; GET the other collection',
  _expand: 'relations between collections are not supported; GET the other collection',
  callback: 'JSONP is not supported; use CORS',
  format: 'the whole value is always returned, without priorities',
  auth: 'this store has no authentication parameter',
  access_token: 'this store has no authentication parameter',
};
/** Longest `_like` pattern accepted: enough for any real search, too short to hide much backtracking. */
export const MAX_LIKE_PATTERN = 200;
/** Most field filters in one query. */
const MAX_FILTERS = 32;

const accepted =
  'accepted parameters are shallow, pretty (or print=pretty); Firebase: orderBy, startAt, endAt, equalTo, limitToFirst, limitToLast; ' +
  'json-server: _sort, _order, _start, _end, _limit, _page, _per_page, q and field filters (field=value, field_gte, field_lte, field_ne, field_like)';

function badQuery(detail: string): JsonStoreError {
  return new JsonStoreError('bad-request', detail);
}

/** Whether a parameter belongs to a dialect: field filters are json-server's. */
function dialectOf(name: string): 'firebase' | 'json-server' | 'flag' | 'ignored' {
  if ((firebaseParams as readonly string[]).includes(name)) return 'firebase';
  if ((flagParams as readonly string[]).includes(name)) return 'flag';
  // jQuery's cache buster (`cache: false`); json-server ignores it too.
  if (name === '_') return 'ignored';
  return 'json-server';
}

function checkName(name: string): void {
  if (name === '_') return;
  const advice = Object.prototype.hasOwnProperty.call(unsupported, name) ? unsupported[name] : undefined;
  if (advice !== undefined) throw badQuery(`The query parameter ${name} is not supported: ${advice}; ${accepted}`);
  const near = [...firebaseParams, ...jsonServerParams, ...flagParams].find((known) => known !== name && known.toLowerCase() === name.toLowerCase());
  if (near !== undefined) throw badQuery(`Unknown query parameter ${name}; did you mean ${near}? Names are case-sensitive; ${accepted}`);
  if (name === '') throw badQuery(`A query parameter has no name; ${accepted}`);
  if (name.startsWith('_') && !(jsonServerParams as readonly string[]).includes(name)) {
    throw badQuery(`Unknown query parameter ${name}; ${accepted}`);
  }
}

function flag(params: URLSearchParams, name: string): boolean {
  // The first value counts, as it always did for these flags.
  const value = params.get(name);
  if (value === null) return false;
  if (value === '' || value === 'true' || value === '1') return true;
  if (value === 'false' || value === '0') return false;
  throw badQuery(`?${name}=${value} is not understood; use ?${name}=true or ?${name}=false`);
}

/** Firebase's spelling of ?pretty. */
function printPretty(params: URLSearchParams): boolean {
  const print = single(params, 'print');
  if (print === undefined) return false;
  if (print === 'pretty') return true;
  throw badQuery(`print=${print} is not supported on reads; print=pretty (or ?pretty) indents the answer`);
}

function single(params: URLSearchParams, name: string): string | undefined {
  const values = params.getAll(name);
  if (values.length > 1) throw badQuery(`The query parameter ${name} is given ${values.length} times; give it once`);
  return values[0];
}

/**
 * The query string of a GET or HEAD (without `?`). `collection` is undefined
 * when there is no collection query (only `shallow`/`pretty`, or nothing).
 */
export function parseReadQuery(query: string): ParsedReadQuery {
  if (query === '') return { shallow: false, pretty: false, collection: undefined };
  const params = new URLSearchParams(query);
  const names = [...new Set(params.keys())];
  let firebase: string | undefined;
  let jsonServer: string | undefined;
  for (const name of names) {
    checkName(name);
    const dialect = dialectOf(name);
    if (dialect === 'firebase') firebase ??= name;
    if (dialect === 'json-server') jsonServer ??= name;
  }
  if (firebase !== undefined && jsonServer !== undefined) {
    throw badQuery(
      `The query mixes Firebase parameters (${firebase}) with json-server parameters (${jsonServer}); use one dialect per request. ${accepted}`,
    );
  }
  const shallow = flag(params, 'shallow');
  const pretty = flag(params, 'pretty') || printPretty(params);
  const collection = firebase !== undefined ? parseFirebase(params) : jsonServer !== undefined ? parseJsonServer(params, names) : undefined;
  if (collection !== undefined && shallow) {
    throw badQuery(`shallow cannot be combined with a query (${firebase ?? jsonServer}); drop one of them`);
  }
  return { shallow, pretty, collection };
}

/** Whether a query string asks for a collection query (for code paths that do not answer them, such as live streams). */
export function hasCollectionQuery(query: string): boolean {
  return parseReadQuery(query).collection !== undefined;
}

/** Writes take no query parameters: a write is never filtered, and a parameter ignored today could mean something tomorrow. */
export function checkWriteQuery(method: string, query: string): void {
  if (query === '') return;
  const first = new URLSearchParams(query).keys().next();
  const name = first.done ? '' : first.value;
  throw badQuery(
    `${method} takes no query parameters${name === '' ? '' : ` (got ${name})`}; queries (orderBy, _sort, filters...) apply to GET and HEAD only. Send the request without a query string`,
  );
}

// ---- Firebase -------------------------------------------------------------

function jsonParam(raw: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch {
    return undefined;
  }
}

/** Firebase child paths are `/`-separated; empty segments are dropped as in paths. */
function childPath(raw: string): string[] {
  return raw.split('/').filter((segment) => segment !== '');
}

function parseFirebase(params: URLSearchParams): FirebaseQuery {
  const orderByRaw = single(params, 'orderBy');
  const present = firebaseParams.filter((name) => params.has(name));
  if (orderByRaw === undefined) {
    throw badQuery(`${present[0]} needs orderBy: add orderBy="$key", orderBy="$value" or orderBy="child/path" (JSON-quoted, as in Firebase's REST API)`);
  }
  const orderByValue = jsonParam(orderByRaw);
  if (typeof orderByValue !== 'string') {
    throw badQuery(
      `orderBy must be a JSON string: orderBy="$key", orderBy="$value" or orderBy="child/path" with the double quotes (got orderBy=${orderByRaw})`,
    );
  }
  let orderBy: FirebaseOrder;
  if (orderByValue === '$key') orderBy = { by: 'key' };
  else if (orderByValue === '$value') orderBy = { by: 'value' };
  else if (orderByValue === '$priority') throw badQuery('orderBy="$priority" is not supported: this store has no priorities; order by "$key", "$value" or a child');
  else {
    const path = childPath(orderByValue);
    if (path.length === 0) throw badQuery('orderBy="" names no child; use "$key", "$value" or a child path such as "dimensions/height"');
    orderBy = { by: 'child', path };
  }
  const query: FirebaseQuery = { dialect: 'firebase', orderBy };
  for (const name of ['startAt', 'endAt', 'equalTo'] as const) {
    const raw = single(params, name);
    if (raw === undefined) continue;
    const value = jsonParam(raw);
    const isScalar = value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean';
    if (!isScalar) {
      throw badQuery(`${name} must be a JSON string, number, boolean or null, such as ${name}="abc" or ${name}=3 (got ${name}=${raw})`);
    }
    if (orderBy.by === 'key' && typeof value !== 'string') {
      throw badQuery(`With orderBy="$key", ${name} must be a JSON string such as ${name}="a" (keys are strings; got ${name}=${raw})`);
    }
    query[name] = value;
  }
  if (query.equalTo !== undefined && (query.startAt !== undefined || query.endAt !== undefined)) {
    throw badQuery('equalTo cannot be combined with startAt or endAt; use one or the other');
  }
  for (const name of ['limitToFirst', 'limitToLast'] as const) {
    const raw = single(params, name);
    if (raw === undefined) continue;
    if (!/^[1-9][0-9]{0,8}$/.test(raw)) throw badQuery(`${name} must be a positive integer such as ${name}=10 (got ${name}=${raw})`);
    query[name] = Number(raw);
  }
  if (query.limitToFirst !== undefined && query.limitToLast !== undefined) {
    throw badQuery('limitToFirst and limitToLast cannot be combined; use one of them');
  }
  return query;
}

// ---- json-server ------------------------------------------------------------

/** lodash-style property paths, as json-server reads them: `a.b`, `a[0].b`. */
function fieldPath(raw: string): string[] {
  return raw
    .replace(/\[([^\]]*)\]/g, '.$1')
    .split('.')
    .filter((segment) => segment !== '');
}

function count(params: URLSearchParams, name: string): number | undefined {
  const raw = single(params, name);
  if (raw === undefined) return undefined;
  if (!/^[0-9]{1,9}$/.test(raw)) throw badQuery(`${name} must be a non-negative integer such as ${name}=10 (got ${name}=${raw})`);
  return Number(raw);
}

/**
 * Catastrophic backtracking needs a repeated group that itself holds a
 * repetition or an alternative (`(a+)+`, `((a)+)+`, `(a|aa)*`), or a
 * backreference: refuse those outright, whatever the nesting. What is left
 * runs in time polynomial in the value's length.
 */
function checkPattern(param: string, pattern: string): RegExp {
  if (pattern.length > MAX_LIKE_PATTERN) {
    throw badQuery(`${param} is ${pattern.length} characters; _like patterns may have at most ${MAX_LIKE_PATTERN}`);
  }
  if (/\\[1-9]|\\k</.test(pattern)) throw badQuery(`${param}: backreferences are not allowed in _like patterns`);
  if (hasNestedRepetition(pattern)) {
    throw badQuery(
      `${param}: a repeated group that holds a repetition or an alternative (such as (a+)+ or (a|b)*) is not allowed in _like patterns; they can take exponential time`,
    );
  }
  try {
    return new RegExp(pattern, 'i');
  } catch (error) {
    throw badQuery(`${param} is not a valid regular expression: ${(error as Error).message}`);
  }
}

/** Reduces groups innermost first, remembering which ones repeat inside, and finds one of those repeated. */
function hasNestedRepetition(pattern: string): boolean {
  let rest = pattern
    .replace(/\\./g, 'e') // an escaped character is one plain character
    .replace(/\[(?:[^\]\\]|\\.)*\]/g, 'c') // so is a character class
    .replace(/\(\?(?:[:=!]|<[=!]|<[A-Za-z_$][\w$]*>)/g, '('); // group kinds do not matter
  let nested = false;
  for (;;) {
    const next = rest.replace(/\(([^()]*)\)(\s*[+*{?])?/g, (_whole, inner: string, quantifier: string | undefined) => {
      const repeats = /[+*{?|]/.test(inner);
      if (repeats && quantifier !== undefined && /[+*{]/.test(quantifier)) nested = true;
      // Keep the group's own quantifier: to the group around it, this one is a repetition.
      return (repeats ? 'r+' : 'r') + (quantifier ?? '');
    });
    if (nested) return true;
    if (next === rest) return false;
    rest = next;
  }
}

function parseJsonServer(params: URLSearchParams, names: string[]): JsonServerQuery {
  const filters: FieldFilter[] = [];
  for (const name of names) {
    if (name.startsWith('_') || name === 'q' || dialectOf(name) !== 'json-server') continue;
    const match = /^(.*?)(?:_(gte|lte|ne|like))?$/.exec(name) as RegExpExecArray;
    const field = match[1] as string;
    const operator = (match[2] ?? 'eq') as FieldOperator;
    const path = fieldPath(field);
    if (path.length === 0) throw badQuery(`The filter ${name} names no field; use field=value or field_gte=value (${accepted})`);
    const values = params.getAll(name);
    const filter: FieldFilter = { param: name, path, operator, values };
    if (operator === 'like') filter.patterns = values.map((value) => checkPattern(name, value));
    filters.push(filter);
  }
  if (filters.length > MAX_FILTERS) throw badQuery(`The query has ${filters.length} field filters; at most ${MAX_FILTERS} are accepted`);

  const sortRaw = single(params, '_sort');
  const orderRaw = single(params, '_order');
  const sort: SortField[] = [];
  if (sortRaw !== undefined) {
    const fields = sortRaw.split(',');
    const orders = orderRaw === undefined ? [] : orderRaw.split(',').map((order) => order.trim().toLowerCase());
    for (const order of orders) {
      if (order !== 'asc' && order !== 'desc' && order !== '') throw badQuery(`_order takes asc or desc for each _sort field, comma-separated (got _order=${orderRaw})`);
    }
    if (orders.length > fields.length) throw badQuery(`_order has ${orders.length} entries for ${fields.length} _sort field${fields.length === 1 ? '' : 's'}`);
    fields.forEach((raw, i) => {
      const descending = raw.startsWith('-');
      const path = fieldPath(descending ? raw.slice(1) : raw);
      if (path.length === 0) throw badQuery(`_sort=${sortRaw} has an empty field; list fields such as _sort=views,-title`);
      sort.push({ path, descending: descending || orders[i] === 'desc' });
    });
  } else if (orderRaw !== undefined) {
    throw badQuery('_order needs _sort: name the fields to sort by, such as _sort=views&_order=desc');
  }

  const start = count(params, '_start');
  const end = count(params, '_end');
  const limit = count(params, '_limit');
  const page = count(params, '_page');
  const perPage = count(params, '_per_page');
  let window: Window | undefined;
  if (page !== undefined || perPage !== undefined) {
    if (start !== undefined || end !== undefined) throw badQuery('_page cannot be combined with _start or _end; use one or the other');
    if (perPage !== undefined && limit !== undefined) throw badQuery('_per_page and _limit both set the page size; use one of them');
    // json-server 0.17: pages below 1 are page 1, and the size is _limit, 10 by default.
    const number = Math.max(page ?? 1, 1);
    const size = perPage ?? limit ?? 10;
    if (size === 0) throw badQuery('The page size must be at least 1');
    window = { start: (number - 1) * size, end: number * size, page: { number, size } };
  } else if (end !== undefined) {
    window = { start: start ?? 0, end: Math.max(end, start ?? 0) };
  } else if (limit !== undefined) {
    window = { start: start ?? 0, end: (start ?? 0) + limit };
  } else if (start !== undefined) {
    window = { start, end: undefined };
  }
  const textRaw = single(params, 'q');
  const text = textRaw === undefined || textRaw === '' ? undefined : textRaw.toLowerCase();
  return { dialect: 'json-server', filters, text, sort, window };
}
