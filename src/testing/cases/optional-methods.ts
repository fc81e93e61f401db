/**
 * The adapter methods the engine uses when they are there: `seed()` (store
 * `initial` while loading, so the first write carries only its change) and
 * `commitBatch()` (group commit for shared storage). Each case checks the
 * method's contract when the adapter declares it, and what the engine needs
 * instead when it does not.
 */
import assert from 'node:assert/strict';
import type { JsonValue } from '../../document/json.js';
import { touchedPaths } from '../../document/touched-paths.js';
import type { Change, StorageAdapter } from '../../storage/types.js';
import { assertSameJson } from '../assert-json.js';
import type { CaseContext } from '../context.js';
import { assertRevisionConflict, assertStoredDocument, attempt, changeFor, rejection, type CaseDefinition } from './helpers.js';
import { assertConsecutive } from './shared.js';

/** What storage holds, read by a fresh adapter when the setup can open one on the same data; else by `adapter` itself. */
async function storedNow(context: CaseContext, adapter: StorageAdapter) {
  const reader = context.setup.peer ? await context.peer(adapter) : adapter;
  return reader.load();
}

/** The change with `touches`, as the engine gives them to an adapter with `capabilities.rebase` (commitBatch's only users). */
function touching(change: Change): Change {
  return { ...change, touches: touchedPaths(change.ops) };
}

