/**
 * Compact JSON bytes and content tags of values, cached per value so that a
 * read of an unchanged value neither serializes nor hashes it again.
 *
 * Containers are keyed by the object itself (a WeakMap), and the document is
 * changed in place, so an entry is only right while its object is unchanged.
 * `apply.ts` keeps that true: before each step of a change it drops the
 * entries of every container on the step's path (the root down to the
 * parent of the target), because those are exactly the values whose JSON
 * the step changes; a value elsewhere keeps its entry. Undoing a change drops
 * the same entries again, since a read may have cached the changed state
 * meanwhile. Values a step puts in are fresh copies with no entry; a moved
 * value is the same object with the same JSON.
 *
 * Scalars need no invalidation at all: equal scalars have equal JSON, so
 * they are cached by value.
 *
 * Entries are immutable (a Buffer nobody writes to), so an answer being sent
 * keeps its bytes whatever later writes do. The cache is bounded in bytes;
 * the oldest entries go first, and values too large for it are not cached.
 */
import { contentTag, formatEtag } from './etag.js';
import type { JsonValue } from './json.js';
import { serializeInSlices } from './json-slices.js';
import { forgetKeys } from './member-keys.js';
import { jsonSize } from './size.js';

export interface CompactJson {
  /** The value's compact JSON in UTF-8. Never written to. */
  readonly bytes: Buffer;
  /** The opaque part of its strong ETag (`contentTag`). */
  readonly tag: string;
  /** Its strong ETag, quoted (`formatEtag(tag)`). */
  readonly etag: string;
}

/** Most bytes of JSON the container cache holds. */
const cacheBudget = 64 * 1024 * 1024;
/** Larger values are not cached (they would evict everything else). */
const largestCached = 16 * 1024 * 1024;
/** Most scalars cached, and the longest string cached. */
const scalarEntries = 4096;
const longestScalar = 1024;

interface Entry {
  readonly json: CompactJson;
  readonly owner: WeakRef<object>;
}

const byContainer = new WeakMap<object, Entry>();
/** Entries in the order they were made, for eviction. */
const age = new Set<Entry>();
let cachedBytes = 0;
const byScalar = new Map<string | number | boolean | null, CompactJson>();

function compute(value: JsonValue): CompactJson {
  const text = JSON.stringify(value);
  const tag = contentTag(text);
  return { bytes: Buffer.from(text, 'utf8'), tag, etag: formatEtag(tag) };
}

function drop(entry: Entry): void {
  age.delete(entry);
  cachedBytes -= entry.json.bytes.length;
  const owner = entry.owner.deref();
  if (owner !== undefined && byContainer.get(owner) === entry) byContainer.delete(owner);
}

function remember(container: object, json: CompactJson): void {
  const size = json.bytes.length;
  if (size > largestCached) return;
  const previous = byContainer.get(container);
  if (previous !== undefined) drop(previous);
  const made: Entry = { json, owner: new WeakRef(container) };
  byContainer.set(container, made);
  age.add(made);
  cachedBytes += size;
  for (const oldest of age) {
    if (cachedBytes <= cacheBudget) break;
    drop(oldest);
  }
}

/** The compact JSON and tag of `value`, from the cache when it has them. */
export function compactJsonOf(value: JsonValue): CompactJson {
  if (typeof value === 'object' && value !== null) {
    const entry = byContainer.get(value);
    if (entry !== undefined) return entry.json;
    const json = compute(value);
    remember(value, json);
    return json;
  }
  if (typeof value === 'string' && value.length > longestScalar) return compute(value);
  let json = byScalar.get(value);
  if (json === undefined) {
    json = compute(value);
    if (byScalar.size >= scalarEntries) byScalar.clear();
    byScalar.set(value, json);
  }
  return json;
}

/** Forgets the JSON of a container about to change (or just changed back), and its listed keys (`member-keys.ts`). */
export function invalidate(container: object): void {
  const entry = byContainer.get(container);
  if (entry !== undefined) drop(entry);
  largeTags.delete(container);
  forgetKeys(container);
}

/** Values with more JSON than this are serialized in slices, off the hot path. */
const slicedAbove = 1024 * 1024;

