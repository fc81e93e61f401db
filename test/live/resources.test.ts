/**
 * Budgets: thousands of connects and aborts leave nothing behind (no
 * subscriptions, `change` listeners, timers or sockets), and a consumer that
 * stops reading is coalesced to a fresh put, then cut off, while the server
 * holds a bounded number of bytes for it.
 */
import http from 'node:http';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { SseClient } from '../support/sse-client.js';
import { eventually } from '../support/wait.js';
import { closeLiveServers, replayClient, serveLive } from './helpers.js';

afterEach(closeLiveServers);

function timers(): number {
  return process.getActiveResourcesInfo().filter((name) => name === 'Timeout').length;
}

/** A request for a stream, aborted at a given moment. */
function connectAndAbort(url: string, when: 'at once' | 'on the head' | 'after data'): Promise<void> {
  return new Promise((resolve) => {
    const req = http.request(url, { headers: { accept: 'text/event-stream' }, agent: false });
    req.on('error', () => resolve());
    req.on('close', () => resolve());
    req.on('response', (res) => {
      if (when === 'on the head') req.destroy();
      else res.once('data', () => req.destroy());
    });
    req.end();
    if (when === 'at once') setImmediate(() => req.destroy());
  });
}

describe('live updates: resources', () => {
  test('3000 connects and aborts (before the head, on it, after data, during writes) leave nothing behind', async () => {
    const live = await serveLive({ initial: { a: { b: 1 }, n: 0 }, live: { keepAlive: 60_000, maxSubscriptions: 100_000 } });
    await live.store.ready();
    const listenersBefore = live.store.store.listenerCount('change');
    const timersBefore = timers();
    const kinds = ['at once', 'on the head', 'after data'] as const;
    const paths = ['/', '/a', '/a/b', '/n', '/missing/x'];
    let writes = 0;
    for (let batch = 0; batch < 60; batch++) {
      const aborts = Array.from({ length: 50 }, (_, i) => connectAndAbort(live.url + paths[i % paths.length], kinds[(batch + i) % kinds.length]!));
      // Writes while streams come and go: fan-out to streams that are closing.
      const write = live.store.put('/n', ++writes);
      await Promise.all([...aborts, write]);
    }
    await eventually('every subscription released', () => live.store.live.subscriptions === 0);
    expect(live.store.live).toEqual({ subscriptions: 0, paths: 0 });
    expect(live.store.store.listenerCount('change')).toBe(listenersBefore);
    await eventually('every connection closed', () => new Promise<boolean>((resolve) => live.server.getConnections((_, count) => resolve(count === 0))));
    await eventually('no keep-alive or linger timer left', () => timers() <= timersBefore);
    // And the store still streams.
    const client = await SseClient.open(live.url + '/n');
    await client.waitForMessages(1);
    expect(client.messages[0]?.data).toBe(writes);
  }, 120_000);

  test('a consumer that stops reading gets its backlog coalesced into one fresh put; the server holds a bounded amount for it', async () => {
    // Room for the whole document (about 100 KB), not for a backlog of 100 KB events.
    const bufferSize = 256 * 1024;
    const live = await serveLive({ initial: { big: '', n: 0 }, limit: '1mb', live: { bufferSize } });
    const sockets: Socket[] = [];
    live.server.on('connection', (socket) => sockets.push(socket));
    const client = await SseClient.open(live.url + '/');
    await client.waitForMessages(1);
    client.pause();
    // Write until the server's socket for this stream backs up, then well past the buffer.
    const chunk = 'x'.repeat(100 * 1024);
    let written = 0;
    let backedUp = 0;
    while (backedUp < 20 && written < 400) {
      await live.store.put('/big', `${written}${chunk}`);
      written++;
      if (sockets.some((socket) => socket.writableLength > 0)) backedUp++;
    }
    expect(backedUp).toBe(20);
    // Node's buffer for the socket: at most what was written before it said "full", plus one event.
    const held = Math.max(...sockets.map((socket) => socket.writableLength));
    expect(held).toBeLessThan(16 * 1024 + 2 * chunk.length + bufferSize);
    await live.store.put('/n', 1);
    client.resume();
    const final = await live.store.get();
    await eventually('the fresh put', () => JSON.stringify(replayClient(client, null).value) === JSON.stringify(final));
    const puts = client.messages.filter((m) => m.event === 'put');
    expect(puts.length).toBeLessThan(written);
    expect(puts[puts.length - 1]).toMatchObject({ path: '/', data: final, id: String(live.store.store.revision) });
    expect(client.ended).toBe(false);
  }, 120_000);

  test('a consumer whose fresh put would not fit its buffer either gets cancel and is closed', async () => {
    const bufferSize = 64 * 1024;
    const live = await serveLive({ initial: { big: '' }, limit: '1mb', live: { bufferSize } });
    const sockets: Socket[] = [];
    live.server.on('connection', (socket) => sockets.push(socket));
    const client = await SseClient.open(live.url + '/');
    await client.waitForMessages(1);
    client.pause();
    const chunk = 'y'.repeat(100 * 1024);
    let written = 0;
    let backedUp = 0;
    while (backedUp < 20 && written < 400) {
      await live.store.put('/big', `${written}${chunk}`);
      written++;
      if (sockets.some((socket) => socket.writableLength > 0)) backedUp++;
    }
    client.resume();
    await client.waitForEnd();
    const last = client.messages[client.messages.length - 1];
    expect(last?.event).toBe('cancel');
    expect(last?.data).toMatch(/slow consumer/);
    await eventually('released', () => live.store.live.subscriptions === 0);
  }, 120_000);
});
