/**
 * The collection query engine: filters, orders and windows the members of an
 * array or object, in Firebase's or json-server 0.17's semantics, and writes
 * the answer's JSON. Pure: no I/O, never mutates the collection.
 *
 * Cost: one pass over the members. A query with a limit keeps only the best
 * `limit` members seen so far, in a binary heap, so ordering 100 000 members
 * for `limitToFirst=10` costs n·log 10 comparisons and ten entries of memory;
 * the members that do not make the cut allocate nothing (a rejected
 * candidate is a reused scratch slot).
 */
import { JsonStoreError } from '../errors.js';
import { valueAt } from './apply.js';
import { describeType, type JsonPrimitive, type JsonValue } from './json.js';
import type { CollectionQuery, FieldFilter, FirebaseQuery, JsonServerQuery } from './query-parse.js';

/** Page numbers for RFC 8288 `Link` (json-server's `_page`), as json-server 0.17 gives them. */
export interface PageLinks {
  first?: number;
  prev?: number;
  next?: number;
  last?: number;
}

export interface QueryResult {
  /** The answer's JSON text (indented when asked). */
  body: string;
  /** Members that matched before the window was cut (json-server's `X-Total-Count`), when a window was asked for. */
  totalCount: number | undefined;
  /** Neighbouring pages, for `_page`. */
  links: PageLinks | undefined;
}

/** One member under consideration; heap slots are reused, so these are few. */
interface Candidate {
  key: string;
  /** Position in the collection: the index of an array, the insertion rank of an object member. */
  position: number;
  value: JsonValue;
  /** What it is ordered by: one value (Firebase) or one per `_sort` field (json-server). */
  sortValue: JsonValue | undefined;
  sortValues: Array<JsonValue | undefined>;
}

type Compare = (a: Candidate, b: Candidate) => number;

function newCandidate(fields: number): Candidate {
  return { key: '', position: 0, value: null, sortValue: undefined, sortValues: new Array<JsonValue | undefined>(fields).fill(undefined) };
}

// ---- Firebase ordering ----------------------------------------------------------

const INT32 = /^-?(?:0|[1-9][0-9]{0,9})$/;

/** A key's value as a 32-bit integer, when Firebase would read it as one. */
function int32Of(key: string): number | undefined {
  if (!INT32.test(key)) return undefined;
  const n = Number(key);
  return n >= -2147483648 && n <= 2147483647 ? n : undefined;
}

/** Firebase key order: keys that parse as 32-bit integers first, numerically; then the others as strings. */
export function compareFirebaseKeys(a: string, b: string): number {
  if (a === b) return 0;
  const ia = int32Of(a);
  const ib = int32Of(b);
  if (ia !== undefined && ib !== undefined) return ia - ib;
  if (ia !== undefined) return -1;
  if (ib !== undefined) return 1;
  return a < b ? -1 : 1;
}

/** Firebase value classes in order: missing or null, false, true, numbers, strings, objects (arrays are objects there). */
function firebaseRank(value: JsonValue | undefined): number {
  if (value === undefined || value === null) return 0;
  if (value === false) return 1;
  if (value === true) return 2;
  if (typeof value === 'number') return 3;
  if (typeof value === 'string') return 4;
  return 5;
}

/** Firebase value order; values of one class that tie (booleans, objects) compare equal, and the key decides. */
export function compareFirebaseValues(a: JsonValue | undefined, b: JsonValue | undefined): number {
  const rank = firebaseRank(a) - firebaseRank(b);
  if (rank !== 0) return rank;
  if (typeof a === 'number' || typeof a === 'string') return a < (b as typeof a) ? -1 : a > (b as typeof a) ? 1 : 0;
  return 0;
}

// ---- json-server (lodash) semantics -----------------------------------------------

/** What JavaScript's `String(value)` gives for a JSON value, without calling anything a member could shadow. */
export function jsString(value: JsonValue): string {
  if (typeof value === 'string') return value;
  if (value === null) return 'null';
  if (typeof value !== 'object') return String(value);
  if (Array.isArray(value)) return value.map((item) => (item === null ? '' : jsString(item))).join(',');
  return '[object Object]';
}