/**
 * A value too large for the cache: its size and tag only. Its bytes are made
 * again, a slice at a time, as they are sent (`piecesInSlices`): holding
 * hundreds of megabytes of them until the last is sent is what set off the
 * long garbage-collection pauses.
 */
export interface StreamedJson {
  /** The value, frozen by the engine while it is sent. */
  readonly value: JsonValue;
  readonly size: number;
  readonly tag: string;
  readonly etag: string;
}

/** Size and tag of containers too large for the cache, dropped along a write's path like the cache's entries. */
const largeTags = new WeakMap<object, { size: number; tag: string; etag: string }>();

/**
 * Whether serializing `value` in one go could block the event loop: a
 * container not cached with more than 1 MB of JSON. A tag already known
 * answers at once; else measuring goes depth first and stops at 1 MB, so
 * asking costs about 1 MB of walking (plus listing the keys of the objects
 * on the way) whatever the value's size.
 */
export function needsSlicing(value: JsonValue): boolean {
  if (typeof value !== 'object' || value === null || byContainer.has(value)) return false;
  return overSliceLimit(value);
}

/** A container known to be, or measured as, over 1 MB of JSON (the measure stops there). */
function overSliceLimit(value: object): boolean {
  return largeTags.has(value) || jsonSize(value as JsonValue, slicedAbove) > slicedAbove;
}

/**
 * The same for `value`'s pretty text (`?pretty`), which its cached compact
 * JSON does not make cheap: whether its compact JSON is over 1 MB (the pretty
 * text is longer still).
 */
export function prettyNeedsSlicing(value: JsonValue): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const cached = byContainer.get(value);
  if (cached !== undefined) return cached.json.bytes.length > slicedAbove;
  return overSliceLimit(value);
}

/** Size and tags already measured for a container too large for the cache (`slicedJsonOf`), if any. */
export function knownLargeJson(value: JsonValue): { readonly size: number; readonly etag: string } | undefined {
  return typeof value === 'object' && value !== null ? largeTags.get(value) : undefined;
}

/** Serializations in slices under way, by container: concurrent GETs of one value share one. */
const inFlight = new WeakMap<object, { result: Promise<CompactJson | StreamedJson | undefined>; waiting: Set<() => boolean> }>();

/**
 * `value`'s compact JSON made in slices (json-slices.ts), the event loop
 * free between them, and cached like `compactJsonOf` when it fits; a larger
 * value is only measured and hashed (its size and tag are cached), to be
 * serialized again as it is sent. The value must not change meanwhile (the
 * engine freezes it). Concurrent calls for one container share the work (N
 * readers of a 16 MB value must not hold N copies of it); it stops, and
 * gives `undefined`, once every caller's `aborted` says so.
 */
export async function slicedJsonOf(value: JsonValue, aborted: () => boolean = () => false): Promise<CompactJson | StreamedJson | undefined> {
  if (typeof value !== 'object' || value === null) return measureInSlices(value, undefined, aborted);
  const known = largeTags.get(value);
  if (known !== undefined) return { value, ...known };
  const shared = inFlight.get(value);
  if (shared !== undefined) {
    shared.waiting.add(aborted);
    const json = await shared.result;
    // Stopped because every caller before this one left: start again.
    return json === undefined && !aborted() ? slicedJsonOf(value, aborted) : json;
  }
  const waiting = new Set([aborted]);
  const result = measureInSlices(value, value, () => [...waiting].every((gone) => gone())).finally(() => inFlight.delete(value));
  inFlight.set(value, { result, waiting });
  return result;
}

async function measureInSlices(value: JsonValue, container: object | undefined, aborted: () => boolean): Promise<CompactJson | StreamedJson | undefined> {
  const sliced = await serializeInSlices(value, aborted, undefined, largestCached);
  if (sliced === undefined) return undefined;
  const tag = sliced.sha256.slice(0, 27);
  const etag = formatEtag(tag);
  if (sliced.chunks === undefined || container === undefined) {
    if (container !== undefined) largeTags.set(container, { size: sliced.size, tag, etag });
    return { value, size: sliced.size, tag, etag };
  }
  const json: CompactJson = { bytes: Buffer.concat(sliced.chunks, sliced.size), tag, etag };
  remember(container, json);
  return json;
}
