/**
 * From a change's RFC 6902 operations to Firebase-style stream events
 * relative to a subscribed path (pure: no I/O, no state of its own).
 *
 * A change is first reduced to the paths it touched: the smallest subtrees
 * whose values may differ afterwards (an insertion into the middle of an
 * array shifts its later elements, so it touches the whole array). Each
 * subscriber is then sent the values *after* the change at those paths:
 *
 * - a touched path at or above the subscribed path: one `put` at `/`;
 * - touched paths below it: a `put` each, in the order the change touched
 *   them, or one `patch` when they are two or more members of one object.
 *
 * Applying those events in order with `applyLiveEvent` turns the value
 * before the change into the value after it.
 */
import { valueAt } from '../document/apply.js';
import { isContainer, isObject, setMember, type JsonObject, type JsonValue } from '../document/json.js';
import type { PatchOperation } from '../document/patch-types.js';
import { isArrayIndex, parsePointer, parseUrlPath, urlPath, type Path } from '../document/path.js';

/** One stream event. `path` is URL-style and relative to the subscription (`/` is the subscribed value itself). */
export interface LiveEvent {
  event: 'put' | 'patch';
  path: string;
  /** `put`: the new value, `null` when nothing is there. `patch`: member name → new value (`null`: removed). */
  data: JsonValue;
}

/**
 * What `subscribe()` listeners get: an event and the revision it brings the
 * value to; or, last, `cancel` with the reason when the server ends the
 * subscription (the store closing).
 */
export type LiveMessage = (LiveEvent & { revision: number }) | { event: 'cancel'; path: '/'; data: string; revision: number };

/** Whether `prefix` is `path` or one of its ancestors. */
export function isPrefix(prefix: Path, path: Path): boolean {
  if (prefix.length > path.length) return false;
  for (let i = 0; i < prefix.length; i++) if (prefix[i] !== path[i]) return false;
  return true;
}

function touchesOfSlot(root: JsonValue, path: Path, how: 'insert' | 'remove', exact: boolean): Path {
  if (path.length === 0) return path;
  const parentPath = path.slice(0, -1);
  const parent = valueAt(root, parentPath);
  if (!Array.isArray(parent)) return path;
  const key = path[path.length - 1] as string;
  if (!exact || !isArrayIndex(key)) return parentPath;
  const index = Number(key);
  // Only the end of an array moves nothing else: an append, or removing the last element.
  const atEnd = how === 'insert' ? index >= parent.length : index === parent.length - 1;
  return atEnd ? path : parentPath;
}

/**
 * The paths one operation touches. `exact`: `root` is the document just
 * before this operation (appends and removals at the end of an array touch
 * only that element). Otherwise `root` may be any later state and the
 * answer errs on the wide side: every insertion into or removal from an
 * array touches the array (enough for a catch-up, which sends values after
 * all the changes).
 */
export function touchesOf(root: JsonValue, op: PatchOperation, exact: boolean): Path[] {
  switch (op.op) {
    case 'test':
      return [];
    case 'replace':
      return [parsePointer(op.path)];
    case 'add':
    case 'copy':
      return [touchesOfSlot(root, parsePointer(op.path), 'insert', exact)];
    case 'remove':
      return [touchesOfSlot(root, parsePointer(op.path), 'remove', exact)];
    case 'move':
      // Rare: both ends counted wide, since the insertion happens after the removal.
      return [touchesOfSlot(root, parsePointer(op.from), 'remove', false), touchesOfSlot(root, parsePointer(op.path), 'insert', false)];
  }
}

/**
 * The touched paths without repeats and without any path below another one
 * (the outer `put` carries it), first occurrences in order.
 */
export function coverOf(paths: readonly Path[]): Path[] {
  const seen = new Set<string>();
  const unique: Path[] = [];
  for (const path of paths) {
    const key = JSON.stringify(path);
    if (seen.has(key)) continue;
    seen.add(key);
    unique.push(path);
  }
  if (unique.length < 2) return unique;
  return unique.filter((path) => {
    for (let length = 0; length < path.length; length++) {
      if (seen.has(JSON.stringify(path.slice(0, length)))) return false;
    }
    return true;
  });
}

function relative(subscribed: Path, path: Path): string {
  return path.length === subscribed.length ? '/' : urlPath(path.slice(subscribed.length));
}