/** The primitive JavaScript's relational operators would compare a JSON value as. */
function primitiveOf(value: JsonValue | undefined): JsonPrimitive | undefined {
  return typeof value === 'object' && value !== null ? jsString(value) : value;
}

/** JavaScript's `a > b` on primitives (strings with strings as strings, otherwise as numbers). */
function greater(a: JsonPrimitive | undefined, b: JsonPrimitive | undefined): boolean {
  return (a as number) > (b as number);
}

/**
 * lodash's `compareAscending`, which json-server's `_sort` uses: JavaScript
 * `<`/`>` between defined values, `null` after them, missing values last.
 */
export function compareLodash(value: JsonValue | undefined, other: JsonValue | undefined): number {
  if (value === other) return 0;
  const a = primitiveOf(value);
  const b = primitiveOf(other);
  if ((other !== null && greater(a, b)) || (value === null && other !== undefined) || value === undefined) return 1;
  if ((value !== null && greater(b, a)) || (other === null && value !== undefined) || other === undefined) return -1;
  return 0;
}

/** json-server's field filters: missing and null never match; values compare as strings, ranges as JavaScript does. */
function matchesFilter(member: JsonValue, filter: FieldFilter): boolean {
  const found = valueAt(member, filter.path);
  if (found === undefined || found === null) return false;
  const { values } = filter;
  switch (filter.operator) {
    case 'eq': {
      const text = jsString(found);
      return values.some((value) => value === text);
    }
    case 'ne': {
      const text = jsString(found);
      return values.every((value) => value !== text);
    }
    case 'gte':
      return values.some((value) => !greater(value, primitiveOf(found)) && relational(value, found));
    case 'lte':
      return values.some((value) => !greater(primitiveOf(found), value) && relational(value, found));
    case 'like': {
      const text = jsString(found);
      return (filter.patterns as RegExp[]).some((pattern) => pattern.test(text));
    }
  }
}

/** Whether `value` and `found` are comparable at all (`<=` is false when either side reads as NaN). */
function relational(value: string, found: JsonValue): boolean {
  const b = primitiveOf(found);
  if (typeof b === 'string') return true;
  return !Number.isNaN(Number(value)) && !Number.isNaN(Number(b));
}

/** json-server's `q`: some value inside the member (not a key) contains the text, case-insensitively; falsy values never match. */
function deepContains(value: JsonValue | undefined, text: string): boolean {
  if (!value) return false;
  if (Array.isArray(value)) return value.some((item) => deepContains(item, text));
  if (typeof value === 'object') {
    for (const key of Object.keys(value)) if (deepContains(value[key], text)) return true;
    return false;
  }
  return jsString(value).toLowerCase().includes(text);
}

function matchesText(member: JsonValue, text: string): boolean {
  // json-server walks the member's own values with for...in: a string's characters, nothing of a number.
  if (typeof member === 'string') return [...member].some((char) => deepContains(char, text));
  if (typeof member !== 'object' || member === null) return false;
  return deepContains(member, text);
}

// ---- selection ----------------------------------------------------------------

/**
 * Keeps the `bound` smallest candidates under `compare` in a max-heap (the
 * worst kept at the root), so each new member costs one comparison when it
 * does not make the cut and log(bound) when it does.
 */
class BoundedHeap {
  readonly items: Candidate[] = [];
  constructor(
    private readonly bound: number,
    private readonly compare: Compare,
  ) {}

  /** Offers a candidate; returns the slot the caller may reuse (the evicted or refused one), or undefined when it was kept. */
  offer(candidate: Candidate): Candidate | undefined {
    const { items, compare } = this;
    if (items.length < this.bound) {
      items.push(candidate);
      this.up(items.length - 1);
      return undefined;
    }
    const worst = items[0] as Candidate;
    if (compare(candidate, worst) >= 0) return candidate;
    items[0] = candidate;
    this.down(0);
    return worst;
  }

