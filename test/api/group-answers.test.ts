/**
 * Group commit on shared storage, through the engine with an adapter that
 * lands groups where the test says: after a group lands behind another
 * process' change, the next group's answers are made as it lands (undone and
 * replayed in place). A read whose view ran while that group was with
 * storage must not keep what the undo changed back.
 */
import { expect, test } from 'vitest';
import { jsonStore } from '../../src/index.js';
import type { Change, StorageAdapter } from '../../src/storage/types.js';

test('a read made while a group answered as it lands is with storage answers with the group', async () => {
  let revision = 1;
  let entered: (() => void) | undefined;
  let held: Promise<void> | undefined;
  const adapter: StorageAdapter = {
    capabilities: { shared: true, rebase: true },
    load: () => ({ document: { big: { a: 'x'.repeat(100) }, x: 0 }, revision: 1 }),
    commit: async (change: Change) => {
      revision = change.revision;
    },
    changesSince: async () => [],
    currentRevision: async () => revision,
    commitBatch: async (changes: readonly Change[]) => {
      const first = (changes[0] as Change).revision;
      entered?.();
      if (held !== undefined) await held;
      if (first === 2) {
        // Another process' change came first: the group lands behind it.
        revision = 3 + changes.length - 1;
        return { revision: 3, missed: [{ revision: 2, ops: [{ op: 'add', path: '/other', value: 1 }] }] };
      }
      revision = first + changes.length - 1;
      return undefined;
    },
  };
  const store = jsonStore({ storage: adapter, readConsistency: 'local' });
  await store.ready();
  const engine = store.store;
  const setX = (value: number) => engine.write(() => ({ ops: [{ op: 'replace', path: '/x', value }], created: false, resultPath: ['x'] }), () => 'ok');
  expect(await setX(1)).toBe('ok');

  let release = () => {};
  held = new Promise<void>((resolve) => (release = resolve));
  const atStorage = new Promise<void>((resolve) => (entered = resolve));
  const written = setX(2);
  await atStorage;
  // A view that keeps the document it was shown, as a large GET does (it freezes it and reads it later).
  const read = engine.read((root) => {
    engine.freeze();
    return root as { x: number };
  });
  release();
  expect(await written).toBe('ok');
  expect((await read).x).toBe(2);
  expect(await store.get('/x')).toBe(2);
  await store.close();
});
