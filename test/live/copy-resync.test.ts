/**
 * Copy mode (a store with several changes in flight): a stream that is still
 * starting when the hub starts afresh ("resync", which drops the copy) must
 * fail at once, not wait for a copy that nothing will make in sync for it.
 * The resync is forced with a made-up `change` event the copy cannot follow:
 * the engine never commits such a change, so there is no other way to cause it.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { memoryStorage, type StorageAdapter } from '../../src/index.js';
import type { StoredChanges } from '../../src/live/replay.js';
import { SseClient } from '../support/sse-client.js';
import { eventually } from '../support/wait.js';
import { closeLiveServers, serveLive } from './helpers.js';

afterEach(closeLiveServers);

/** Memory storage that says it pipelines (so the hub keeps a copy) and holds `changesSince` until released. */
function pipelinedStorage(): { storage: StorageAdapter; asked: () => number; release: () => void } {
  const inner = memoryStorage();
  const held: Array<() => void> = [];
  const storage: StorageAdapter = {
    name: 'pipelined memory',
    capabilities: { pipelining: true },
    load: (options) => inner.load(options),
    commit: (change, options) => inner.commit(change, options),
    changesSince: (revision) => new Promise((resolve) => held.push(() => resolve(inner.changesSince(revision) as StoredChanges['changes'] | undefined))),
  };
  return { storage, asked: () => held.length, release: () => (held.shift() as () => void)() };
}

describe('copy mode: a stream starting while the hub starts afresh', () => {
  test('is answered at once (not left waiting), and later streams work', async () => {
    const { storage, asked, release } = pipelinedStorage();
    const live = await serveLive({ storage, initial: { n: 0 } });
    await live.store.ready();
    expect(live.store.store.pipelinesWrites).toBe(true);
    for (const n of [1, 2]) expect((await live.write('PUT', '/n', n)).status).toBe(200);
    const registered = await SseClient.open(`${live.url}/`);
    await registered.waitForMessages(1);
    // Last-Event-ID 1 is older than the hub's recent history: the start asks storage and waits there.
    const starting = SseClient.open(`${live.url}/n`, { headers: { 'last-event-id': '1' } });
    await eventually('the start asking storage', () => asked() === 1);
    live.store.store.emit('change', { revision: live.store.store.revision + 1, ops: [{ op: 'remove', path: '/missing' }], origin: 'local' });
    release();
    const answered = await starting;
    await eventually('the starting stream answered and ended', () => answered.ended);
    expect(answered.status).toBe(503);
    await eventually('the registered stream cancelled', () => registered.messages.some((m) => m.event === 'cancel'));
    await eventually('nothing counted', () => live.store.live.subscriptions === 0);
    const after = await SseClient.open(`${live.url}/n`);
    await after.waitForMessages(1);
    expect(after.messages[0]).toMatchObject({ event: 'put', path: '/', data: 2 });
  });
});
