/**
 * Many writes at once: through the engine they land in call order (the engine
 * overlaps commits for adapters that declare `pipelining`), and a pipelining
 * adapter keeps overlapping commits in revision order and keeps its own copies.
 */
import assert from 'node:assert/strict';
import type { JsonObject, JsonValue } from '../../document/json.js';
import type { PatchOperation } from '../../document/patch-types.js';
import { assertReadBack, assertStoredDocument, attempt, changeFor, commitNow, rejection, type CaseDefinition } from './helpers.js';

const concurrentWrites = 200;

export const concurrencyCases: CaseDefinition[] = [
  {
    title: `concurrency: ${concurrentWrites} POSTs in parallel all land, in order (pipelined when the adapter declares pipelining)`,
    async run(context) {
      const { store } = await context.newStore({ initial: { items: [] } });
      const results = await Promise.all(Array.from({ length: concurrentWrites }, (_, i) => store.post(['items'], { i })));
      results.forEach((result, i) => {
        assert.deepEqual(result.path, ['items', String(i)], `POST number ${i} landed elsewhere`);
        assert.equal(result.revision, i + 1, `POST number ${i} has the wrong revision`);
      });
      const items = Array.from({ length: concurrentWrites }, (_, i): JsonValue => ({ i }));
      await assertReadBack(context, store, { items }, `after ${concurrentWrites} parallel POSTs`);
    },
  },
  {
    title: 'pipelining (when declared): overlapping commits are stored in revision order, from copies taken before commit returns',
    async run(context) {
      const adapter = await context.open();
      if (adapter.capabilities?.pipelining !== true) return;
      await adapter.load();
      const document: { list: JsonObject[] } = { list: [] };
      const pending: Array<Promise<unknown>> = [];
      for (let revision = 1; revision <= 50; revision++) {
        const value: JsonObject = { n: revision };
        const ops: PatchOperation[] = [{ op: 'add', path: `/list/${revision - 1}`, value }];
        if (revision === 1) ops.unshift({ op: 'replace', path: '', value: { list: [] } });
        document.list.push({ n: revision });
        pending.push(commitNow(adapter, changeFor(adapter, revision, ops, structuredClone(document))));
        // The engine may change what it handed over once commit has returned.
        value['n'] = -1;
        value['mutated'] = true;
      }
      await Promise.all(pending);
      const { stored } = await context.readBackAdapter(adapter);
      assertStoredDocument(stored, document, 50, 'after 50 overlapping commits');
    },
  },
  {
    title: 'pipelining (when declared): a commit whose revision does not follow the last accepted one is refused',
    async run(context) {
      const adapter = await context.open();
      if (adapter.capabilities?.pipelining !== true) return;
      await adapter.load();
      await adapter.commit(changeFor(adapter, 1, [{ op: 'replace', path: '', value: { n: 1 } }], { n: 1 }));
      await rejection(
        attempt(() => adapter.commit(changeFor(adapter, 3, [{ op: 'replace', path: '/n', value: 3 }], { n: 3 }))),
        'a commit at revision 3 right after revision 1',
      );
      await rejection(
        attempt(() => adapter.commit(changeFor(adapter, 1, [{ op: 'replace', path: '/n', value: 'again' }], { n: 'again' }))),
        'a second commit at revision 1',
      );
      await adapter.commit(changeFor(adapter, 2, [{ op: 'replace', path: '/n', value: 2 }], { n: 2 }));
      const { stored } = await context.readBackAdapter(adapter);
      assertStoredDocument(stored, { n: 2 }, 2, 'after refusing two out-of-order commits');
    },
  },
];
