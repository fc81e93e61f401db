/**
 * Redis going away and coming back, on a private redis-server (never the
 * shared one): requests meanwhile get 503 problem+json, the server processes
 * stay up and recover by themselves, and with the durable settings from
 * docs/redis.md (appendonly yes, appendfsync always) no acknowledged write
 * is lost across a crash of Redis.
 */
import { expect, test } from 'vitest';
import { delay, describeRedis, eventually, fetchJson, type ServerProcess } from './helpers.js';

async function expectUnavailable(server: ServerProcess, method: 'GET' | 'POST', path: string): Promise<void> {
  const response = await fetchJson(`${server.url}${path}`, {
    method,
    ...(method === 'POST' ? { headers: { 'content-type': 'application/json' }, body: '{"during":"outage"}' } : {}),
  });
  expect(response.status, `${method} ${path} while Redis is down`).toBe(503);
  expect(response.type).toMatch(/^application\/problem\+json/);
  expect(response.body).toMatchObject({ status: 503 });
}

describeRedis(
  'redisStorage: Redis outages',
  (env) => {
    test('Redis crashes mid-run and restarts: 503 meanwhile, no acknowledged write lost, processes recover', async () => {
      const redis = await env.privateRedis({ persistent: true });
      const key = env.key('restart');
      // One process fails fast while disconnected, the other queues and times out: both must answer 503.
      const servers = [
        await env.server({ redisUrl: redis.url, key, initial: { items: [] }, disableOfflineQueue: true }),
        await env.server({ redisUrl: redis.url, key, initial: { items: [] }, commandTimeout: 1000 }),
      ];

      const acknowledged = new Set<string>();
      const statuses = new Map<number, number>();
      let stop = false;
      const writer = async (name: string) => {
        for (let n = 0; !stop; n++) {
          const id = `${name}-${n}`;
          const server = servers[n % servers.length] as ServerProcess;
          try {
            const response = await fetch(`${server.url}/items`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ id }),
            });
            await response.arrayBuffer();
            statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
            if (response.status === 201) acknowledged.add(id);
            else await delay(20);
          } catch {
            await delay(20);
          }
        }
      };
      const writers = ['a', 'b', 'c', 'd'].map(writer);

      await eventually('writes before the crash', () => (acknowledged.size >= 40 ? true : undefined));
      await redis.stop('SIGKILL');
      const beforeRestart = acknowledged.size;

      for (const server of servers) {
        await expectUnavailable(server, 'GET', '/items');
        await expectUnavailable(server, 'POST', '/items');
      }
      await delay(500);

      await redis.start();
      for (const server of servers) {
        await eventually(`writes through ${server.url} again`, async () => {
          const response = await fetch(`${server.url}/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"after":"restart"}' });
          await response.arrayBuffer();
          return response.status === 201 ? true : undefined;
        });
      }
      await eventually('more writes after the restart', () => (acknowledged.size >= beforeRestart + 40 ? true : undefined));
      stop = true;
      await Promise.all(writers);

      expect(statuses.get(503) ?? 0).toBeGreaterThan(0);
      const views = await Promise.all(servers.map((server) => fetchJson(`${server.url}/items`)));
      for (const view of views) expect(view.status).toBe(200);
      const stored = new Set((views[0]?.body as Array<{ id?: string }>).map((item) => item.id).filter((id) => id !== undefined));
      const lost = [...acknowledged].filter((id) => !stored.has(id));
      expect(lost, 'acknowledged writes missing after the restart').toEqual([]);
      expect(views[1]?.body).toEqual(views[0]?.body);
      // Each process noticed its feed of changes broke and resynced from the log.
      for (const server of servers) {
        await eventually('the resync notice', () => (/is back; catching up from the log/.test(server.log()) ? true : undefined));
      }
    }, 60_000);

    test('Redis down when the server starts: 503, then it recovers once Redis comes up', async () => {
      const redis = await env.privateRedis({ start: false });
      const key = env.key('late-redis');
      const server = await env.server({ redisUrl: redis.url, key, initial: { hello: 'world' }, commandTimeout: 500 });
      await expectUnavailable(server, 'GET', '/');
      await expectUnavailable(server, 'POST', '/list');

      await redis.start();
      const body = await eventually('the document', async () => {
        const response = await fetchJson(`${server.url}/`);
        return response.status === 200 ? response.body : undefined;
      });
      expect(body).toEqual({ hello: 'world' });
      const put = await fetchJson(`${server.url}/written`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '[1,2]' });
      expect(put.status).toBe(201);
      const other = await env.server({ redisUrl: redis.url, key });
      expect((await fetchJson(`${other.url}/`)).body).toEqual({ hello: 'world', written: [1, 2] });
    }, 60_000);
  },
  { needsServerBinary: true },
);