export const optionalMethodCases: CaseDefinition[] = [
  {
    title: 'seed(): on empty storage it stores the document as revision 0, and commits follow from revision 1',
    async run(context) {
      const adapter = await context.open();
      if (!adapter.seed) {
        // Without seed() the engine carries the starting document in the first change ('revision' cases).
        assert.equal(await adapter.load(), undefined, 'empty storage loads undefined');
        return;
      }
      assert.equal(await adapter.load(), undefined, 'empty storage loads undefined');
      const document = { seeded: [1, { a: 'b' }], name: 'start' };
      assert.equal(await adapter.seed(document), undefined, 'seed() on empty storage must resolve undefined (it stored the document)');
      document.name = 'changed after seed()';
      assertStoredDocument(await storedNow(context, adapter), { seeded: [1, { a: 'b' }], name: 'start' }, 0, 'after seed() (a copy, not the object handed over)');
      await adapter.commit(changeFor(adapter, 1, [{ op: 'add', path: '/added', value: true }], { seeded: [1, { a: 'b' }], name: 'start', added: true }));
      assertStoredDocument(await storedNow(context, adapter), { seeded: [1, { a: 'b' }], name: 'start', added: true }, 1, 'after seed() and one change');
    },
  },
  {
    title: 'seed(): when another adapter wrote first, it stores nothing and resolves with what storage holds (shared, when declared)',
    async run(context) {
      const adapter = await context.open();
      if (!adapter.seed || !context.setup.peer) {
        // Storage only one adapter opens cannot be written by another between its load() and its seed().
        assert.equal(await adapter.load(), undefined, 'empty storage loads undefined');
        return;
      }
      // Both find storage empty; the other one writes first (as two processes starting together may).
      const late = await context.peer(adapter);
      assert.equal(await adapter.load(), undefined, 'empty storage loads undefined');
      assert.equal(await late.load(), undefined, 'empty storage loads undefined (the second adapter)');
      await adapter.commit(changeFor(adapter, 1, [{ op: 'replace', path: '', value: { first: 1 } }], { first: 1 }));
      const held = await late.seed!({ other: 'document' });
      assertStoredDocument(held ?? undefined, { first: 1 }, 1, 'what seed() resolved with after another adapter wrote');
      assertStoredDocument(await storedNow(context, adapter), { first: 1 }, 1, 'storage after that seed()');

      // Two processes seeding empty storage together: the second gets the first one's document, at revision 0.
      const first = await context.open();
      const second = await context.peer(first);
      assert.equal(await first.load(), undefined, 'empty storage loads undefined');
      assert.equal(await second.load(), undefined, 'empty storage loads undefined (the second adapter)');
      assert.equal(await first.seed!({ seeded: 'first' }), undefined, 'the first seed() on empty storage stores its document');
      assertStoredDocument((await second.seed!({ seeded: 'second' })) ?? undefined, { seeded: 'first' }, 0, 'what a second seed() resolved with');
      assertStoredDocument(await storedNow(context, first), { seeded: 'first' }, 0, 'storage after two seed() calls');
    },
  },
  {
    title: 'seed(): a store on empty storage is at revision 0 with initial, and storage holds it once the store is ready (when declared)',
    async run(context) {
      const adapter = await context.open();
      const store = context.storeOn(adapter, { initial: { from: 'initial' } });
      await store.ready();
      assert.equal(store.store.revision, 0, 'the revision of a store on empty storage');
      assertSameJson(await store.get(), { from: 'initial' }, 'the store, before any write');
      if (adapter.seed && context.setup.peer) {
        assertStoredDocument(await (await context.peer(adapter)).load(), { from: 'initial' }, 0, 'storage, read by another adapter once the store is ready');
      }
      const written = await store.put(['next'], 1);
      assert.equal(written.revision, 1, 'the first write is revision 1');
      if (context.setup.peer) {
        assertStoredDocument(await (await context.peer(adapter)).load(), { from: 'initial', next: 1 }, 1, 'storage after the first write');
      }
    },
  },
  {
    title: 'commitBatch(): consecutive changes go in together; a stale batch is refused whole when one of its changes overlaps, and rebased when none does (when declared)',
    async run(context) {
      const adapter = await context.open();
      // Optional: without it the engine commits one change per call.
      if (!adapter.commitBatch) return;
      assert.equal(adapter.capabilities?.shared, true, 'commitBatch() is for shared adapters (capabilities.shared)');
      assert.equal(adapter.capabilities?.rebase, true, 'commitBatch() is for adapters that rebase (capabilities.rebase); the engine uses it only then');
      await adapter.load();
      await adapter.commit(changeFor(adapter, 1, [{ op: 'replace', path: '', value: { a: 0, b: 0, list: [] } }], { a: 0, b: 0, list: [] }));
      await adapter.commitBatch([
        touching(changeFor(adapter, 2, [{ op: 'replace', path: '/a', value: 1 }], { a: 1, b: 0, list: [] })),
        touching(changeFor(adapter, 3, [{ op: 'add', path: '/list/-', value: 'x' }], { a: 1, b: 0, list: ['x'] })),
        touching(changeFor(adapter, 4, [{ op: 'replace', path: '/b', value: 2 }], { a: 1, b: 2, list: ['x'] })),
      ]);
      assertStoredDocument(await storedNow(context, adapter), { a: 1, b: 2, list: ['x'] }, 4, 'after a batch of three changes');
      // Each change of a batch has a revision of its own, as other processes follow them.
      const logged = await adapter.changesSince?.(1);
      if (logged !== undefined) assertConsecutive(logged, 1, 4, 'after a batch of three changes');

      if (!context.setup.peer) return;
      // Another process appends revision 5 on /list; a batch made at revision 4 whose second change also touches /list overlaps it.
      const peer = await context.peer(adapter);
      await peer.load();
      await peer.commit(touching(changeFor(peer, 5, [{ op: 'add', path: '/list/-', value: 'peer' }], { a: 1, b: 2, list: ['x', 'peer'] })));
      const stale = await rejection(
        attempt(() =>
          adapter.commitBatch!([
            touching(changeFor(adapter, 5, [{ op: 'replace', path: '/a', value: 'stale' }], { a: 'stale', b: 2, list: ['x'] })),
            touching(changeFor(adapter, 6, [{ op: 'add', path: '/list/-', value: 'stale' }], { a: 'stale', b: 2, list: ['x', 'stale'] })),
          ]),
        ),
        'a batch made at revision 4, its second change overlapping the revision another adapter committed since',
      );
      assertRevisionConflict(stale, 'a stale batch that overlaps a newer change');
      assertStoredDocument(await storedNow(context, adapter), { a: 1, b: 2, list: ['x', 'peer'] }, 5, 'after the refused batch (none of it may be stored)');

      // Revision 6 on /list again; a batch made at revision 5 on /a and /b alone overlaps nothing:
      // it is appended after revision 6 (a RebasedCommit).
      const peerChange = touching(changeFor(peer, 6, [{ op: 'add', path: '/list/-', value: 'peer 2' }], { a: 1, b: 2, list: ['x', 'peer', 'peer 2'] }));
      const peerOps = structuredClone(peerChange.ops);
      await peer.commit(peerChange);
      const disjoint = () =>
        adapter.commitBatch!([
          touching(changeFor(adapter, 6, [{ op: 'replace', path: '/a', value: 'A' }], { a: 'A', b: 2, list: ['x', 'peer'] })),
          touching(changeFor(adapter, 7, [{ op: 'replace', path: '/b', value: 'B' }], { a: 'A', b: 'B', list: ['x', 'peer'] })),
        ]);
      const rebased = await attempt(disjoint).catch((error: unknown) =>
        assert.fail(`a stale batch that overlaps nothing committed since must be appended after it (capabilities.rebase), resolving with a RebasedCommit; it threw ${String(error)}`),
      );
      assert.ok(rebased, 'a stale batch that overlaps nothing committed since resolves with a RebasedCommit (capabilities.rebase), not nothing');
      assert.equal(rebased.revision, 7, 'RebasedCommit.revision: the revision the first change of the batch got');
      assert.deepEqual(
        rebased.missed.map((change) => change.revision),
        [6],
        'RebasedCommit.missed: the changes committed since the batch was made, oldest first',
      );
      assertSameJson(rebased.missed[0]!.ops as unknown as JsonValue, peerOps as unknown as JsonValue, 'RebasedCommit.missed: the ops of the change it missed');
      assertStoredDocument(await storedNow(context, adapter), { a: 'A', b: 'B', list: ['x', 'peer', 'peer 2'] }, 8, 'after the rebased batch (both processes\' changes)');
      const relogged = await adapter.changesSince?.(6);
      if (relogged !== undefined) assertConsecutive(relogged, 6, 8, 'after the rebased batch');
    },
  },
];
