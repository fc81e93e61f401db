/**
 * Seeding: a store that finds its Redis key empty stores `initial` there as
 * the snapshot at revision 0 while it loads, so the first write sends only
 * its change; processes starting together on an empty key agree on one
 * document. Asserted on what Redis holds, never on timings.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'tsup';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { jsonStore, type JsonStore } from '../../src/json-store.js';
import { redisStorage, type RedisStorage } from '../../src/storage/redis.js';
import { describeRedis, fetchJson, type RedisTestEnv, type TestRedisClient } from './helpers.js';

/** A starting document big enough that carrying it with a change would show in the log (the fixture makes the same). */
function bigInitial(label: string): { label: string; rows: string[] } {
  return { label, rows: Array.from({ length: 2000 }, (_, i) => `${label} row ${i} `.padEnd(100, '.')) };
}

async function serve(env: RedisTestEnv, store: JsonStore): Promise<string> {
  const server: Server = createServer(store);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  env.defer(async () => {
    server.closeAllConnections();
    server.close();
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function openStore(env: RedisTestEnv, key: string, initial: unknown): Promise<{ store: JsonStore; storage: RedisStorage }> {
  const storage = redisStorage({ client: await env.client(), key });
  const store = jsonStore({ initial: initial as never, storage });
  store.on('error', () => {});
  env.defer(() => store.close());
  await store.ready();
  return { store, storage };
}

async function logEntries(client: TestRedisClient, storage: RedisStorage): Promise<Array<{ id: string; ops: unknown }>> {
  const raw = (await client.sendCommand(['XRANGE', storage.keys.log, '-', '+'])) as Array<[string, string[]]>;
  return raw.map(([id, fields]) => ({ id, ops: JSON.parse(fields[fields.indexOf('ops') + 1] as string) }));
}

let fixtureDir = '';
let fixtureScript = '';

beforeAll(async () => {
  fixtureDir = await mkdtemp(join(tmpdir(), 'jsonstore-seed-fixture-'));
  await build({
    entry: { 'seed-server': fileURLToPath(new URL('./fixtures/seed-server.ts', import.meta.url)) },
    outDir: fixtureDir,
    format: ['esm'],
    platform: 'node',
    target: 'node20',
    // Self-contained: the temp folder has no node_modules to resolve from;
    // the bundled client (CommonJS) requires Node's built-ins through this.
    noExternal: [/./],
    banner: { js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);" },
    outExtension: () => ({ js: '.mjs' }),
    config: false,
    dts: false,
    clean: false,
    splitting: false,
    sourcemap: false,
    silent: true,
  });
  fixtureScript = join(fixtureDir, 'seed-server.mjs');
});

afterAll(async () => {
  await rm(fixtureDir, { recursive: true, force: true });
});

/** Starts the fixture; resolves with its URL once it serves, and stops it at cleanup. */
async function startProcess(env: RedisTestEnv, key: string, label: string): Promise<string> {
  const child = spawn(process.execPath, [fixtureScript], {
    env: { ...process.env, JSONSTORE_FIXTURE: JSON.stringify({ redisUrl: env.url, key, label }) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  env.defer(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  });
  return new Promise((resolve, reject) => {
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      const match = /listening (\d+)/.exec(stdout);
      if (match) resolve(`http://127.0.0.1:${match[1]}`);
    });
    child.on('exit', (code) => reject(new Error(`the seed fixture exited with code ${code}:\n${stderr}`)));
  });
}

describeRedis('redisStorage: seeding an empty key at load', (env) => {
  test('a store on an empty key stores initial as revision 0 while it loads; the first write appends only its change', async () => {
    const key = env.key('seed');
    const client = await env.client();
    const initial = bigInitial('one');
    const { store, storage } = await openStore(env, key, initial);
    // Before any write: the snapshot holds initial, at revision 0, and the log is empty.
    expect(await client.sendCommand(['HGET', storage.keys.meta, 'rev'])).toBe('0');
    expect(await client.sendCommand(['HGET', storage.keys.meta, 'snapshotRev'])).toBe('0');
    expect(JSON.parse((await client.sendCommand(['GET', storage.keys.snapshot])) as string)).toEqual(initial);
    expect(await logEntries(client, storage)).toEqual([]);
    const snapshotBytes = await client.sendCommand(['STRLEN', storage.keys.snapshot]);

    const url = await serve(env, store);
    const patched = await fetch(`${url}/`, { method: 'PATCH', headers: { 'content-type': 'application/merge-patch+json' }, body: '{"label":"patched"}' });
    expect(patched.status).toBe(200);
    await patched.arrayBuffer();
    // The change alone went to Redis: no `replace` of the whole document.
    expect(await logEntries(client, storage)).toEqual([{ id: '1-0', ops: [{ op: 'replace', path: '/label', value: 'patched' }] }]);
    expect(await client.sendCommand(['HGET', storage.keys.meta, 'rev'])).toBe('1');
    expect(await client.sendCommand(['STRLEN', storage.keys.snapshot])).toBe(snapshotBytes);
    expect(Number(await client.sendCommand(['HGET', storage.keys.meta, 'logBytes']))).toBeLessThan(100);
    expect((await fetchJson(`${url}/label`)).body).toBe('patched');
  });

  test('a store opened later loads the seeded document at revision 0, not its own initial; changesSince(0) lists only the changes', async () => {
    const key = env.key('seed-later');
    const first = await openStore(env, key, { from: 'first' });
    const second = await openStore(env, key, { from: 'second' });
    expect(second.store.store.revision).toBe(0);
    expect(await second.store.get()).toEqual({ from: 'first' });
    expect(await second.storage.load()).toEqual({ document: { from: 'first' }, revision: 0 });
    await first.store.put(['n'], 1);
    expect(await second.storage.changesSince(0)).toEqual([{ revision: 1, ops: [{ op: 'add', path: '/n', value: 1 }] }]);
    expect(await second.store.get()).toEqual({ from: 'first', n: 1 });
    // A third store rebuilds the same document from snapshot + log.
    const third = await openStore(env, key, { from: 'third' });
    expect(third.store.store.revision).toBe(1);
    expect(await third.store.get()).toEqual({ from: 'first', n: 1 });
  });

  test('a key at revision 0 whose snapshot is gone (evicted, or meta alone) is empty to seed as to load: the store starts and serves initial', async () => {
    const key = env.key('seed-lost-snapshot');
    const client = await env.client();
    const lost = await openStore(env, key, { from: 'lost' });
    await lost.store.close();
    await client.sendCommand(['DEL', lost.storage.keys.snapshot]);
    expect(await lost.storage.load()).toBeUndefined();

    const { store, storage } = await openStore(env, key, { from: 'again' });
    const url = await serve(env, store);
    expect((await fetchJson(`${url}/`)).body).toEqual({ from: 'again' });
    expect(JSON.parse((await client.sendCommand(['GET', storage.keys.snapshot])) as string)).toEqual({ from: 'again' });
    expect(await storage.load()).toEqual({ document: { from: 'again' }, revision: 0 });
  });

  test('two adapters seeding one empty key at once: one stores its document, the other gets that one', async () => {
    const key = env.key('seed-race');
    const a = redisStorage({ client: await env.client(), key });
    const b = redisStorage({ client: await env.client(), key });
    env.defer(() => a.close());
    env.defer(() => b.close());
    const [seededA, seededB] = await Promise.all([a.seed({ by: 'a' }), b.seed({ by: 'b' })]);
    const winners = [seededA, seededB].filter((result) => result === undefined);
    expect(winners).toHaveLength(1);
    const stored = seededA ?? seededB;
    expect(stored).toEqual({ document: seededA === undefined ? { by: 'a' } : { by: 'b' }, revision: 0 });
    // Seeding a key that holds something changes nothing.
    expect(await a.seed({ by: 'late' })).toEqual(stored);
  });

  test('two processes starting together on an empty key with different initial serve the same document', async () => {
    const key = env.key('seed-processes');
    const [one, two] = await Promise.all([startProcess(env, key, 'one'), startProcess(env, key, 'two')]);
    const [fromOne, fromTwo] = await Promise.all([fetchJson(`${one}/`), fetchJson(`${two}/`)]);
    expect(fromOne.status).toBe(200);
    expect(fromTwo.body).toEqual(fromOne.body);
    expect(fromTwo.etag).toBe(fromOne.etag);
    const label = (fromOne.body as { label: string }).label;
    expect([bigInitial('one'), bigInitial('two')]).toContainEqual(fromOne.body);
    // One revision numbering: a write through either is revision 1 on both, and carries only itself.
    const put = await fetch(`${two}/label`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '"written"' });
    expect(put.status).toBe(200);
    await put.arrayBuffer();
    expect((await fetchJson(`${one}/label`)).body).toBe('written');
    const client = await env.client();
    const storage = redisStorage({ client, key });
    expect(await logEntries(client, storage)).toEqual([{ id: '1-0', ops: [{ op: 'replace', path: '/label', value: 'written' }] }]);
    expect(label).toMatch(/^(one|two)$/);
  });
});
