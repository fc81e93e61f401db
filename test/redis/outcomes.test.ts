/**
 * What a failed write tells the client, and how long a request waits: on
 * private redis-server processes that are frozen (SIGSTOP), stopped and
 * restarted. A write that reached a Redis that stopped answering may still be
 * applied, so its answer must say so; one that never left the process must
 * say nothing was changed; and however many commands a request needs, it
 * waits for Redis one commandTimeout in all.
 */
import { once } from 'node:events';
import { createServer } from 'node:http';
import { expect, test } from 'vitest';
import { StorageError } from '../../src/errors.js';
import { jsonStore, type JsonStore } from '../../src/json-store.js';
import type { ChangeEvent } from '../../src/document-store.js';
import type { PatchOperation } from '../../src/document/patch-types.js';
import { redisStorage, type RedisStorage } from '../../src/storage/redis.js';
import type { StorageAdapter, StorageCallOptions } from '../../src/storage/types.js';
import { describeRedis, eventually, fetchJson, type RedisTestEnv, type TestRedisClient } from './helpers.js';

const unknownOutcome = /may or may not have been saved; read the document \(GET\)/;
const nothingChanged = /so nothing was changed; try again later/;

function replaceRoot(value: unknown): PatchOperation {
  return { op: 'replace', path: '', value: value as never };
}

/** Serves `store` over real HTTP on a free port, closed at cleanup. */
async function serve(env: RedisTestEnv, store: JsonStore): Promise<string> {
  const server = createServer(store);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  env.defer(async () => {
    server.closeAllConnections();
    server.close();
  });
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return `http://127.0.0.1:${address.port}`;
}

