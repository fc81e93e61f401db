/** Data outlives the adapter: what one adapter wrote, a reopened one loads and continues. */
import assert from 'node:assert/strict';
import type { JsonObject, JsonValue } from '../../document/json.js';
import { assertSameJson } from '../assert-json.js';
import { assertReadBack, type CaseDefinition } from './helpers.js';

export const persistenceCases: CaseDefinition[] = [
  {
    title: 'persistence: many small writes survive reopening',
    async run(context) {
      const { store } = await context.newStore({ initial: { counter: 0, log: [], byKey: {} } });
      const log: JsonValue[] = [];
      const byKey: JsonObject = {};
      for (let i = 1; i <= 150; i++) {
        if (i % 3 === 0) {
          await store.put(['counter'], i);
        } else if (i % 3 === 1) {
          await store.post(['log'], { i });
          log.push({ i });
        } else {
          await store.put(['byKey', `key ${i}`], [i]);
          byKey[`key ${i}`] = [i];
        }
      }
      await assertReadBack(context, store, { counter: 150, log, byKey }, 'after 150 small writes');
    },
  },
  {
    title: 'persistence: a reopened store loads the document and continues at the next revision',
    async run(context) {
      const { store: first } = await context.newStore({ initial: { list: [] } });
      await first.post(['list'], 'one');
      await first.post(['list'], 'two');
      await first.put(['name'], 'first store');

      // `initial` only seeds empty storage: the reopened store must ignore it.
      const second = await context.continueStore(first, { initial: { ignored: true } });
      assert.equal(second.store.revision, 3, 'a store reopened after 3 changes is at revision 3');
      assertSameJson(await second.get(), { list: ['one', 'two'], name: 'first store' }, 'the reopened store');
      const written = await second.post(['list'], 'three');
      assert.equal(written.revision, 4, 'the first write after reopening is revision 4');

      // Reopening without writing in between changes nothing.
      const third = await context.continueStore(second);
      const fourth = await context.continueStore(third);
      assert.equal(fourth.store.revision, 4);
      await assertReadBack(context, fourth, { list: ['one', 'two', 'three'], name: 'first store' }, 'after reopening three times');
    },
  },
];

/** Registered instead of the persistence cases when there is no `reopen` option. */
export const persistenceSkipped: CaseDefinition = {
  title: 'persistence: SKIPPED, no reopen option (storage that does not outlive its adapter)',
  async run() {},
};
