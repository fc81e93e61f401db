/**
 * Shared adapters: several processes (here, an adapter and its peer) on one
 * stored document. Stale commits are refused with `RevisionConflictError`,
 * and each side sees the other's writes.
 */
import assert from 'node:assert/strict';
import { applyOperations, type DocumentState } from '../../document/apply.js';
import type { JsonValue } from '../../document/json.js';
import { JsonStoreError, RevisionConflictError } from '../../errors.js';
import type { JsonStore } from '../../json-store.js';
import type { Change, StorageAdapter } from '../../storage/types.js';
import { assertSameJson } from '../assert-json.js';
import type { CaseContext } from '../context.js';
import {
  assertRevisionConflict,
  assertStoredDocument,
  attempt,
  changeFor,
  rejection,
  untilRevision,
  type CaseDefinition,
} from './helpers.js';

async function openShared(context: CaseContext) {
  const adapter = await context.open();
  assert.equal(
    adapter.capabilities?.shared,
    true,
    'the peer option is for shared adapters, and this adapter does not declare capabilities.shared',
  );
  return adapter;
}

/**
 * Waits until `store` has seen revision `revision` written through another
 * adapter: a strong read when the adapter tells its latest revision, else
 * its watch.
 */
async function follow(store: JsonStore, adapter: StorageAdapter, revision: number, what: string): Promise<void> {
  if (adapter.currentRevision) await store.get();
  else if (adapter.watch) await untilRevision(store, revision);
  else assert.fail(noFollowing);
  assert.ok(store.store.revision >= revision, `${what}: the store is still at revision ${store.store.revision} after catching up, but the other adapter committed revision ${revision}`);
}

const noFollowing =
  'a shared adapter needs currentRevision() or watch(): without either, a store never sees what other processes wrote until its own write is refused as stale';

/** Lets I/O in (a watch feed, a socket) while a loop retries. */
const yieldToEventLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** Whether a failed increment may simply be tried again on fresh data. */
function isContention(error: unknown): boolean {
  if (!(error instanceof JsonStoreError)) return false;
  // The `test` operation saw a stale count, or the engine ran out of retries.
  return error.code === 'conflict' || (error.code === 'storage-unavailable' && error.cause instanceof RevisionConflictError);
}

/** Adds 1 to `/count` `times` times, with a JSON Patch test+replace, retrying on contention. */
async function increment(store: JsonStore, times: number): Promise<void> {
  let done = 0;
  for (let attempts = 1; done < times; attempts++) {
    assert.ok(attempts <= times * 100, `gave up after ${attempts} attempts to increment: the other store's writes never became visible`);
    const count = await store.get(['count']);
    assert.equal(typeof count, 'number', 'the count disappeared');
    try {
      await store.patch(
        [],
        [
          { op: 'test', path: '/count', value: count as number },
          { op: 'replace', path: '/count', value: (count as number) + 1 },
        ],
        { type: 'json-patch' },
      );
      done++;
    } catch (error) {
      if (!isContention(error)) throw error;
      await yieldToEventLoop();
    }
  }
}

/** Replays `changes` (on copies) onto an empty document. */
/**
 * The changes replayed onto the document at revision 0: the stores'
 * `initial`, which a `seed` stored there, or which the first change
 * replaces (`{ op: 'replace', path: '' }`) when the adapter has no `seed`.
 */
function replay(changes: readonly Change[], start: JsonValue): JsonValue {
  const state: DocumentState = { root: structuredClone(start) };
  for (const change of structuredClone(changes)) applyOperations(state, change.ops);
  return state.root;
}

export function assertConsecutive(changes: readonly Change[], after: number, latest: number, what: string): void {
  assert.deepEqual(
    changes.map((change) => change.revision),
    Array.from({ length: latest - after }, (_, i) => after + i + 1),
    `${what}: changesSince(${after}) must list every change after revision ${after}, oldest first`,
  );
}

