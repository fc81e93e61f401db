/**
 * Sizes of JSON values as the store serves them: compact JSON text in UTF-8,
 * exactly `Buffer.byteLength(JSON.stringify(value))`. Computed by walking the
 * value, never by serializing it (a value may be far too large to serialize),
 * and the walk stops as soon as it passes a limit.
 *
 * `SizeMeter` watches a change being applied and keeps the two figures the
 * engine budgets: how much the change inserts, and how much the document
 * grows. It costs time in proportion to the change, not to the document.
 */
import { JsonStoreError } from '../errors.js';
import type { ApplyObserver } from './apply.js';
import { hasMember, isContainer, isObject, type JsonValue } from './json.js';
import { keysOf } from './member-keys.js';

/** Characters that JSON.stringify escapes, and surrogates (escaped when lone, 4 bytes when paired). */
const notPlain = /["\\\u0000-\u001f\ud800-\udfff]/;

/** Up to this many characters a string is measured in JavaScript: cheaper than two native calls. */
const shortString = 64;

/** Bytes of a string as a JSON string literal, quotes and escapes included. */
export function stringSize(text: string): number {
  const length = text.length;
  if (length <= shortString) {
    // Keys and short values, most of a large document: plain printable ASCII is one byte a character.
    let i = 0;
    for (; i < length; i++) {
      const code = text.charCodeAt(i);
      if (code < 0x20 || code > 0x7e || code === 0x22 || code === 0x5c) break;
    }
    if (i === length) return length + 2;
  } else if (!notPlain.test(text)) {
    // Long strings in native code: nothing escaped, every character its UTF-8 length.
    return Buffer.byteLength(text, 'utf8') + 2;
  }
  let size = 2;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20) {
      // \b \t \n \f \r have short escapes; other control characters are \u00XX.
      size += code === 0x08 || code === 0x09 || code === 0x0a || code === 0x0c || code === 0x0d ? 2 : 6;
    } else if (code === 0x22 || code === 0x5c) {
      size += 2;
    } else if (code < 0x80) {
      size += 1;
    } else if (code < 0x800) {
      size += 2;
    } else if (code >= 0xd800 && code <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        size += 4;
        i++;
      } else {
        size += 6; // a lone high surrogate is written as \uD8XX
      }
    } else if (code >= 0xdc00 && code <= 0xdfff) {
      size += 6; // a lone low surrogate
    } else {
      size += 3;
    }
  }
  return size;
}

/** Characters of a finite number as JSON.stringify writes it; small integers without making the string. */
export function numberSize(value: number): number {
  if (Number.isInteger(value) && value > -1e9 && value < 1e9) {
    // (-0 is written "0": not below 0, so one digit.)
    let size = value < 0 ? 2 : 1;
    let rest = value < 0 ? -value : value;
    while (rest >= 10) {
      rest = (rest - (rest % 10)) / 10;
      size++;
    }
    return size;
  }
  return String(value).length;
}

export function scalarSize(value: null | boolean | number | string): number {
  if (typeof value === 'string') return stringSize(value);
  if (typeof value === 'number') return Number.isFinite(value) ? numberSize(value) : 4; // JSON.stringify writes null
  if (value === null || value === true) return 4;
  return 5;
}

/**
 * The size of `value` as compact JSON in UTF-8 bytes. Stops as soon as the
 * size passes `limit` and returns what it counted so far (more than `limit`),
 * so measuring a huge value against a small budget is cheap. Iterative: no
 * nesting overflows it.
 */
export function jsonSize(value: JsonValue, limit = Number.POSITIVE_INFINITY): number {
  if (!isContainer(value)) return scalarSize(value);
  if (limit !== Number.POSITIVE_INFINITY) return boundedJsonSize(value, limit);
  let size = 0;
  const pending: JsonValue[] = [value];
  while (pending.length > 0) {
    const node = pending.pop() as JsonValue;
    if (Array.isArray(node)) {
      size += node.length === 0 ? 2 : node.length + 1; // brackets and commas
      for (const child of node) {
        if (isContainer(child)) pending.push(child);
        else size += scalarSize(child);
      }
    } else if (isObject(node)) {
      const keys = keysOf(node);
      size += keys.length === 0 ? 2 : keys.length + 1; // braces and commas
      for (const key of keys) {
        size += stringSize(key) + 1; // the key and its colon
        const child = node[key] as JsonValue;
        if (isContainer(child)) pending.push(child);
        else size += scalarSize(child);
      }
    }
  }
  return size;
}