function send(url: string, method: string, body: unknown) {
  return fetchJson(url, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
}

function detailOf(answer: { body: unknown }): string {
  return String((answer.body as { detail?: unknown }).detail);
}

describeRedis(
  'redisStorage: what a failed write tells the client',
  (env) => {
    test('Redis frozen mid-write (kill -STOP): the 503 says the write may or may not be saved; after kill -CONT it is there once and a GET shows it', async () => {
      const redis = await env.privateRedis();
      const key = env.key('frozen-write');
      const server = await env.cli(['--redis', redis.url, '--key', key]);
      expect((await send(`${server.url}/items`, 'PUT', [])).status).toBe(201);

      redis.pause(true);
      let answer;
      try {
        answer = await send(`${server.url}/items`, 'POST', 'once');
      } finally {
        redis.pause(false);
      }
      expect(answer.status).toBe(503);
      expect(answer.type).toMatch(/^application\/problem\+json/);
      expect(detailOf(answer)).toMatch(unknownOutcome);
      expect(detailOf(answer)).not.toMatch(/nothing was changed/);

      // Redis ran the write it had been sent; reading, as the answer says, shows it, once.
      expect((await fetchJson(`${server.url}/items`)).body).toEqual(['once']);
      const admin = await env.client(redis.url);
      const { keys } = redisStorage({ client: admin, key });
      expect(await admin.hGet(keys.meta, 'rev')).toBe('2');
      const log = (await admin.sendCommand(['XRANGE', keys.log, '-', '+'])) as Array<[string, string[]]>;
      expect(log.map(([id]) => id)).toEqual(['1-0', '2-0']);
      expect(JSON.parse(log[1]?.[1][1] ?? 'null')).toEqual([{ op: 'add', path: '/items/0', value: 'once' }]);

      // The process took the change in at its revision: the next write follows it.
      expect((await send(`${server.url}/items`, 'POST', 'twice')).status).toBe(201);
      expect((await fetchJson(`${server.url}/items`)).body).toEqual(['once', 'twice']);
      expect(await admin.hGet(keys.meta, 'rev')).toBe('3');
    }, 60_000);

    test('a write that never reached Redis (it was down) says nothing was changed, and nothing was', async () => {
      const redis = await env.privateRedis({ persistent: true });
      const key = env.key('down');
      // One client fails commands at once while disconnected, the other queues them.
      const clients = [await env.client(redis.url, { disableOfflineQueue: true }), await env.client(redis.url)];
      const urls: string[] = [];
      const stores: JsonStore[] = [];
      for (const client of clients) {
        const store = jsonStore({ initial: { items: [] }, storage: redisStorage({ client, key, commandTimeout: 1000 }) });
        store.on('error', () => {});
        env.defer(() => store.close());
        await store.ready();
        stores.push(store);
        urls.push(await serve(env, store));
      }
      expect((await send(`${urls[0]}/items`, 'POST', 'before')).status).toBe(201);

      await redis.stop('SIGTERM');
      await eventually('the clients to notice', () => (clients.some((client) => client.isReady) ? undefined : true));
      for (const url of urls) {
        const answer = await send(`${url}/items`, 'POST', 'during');
        expect(answer.status).toBe(503);
        expect(detailOf(answer)).toMatch(nothingChanged);
        expect(detailOf(answer)).not.toMatch(/may or may not/);
      }
      for (const store of stores) await expect(store.post('/items', 'during')).rejects.toMatchObject({ status: 503, outcome: 'not-applied' });

      await redis.start();
      for (const url of urls) {
        const items = await eventually('Redis back', async () => {
          const answer = await fetchJson(`${url}/items`);
          return answer.status === 200 ? answer.body : undefined;
        });
        expect(items).toEqual(['before']);
      }
    }, 60_000);

    test('programmatic: the StorageError says the outcome is unknown; after the thaw the change arrives at its revision, and even a local read shows it', async () => {
      const redis = await env.privateRedis();
      const client = await env.client(redis.url);
      // Neither following nor strong reads: only the check the store makes after an unknown outcome can show the change.
      const store = jsonStore({
        initial: { items: [] },
        readConsistency: 'local',
        storage: redisStorage({ client, key: env.key('programmatic'), commandTimeout: 1000, follow: false }),
      });
      store.on('error', () => {});
      env.defer(() => store.close());
      expect((await store.post('/items', 'a')).revision).toBe(1);
      const events: ChangeEvent[] = [];
      store.on('change', (event) => events.push(structuredClone(event)));

      redis.pause(true);
      let error: unknown;
      let readMeanwhile: unknown;
      try {
        error = await store.post('/items', 'b').then(() => undefined, (failure: unknown) => failure);
        // A local read is still answered from memory while Redis does not answer.
        readMeanwhile = await store.get('/items');
      } finally {
        redis.pause(false);
      }
      expect(readMeanwhile).toEqual(['a']);
      expect(error).toBeInstanceOf(StorageError);
      expect(error).toMatchObject({ status: 503, outcome: 'unknown' });
      expect((error as StorageError).detail).toMatch(unknownOutcome);

      expect(await store.get('/items')).toEqual(['a', 'b']);
      expect(events).toEqual([{ revision: 2, ops: [{ op: 'add', path: '/items/1', value: 'b' }], origin: 'remote' }]);
      expect((await store.post('/items', 'c')).revision).toBe(3);
      expect(await store.get('/items')).toEqual(['a', 'b', 'c']);
    }, 60_000);

    test('adapter: a commit sent to a frozen Redis fails with outcome unknown; one it never sent does not, and the request deadline bounds the wait', async () => {
      const redis = await env.privateRedis();
      const client = await env.client(redis.url);
      // A commandTimeout far beyond the test's: only the deadline can end the waits below.
      const adapter = redisStorage({ client, key: env.key('adapter'), commandTimeout: 120_000, follow: false });
      env.defer(() => adapter.close());
      await adapter.commit({ revision: 1, ops: [replaceRoot({ n: 0 })] });

      // No time left: nothing is sent, so nothing can have changed.
      const late = await adapter.commit({ revision: 2, ops: [{ op: 'replace', path: '/n', value: 1 }] }, { deadline: performance.now() - 1 }).then(
        () => undefined,
        (error: unknown) => error as Error & { outcome?: string },
      );
      expect(late?.message).toMatch(/the command was not sent/);
      expect(late?.outcome).toBeUndefined();
      expect(await adapter.currentRevision()).toBe(1);

      redis.pause(true);
      let frozen: (Error & { outcome?: string }) | undefined;
      let revisionCheck: Error | undefined;
      try {
        frozen = await adapter.commit({ revision: 2, ops: [{ op: 'replace', path: '/n', value: 2 }] }, { deadline: performance.now() + 2000 }).then(
          () => undefined,
          (error: unknown) => error as Error & { outcome?: string },
        );
        revisionCheck = await adapter.currentRevision({ deadline: performance.now() + 2000 }).then(
          () => undefined,
          (error: unknown) => error as Error,
        );
      } finally {
        redis.pause(false);
      }
      expect(frozen?.outcome).toBe('unknown');
      expect(frozen?.message).toMatch(/revision 2 of ".*" may or may not have been saved \(Redis did not answer within the \d+ ms left of the request's time\)/);
      expect(revisionCheck?.message).toMatch(/Redis did not answer within the \d+ ms left of the request's time/);
      // Redis ran the commit it had been sent, after the one sent before the freeze.
      expect(await adapter.currentRevision()).toBe(2);
      expect((await adapter.load())?.document).toEqual({ n: 2 });
    }, 60_000);
  },
  { needsServerBinary: true },
);

/** The real adapter, with every call and the options the engine gave it recorded. */
function recording(adapter: RedisStorage): { adapter: StorageAdapter; calls: Array<{ method: string; options: StorageCallOptions | undefined }> } {
  const calls: Array<{ method: string; options: StorageCallOptions | undefined }> = [];
  const wrapped: StorageAdapter = {
    name: adapter.name,
    capabilities: adapter.capabilities,
    requestTimeout: adapter.requestTimeout,
    load: (options) => (calls.push({ method: 'load', options }), adapter.load(options)),
    commit: (change, options) => (calls.push({ method: 'commit', options }), adapter.commit(change, options)),
    changesSince: (revision, options) => (calls.push({ method: 'changesSince', options }), adapter.changesSince(revision, options)),
    currentRevision: (options) => (calls.push({ method: 'currentRevision', options }), adapter.currentRevision(options)),
    close: () => adapter.close(),
  };
  return { adapter: wrapped, calls };
}

describeRedis(
  'redisStorage: one deadline per request',
  (env) => {
    test('every storage call made for one request carries the same deadline, one requestTimeout after it started', async () => {
      const key = env.key('one-deadline');
      const client: TestRedisClient = await env.client();
      const other = redisStorage({ client, key, follow: false });
      env.defer(() => other.close());
      const { adapter, calls } = recording(redisStorage({ client, key, follow: false, commandTimeout: 5000 }));
      const store = jsonStore({ initial: { list: [] }, storage: adapter });
      env.defer(() => store.close());
      await store.ready();
      const url = await serve(env, store);
      expect((await send(`${url}/list`, 'POST', 'a')).status).toBe(201);

      // Another process writes twice: a strong read must check the revision, then catch up.
      await other.commit({ revision: 2, ops: [{ op: 'add', path: '/list/1', value: 'b' }] });
      await other.commit({ revision: 3, ops: [{ op: 'add', path: '/list/2', value: 'c' }] });
      calls.length = 0;
      const started = performance.now();
      expect((await fetchJson(`${url}/list`)).body).toEqual(['a', 'b', 'c']);
      expect(calls.map((call) => call.method)).toEqual(['currentRevision', 'changesSince']);
      const deadline = calls[0]?.options?.deadline;
      expect(deadline).toBeGreaterThanOrEqual(started + 5000);
      expect(calls.every((call) => call.options?.deadline === deadline)).toBe(true);

      // A write made on the stale copy: refused, caught up, done again, all within one deadline.
      await other.commit({ revision: 4, ops: [{ op: 'add', path: '/list/3', value: 'd' }] });
      calls.length = 0;
      expect((await send(`${url}/list`, 'POST', 'e')).status).toBe(201);
      expect(calls.map((call) => call.method)).toEqual(['commit', 'changesSince', 'commit']);
      expect(new Set(calls.map((call) => call.options?.deadline)).size).toBe(1);
      expect((await fetchJson(`${url}/list`)).body).toEqual(['a', 'b', 'c', 'd', 'e']);
    });

    test('with Redis frozen, writes queued behind a stuck one get their 503 within one commandTimeout, and only one write lands', async () => {
      const redis = await env.privateRedis();
      const key = env.key('queued');
      // Large enough that scheduling noise on a busy machine cannot reach the
      // bound below (twice this); without one deadline per request the third
      // write would wait about three times this.
      const commandTimeout = 3000;
      const client = await env.client(redis.url);
      const store = jsonStore({ initial: { items: [] }, storage: redisStorage({ client, key, commandTimeout }) });
      store.on('error', () => {});
      env.defer(() => store.close());
      await store.ready();
      const url = await serve(env, store);
      // Redis now knows the commit script (a first EVALSHA would only get NOSCRIPT).
      expect((await send(`${url}/items`, 'POST', 'w')).status).toBe(201);

      redis.pause(true);
      let answers;
      try {
        answers = await Promise.all(
          ['x', 'y', 'z'].map(async (value) => {
            const started = performance.now();
            const answer = await send(`${url}/items`, 'POST', value);
            return { ...answer, elapsed: performance.now() - started };
          }),
        );
      } finally {
        redis.pause(false);
      }
      for (const answer of answers) {
        expect(answer.status).toBe(503);
        // Sent to the frozen Redis (outcome unknown), or still waiting its turn (nothing sent).
        expect(detailOf(answer)).toMatch(new RegExp(`${unknownOutcome.source}|${nothingChanged.source}`));
        expect(answer.elapsed).toBeLessThan(2 * commandTimeout);
      }
      expect(answers.filter((answer) => unknownOutcome.test(detailOf(answer))).length).toBeGreaterThanOrEqual(1);

      // Every commit that reached Redis was made at the same revision: the
      // first one Redis runs lands, the others are refused as stale.
      const items = await eventually('the landed write', async () => {
        const answer = await fetchJson(`${url}/items`);
        return answer.status === 200 ? (answer.body as string[]) : undefined;
      });
      expect(items).toHaveLength(2);
      expect(items[0]).toBe('w');
      expect(['x', 'y', 'z']).toContain(items[1]);
    }, 60_000);
  },
  { needsServerBinary: true },
);