export const sharedCases: CaseDefinition[] = [
  {
    title: 'shared: declares capabilities.shared, and currentRevision() or watch() to follow other processes',
    async run(context) {
      const adapter = await openShared(context);
      assert.ok(adapter.currentRevision || adapter.watch, noFollowing);
    },
  },
  {
    title: 'shared: a commit at a stale revision throws RevisionConflictError',
    async run(context) {
      const adapter = await openShared(context);
      const peer = await context.peer(adapter);
      await adapter.load();
      await peer.load();
      await adapter.commit(changeFor(adapter, 1, [{ op: 'replace', path: '', value: { n: 1 } }], { n: 1 }));

      const stale = await rejection(
        attempt(() => peer.commit(changeFor(peer, 1, [{ op: 'replace', path: '', value: { n: 'peer' } }], { n: 'peer' }))),
        'a commit at revision 1 when storage is already at revision 1',
      );
      assertRevisionConflict(stale, 'a commit at a revision storage already has');
      const gap = await rejection(
        attempt(() => peer.commit(changeFor(peer, 3, [{ op: 'replace', path: '/n', value: 3 }], { n: 3 }))),
        'a commit at revision 3 when storage is at revision 1',
      );
      assertRevisionConflict(gap, 'a commit that skips a revision');

      await peer.commit(changeFor(peer, 2, [{ op: 'replace', path: '/n', value: 2 }], { n: 2 }));
      const behind = await rejection(
        attempt(() => adapter.commit(changeFor(adapter, 2, [{ op: 'replace', path: '/n', value: 'late' }], { n: 'late' }))),
        'a commit at revision 2 after the peer committed revision 2',
      );
      assertRevisionConflict(behind, 'a commit made on a stale revision');

      const observer = await context.peer(adapter);
      assertStoredDocument(await observer.load(), { n: 2 }, 2, 'after one refused change on each side');
      for (const [side, view] of [['adapter', adapter], ['peer', peer]] as const) {
        if (view.currentRevision) assert.equal(await view.currentRevision(), 2, `currentRevision() on the ${side}`);
      }
    },
  },
  {
    title: 'shared: a write through one store is visible through the other',
    async run(context) {
      const adapter = await openShared(context);
      const peer = await context.peer(adapter);
      const initial = { from: [] };
      const one = context.storeOn(adapter, { initial });
      const other = context.storeOn(peer, { initial, readConsistency: 'local' });
      await Promise.all([one.ready(), other.ready()]);

      await one.post(['from'], 'one');
      if (peer.watch) {
        // Followed through the watch: no read needed to see it.
        await untilRevision(other, 1);
        assertSameJson(await other.get(), { from: ['one'] }, 'the other store, after its watch reported the change');
      }
      if (peer.currentRevision) {
        const strong = context.storeOn(await context.peer(adapter), { initial });
        assertSameJson(await strong.get(), { from: ['one'] }, 'a store with strong reads, opened after the write');
      }
      // Without watch, the other store learns of the change when its commit is refused as stale.
      const written = await other.post(['from'], 'other');
      assert.deepEqual(written.path, ['from', '1'], 'the other store appended without first catching up');
      assert.equal(written.revision, 2);

      await follow(one, adapter, 2, 'the first store');
      assertSameJson(await one.get(), { from: ['one', 'other'] }, 'the first store, after the other store wrote');
      const observer = await context.peer(adapter);
      assertStoredDocument(await observer.load(), { from: ['one', 'other'] }, 2, 'storage, loaded by a third adapter');
    },
  },
  {
    title: 'shared: changesSince() (when declared) lists every change after a revision, and replaying them gives the document',
    async run(context) {
      const adapter = await openShared(context);
      const peer = await context.peer(adapter);
      if (!adapter.changesSince) return;
      const one = context.storeOn(adapter, { initial: { list: [] } });
      const other = context.storeOn(peer, { initial: { list: [] } });
      await Promise.all([one.ready(), other.ready()]);
      // Each store appends into values the other store's changes created: a
      // change kept (or handed out) by reference would grow with them.
      await one.post(['list'], []);
      await follow(other, peer, 1, 'the second store');
      await other.post(['list', '0'], 'x');
      await follow(one, adapter, 2, 'the first store');
      await one.post(['list', '0'], 'y');
      await follow(other, peer, 3, 'the second store');
      await other.put(['object'], { k: 1 });
      await follow(one, adapter, 4, 'the first store');
      await one.patch(['object'], { k: 2, l: [] });
      await follow(other, peer, 5, 'the second store');
      await other.post(['object', 'l'], 'z');
      const expected = { list: [['x', 'y']], object: { k: 2, l: ['z'] } };
      assertSameJson(await other.get(), expected, 'the second store');

      const all = await adapter.changesSince(0);
      if (all === undefined) return; // Allowed: the engine then loads the whole document.
      assertConsecutive(all, 0, 6, 'all changes');
      assertSameJson(replay(all, { list: [] }), expected, 'the changes from changesSince(0), replayed');
      const later = await peer.changesSince?.(4);
      if (later !== undefined) assertConsecutive(later, 4, 6, 'the latest changes');
      const none = await adapter.changesSince(6);
      if (none !== undefined) assert.deepEqual(none, [], 'changesSince(the latest revision) must be empty');
      assertStoredDocument(await (await context.peer(adapter)).load(), expected, 6, 'storage, loaded by a third adapter');
    },
  },
  {
    title: 'shared: two stores incrementing one counter with test+replace end with the exact count',
    async run(context) {
      const adapter = await openShared(context);
      const peer = await context.peer(adapter);
      const one = context.storeOn(adapter, { initial: { count: 0 } });
      const other = context.storeOn(peer, { initial: { count: 0 } });
      await Promise.all([one.ready(), other.ready()]);
      await one.put(['count'], 0);
      const times = 25;
      await Promise.all([increment(one, times), increment(other, times)]);
      const observer = await context.peer(adapter);
      assertStoredDocument(await observer.load(), { count: 2 * times }, 1 + 2 * times, `after ${2 * times} increments`);
    },
  },
];

/** Registered instead of the shared cases when there is no `peer` option. */
export const sharedWithoutPeer: CaseDefinition = {
  title: 'shared: not declared (adapters declaring capabilities.shared must pass the peer option)',
  async run(context) {
    const adapter = await context.open();
    assert.notEqual(
      adapter.capabilities?.shared,
      true,
      'the adapter declares capabilities.shared: pass the peer option (a second adapter on the same data) so the suite can check conflicts and catching up',
    );
  },
};