/** A container being measured depth-first: its keys (objects) and the next member. */
interface SizeFrame {
  node: JsonValue[] | Record<string, JsonValue>;
  keys: readonly string[] | undefined;
  next: number;
}

/**
 * `jsonSize` against a limit: depth first, so the limit is passed after
 * about `limit` bytes of members have been visited, however wide the
 * containers on the way (breadth first, a wide array of objects would be
 * queued whole before any of it counted).
 */
function boundedJsonSize(value: JsonValue[] | Record<string, JsonValue>, limit: number): number {
  let size = 0;
  const stack: SizeFrame[] = [];
  const open = (node: JsonValue[] | Record<string, JsonValue>): void => {
    const keys = Array.isArray(node) ? undefined : keysOf(node);
    const length = keys === undefined ? (node as JsonValue[]).length : keys.length;
    size += length === 0 ? 2 : length + 1; // brackets or braces, and commas
    // Each member is at least a byte (`"":0` in an object: four), so a container
    // with more members than the rest of the budget is over it: no need to walk them.
    const atLeast = size + (keys === undefined ? length : 4 * length);
    if (atLeast > limit) size = atLeast;
    else stack.push({ node, keys, next: 0 });
  };
  open(value);
  while (stack.length > 0 && size <= limit) {
    const frame = stack[stack.length - 1] as SizeFrame;
    const { node, keys } = frame;
    if (frame.next >= (keys === undefined ? (node as JsonValue[]).length : keys.length)) {
      stack.pop();
      continue;
    }
    const index = frame.next++;
    let child: JsonValue;
    if (keys === undefined) child = (node as JsonValue[])[index] as JsonValue;
    else {
      const key = keys[index] as string;
      size += stringSize(key) + 1; // the key and its colon
      child = (node as Record<string, JsonValue>)[key] as JsonValue;
    }
    if (isContainer(child)) open(child);
    else size += scalarSize(child);
  }
  return size;
}

/**
 * A member each object was last seen to have. Checking it is O(1), where
 * listing an object's keys (for...in, Object.keys) is O(members): a POST to a
 * collection of 100 000 keys must not pay for the collection to learn that
 * it is not empty. Only a hint: it is checked before it is trusted.
 */
const witnesses = new WeakMap<object, string>();

/** Whether `object` has an own member other than `except`. */
function hasOtherMember(object: Record<string, JsonValue>, except?: string): boolean {
  const witness = witnesses.get(object);
  if (witness !== undefined && witness !== except && hasMember(object, witness)) return true;
  let first: string | undefined;
  let last: string | undefined;
  let exceptCameFirst = false;
  for (const key in object) {
    if (!hasMember(object, key)) continue;
    if (key === except) {
      exceptCameFirst = first === undefined;
      continue;
    }
    first ??= key;
    last = key;
  }
  if (first === undefined) {
    witnesses.delete(object);
    return false;
  }
  // Remember the member at the other end from the one going away, so that
  // deleting members in order (oldest or newest first) rarely scans again.
  witnesses.set(object, exceptCameFirst ? (last as string) : first);
  return true;
}

/** The container `path` ends in and the key in it, or undefined when there is none (the step will fail). */
function slotOf(root: JsonValue, path: readonly string[]): { parent: JsonValue[] | Record<string, JsonValue>; key: string } | undefined {
  let node: JsonValue | undefined = root;
  for (let i = 0; i < path.length - 1; i++) {
    const segment = path[i] as string;
    if (Array.isArray(node)) node = node[Number(segment)];
    else if (isObject(node)) node = hasMember(node, segment) ? node[segment] : undefined;
    else return undefined;
    if (node === undefined) return undefined;
  }
  if (!isContainer(node)) return undefined;
  return { parent: node, key: path[path.length - 1] as string };
}

/** Budget figures of the operation being applied, for the 413's detail. */
export type BudgetName = 'maxWriteGrowth' | 'maxDocumentSize' | 'maxPatchOperations';

export function budgetExceeded(budget: BudgetName, detail: string): JsonStoreError {
  return new JsonStoreError('budget-exceeded', `${detail} (the ${budget} option); nothing was changed`);
}

