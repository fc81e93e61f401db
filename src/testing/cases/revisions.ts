/**
 * Revisions count committed changes, the first change brings the starting
 * document, and each kind of write reloads exactly.
 */
import assert from 'node:assert/strict';
import type { JsonValue } from '../../document/json.js';
import type { JsonStore } from '../../json-store.js';
import { StorageError } from '../../errors.js';
import type { StorageAdapter } from '../../storage/types.js';
import { assertReadBack, forwardingAdapter, rejection, type CaseDefinition } from './helpers.js';

/** Forwards everything to `adapter`, except that it refuses a commit when told to. */
function refusingGate(adapter: StorageAdapter): { storage: StorageAdapter; refuseNext: boolean } {
  const gate = {
    refuseNext: false,
    storage: forwardingAdapter(adapter, (change) => {
      if (gate.refuseNext) {
        gate.refuseNext = false;
        throw new Error('refused by the conformance suite before reaching the adapter');
      }
      return adapter.commit(change);
    }),
  };
  return gate;
}

interface WriteKind {
  title: string;
  initial: JsonValue;
  /** Performs the writes and returns the expected document; each write must commit exactly one change. */
  write(store: JsonStore): Promise<{ expected: JsonValue; writes: number }>;
}

const writeKinds: WriteKind[] = [
  {
    title: 'PUT (new members, replacements, missing parents, array indexes)',
    initial: {},
    async write(store) {
      await store.put(['a'], 1);
      await store.put(['a'], { b: [1, 2] });
      await store.put(['x', 'y', 'z'], 'deep');
      await store.put(['a', 'b', '1'], 'replaced');
      await store.put(['a', 'b', '2'], 'appended at the length');
      await store.put(['a', 'b', '-'], 'appended with -');
      return { expected: { a: { b: [1, 'replaced', 'appended at the length', 'appended with -'] }, x: { y: { z: 'deep' } } }, writes: 6 };
    },
  },
  {
    title: 'POST (array appends and generated object keys)',
    initial: { list: [], bag: {} },
    async write(store) {
      await store.post(['list'], 'a');
      await store.post(['list'], { b: 1 });
      const first = await store.post(['bag'], 'x');
      const second = await store.post(['bag'], ['y']);
      const bag: Record<string, JsonValue> = {};
      bag[first.path[1] as string] = 'x';
      bag[second.path[1] as string] = ['y'];
      return { expected: { list: ['a', { b: 1 }], bag }, writes: 4 };
    },
  },
  {
    title: 'PATCH with a merge patch (nulls delete, arrays replace, missing targets are created)',
    initial: { a: 1, b: { c: 2, d: [1, 2] }, e: 'keep' },
    async write(store) {
      await store.patch([], { a: null, b: { c: 3, d: [3], f: { g: null, h: 'new' } }, i: [null] });
      await store.patch(['b'], { c: null });
      await store.patch(['new', 'path'], { x: 1, y: null });
      return { expected: { b: { d: [3], f: { h: 'new' } }, e: 'keep', i: [null], new: { path: { x: 1 } } }, writes: 3 };
    },
  },
  {
    title: 'PATCH with a JSON Patch (add, remove, replace, test, copy, move, relative to a path)',
    initial: { a: { b: 1 }, list: [1, 2, 3] },
    async write(store) {
      await store.patch(
        [],
        [
          { op: 'add', path: '/c', value: { d: [] } },
          { op: 'replace', path: '/a/b', value: 2 },
          { op: 'remove', path: '/list/0' },
          { op: 'add', path: '/list/-', value: 4 },
          { op: 'add', path: '/list/1', value: 'inserted' },
          { op: 'test', path: '/a/b', value: 2 },
          { op: 'copy', from: '/a', path: '/c/d/0' },
          { op: 'move', from: '/list/0', path: '/moved' },
        ],
        { type: 'json-patch' },
      );
      await store.patch(['c'], [{ op: 'add', path: '/e', value: true }], { type: 'json-patch' });
      return { expected: { a: { b: 2 }, list: ['inserted', 3, 4], c: { d: [{ b: 2 }], e: true }, moved: 2 }, writes: 2 };
    },
  },
  {
    title: 'DELETE (members, array elements, the root)',
    initial: { a: { b: 1, c: 2 }, list: [1, 2, 3], keep: true },
    async write(store) {
      await store.delete(['a', 'b']);
      await store.delete(['list', '1']);
      await store.delete(['a']);
      assert.deepEqual(await store.get(), { list: [1, 3], keep: true });
      await store.delete([]);
      await store.put(['after'], 1);
      return { expected: { after: 1 }, writes: 5 };
    },
  },
  {
    title: 'array appends, inserts and removals, nested arrays appended to later',
    initial: { list: [] },
    async write(store) {
      const model: JsonValue[] = [];
      for (let i = 0; i < 10; i++) {
        await store.post(['list'], i);
        model.push(i);
      }
      await store.put(['list', '3'], 'x');
      model[3] = 'x';
      await store.patch(['list'], [{ op: 'add', path: '/0', value: 'first' }], { type: 'json-patch' });
      model.unshift('first');
      await store.patch(['list'], [{ op: 'remove', path: '/5' }], { type: 'json-patch' });
      model.splice(5, 1);
      await store.put(['list', '-'], []);
      model.push([]);
      // Appends into the array the previous change created: a stored copy of
      // that change must not grow with it.
      const inner = String(model.length - 1);
      await store.post(['list', inner], 'inner 1');
      await store.post(['list', inner], 'inner 2');
      (model[model.length - 1] as JsonValue[]).push('inner 1', 'inner 2');
      return { expected: { list: model }, writes: 16 };
    },
  },
  {
    title: 'copies and moves (copies stay independent of their source)',
    initial: { src: { deep: [1, { x: 'y' }] }, dst: {} },
    async write(store) {
      await store.patch([], [{ op: 'copy', from: '/src/deep', path: '/dst/copy' }], { type: 'json-patch' });
      await store.put(['src', 'deep', '1', 'x'], 'changed');
      await store.patch([], [{ op: 'move', from: '/src', path: '/dst/moved' }], { type: 'json-patch' });
      await store.patch([], [{ op: 'move', from: '/dst/copy/0', path: '/dst/copy/-' }], { type: 'json-patch' });
      return { expected: { dst: { copy: [{ x: 'y' }, 1], moved: { deep: [1, { x: 'changed' }] } } }, writes: 4 };
    },
  },
];

