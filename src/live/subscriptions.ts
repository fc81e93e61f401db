/**
 * Subscriptions indexed by path: a trie keyed by path segments, so that a
 * change costs a walk down the paths it touched plus the subscribers found
 * there, whatever the number of subscribers elsewhere.
 */
import type { Path } from '../document/path.js';

/** A node of the trie: the subscribers of one path. */
export interface PathNode<T> {
  readonly path: Path;
  readonly subscribers: Set<T>;
  /** Made with the first child: most nodes are leaves (one per idle stream's path), and an empty Map is a few hundred bytes. */
  children: Map<string, PathNode<T>> | undefined;
  readonly parent: PathNode<T> | undefined;
}

function node<T>(path: Path, parent: PathNode<T> | undefined): PathNode<T> {
  return { path, subscribers: new Set(), children: undefined, parent };
}

export class PathRegistry<T> {
  private readonly root: PathNode<T> = node([], undefined);
  private count = 0;

  /** Subscribers registered. */
  get size(): number {
    return this.count;
  }

  add(path: Path, subscriber: T): PathNode<T> {
    let at = this.root;
    for (let i = 0; i < path.length; i++) {
      const segment = path[i] as string;
      let next = at.children?.get(segment);
      if (next === undefined) {
        // The leaf shares the caller's path (paths are never changed in place).
        next = node(i === path.length - 1 ? path : path.slice(0, i + 1), at);
        (at.children ??= new Map()).set(segment, next);
      }
      at = next;
    }
    if (!at.subscribers.has(subscriber)) {
      at.subscribers.add(subscriber);
      this.count++;
    }
    return at;
  }

  /** Removes a subscriber and prunes the nodes left empty, so the trie holds only paths someone listens to. */
  remove(at: PathNode<T>, subscriber: T): void {
    if (!at.subscribers.delete(subscriber)) return;
    this.count--;
    let current: PathNode<T> | undefined = at;
    while (current?.parent !== undefined && current.subscribers.size === 0 && (current.children?.size ?? 0) === 0) {
      const parent: PathNode<T> = current.parent;
      parent.children?.delete(current.path[current.path.length - 1] as string);
      if (parent.children?.size === 0) parent.children = undefined;
      current = parent;
    }
  }

  /** Every subscriber, for closing. */
  *all(): Generator<T> {
    const stack = [this.root];
    while (stack.length > 0) {
      const at = stack.pop() as PathNode<T>;
      yield* at.subscribers;
      if (at.children !== undefined) for (const child of at.children.values()) stack.push(child);
    }
  }

  /**
   * The nodes with subscribers that `touched` concerns, each with the touched
   * paths that concern it (in order): its ancestors and itself (the path
   * is at or below theirs) and its descendants (a change above them).
   * `undefined` when it concerns nobody (the common case for a write with
   * subscribers elsewhere: nothing allocated).
   */
  affected(touched: readonly Path[]): Map<PathNode<T>, Path[]> | undefined {
    let found: Map<PathNode<T>, Path[]> | undefined;
    const note = (at: PathNode<T>, path: Path) => {
      if (at.subscribers.size === 0) return;
      found ??= new Map();
      const list = found.get(at);
      if (list === undefined) found.set(at, [path]);
      else list.push(path);
    };
    for (const path of touched) {
      let at: PathNode<T> | undefined = this.root;
      note(at, path);
      for (const segment of path) {
        at = at.children?.get(segment);
        if (at === undefined) break;
        note(at, path);
      }
      if (at?.children === undefined) continue;
      const stack = [...at.children.values()];
      while (stack.length > 0) {
        const below = stack.pop() as PathNode<T>;
        note(below, path);
        if (below.children !== undefined) for (const child of below.children.values()) stack.push(child);
      }
    }
    return found;
  }
}
