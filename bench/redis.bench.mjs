// Redis storage: requests/s for GET (strong and local reads) and PATCH with
// 1, 2 and 4 server processes on one Redis key (Node's cluster module, one
// port; the load generator, wrk when installed, else autocannon in this
// process, on the same machine: see loadGenerator), and the
// cost of a PATCH on a small leaf in a 1 KB vs a 20 MB document.
// PATCH runs three times: every request on the same leaf (every write
// conflicts with the others); each on one of 1024 leaves through a merge
// patch of their parent /leaves (writes from different processes rebase
// instead of conflicting; each answer is the whole parent); and the same
// spread addressed to each leaf, /leaves/kN (each answer is the leaf). Refused = answered other than 2xx
// (a merge patch can only be refused with 503).
// Targets: no refused writes; PATCH on different leaves with 2 processes at
// least as fast as with 1; PATCH cost nearly flat across document sizes; GET
// throughput with local reads growing with the number of processes (CPU permitting).
//
//   npx tsup && node bench/redis.bench.mjs
//   REDIS_URL=redis://host:6379 BENCH_DURATION=10 node bench/redis.bench.mjs
//
// The server processes are this file again (cluster workers). Keys are
// created under jsonstore-bench:<pid>:... and deleted afterwards.
import { execFile, execFileSync } from 'node:child_process';
import cluster from 'node:cluster';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import autocannon from 'autocannon';
import { createClient } from 'redis';
import { isMain, machine, median, printTable } from './lib.mjs';

const self = fileURLToPath(import.meta.url);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const keyPrefix = `jsonstore-bench:${process.pid}`;

/** `{ stats: { hits }, items: [...] }` of about `bytes` bytes of JSON. */
function makeDocument(bytes) {
  const payload = 'p'.repeat(160);
  const itemSize = JSON.stringify({ id: 0, count: 0, payload }).length + 1;
  const count = Math.max(2, Math.round(bytes / itemSize));
  return { stats: { hits: 0 }, items: Array.from({ length: count }, (_, id) => ({ id, count: 0, payload })) };
}

async function connect(url) {
  const client = createClient({ url, disableOfflineQueue: true });
  client.on('error', () => {});
  await client.connect();
  return client;
}

async function loadPackage() {
  const module = await import('../dist/index.js');
  if (typeof module.redisStorage !== 'function') throw new Error('dist/index.js does not export redisStorage: build first (npx tsup)');
  return module;
}

// ---- server processes (cluster workers) ------------------------------------------------

async function serveWorker() {
  const { jsonStore, redisStorage } = await loadPackage();
  const client = await connect(redisUrl);
  const store = jsonStore({
    storage: redisStorage({ client, key: process.env.BENCH_KEY }),
    readConsistency: process.env.BENCH_READS,
    // No maxRetries: a write refused as stale is retried until its commandTimeout runs out (the default).
    limit: '1kb',
  });
  store.on('error', (error) => console.error(`worker ${process.pid}:`, error.message));
  await store.ready();
  const server = http.createServer(store);
  server.listen(Number(process.env.BENCH_PORT), '127.0.0.1', () => process.send?.('ready'));
  process.on('message', async (message) => {
    if (message !== 'stop') return;
    server.close();
    server.closeAllConnections();
    await store.close();
    client.destroy();
    process.exit(0);
  });
}

// ---- load generation (primary side) -----------------------------------------------------

async function startWorkers(count, env) {
  cluster.setupPrimary({ exec: self, silent: false });
  const workers = Array.from({ length: count }, () => cluster.fork({ ...env, JSONSTORE_BENCH_WORKER: '1' }));
  await Promise.all(
    workers.map(
      (worker) =>
        new Promise((resolve, reject) => {
          worker.once('message', (message) => (message === 'ready' ? resolve() : reject(new Error(String(message)))));
          worker.once('exit', (code) => reject(new Error(`worker exited with ${code} before it was ready`)));
        }),
    ),
  );
  return async () => {
    await Promise.all(
      workers.map(
        (worker) =>
          new Promise((resolve) => {
            worker.once('exit', resolve);
            worker.send('stop');
          }),
      ),
    );
  };
}