export const revisionCases: CaseDefinition[] = [
  {
    title: 'revision: load().revision is the number of committed changes',
    async run(context) {
      let { store } = await context.newStore({ initial: { count: 0 } });
      await store.put(['count'], 1);
      await assertReadBack(context, store, { count: 1 }, 'after 1 change');
      store = await context.continueStore(store);
      assert.equal(store.store.revision, 1, 'a store reopened after 1 change');
      // Multi-operation changes are still one revision each.
      await store.patch([], [{ op: 'replace', path: '/count', value: 2 }, { op: 'add', path: '/a', value: 1 }, { op: 'add', path: '/b', value: 2 }], { type: 'json-patch' });
      await store.patch([], { count: 3, a: null, c: { d: 1 } });
      await store.put(['count'], 4);
      await store.delete(['b']);
      await store.put([], { count: 6 });
      // Writes that change nothing commit nothing.
      await store.patch([], {});
      await store.patch([], [], { type: 'json-patch' });
      await store.put(['count'], 7);
      assert.equal(store.store.revision, 7, 'the store counted its own writes wrong');
      await assertReadBack(context, store, { count: 7 }, 'after 7 changes');
    },
  },
  {
    title: 'revision: the first change on empty storage stores the starting document with it',
    async run(context) {
      const starting = () => ({ seed: [1, { a: 2 }], name: 'start' });
      const { store: objectStore } = await context.newStore({ initial: starting() });
      const first = await objectStore.put(['added'], true);
      assert.equal(first.revision, 1);
      await assertReadBack(context, objectStore, { ...starting(), added: true }, 'an object starting document');

      const { store: arrayStore } = await context.newStore({ initial: ['a'] });
      await arrayStore.post([], 'b');
      await assertReadBack(context, arrayStore, ['a', 'b'], 'an array starting document');
    },
  },
  {
    title: 'revision: a commit refused before it reaches storage leaves storage as it was',
    async run(context) {
      const adapter = await context.open();
      const gate = refusingGate(adapter);
      const store = context.storeOn(adapter, { initial: { seed: 1 } }, gate.storage);
      await store.ready();
      // Refusing the very first change: the retry must carry the starting document again.
      gate.refuseNext = true;
      const error = await rejection(store.put(['refused'], 1), 'a write whose commit was refused');
      assert.ok(error instanceof StorageError, `a refused commit must fail the write with StorageError, got ${String(error)}`);
      assert.equal(store.store.revision, 0);
      await store.put(['accepted'], 1);
      gate.refuseNext = true;
      await rejection(store.put(['refused'], 2), 'a write whose commit was refused');
      await store.put(['accepted'], 2);
      assert.equal(store.store.revision, 2);
      await assertReadBack(context, store, { seed: 1, accepted: 2 }, 'after two refused commits');
    },
  },
  ...writeKinds.map(
    (kind): CaseDefinition => ({
      title: `write kinds: ${kind.title}`,
      async run(context) {
        const { store } = await context.newStore({ initial: kind.initial });
        const { expected, writes } = await kind.write(store);
        assert.equal(store.store.revision, writes, `${kind.title}: each write is one change`);
        await assertReadBack(context, store, expected, kind.title);
      },
    }),
  ),
];