  private up(index: number): void {
    const { items, compare } = this;
    const item = items[index] as Candidate;
    while (index > 0) {
      const parent = (index - 1) >> 1;
      if (compare(item, items[parent] as Candidate) <= 0) break;
      items[index] = items[parent] as Candidate;
      index = parent;
    }
    items[index] = item;
  }

  private down(index: number): void {
    const { items, compare } = this;
    const item = items[index] as Candidate;
    const size = items.length;
    for (;;) {
      let child = 2 * index + 1;
      if (child >= size) break;
      if (child + 1 < size && compare(items[child + 1] as Candidate, items[child] as Candidate) > 0) child++;
      if (compare(items[child] as Candidate, item) <= 0) break;
      items[index] = items[child] as Candidate;
      index = child;
    }
    items[index] = item;
  }
}

/** How a query is carried out, whatever its dialect. */
interface Plan {
  fields: number;
  /** Whether a member is in (after its sort values are filled in). */
  accept(candidate: Candidate): boolean;
  /** Fills in what the member is ordered by. */
  prepare(candidate: Candidate): void;
  compare: Compare | undefined;
  /** Positions kept, after ordering: `[start, end)`. */
  start: number;
  end: number | undefined;
  /** Whether the kept members are answered in reverse (limitToLast selects from the end). */
  fromEnd: boolean;
}

function firebasePlan(query: FirebaseQuery, isArray: boolean): Plan {
  const { orderBy } = query;
  const byKey = orderBy.by === 'key';
  const compareKeys: Compare = isArray ? (a, b) => a.position - b.position : (a, b) => compareFirebaseKeys(a.key, b.key);
  const compareOrdered: Compare = byKey ? compareKeys : (a, b) => compareFirebaseValues(a.sortValue, b.sortValue) || compareKeys(a, b);
  const bound = (candidate: Candidate, limit: JsonPrimitive): number =>
    byKey ? compareFirebaseKeys(candidate.key, limit as string) : compareFirebaseValues(candidate.sortValue, limit);
  const { startAt, endAt, equalTo } = query;
  const filtered = startAt !== undefined || endAt !== undefined || equalTo !== undefined;
  const fromEnd = query.limitToLast !== undefined;
  return {
    fields: 0,
    prepare:
      orderBy.by === 'child'
        ? (c) => (c.sortValue = valueAt(c.value, orderBy.path))
        : orderBy.by === 'value'
          ? (c) => (c.sortValue = c.value)
          : () => undefined,
    accept: filtered
      ? (c) =>
          (equalTo === undefined || bound(c, equalTo) === 0) &&
          (startAt === undefined || bound(c, startAt) >= 0) &&
          (endAt === undefined || bound(c, endAt) <= 0)
      : () => true,
    compare: fromEnd ? (a, b) => compareOrdered(b, a) : compareOrdered,
    start: 0,
    end: query.limitToFirst ?? query.limitToLast,
    fromEnd,
  };
}

function jsonServerPlan(query: JsonServerQuery): Plan {
  const { filters, text, sort } = query;
  const compare: Compare | undefined =
    sort.length === 0
      ? undefined
      : (a, b) => {
          for (let i = 0; i < sort.length; i++) {
            const order = compareLodash(a.sortValues[i], b.sortValues[i]);
            if (order !== 0) return (sort[i] as { descending: boolean }).descending ? -order : order;
          }
          return a.position - b.position;
        };
  return {
    fields: sort.length,
    prepare: (c) => {
      for (let i = 0; i < sort.length; i++) c.sortValues[i] = valueAt(c.value, (sort[i] as { path: string[] }).path);
    },
    accept: (c) => filters.every((filter) => matchesFilter(c.value, filter)) && (text === undefined || matchesText(c.value, text)),
    compare,
    start: query.window?.start ?? 0,
    end: query.window?.end,
    fromEnd: false,
  };
}

