/**
 * Streams on every host the middleware supports: Express 5 and 4, connect
 * (at the root and mounted) and plain node:http.
 */
import { afterEach, describe, expect, test } from 'vitest';
import { hosts } from '../http/hosts.js';
import { SseClient } from '../support/sse-client.js';
import { closeLiveServers, replayClient, serveLive } from './helpers.js';

afterEach(closeLiveServers);

describe.each(hosts)('live updates on $name', (host) => {
  test('a stream below the mount point sees writes made over HTTP', async () => {
    const live = await serveLive({ initial: { rooms: { r1: { n: 0 } } } }, host);
    const client = await SseClient.open(`${live.url}/rooms/r1`);
    expect(client.status).toBe(200);
    await client.waitForMessages(1);
    expect((await live.write('PUT', '/rooms/r1/n', 1)).status).toBe(200);
    expect((await live.write('POST', '/rooms/r1', 'm')).status).toBe(201);
    await client.waitForMessages(3);
    expect(replayClient(client, null).value).toEqual(await live.store.get('/rooms/r1'));
  });
});