/** The `put` of the whole subscribed value, `null` when nothing is there. */
export function fullPut(root: JsonValue, subscribed: Path): LiveEvent {
  return { event: 'put', path: '/', data: valueAt(root, subscribed) ?? null };
}

/**
 * The events a subscriber of `subscribed` is sent for a change that touched
 * `touched`, given `root`, the document after the change. Empty when the
 * change touched nothing at, above or below the subscribed path.
 */
export function eventsFor(subscribed: Path, touched: readonly Path[], root: JsonValue): LiveEvent[] {
  const below: Path[] = [];
  for (const path of touched) {
    if (isPrefix(path, subscribed)) return [fullPut(root, subscribed)];
    if (isPrefix(subscribed, path)) below.push(path);
  }
  if (below.length === 0) return [];
  const widened: Path[] = [];
  for (const path of below) {
    let at = path;
    // An empty key has no URL path: its parent goes instead.
    const empty = at.indexOf('', subscribed.length);
    if (empty !== -1) at = at.slice(0, empty);
    // A stored null would read as "removed": its parent carries it instead.
    while (at.length > subscribed.length && valueAt(root, at) === null) at = at.slice(0, -1);
    if (at.length === subscribed.length) return [fullPut(root, subscribed)];
    widened.push(at);
  }
  const cover = coverOf(widened);
  if (cover.length >= 2) {
    const parent = (cover[0] as Path).slice(0, -1);
    const parentValue = valueAt(root, parent);
    if (isObject(parentValue) && cover.every((path) => path.length === parent.length + 1 && isPrefix(parent, path))) {
      const data: JsonObject = {};
      for (const path of cover) setMember(data, path[path.length - 1] as string, valueAt(root, path) ?? null);
      return [{ event: 'patch', path: relative(subscribed, parent), data }];
    }
  }
  return cover.map((path) => ({ event: 'put', path: relative(subscribed, path), data: valueAt(root, path) ?? null }));
}

/** One event as Server-Sent Events text; `id` is the document revision. */
export function formatEvent(event: LiveEvent, revision: number): string {
  return `id: ${revision}\nevent: ${event.event}\ndata: ${JSON.stringify({ path: event.path, data: event.data })}\n\n`;
}

/** A control event (`keep-alive`, `cancel`) without an id. */
export function formatControl(name: 'keep-alive' | 'cancel', data: JsonValue): string {
  return `event: ${name}\ndata: ${JSON.stringify(data)}\n\n`;
}

function putAt(root: JsonValue | null, path: Path, data: JsonValue): JsonValue | null {
  if (path.length === 0) return data;
  const last = path[path.length - 1] as string;
  if (data === null) {
    const parent = valueAt(root ?? {}, path.slice(0, -1));
    if (Array.isArray(parent)) {
      if (isArrayIndex(last) && Number(last) < parent.length) parent.splice(Number(last), 1);
    } else if (isObject(parent)) {
      delete parent[last];
    }
    return root;
  }
  const top: JsonValue = isContainer(root) ? root : {};
  let node: JsonObject | JsonValue[] = top;
  for (let i = 0; i < path.length - 1; i++) {
    const segment = path[i] as string;
    let child: JsonValue | undefined = Array.isArray(node) ? node[Number(segment)] : isObject(node) ? (Object.hasOwn(node, segment) ? node[segment] : undefined) : undefined;
    if (!isContainer(child)) {
      child = {};
      if (Array.isArray(node)) node[Number(segment)] = child;
      else setMember(node, segment, child);
    }
    node = child;
  }
  if (Array.isArray(node)) node[Number(last)] = data;
  else setMember(node, last, data);
  return top;
}

/**
 * Applies one stream event to a subscriber's copy of the value (`null`: no
 * value) and returns the new copy; containers are changed in place. The
 * same rules a browser client follows (see docs/http.md, "Live updates").
 */
export function applyLiveEvent(value: JsonValue | null, event: LiveEvent): JsonValue | null {
  const path = parseUrlPath(event.path);
  if (event.event === 'put') return putAt(value, path, event.data);
  let result = value;
  for (const [key, member] of Object.entries(event.data as JsonObject)) result = putAt(result, [...path, key], member);
  return result;
}
