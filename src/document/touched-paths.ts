/**
 * Which parts of the document a change writes and reads, as JSON Pointer
 * prefixes, and when two changes overlap. Shared storage uses this to accept
 * a change made on an older revision when nothing committed since touched
 * what it touches: applying the two in either order then gives the same
 * document, and every check the change made (a JSON Patch `test`, an
 * `If-Match`) still holds. Pure: no I/O, no document.
 *
 * The rules, each on the safe side:
 * - A pointer stands for the value there and everything under it, so two
 *   pointers overlap when one equals the other or is a prefix of it segment
 *   by segment (`/a` covers `/a/b`, not `/ab`); the root `""` covers all.
 * - `add` and `remove` at an array index (or `-`) shift the elements after it,
 *   so they touch the whole array: the parent pointer. Without the document at
 *   hand a segment such as `12` may as well be an array index, so it counts as
 *   one (an object member named `12` is then touched with its siblings: more
 *   conflicts, never fewer). `replace` and `test` at an index move nothing and
 *   touch that element; an insert elsewhere in the same array touches the
 *   array, which covers it.
 * - `move` writes both `from` and `path`; `copy` reads `from` and writes `path`.
 * - A `test` reads its pointer; a precondition (`If-Match`, ...) reads the
 *   pointer whose value it checked.
 */
import type { PatchOperation } from './patch-types.js';
import { isArrayIndex } from './path.js';

/** What one change touches: pointers from the document root. */
export interface TouchedPaths {
  /** Where it changes something (each pointer covers everything under it). */
  readonly writes: readonly string[];
  /** Where it depends on the value without changing it (`test`, `copy` sources, preconditions). */
  readonly reads: readonly string[];
}

/**
 * Past this many pointers a list is folded into their longest common prefix:
 * coarser (more conflicts) but cheap to store and to compare.
 */
export const maxTouchedPaths = 32;

/** Whether `a` and `b` overlap: one is the other, or an ancestor of it. */
export function pathsOverlap(a: string, b: string): boolean {
  if (a.length === b.length) return a === b;
  const [short, long] = a.length < b.length ? [a, b] : [b, a];
  // `/a` covers `/a/b` but not `/ab`: the next character must start a segment.
  return long.startsWith(short) && long.charCodeAt(short.length) === 0x2f;
}

/**
 * Whether a change that touches `change` conflicts with an earlier one that
 * wrote `written`: it writes or reads something the earlier one wrote.
 * (Two changes that only read the same place do not conflict.)
 */
export function conflictsWith(written: readonly string[], change: TouchedPaths): boolean {
  for (const done of written) {
    for (const path of change.writes) if (pathsOverlap(done, path)) return true;
    for (const path of change.reads) if (pathsOverlap(done, path)) return true;
  }
  return false;
}

/** The pointer of the parent of `pointer` (`/a/b` -> `/a`, `/a` -> ``). */
function parentOf(pointer: string): string {
  return pointer.slice(0, Math.max(0, pointer.lastIndexOf('/')));
}

/** The last segment of a pointer, still escaped (an index or `-` is never escaped). */
function lastSegment(pointer: string): string {
  return pointer.slice(pointer.lastIndexOf('/') + 1);
}

/** What an add or remove at `pointer` changes: the whole array when it may be an array index. */
function insertOrRemoveAt(pointer: string): string {
  if (pointer === '') return '';
  const segment = lastSegment(pointer);
  return segment === '-' || isArrayIndex(segment) ? parentOf(pointer) : pointer;
}

/**
 * The paths a change touches, from its operations (`test` ones included) and
 * the pointers its preconditions checked. Lists are minimal: no pointer
 * covered by another in the same list, and at most `maxTouchedPaths`.
 */
export function touchedPaths(ops: readonly PatchOperation[], preconditionPaths: readonly string[] = []): TouchedPaths {
  const writes: string[] = [];
  const reads: string[] = [...preconditionPaths];
  for (const op of ops) {
    switch (op.op) {
      case 'add':
      case 'remove':
        writes.push(insertOrRemoveAt(op.path));
        break;
      case 'replace':
        writes.push(op.path);
        break;
      case 'move':
        writes.push(insertOrRemoveAt(op.from), insertOrRemoveAt(op.path));
        break;
      case 'copy':
        reads.push(op.from);
        writes.push(insertOrRemoveAt(op.path));
        break;
      case 'test':
        reads.push(op.path);
        break;
    }
  }
  // A read under something the change writes adds nothing to the overlap
  // check, but is kept: it says the change depends on what it found there.
  return { writes: minimalCover(writes), reads: minimalCover(reads) };
}

/**
 * The same pointers without repeats and without those under another one,
 * folded into their longest common prefix when more than `maxTouchedPaths`.
 */
export function minimalCover(pointers: readonly string[]): string[] {
  const sorted = [...new Set(pointers)].sort((a, b) => a.length - b.length);
  const kept: string[] = [];
  for (const pointer of sorted) {
    if (!kept.some((shorter) => pathsOverlap(shorter, pointer))) kept.push(pointer);
  }
  if (kept.length <= maxTouchedPaths) return kept;
  return [commonPrefix(kept)];
}

/** The longest pointer that is a prefix (segment-wise) of all of them. */
function commonPrefix(pointers: readonly string[]): string {
  let segments = (pointers[0] as string).split('/');
  for (const pointer of pointers) {
    const other = pointer.split('/');
    let same = 0;
    while (same < segments.length && same < other.length && segments[same] === other[same]) same++;
    segments = segments.slice(0, same);
  }
  // `segments[0]` is the empty text before the first `/`.
  return segments.join('/');
}

/**
 * A list of pointers as one string a Lua script reads without a JSON parser:
 * each pointer as `<byte length>:<pointer>`, one after the other. (Pointers
 * may hold any character, so no separator would do.)
 */
export function encodePaths(pointers: readonly string[]): string {
  let out = '';
  for (const pointer of pointers) out += `${Buffer.byteLength(pointer, 'utf8')}:${pointer}`;
  return out;
}

/** The inverse of `encodePaths`; `undefined` when `text` is not such a list. */
export function decodePaths(text: string): string[] | undefined {
  const bytes = Buffer.from(text, 'utf8');
  const out: string[] = [];
  let at = 0;
  while (at < bytes.length) {
    const colon = bytes.indexOf(0x3a, at);
    if (colon <= at) return undefined;
    const length = Number(bytes.subarray(at, colon).toString('latin1'));
    if (!Number.isSafeInteger(length) || length < 0 || colon + 1 + length > bytes.length) return undefined;
    out.push(bytes.subarray(colon + 1, colon + 1 + length).toString('utf8'));
    at = colon + 1 + length;
  }
  return out;
}