/**
 * The load generator: Debian's wrk when installed (BENCH_LOADGEN=autocannon
 * forces autocannon). The load generator shares the machine's cores with the
 * servers and Redis; wrk takes a fraction of autocannon's CPU per request,
 * which leaves the servers more of them, the way remote clients would.
 */
const loadGenerator = process.env.BENCH_LOADGEN ?? (hasCommand('wrk') ? 'wrk' : 'autocannon');
if (loadGenerator !== 'wrk' && loadGenerator !== 'autocannon') throw new Error(`BENCH_LOADGEN must be wrk or autocannon, got ${JSON.stringify(loadGenerator)}`);

function hasCommand(command) {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/**
 * A kind of request. `path` and `body` are templates: `{n}` is the
 * request's number (1, 2, ...), `{k}` that number modulo 1024.
 */
const requestKinds = {
  get: { method: 'GET', path: '/stats/hits' },
  patchSame: { method: 'PATCH', path: '/stats', body: '{"hits":{n}}' },
  patchSpread: { method: 'PATCH', path: '/leaves', body: '{"k{k}":{n}}' },
  // The same spread addressed to each leaf: the answer is the leaf, not the 1 024-member parent.
  patchLeaf: { method: 'PATCH', path: '/leaves/k{k}', body: '{"n":{n}}' },
};

function fill(template, n) {
  return template.replaceAll('{n}', String(n)).replaceAll('{k}', String(n % 1024));
}

/** The template as a Lua expression over the script's `n` and `k`. */
function luaExpression(template) {
  return template
    .split(/(\{n\}|\{k\})/)
    .filter((part) => part !== '')
    .map((part) => (part === '{n}' ? 'n' : part === '{k}' ? 'k' : JSON.stringify(part)))
    .join(' .. ');
}

let scriptDir;

/** A wrk script sending `kind`'s requests. */
function wrkScript(name, kind) {
  scriptDir ??= mkdtempSync(join(tmpdir(), 'jsonstore-redis-bench-'));
  const file = join(scriptDir, `${name}.lua`);
  const headers = kind.body === undefined ? '{}' : '{["content-type"] = "application/merge-patch+json"}';
  const body = kind.body === undefined ? 'nil' : luaExpression(kind.body);
  writeFileSync(
    file,
    `local n = 0\nrequest = function()\n  n = n + 1\n  local k = n % 1024\n  return wrk.format(${JSON.stringify(kind.method)}, ${luaExpression(kind.path)}, ${headers}, ${body})\nend\n`,
  );
  return file;
}

const runFile = promisify(execFile);

/** wrk's "1.23ms" as milliseconds. */
function milliseconds(text) {
  const [, value, unit] = /([\d.]+)(us|ms|s|m)/.exec(text) ?? [];
  return Number(value) * { us: 0.001, ms: 1, s: 1000, m: 60_000 }[unit];
}

/** Requests/s of `kind` against `port` with 32 connections, after a 1 s warm-up; failed = not 2xx, errors and timeouts. */
async function load(name, port, duration) {
  const kind = requestKinds[name];
  const connections = 32;
  if (loadGenerator === 'wrk') {
    // Asynchronous: this process is the cluster primary, which hands the connections to the workers.
    const run = (seconds) => runFile('wrk', ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '-s', wrkScript(name, kind), `http://127.0.0.1:${port}`]);
    await run(1);
    const { stdout } = await run(duration);
    const requests = Number(/(\d+) requests in/.exec(stdout)?.[1]);
    const rps = Number(/Requests\/sec:\s*([\d.]+)/.exec(stdout)?.[1]);
    if (!Number.isFinite(requests) || !Number.isFinite(rps)) throw new Error(`could not read wrk's output:\n${stdout}`);
    const nonOk = Number(/Non-2xx or 3xx responses:\s*(\d+)/.exec(stdout)?.[1] ?? 0);
    const errors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
    const failed = nonOk + (errors ? errors.slice(1).reduce((sum, count) => sum + Number(count), 0) : 0);
    return { rps, failed, latency: milliseconds(/Latency\s+(\S+)/.exec(stdout)?.[1] ?? '0ms') };
  }
  let n = 0;
  const request = kind.body === undefined ? { method: kind.method, path: kind.path } : {
    method: kind.method,
    headers: { 'content-type': 'application/merge-patch+json' },
    setupRequest: (request) => {
      n += 1;
      return { ...request, path: fill(kind.path, n), body: fill(kind.body, n) };
    },
  };
  const settings = { url: `http://127.0.0.1:${port}`, connections, requests: [request] };
  await autocannon({ ...settings, duration: 1 });
  const result = await autocannon({ ...settings, duration });
  return { rps: result.requests.average, failed: result.non2xx + result.errors + result.timeouts, latency: result.latency.average };
}

