/**
 * Keeps writes within `maxDepth`, checked at each step as it is applied. A
 * check of the finished document by each operation's path is not enough: a
 * later insert or remove in the same array shifts a deep value away from the
 * path it was written at. Depth does not change when indices shift, so
 * checking every value where it goes in is exact.
 */
import { JsonStoreError } from '../errors.js';
import { valueAt, type ApplyObserver } from './apply.js';
import { depthOf, hasMember, isContainer, type JsonValue } from './json.js';
import { displayPath, isArrayIndex } from './path.js';

export class DepthGuard implements ApplyObserver {
  constructor(
    private readonly maxDepth: number,
    /** Told of each step after the depth check passes (the size meter). */
    private readonly next?: ApplyObserver,
  ) {}

  adding(root: JsonValue, path: readonly string[], value: JsonValue, source: 'patch' | 'copy' | 'move', where: string): void {
    this.check(root, path, value, false);
    this.next?.adding(root, path, value, source, where);
  }

  replacing(root: JsonValue, path: readonly string[], value: JsonValue, where: string): void {
    this.check(root, path, value, true);
    this.next?.replacing(root, path, value, where);
  }

  removing(root: JsonValue, path: readonly string[], source: 'remove' | 'move', where: string): void {
    this.next?.removing(root, path, source, where);
  }

  private check(root: JsonValue, path: readonly string[], value: JsonValue, replacing: boolean): void {
    // A step that cannot apply is refused for that reason (409) by the step itself.
    if (!canPlace(root, path, replacing)) return;
    const room = this.maxDepth - path.length;
    // depthOf stops counting once past the room left.
    if (room < 0 || depthOf(value, room) > room) {
      throw new JsonStoreError(
        'too-deep',
        `The value written at ${displayPath(path)} would nest the document more than ${this.maxDepth} levels deep (the maxDepth option)`,
      );
    }
  }
}

/** Whether an add (or a replace) at `path` can apply: the slot exists or can be made. */
function canPlace(root: JsonValue, path: readonly string[], replacing: boolean): boolean {
  if (path.length === 0) return true;
  const parent = valueAt(root, path.slice(0, -1));
  if (!isContainer(parent)) return false;
  const key = path[path.length - 1] as string;
  if (Array.isArray(parent)) {
    if (key === '-') return !replacing;
    if (!isArrayIndex(key)) return false;
    return Number(key) < parent.length + (replacing ? 0 : 1);
  }
  return !replacing || hasMember(parent, key);
}
