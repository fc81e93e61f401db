/**
 * The JSON text of a large value, made a slice at a time so that serializing
 * 100 MB never blocks the event loop for long: the same text as
 * `JSON.stringify(value)` (or `JSON.stringify(value, null, indent)`:
 * members in order, the same escapes, the same line breaks), produced by a
 * walk that hands members of at most 16 KB of JSON to `JSON.stringify`
 * whole and descends into the others (measuring stops at 16 KB, so it costs
 * at most about what serializing the small ones does). A long string is cut
 * into parts escaped one at a time.
 *
 * The value must not change while it is being serialized. The engine sees
 * to that (`DocumentStore.freeze`): from then on a write copies the
 * containers it changes instead of changing them in place, so the objects
 * being walked stay as they were.
 */
import { createHash } from 'node:crypto';
import type { JsonValue } from './json.js';
import { keysOf } from './member-keys.js';
import { jsonSize } from './size.js';

/** Containers with more members than this are walked; so are smaller ones with more JSON than `wholeChars`. */
const walkedMembers = 256;
/** Most JSON handed to JSON.stringify in one call (measured, the measuring stops there). */
const wholeBytes = 16 * 1024;
/** Characters gathered before a piece is handed out. */
const pieceChars = 64 * 1024;

interface ContainerFrame {
  node: JsonValue[] | Record<string, JsonValue>;
  keys: readonly string[] | undefined;
  next: number;
  /** Nesting depth of the container itself (the root is 0): its lines are indented by that much. */
  depth: number;
}

/** A string longer than `wholeBytes`, escaped a part at a time. */
interface StringFrame {
  text: string;
  next: number;
}

type Frame = ContainerFrame | StringFrame;

/** A frame to walk `node` part by part, or `undefined` when JSON.stringify may take it whole. */
function opened(node: JsonValue, depth: number): Frame | undefined {
  if (typeof node === 'string') return node.length > wholeBytes ? { text: node, next: 0 } : undefined;
  if (typeof node !== 'object' || node === null) return undefined;
  if (Array.isArray(node)) {
    if (node.length > walkedMembers || jsonSize(node, wholeBytes) > wholeBytes) return { node, keys: undefined, next: 0, depth };
    return undefined;
  }
  const keys = keysOf(node);
  if (keys.length > walkedMembers || jsonSize(node, wholeBytes) > wholeBytes) return { node, keys, next: 0, depth };
  return undefined;
}

function openingOf(frame: Frame): string {
  return 'text' in frame ? '"' : frame.keys === undefined ? '[' : '{';
}

/** The next part of a long string's escaped text, never splitting a surrogate pair (JSON.stringify escapes a lone half). */
function stringPart(frame: StringFrame): string {
  let end = Math.min(frame.text.length, frame.next + wholeBytes);
  const last = frame.text.charCodeAt(end - 1);
  if (end < frame.text.length && last >= 0xd800 && last <= 0xdbff) end += 1;
  const escaped = JSON.stringify(frame.text.slice(frame.next, end));
  frame.next = end;
  return escaped.slice(1, -1);
}

/** What `jsonPieces` yields before a member that may be large: no text, a good place to end a slice. */
export const pausePoint = '';

/**
 * Pieces of `value`'s JSON text, about 64 KB each, in order: compact, or
 * pretty-printed with `indent` spaces as `JSON.stringify(value, null, indent)`.
 * Between them may come `pausePoint`s (empty strings).
 */
