/**
 * The keys of large objects, listed once. V8 keeps an object of many members
 * as a dictionary and sorts its keys on every `Object.keys` (or `for...in`):
 * 25–50 ms for 78 000 members, in one piece that no slicing can cut. The
 * serializer and the size walks list the same objects again and again (a
 * large GET measures, then sends), so objects with more than
 * `listedAbove` members keep their list.
 *
 * A list is right only while its object keeps its members, so it follows the
 * value cache's rule (`value-cache.ts`): `apply.ts` drops it, through
 * `invalidate`, before each step that changes the object and after an undo.
 * Lists are never handed out for writing.
 */
const listedAbove = 1024;

const lists = new WeakMap<object, readonly string[]>();

/** `Object.keys(object)`, from the list kept for a large object when there is one. */
export function keysOf(object: object): readonly string[] {
  const kept = lists.get(object);
  if (kept !== undefined) return kept;
  const keys = Object.keys(object);
  if (keys.length > listedAbove) lists.set(object, keys);
  return keys;
}

/** Forgets the list kept for an object about to change (or just changed back). */
export function forgetKeys(object: object): void {
  lists.delete(object);
}