/**
 * Watches one change being applied (pass it to `applyOperations`):
 * - `inserted`: bytes of the values the change puts in (added, replaced,
 *   copied; a move puts in nothing new), measured before a copy is made and
 *   refused with a 413 as soon as it passes `growthLimit`;
 * - `sizeAfter(before)`: the document's size once the change is applied,
 *   from the size before plus what each step added and removed, keys,
 *   colons and commas included. Steps that replace the whole document make
 *   it measure the result instead (`needsWalk`), unless it is already known.
 */
export class SizeMeter implements ApplyObserver {
  inserted = 0;
  private delta = 0;
  /** The document's size when a step set the whole document to a value of known size. */
  private restart: number | undefined;
  /** A step replaced the whole document with a value not measured: the result must be. */
  needsWalk = false;

  /**
   * `growthLimit`: the most this change may insert. `namesOperations`: the
   * change is a client's JSON Patch, so a refusal names the operation.
   */
  constructor(
    private readonly growthLimit = Number.POSITIVE_INFINITY,
    private readonly namesOperations = false,
  ) {}

  /** The size after the change, given the size before; `undefined` when the caller must measure the document. */
  sizeAfter(before: number): number | undefined {
    if (this.needsWalk) return undefined;
    return (this.restart ?? before) + this.delta;
  }

  /** Measures a value the change puts in, refusing the change once the total passes the budget. */
  private insert(value: JsonValue, where: string): number {
    const remaining = this.growthLimit - this.inserted;
    const size = jsonSize(value, remaining);
    if (size > remaining) {
      const at = this.namesOperations ? ` (passed at ${where})` : '';
      throw budgetExceeded(
        'maxWriteGrowth',
        `This write would insert at least ${this.inserted + size} bytes of JSON${at}; the limit is ${this.growthLimit} bytes`,
      );
    }
    this.inserted += size;
    return size;
  }

  adding(root: JsonValue, path: readonly string[], value: JsonValue, source: 'patch' | 'copy' | 'move', where: string): void {
    // A moved value is already counted in the document; its own size cancels out.
    const size = source === 'move' ? 0 : this.insert(value, where);
    if (path.length === 0) {
      if (source === 'move') this.needsWalk = true;
      else this.setWhole(size);
      return;
    }
    const slot = slotOf(root, path);
    if (slot === undefined) return;
    const { parent, key } = slot;
    if (Array.isArray(parent)) {
      this.delta += size + (parent.length > 0 ? 1 : 0);
    } else if (hasMember(parent, key)) {
      // An object member is replaced: same key, same comma.
      this.delta += size - jsonSize(parent[key] as JsonValue);
    } else {
      const comma = hasOtherMember(parent) ? 1 : 0;
      if (comma === 0) witnesses.set(parent, key);
      this.delta += size + stringSize(key) + 1 + comma;
    }
  }

  replacing(root: JsonValue, path: readonly string[], value: JsonValue, where: string): void {
    const size = this.insert(value, where);
    if (path.length === 0) {
      this.setWhole(size);
      return;
    }
    const slot = slotOf(root, path);
    if (slot === undefined) return;
    const { parent, key } = slot;
    const previous = Array.isArray(parent) ? parent[Number(key)] : hasMember(parent, key) ? parent[key] : undefined;
    if (previous !== undefined) this.delta += size - jsonSize(previous);
  }

  removing(root: JsonValue, path: readonly string[], source: 'remove' | 'move'): void {
    if (path.length === 0) {
      this.needsWalk = true;
      return;
    }
    const slot = slotOf(root, path);
    if (slot === undefined) return;
    const { parent, key } = slot;
    if (Array.isArray(parent)) {
      const previous = parent[Number(key)];
      if (previous === undefined) return;
      this.delta -= (source === 'move' ? 0 : jsonSize(previous)) + (parent.length > 1 ? 1 : 0);
    } else if (hasMember(parent, key)) {
      this.delta -= (source === 'move' ? 0 : jsonSize(parent[key] as JsonValue)) + stringSize(key) + 1 + (hasOtherMember(parent, key) ? 1 : 0);
    }
  }

  private setWhole(size: number): void {
    this.restart = size;
    this.delta = 0;
    this.needsWalk = false;
  }
}
