/** The adapter's shape, and what fresh storage looks like. */
import assert from 'node:assert/strict';
import { assertReadBack, scramblingAdapter, type CaseDefinition } from './helpers.js';

const optionalMethods = ['changesSince', 'currentRevision', 'watch', 'close'] as const;

export const contractCases: CaseDefinition[] = [
  {
    title: 'contract: load and commit are functions, capabilities are booleans',
    async run(context) {
      const adapter = await context.open();
      assert.equal(typeof adapter.load, 'function', 'load must be a function');
      assert.equal(typeof adapter.commit, 'function', 'commit must be a function');
      if (adapter.name !== undefined) assert.equal(typeof adapter.name, 'string', 'name, when given, must be a string');
      for (const method of optionalMethods) {
        if (adapter[method] !== undefined) assert.equal(typeof adapter[method], 'function', `${method}, when given, must be a function`);
      }
      const capabilities: unknown = adapter.capabilities;
      if (capabilities === undefined) return;
      assert.ok(typeof capabilities === 'object' && capabilities !== null, 'capabilities, when given, must be an object');
      for (const [key, value] of Object.entries(capabilities)) {
        assert.equal(typeof value, 'boolean', `capabilities.${key} must be true or false, got ${JSON.stringify(value)}`);
      }
    },
  },
  {
    title: 'contract: empty storage loads undefined',
    async run(context) {
      const adapter = await context.open();
      const stored = await adapter.load();
      assert.ok(
        stored === undefined || stored === null,
        `load() on fresh storage must return undefined (nothing stored yet), got ${JSON.stringify(stored)}`,
      );
    },
  },
  {
    title: 'contract: each factory() call gives fresh, independent storage',
    async run(context) {
      const { store } = await context.newStore();
      await store.put(['written'], true);
      const other = await context.open();
      const stored = await other.load();
      assert.ok(
        stored === undefined || stored === null,
        'load() on a second factory() adapter returned data a store wrote through the first one: factory() must give fresh storage every call',
      );
    },
  },
  {
    title: 'contract: a store on empty storage starts from initial, at revision 0',
    async run(context) {
      const { store } = await context.newStore({ initial: { starting: ['document'] } });
      assert.equal(store.store.revision, 0, 'the revision of a store on empty storage');
      assert.deepEqual(await store.get(), { starting: ['document'] });
      const written = await store.put(['next'], 1);
      assert.equal(written.revision, 1, 'the first write is revision 1');
    },
  },
  {
    title: 'contract: commit keeps copies, not the values it is handed (the engine may reuse them once commit settles)',
    async run(context) {
      const adapter = await context.open();
      const store = context.storeOn(adapter, { initial: { list: [] } }, scramblingAdapter(adapter));
      await store.post(['list'], { a: [] });
      await store.post(['list', '0', 'a'], 1);
      await store.put(['object'], { k: [1], m: {} });
      await store.patch(['object'], { k: [2], m: { n: 'merged' } });
      await store.patch(['object'], [{ op: 'add', path: '/m/o', value: ['patched'] }], { type: 'json-patch' });
      await store.put(['object', 'k', '-'], 'appended');
      const expected = { list: [{ a: [1] }], object: { k: [2, 'appended'], m: { n: 'merged', o: ['patched'] } } };
      await assertReadBack(context, store, expected, 'after the changes it was handed were changed');
    },
  },
];