async function throughput(processes, duration, port) {
  const key = `${keyPrefix}:throughput:${processes}`;
  const seed = await connect(redisUrl);
  const { jsonStore, redisStorage } = await loadPackage();
  // The document exists before the workers start, so all of them load it.
  const writer = jsonStore({ initial: { ...makeDocument(1024), leaves: {} }, storage: redisStorage({ client: seed, key }) });
  await writer.put('/stats/hits', 0);
  await writer.close();

  const row = { processes };
  for (const reads of ['strong', 'local']) {
    const stop = await startWorkers(processes, { BENCH_KEY: key, BENCH_READS: reads, BENCH_PORT: String(port) });
    try {
      row[`get-${reads}`] = await load('get', port, duration);
      if (reads === 'strong') {
        row.patchSame = await load('patchSame', port, duration);
        row.patchSpread = await load('patchSpread', port, duration);
        row.patchLeaf = await load('patchLeaf', port, duration);
      }
    } finally {
      await stop();
    }
  }
  const { keys } = redisStorage({ client: seed, key, follow: false });
  await seed.del(Object.values(keys));
  seed.destroy();
  return row;
}

/** A store on `bytes` of JSON in Redis, the starting document already folded into the snapshot. */
async function openSized(bytes) {
  const { jsonStore, redisStorage } = await loadPackage();
  const client = await connect(redisUrl);
  const key = `${keyPrefix}:patch-cost:${bytes}`;
  // A generous commandTimeout: on a busy machine one PATCH may wait longer than the default 2 s, and the run must not stop there.
  const storage = redisStorage({ client, key, commandTimeout: 30_000 });
  const document = makeDocument(bytes);
  const store = jsonStore({ initial: document, storage, limit: '1kb' });
  await store.put('/stats/hits', 0); // the first change carries the whole starting document
  await storage.compact();
  for (let i = 0; i < 200; i++) await store.patch('/items/1', { count: i }); // warm-up
  return { bytes: JSON.stringify(document).length, key, client, storage, store, rounds: [] };
}

/** Mean µs of `count` sequential PATCHes of one small leaf, through the programmatic API (no HTTP). */
async function patchRound(target, count) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) await target.store.patch('/items/1', { count: i });
  target.rounds.push(Number(process.hrtime.bigint() - started) / 1e3 / count);
}

/**
 * PATCH cost in a 1 KB and a 20 MB document: rounds alternate between the
 * two, so a busy moment on the machine weighs on both alike.
 */
async function patchCosts(count) {
  const targets = [await openSized(1024), await openSized(20 * 1024 * 1024)];
  const rounds = 5;
  for (let round = 0; round < rounds; round++) {
    for (const target of targets) await patchRound(target, Math.ceil(count / rounds));
  }
  const results = [];
  for (const target of targets) {
    const { client, key, storage, store } = target;
    const [snapshotBytes, entry] = await Promise.all([
      client.strLen(storage.keys.snapshot),
      client.sendCommand(['XREVRANGE', storage.keys.log, '+', '-', 'COUNT', '1']),
    ]);
    await store.close();
    // A new process joining: load the snapshot and the log, rebuild the document.
    const { redisStorage } = await loadPackage();
    const joining = redisStorage({ client, key });
    const loadStarted = process.hrtime.bigint();
    await joining.load();
    const loadMs = Number(process.hrtime.bigint() - loadStarted) / 1e6;
    await joining.close();
    await client.del(Object.values(storage.keys));
    client.destroy();
    results.push({ bytes: target.bytes, perPatch: median(target.rounds), rounds: target.rounds, snapshotBytes, entryBytes: entry[0][1][1].length + (entry[0][1][3]?.length ?? 0), loadMs });
  }
  return results;
}