/** Runs `plan` over the members; returns the kept ones in answer order and how many matched. */
function select(collection: JsonValue[] | Record<string, JsonValue>, plan: Plan): { kept: Candidate[]; matched: number } {
  const isArray = Array.isArray(collection);
  const keys = isArray ? undefined : Object.keys(collection);
  const size = isArray ? collection.length : (keys as string[]).length;
  const { compare, start, end } = plan;
  const heap = compare !== undefined && end !== undefined ? new BoundedHeap(end, compare) : undefined;
  const kept: Candidate[] = [];
  let matched = 0;
  let scratch = newCandidate(plan.fields);
  for (let position = 0; position < size; position++) {
    const key = isArray ? '' : ((keys as string[])[position] as string);
    scratch.key = isArray ? String(position) : key;
    scratch.position = position;
    scratch.value = isArray ? (collection[position] as JsonValue) : (collection as Record<string, JsonValue>)[key] as JsonValue;
    plan.prepare(scratch);
    if (!plan.accept(scratch)) continue;
    matched++;
    if (heap !== undefined) {
      scratch = heap.offer(scratch) ?? newCandidate(plan.fields);
    } else if (compare !== undefined || ((matched - 1 >= start) && (end === undefined || matched - 1 < end))) {
      kept.push(scratch);
      scratch = newCandidate(plan.fields);
    }
  }
  if (heap !== undefined) kept.push(...heap.items);
  if (compare !== undefined) {
    kept.sort(compare);
    const window = kept.slice(start, end === undefined ? undefined : end);
    return { kept: plan.fromEnd ? window.reverse() : window, matched };
  }
  return { kept, matched };
}

function serialize(kept: Candidate[], asArray: boolean, pretty: boolean): string {
  if (kept.length === 0) return asArray ? '[]' : '{}';
  if (!pretty) {
    return asArray
      ? `[${kept.map((c) => JSON.stringify(c.value)).join(',')}]`
      : `{${kept.map((c) => `${JSON.stringify(c.key)}:${JSON.stringify(c.value)}`).join(',')}}`;
  }
  const indent = (c: Candidate) => JSON.stringify(c.value, null, 2).replace(/\n/g, '\n  ');
  return asArray
    ? `[\n${kept.map((c) => `  ${indent(c)}`).join(',\n')}\n]\n`
    : `{\n${kept.map((c) => `  ${JSON.stringify(c.key)}: ${indent(c)}`).join(',\n')}\n}\n`;
}

/** json-server 0.17's `getPage`: which neighbours a page has. */
function pageLinks(page: { number: number; size: number }, matched: number, shown: number): PageLinks | undefined {
  if (shown === 0) return undefined;
  const links: PageLinks = {};
  if (shown !== matched) links.first = 1;
  if (page.number > 1) links.prev = page.number - 1;
  if (page.number * page.size < matched) links.next = page.number + 1;
  if (shown !== matched) links.last = Math.ceil(matched / page.size);
  return links;
}

/**
 * Runs a collection query on the value at a path. Arrays answer arrays; an
 * object answers an object of the selected members, in the query's order.
 * `where` names the path for the error on a scalar.
 */
export function runQuery(collection: JsonValue, query: CollectionQuery, options: { pretty: boolean; where: string }): QueryResult {
  if (typeof collection !== 'object' || collection === null) {
    throw new JsonStoreError(
      'bad-request',
      `Queries apply to arrays and objects; ${options.where} is ${describeType(collection)}. GET it without query parameters`,
    );
  }
  const isArray = Array.isArray(collection);
  const plan = query.dialect === 'firebase' ? firebasePlan(query, isArray) : jsonServerPlan(query);
  const { kept, matched } = select(collection, plan);
  const body = serialize(kept, isArray, options.pretty);
  if (query.dialect === 'firebase' || query.window === undefined) return { body, totalCount: undefined, links: undefined };
  const { page } = query.window;
  return { body, totalCount: matched, links: page === undefined ? undefined : pageLinks(page, matched, kept.length) };
}
