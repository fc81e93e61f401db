// Write throughput of the file adapter: PATCH of one small leaf in documents
// of 1 KB, 1 MB and 20 MB, with fsync on and off, next to json-server 0.17
// doing the same PATCH on the same data. Targets: at 20 MB at least 100x
// json-server's writes/s, and write cost nearly flat from 1 KB to 20 MB.
//
//   node bench/file-storage.bench.mjs          (after `npx tsup`)
//   BENCH_DURATION=10 BENCH_ROUNDS=5 node bench/file-storage.bench.mjs
//
// Each server runs in a child process (this file again, with `serve ...`),
// so the load generator does not share its event loop.
import { spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { isMain, machine, printTable, startServer } from './lib.mjs';

const self = fileURLToPath(import.meta.url);

/** `{ items: [{ id, count, payload }, ...] }` of about `bytes` bytes; item `id` sits at index `id`. */
function makeDocument(bytes) {
  const payload = 'p'.repeat(160);
  const itemSize = JSON.stringify({ id: 0, count: 0, payload }).length + 1;
  const count = Math.max(2, Math.round(bytes / itemSize));
  return { items: Array.from({ length: count }, (_, id) => ({ id, count: 0, payload })) };
}

// ---- servers (child process side) ---------------------------------------------------

async function serveFileStore(dbPath, fsync) {
  const { jsonStore, fileStorage } = await import('../dist/index.js');
  if (typeof fileStorage !== 'function') throw new Error('dist/index.js does not export fileStorage: build first (npx tsup)');
  const store = jsonStore({ storage: fileStorage(dbPath, { fsync }), limit: '1kb' });
  await store.ready();
  const server = http.createServer(store);
  server.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
  process.on('SIGTERM', () => process.exit(0));
}

function serveJsonServer(dbPath) {
  const jsonServer = createRequire(import.meta.url)('json-server');
  const app = jsonServer.create();
  app.use(jsonServer.defaults({ logger: false }));
  app.use(jsonServer.router(dbPath));
  const server = app.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
  process.on('SIGTERM', () => process.exit(0));
}

// ---- measuring (parent side) -------------------------------------------------------------

/** PATCHes `path` with a new count each time; every request must be a 2xx write. */
async function patchLoad(url, { duration, amount, connections }) {
  let next = 0;
  const result = await autocannon({
    url,
    connections,
    ...(amount ? { amount } : { duration }),
    requests: [
      {
        method: 'PATCH',
        headers: { 'content-type': 'application/json' },
        setupRequest: (request) => ({ ...request, body: JSON.stringify({ count: ++next }) }),
      },
    ],
  });
  const bad = result.non2xx + result.errors + result.timeouts;
  if (bad > 0) throw new Error(`${url}: ${bad} failed requests out of ${result.requests.total}`);
  const seconds = (Date.parse(result.finish) - Date.parse(result.start)) / 1000;
  return { writesPerSecond: result['2xx'] / seconds, latency: result.latency.average, total: result['2xx'] };
}

async function readCount(url) {
  const response = await fetch(url);
  return (await response.json()).count;
}

async function runCase({ kind, fsync, bytes, dir, duration, connections, amount }) {
  // A fresh folder per case: the server is killed, and leaves its journal behind.
  const dbPath = join(mkdtempSync(join(dir, 'case-')), 'db.json');
  const fd = openSync(dbPath, 'w');
  writeSync(fd, JSON.stringify(makeDocument(bytes), null, 2) + '\n');
  fsyncSync(fd);
  closeSync(fd);
  // Let the disk finish writing back what earlier cases left (json-server
  // writes the whole file per request, without fsync): an fsync in the
  // measured run would otherwise wait for that too.
  spawnSync('sync');
  const args = kind === 'file' ? ['serve', 'file', dbPath, fsync] : ['serve', 'json-server', dbPath];
  const server = await startServer(self, args);
  try {
    const url = kind === 'file' ? `http://127.0.0.1:${server.port}/items/1` : `http://127.0.0.1:${server.port}/items/1`;
    // Warm-up, then the measured run.
    await patchLoad(url, { amount: amount ? connections : 200, connections });
    const measured = await patchLoad(url, { duration, amount, connections });
    // The writes really happened: the leaf holds the last count sent.
    if (!((await readCount(url)) > 0)) throw new Error(`${url}: no write landed`);
    return measured;
  } finally {
    await server.stop();
  }
}

const sizes = [
  ['1 KB', 1024],
  ['1 MB', 1024 * 1024],
  ['20 MB', 20 * 1024 * 1024],
];

/** The run with the median writes/s. */
function median(runs) {
  const sorted = [...runs].sort((a, b) => a.writesPerSecond - b.writesPerSecond);
  return sorted[Math.floor(sorted.length / 2)];
}

export default async function run({
  duration = Number(process.env.BENCH_DURATION ?? 5),
  rounds = Number(process.env.BENCH_ROUNDS ?? 3),
  connections = 4,
} = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'jsonstore-bench-'));
  const results = {};
  try {
    // The file adapter's cases in rounds, each size in turn, so that a busy
    // moment of a shared machine or disk hits every size alike; the median
    // round counts. `duration` is split over the rounds.
    const runs = Object.fromEntries(sizes.map(([label]) => [label, { always: [], never: [] }]));
    const slice = Math.max(1, Math.round(duration / rounds));
    for (let round = 0; round < rounds; round++) {
      for (const [label, bytes] of sizes) {
        for (const fsync of ['always', 'never']) {
          runs[label][fsync].push(await runCase({ kind: 'file', fsync, bytes, dir, duration: slice, connections }));
        }
      }
    }
    for (const [label] of sizes) results[label] = { always: median(runs[label].always), never: median(runs[label].never) };
    // Last, so that the gigabytes it writes cannot slow the file adapter's runs.
    for (const [label, bytes] of sizes) {
      // It rewrites the whole file per write: a fixed, small number of writes at 20 MB.
      const amount = bytes > 4 * 1024 * 1024 ? 20 : undefined;
      results[label].jsonServer = await runCase({ kind: 'json-server', bytes, dir, duration, connections, amount });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const fmt = (n) => (n >= 100 ? String(Math.round(n)) : n.toFixed(1));
  printTable(`PATCH /items/1 {"count":n}, writes/s (${machine()}; ${connections} connections; file: median of ${rounds} rounds of ${Math.max(1, Math.round(duration / rounds))} s; json-server: ${duration} s, 20 requests at 20 MB)`, [
    ['document', 'file fsync=always', 'file fsync=never', 'json-server 0.17', 'always / json-server', 'never / json-server'],
    ...sizes.map(([label]) => {
      const r = results[label];
      return [label, fmt(r.always.writesPerSecond), fmt(r.never.writesPerSecond), fmt(r.jsonServer.writesPerSecond), `${fmt(r.always.writesPerSecond / r.jsonServer.writesPerSecond)}x`, `${fmt(r.never.writesPerSecond / r.jsonServer.writesPerSecond)}x`];
    }),
  ]);
  printTable('mean latency, ms', [
    ['document', 'file fsync=always', 'file fsync=never', 'json-server 0.17'],
    ...sizes.map(([label]) => {
      const r = results[label];
      return [label, r.always.latency.toFixed(2), r.never.latency.toFixed(2), r.jsonServer.latency.toFixed(2)];
    }),
  ]);
  const big = results['20 MB'];
  const small = results['1 KB'];
  console.log(`\n  20 MB, file (fsync=always) / json-server: ${fmt(big.always.writesPerSecond / big.jsonServer.writesPerSecond)}x (target >= 100x)`);
  console.log(`  file fsync=always, 20 MB / 1 KB writes/s: ${(big.always.writesPerSecond / small.always.writesPerSecond).toFixed(2)} (flat = 1.00)`);
  console.log(`  file fsync=never,  20 MB / 1 KB writes/s: ${(big.never.writesPerSecond / small.never.writesPerSecond).toFixed(2)} (flat = 1.00)`);
  return results;
}

if (process.argv[2] === 'serve') {
  const [, , , kind, dbPath, fsync] = process.argv;
  if (kind === 'file') await serveFileStore(dbPath, fsync);
  else serveJsonServer(dbPath);
} else if (isMain(import.meta)) {
  await run();
}