export function* jsonPieces(value: JsonValue, indent = 0): Generator<string, void, undefined> {
  const newlines: string[] = [];
  /** A line break and the indentation of `depth` (nothing when compact). */
  const newline = (depth: number): string => (indent === 0 ? '' : (newlines[depth] ??= '\n' + ' '.repeat(depth * indent)));
  const colon = indent === 0 ? ':' : ': ';
  const whole = (member: JsonValue, depth: number): string => {
    if (indent === 0 || typeof member !== 'object' || member === null) return JSON.stringify(member);
    // JSON strings hold no raw line break, so every one in the text starts a line to indent.
    return JSON.stringify(member, null, indent).replaceAll('\n', newline(depth));
  };
  const root = opened(value, 0);
  if (root === undefined) {
    yield whole(value, 0);
    return;
  }
  let out = openingOf(root);
  const stack: Frame[] = [root];
  while (stack.length > 0) {
    const frame = stack[stack.length - 1] as Frame;
    if ('text' in frame) {
      if (frame.next >= frame.text.length) {
        out += '"';
        stack.pop();
      } else out += stringPart(frame);
    } else {
      const { node, keys, depth } = frame;
      const length = keys === undefined ? (node as JsonValue[]).length : keys.length;
      if (frame.next >= length) {
        out += (length > 0 ? newline(depth) : '') + (keys === undefined ? ']' : '}');
        stack.pop();
      } else {
        const index = frame.next++;
        if (index > 0) out += ',';
        out += newline(depth + 1);
        let member: JsonValue;
        if (keys === undefined) {
          member = (node as JsonValue[])[index] as JsonValue;
          // JSON.stringify writes holes and non-JSON members of arrays as null; a document holds none.
        } else {
          const key = keys[index] as string;
          member = (node as Record<string, JsonValue>)[key] as JsonValue;
          out += JSON.stringify(key) + colon;
        }
        if (length <= walkedMembers && typeof member === 'object' && member !== null) {
          // This container is walked for its size, not its count: its members
          // may be huge, and listing one's keys cannot be cut. A pause point
          // (the text gathered so far stays gathered: pieces stay ~64 KB).
          yield pausePoint;
        }
        const inner = opened(member, depth + 1);
        if (inner === undefined) out += whole(member, depth + 1);
        else {
          out += openingOf(inner);
          stack.push(inner);
        }
      }
    }
    if (out.length >= pieceChars) {
      yield out;
      out = '';
    }
  }
  if (out.length > 0) yield out;
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export interface SliceOptions {
  /** Pretty-print with this many spaces (0, the default: compact). */
  indent?: number;
  /** Most milliseconds of work between two turns of the event loop (default 10). */
  sliceMs?: number;
  /** Checked between slices: true stops the work. */
  aborted?: () => boolean;
}

/**
 * The pieces of `value`'s JSON text (as `jsonPieces`), handed out with a
 * turn of the event loop after each `sliceMs` of work, the consumer's
 * included (it runs between two pieces). Ends early when `aborted` says so.
 */
export async function* piecesInSlices(value: JsonValue, options: SliceOptions = {}): AsyncGenerator<string, void, undefined> {
  const { indent = 0, sliceMs = 10, aborted = () => false } = options;
  // The first slice waits for a timer, not an immediate: asked from an I/O
  // callback (a request), an immediate would run before any other I/O, and
  // that turn has often spent its share deciding to slice.
  await new Promise((resolve) => setTimeout(resolve, 0));
  if (aborted()) return;
  const pieces = jsonPieces(value, indent);
  let started = performance.now();
  for (const piece of pieces) {
    if (piece !== pausePoint) yield piece;
    const used = performance.now() - started;
    // At a pause point a slice well under way ends early, rather than take on a member that may cost tens of ms alone.
    if (used >= sliceMs || (piece === pausePoint && used >= sliceMs / 4)) {
      await nextTurn();
      if (aborted()) return;
      started = performance.now();
    }
  }
}

/** The size in UTF-8 bytes of `value`'s JSON text (as `piecesInSlices` makes it), measured in slices; `undefined` when aborted. */
export async function jsonBytesInSlices(value: JsonValue, options: SliceOptions = {}): Promise<number | undefined> {
  let size = 0;
  for await (const piece of piecesInSlices(value, options)) size += Buffer.byteLength(piece, 'utf8');
  return options.aborted?.() === true ? undefined : size;
}

export interface SlicedJson {
  /** The text in UTF-8, when it is at most `keepBytes`; otherwise only measured and hashed. */
  chunks: Buffer[] | undefined;
  size: number;
  /** SHA-256 of the whole text, base64url (what `contentTag` takes the start of). */
  sha256: string;
}

/**
 * Measures and hashes `value`'s compact JSON in slices of at most about
 * `sliceMs` of work, yielding to the event loop between them, and keeps its
 * bytes only while they are at most `keepBytes`: a larger text is made
 * again when it is sent (`piecesInSlices`), since holding hundreds of
 * megabytes of buffers is what sets off long garbage collections.
 * `undefined` when `aborted` said to stop.
 */
export async function serializeInSlices(
  value: JsonValue,
  aborted: () => boolean = () => false,
  sliceMs = 10,
  keepBytes = Infinity,
): Promise<SlicedJson | undefined> {
  const hash = createHash('sha256');
  let chunks: Buffer[] | undefined = [];
  let size = 0;
  for await (const piece of piecesInSlices(value, { sliceMs, aborted })) {
    if (chunks !== undefined) {
      const chunk = Buffer.from(piece, 'utf8');
      hash.update(chunk);
      size += chunk.length;
      chunks.push(chunk);
      if (size > keepBytes) chunks = undefined;
    } else {
      hash.update(piece, 'utf8');
      size += Buffer.byteLength(piece, 'utf8');
    }
  }
  // The walk ends early only when aborted, and being aborted lasts (a client gone stays gone).
  if (aborted()) return undefined;
  return { chunks, size, sha256: hash.digest('base64url') };
}
