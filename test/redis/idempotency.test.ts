/**
 * Idempotency keys across processes and through Redis outages, with server
 * processes (test/redis/fixtures/server.mjs) on real Redis: the same key sent
 * to two processes at once is written once; and while Redis is frozen
 * (SIGSTOP), killed (SIGKILL) and restarted (AOF, appendfsync always),
 * clients that retry each write with its key until they get a 2xx leave
 * every write in the document exactly once.
 */
import { expect, test } from 'vitest';
import { delay, describeRedis, eventually, fetchJson, type ServerProcess } from './helpers.js';

interface Answer {
  status: number;
  etag: string | null;
  location: string | null;
  replayed: boolean;
}

async function postWithKey(server: ServerProcess, key: string, body: unknown): Promise<Answer> {
  const response = await fetch(`${server.url}/items`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'idempotency-key': `"${key}"` },
    body: JSON.stringify(body),
  });
  await response.arrayBuffer();
  return {
    status: response.status,
    etag: response.headers.get('etag'),
    location: response.headers.get('location'),
    replayed: response.headers.get('idempotent-replayed') === 'true',
  };
}

/** The ids in /items, each with how many times it is there. */
async function countIds(server: ServerProcess): Promise<Map<string, number>> {
  const answer = await fetchJson(`${server.url}/items`);
  expect(answer.status).toBe(200);
  const counts = new Map<string, number>();
  for (const item of answer.body as Array<{ id: string }>) counts.set(item.id, (counts.get(item.id) ?? 0) + 1);
  return counts;
}

describeRedis(
  'Idempotency keys across processes and Redis outages',
  (env) => {
    test('the same key sent to two processes at once is written once; both get the same answer', async () => {
      const key = env.key('idem-two-processes');
      const servers = [await env.server({ key, initial: { items: [] } }), await env.server({ key, initial: { items: [] } })];
      const ids = Array.from({ length: 20 }, (_, i) => `w${i}`);
      const answers = await Promise.all(ids.map((id) => Promise.all(servers.map((server) => postWithKey(server, id, { id })))));
      for (const pair of answers) {
        expect(pair.map((a) => a.status)).toEqual([201, 201]);
        expect(pair[0]?.location).toBe(pair[1]?.location);
        expect(pair[0]?.etag).toBe(pair[1]?.etag);
        expect(pair.filter((a) => !a.replayed)).toHaveLength(1);
      }
      for (const server of servers) {
        const counts = await eventually('both processes to agree', async () => {
          const seen = await countIds(server);
          return seen.size === ids.length ? seen : undefined;
        });
        expect([...counts.values()].every((n) => n === 1)).toBe(true);
      }
    }, 60_000);

    test('Redis frozen, killed and restarted while clients retry with keys until 2xx: every key\'s write is present exactly once', async () => {
      const redis = await env.privateRedis({ persistent: true });
      const key = env.key('idem-outage');
      const servers = [
        await env.server({ redisUrl: redis.url, key, initial: { items: [] }, commandTimeout: 500, disableOfflineQueue: true }),
        await env.server({ redisUrl: redis.url, key, initial: { items: [] }, commandTimeout: 500 }),
      ];
      const done = new Set<string>();
      const statuses = new Map<number, number>();
      let stop = false;
      // Each client writes its ids one by one; a failed attempt is retried with the same key, on the other process.
      const client = async (name: string) => {
        for (let n = 0; !stop; n++) {
          const id = `${name}-${n}`;
          for (let attempt = 0; ; attempt++) {
            const server = servers[(n + attempt) % servers.length] as ServerProcess;
            let status = 0;
            try {
              status = (await postWithKey(server, id, { id })).status;
            } catch {
              status = 0;
            }
            statuses.set(status, (statuses.get(status) ?? 0) + 1);
            if (status >= 200 && status < 300) break;
            await delay(20);
          }
          done.add(id);
        }
      };
      const clients = ['a', 'b', 'c', 'd'].map(client);
      const unavailable = () => statuses.get(503) ?? 0;

      await eventually('writes before the outage', () => (done.size >= 20 ? true : undefined));
      // Frozen: commands sent meanwhile may run once it thaws, after their requests gave up.
      const beforeFreeze = unavailable();
      redis.pause(true);
      try {
        await eventually('requests refused while Redis is frozen', () => (unavailable() >= beforeFreeze + 4 ? true : undefined), 60_000);
      } finally {
        redis.pause(false);
      }
      const afterThaw = done.size;
      await eventually('writes after the thaw', () => (done.size >= afterThaw + 20 ? true : undefined), 60_000);

      // Killed: its AOF (appendfsync always) keeps every write it ran.
      await redis.stop('SIGKILL');
      const beforeRestart = unavailable();
      await eventually('requests refused while Redis is down', () => (unavailable() >= beforeRestart + 4 ? true : undefined), 60_000);
      await redis.start();
      const afterRestart = done.size;
      await eventually('writes after the restart', () => (done.size >= afterRestart + 20 ? true : undefined), 60_000);
      stop = true;
      await Promise.all(clients);

      expect(unavailable()).toBeGreaterThan(0);
      for (const server of servers) {
        const counts = await eventually('the processes to catch up', async () => {
          const seen = await countIds(server);
          return seen.size >= done.size ? seen : undefined;
        });
        const repeated = [...counts].filter(([, n]) => n !== 1);
        expect(repeated).toEqual([]);
        expect(new Set(counts.keys())).toEqual(done);
      }
    }, 180_000);
  },
  { needsServerBinary: true },
);
