/**
 * Two real server processes on one Redis key (the test fixture server and
 * the jsonstore CLI, both from dist/): a stream on either sees every change
 * made through either, in revision order, with the same ids.
 */
import { expect, test } from 'vitest';
import { describeRedis } from '../redis/helpers.js';
import { applyLiveEvent, type JsonValue } from '../../src/index.js';
import { SseClient } from '../support/sse-client.js';
import { eventually } from '../support/wait.js';

describeRedis('live updates across processes (Redis)', (env) => {
  test('streams on both processes get every change, in order, with the same ids', async () => {
    const key = env.key('live-shared');
    const one = await env.server({ key, initial: { items: [], count: 0 } });
    const two = await env.cli(['--redis', env.url, '--key', key]);
    const base2 = two.url.replace(/\/$/, '');
    // The two processes start from different `initial`s: the document is set first.
    expect((await fetch(`${one.url}/`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '{"items":[],"count":0}' })).status).toBeLessThan(300);
    const streams = await Promise.all([SseClient.open(`${one.url}/`), SseClient.open(`${base2}/`), SseClient.open(`${one.url}/items`), SseClient.open(`${base2}/items`)]);
    await Promise.all(streams.map((stream) => stream.waitForMessages(1)));
    const writes: Promise<Response>[] = [];
    for (let i = 0; i < 30; i++) {
      const base = i % 2 === 0 ? one.url : base2;
      writes.push(fetch(`${base}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ i }) }));
      if (i % 5 === 0) writes.push(fetch(`${base}/count`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(i) }));
    }
    const answers = await Promise.all(writes);
    expect(answers.map((answer) => answer.status).filter((status) => status >= 300)).toEqual([]);
    const final = (await (await fetch(`${one.url}/`)).json()) as JsonValue;
    const replay = (stream: SseClient): JsonValue | null => {
      let value: JsonValue | null = null;
      for (const m of stream.messages) value = applyLiveEvent(value, { event: m.event as 'put' | 'patch', path: m.path as string, data: m.data as JsonValue });
      return value;
    };
    for (const [index, stream] of streams.entries()) {
      const expected = index < 2 ? final : (final as { items: JsonValue }).items;
      await eventually(`stream ${index} caught up`, () => JSON.stringify(replay(stream)) === JSON.stringify(expected));
    }
    const ids = (stream: SseClient) => [...new Set(stream.messages.map((m) => Number(m.id)))];
    for (const stream of streams) {
      const seen = ids(stream);
      expect(seen).toEqual([...seen].sort((a, b) => a - b));
    }
    // The same revisions, with the same events, on both processes.
    expect(streams[1]!.messages).toEqual(streams[0]!.messages);
    expect(streams[3]!.messages).toEqual(streams[2]!.messages);
    expect(ids(streams[0]!).length).toBe(1 + 30 + 6);
  }, 60_000);
});
