/**
 * Compact JSON of a large value, made a slice at a time so that serializing
 * 100 MB never blocks the event loop for long: the same text as
 * `JSON.stringify` (members in order, the same escapes), produced by a walk
 * that hands members of at most 16 KB of JSON to `JSON.stringify` whole
 * and descends into the others (measuring stops at 16 KB, so it costs at
 * most about what serializing the small ones does).
 *
 * The value must not change while it is being serialized. The engine sees
 * to that (`DocumentStore.freeze`): from then on a write copies the
 * containers it changes instead of changing them in place, so the objects
 * being walked stay as they were.
 */
import { createHash } from 'node:crypto';
import type { JsonValue } from './json.js';
import { jsonSize } from './size.js';

/** Containers with more members than this are walked; so are smaller ones with more JSON than `wholeChars`. */
const walkedMembers = 256;
/** Most JSON handed to JSON.stringify in one call (measured, the measuring stops there). */
const wholeBytes = 16 * 1024;
/** Characters gathered before a piece is handed out. */
const pieceChars = 64 * 1024;

interface Frame {
  node: JsonValue[] | Record<string, JsonValue>;
  keys: string[] | undefined;
  next: number;
}

/** A frame to walk `node` member by member, or `undefined` when JSON.stringify may take it whole. */
function opened(node: JsonValue): Frame | undefined {
  if (typeof node !== 'object' || node === null) return undefined;
  if (Array.isArray(node)) {
    if (node.length > walkedMembers || jsonSize(node, wholeBytes) > wholeBytes) return { node, keys: undefined, next: 0 };
    return undefined;
  }
  const keys = Object.keys(node);
  if (keys.length > walkedMembers || jsonSize(node, wholeBytes) > wholeBytes) return { node, keys, next: 0 };
  return undefined;
}

/** Pieces of `value`'s compact JSON, about 64 KB each, in order. */
export function* jsonPieces(value: JsonValue): Generator<string, void, undefined> {
  const root = opened(value);
  if (root === undefined) {
    yield JSON.stringify(value);
    return;
  }
  let out = root.keys === undefined ? '[' : '{';
  const stack: Frame[] = [root];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1] as Frame;
    const { node, keys } = frame;
    const length = keys === undefined ? (node as JsonValue[]).length : keys.length;
    if (frame.next >= length) {
      out += keys === undefined ? ']' : '}';
      stack.pop();
    } else {
      const index = frame.next++;
      if (index > 0) out += ',';
      let member: JsonValue;
      if (keys === undefined) {
        member = (node as JsonValue[])[index] as JsonValue;
        // JSON.stringify writes holes and non-JSON members of arrays as null; a document holds none.
      } else {
        const key = keys[index] as string;
        member = (node as Record<string, JsonValue>)[key] as JsonValue;
        out += JSON.stringify(key) + ':';
      }
      const inner = opened(member);
      if (inner === undefined) out += JSON.stringify(member);
      else {
        out += inner.keys === undefined ? '[' : '{';
        stack.push(inner);
      }
    }
    if (out.length >= pieceChars) {
      yield out;
      out = '';
    }
  }
  if (out.length > 0) yield out;
}

export interface SlicedJson {
  chunks: Buffer[];
  size: number;
  /** SHA-256 of the whole text, base64url (what `contentTag` takes the start of). */
  sha256: string;
}

/**
 * Serializes `value` in slices of at most about `sliceMs` of work, yielding
 * to the event loop between them. `aborted` is checked between slices (a
 * client that went away stops the work).
 */
export async function serializeInSlices(value: JsonValue, aborted: () => boolean = () => false, sliceMs = 10): Promise<SlicedJson | undefined> {
  const hash = createHash('sha256');
  const chunks: Buffer[] = [];
  let size = 0;
  const pieces = jsonPieces(value);
  for (;;) {
    const until = performance.now() + sliceMs;
    let done = false;
    while (performance.now() < until) {
      const next = pieces.next();
      if (next.done) {
        done = true;
        break;
      }
      const chunk = Buffer.from(next.value, 'utf8');
      hash.update(chunk);
      chunks.push(chunk);
      size += chunk.length;
    }
    if (done) break;
    await new Promise((resolve) => setImmediate(resolve));
    if (aborted()) return undefined;
  }
  return { chunks, size, sha256: hash.digest('base64url') };
}