export default async function run({ duration = Number(process.env.BENCH_DURATION ?? 5), patches = Number(process.env.BENCH_PATCHES ?? 2000) } = {}) {
  try {
    const probe = await connect(redisUrl);
    probe.destroy();
  } catch (error) {
    console.log(`redis benchmark skipped: no Redis at ${redisUrl} (${error.message}); set REDIS_URL`);
    return undefined;
  }
  const port = 18_000 + (process.pid % 1000);
  const rows = [];
  try {
    for (const processes of [1, 2, 4]) rows.push(await throughput(processes, duration, port));
  } finally {
    if (scriptDir !== undefined) rmSync(scriptDir, { recursive: true, force: true });
    scriptDir = undefined;
  }
  const fmt = (r) => `${Math.round(r.rps)}${r.failed > 0 ? ` (${r.failed} failed)` : ''}`;
  const refused = (r) => `${Math.round(r.rps)} (${r.failed} refused)`;
  printTable(`Requests/s, one Redis key, N server processes behind one port (${machine()}; load generator ${loadGenerator}, 32 connections, ${duration} s each; load average ${loadavg()[0].toFixed(1)} at the end)`, [
    ['processes', 'GET strong', 'GET local', 'PATCH same leaf', 'PATCH different leaves', 'PATCH /leaves/kN (each its leaf)'],
    ...rows.map((r) => [r.processes, fmt(r['get-strong']), fmt(r['get-local']), refused(r.patchSame), refused(r.patchSpread), refused(r.patchLeaf)]),
  ]);
  const [one] = rows;
  console.log('\n  same-run ratios to 1 process:');
  for (const r of rows.slice(1)) {
    console.log(
      `    ${r.processes} processes: GET strong ${(r['get-strong'].rps / one['get-strong'].rps).toFixed(2)}, GET local ${(r['get-local'].rps / one['get-local'].rps).toFixed(2)}, ` +
        `PATCH same leaf ${(r.patchSame.rps / one.patchSame.rps).toFixed(2)}, PATCH different leaves ${(r.patchSpread.rps / one.patchSpread.rps).toFixed(2)} (target: 1 or more), ` +
        `PATCH /leaves/kN ${(r.patchLeaf.rps / one.patchLeaf.rps).toFixed(2)}`,
    );
  }
  console.log(`    GET local / GET strong at 1 process: ${(one['get-local'].rps / one['get-strong'].rps).toFixed(2)}`);

  const [small, large] = await patchCosts(patches);
  printTable(`PATCH of one small leaf, ${patches} in a row per document, one process (programmatic API; median of 5 alternating rounds)`, [
    ['document', 'µs per PATCH', 'rounds µs', 'log entry bytes (ops + paths)', 'snapshot bytes', 'load by a new process ms'],
    ...[small, large].map((r) => [
      `${(r.bytes / 1024).toFixed(0)} KB`,
      r.perPatch.toFixed(0),
      r.rounds.map((x) => x.toFixed(0)).join(' '),
      r.entryBytes,
      r.snapshotBytes,
      r.loadMs.toFixed(0),
    ]),
  ]);
  console.log(`\n  PATCH cost 20 MB / 1 KB: ${(large.perPatch / small.perPatch).toFixed(2)} (target: close to 1)`);
  return { rows, patchCost: { small, large } };
}

if (cluster.isWorker && process.env.JSONSTORE_BENCH_WORKER === '1') await serveWorker();
else if (isMain(import.meta)) await run();
