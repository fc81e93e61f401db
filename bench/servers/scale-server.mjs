// One server for `npm run bench -- scale`, started by bench/scale.bench.mjs in
// a child process (pinned to one core, run with --expose-gc):
//   node scale-server.mjs <mode> <document.json> [redis key]
// modes: store (jsonStore({ initial }) on node:http, memory storage), plain
// (Express 5, res.json of the parsed file), file (fileStorage on a copy of the
// document), redis (redisStorage; the document is `initial` when Redis holds none).
// It listens before loading, so the parent times process start → first answer.
// Bench-only routes under /__bench/: stats (RSS after GC, load stall), compactions (no GC), eld/start, eld/stop.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';

const [mode, documentPath, redisKey] = process.argv.slice(2);
const loadDelay = monitorEventLoopDelay({ resolution: 10 });
loadDelay.enable();
let requestDelay;
let requestCpu;

/**
 * The most CPU time the process used between two turns of a 1 ms timer: a
 * stall measured in CPU rather than wall time, so other processes on a
 * shared machine do not inflate it (GC threads on the same core count).
 */
function cpuStallMonitor() {
  let last = process.cpuUsage();
  let maxMicros = 0;
  const timer = setInterval(() => {
    const now = process.cpuUsage();
    const used = now.user - last.user + now.system - last.system;
    if (used > maxMicros) maxMicros = used;
    last = now;
  }, 1);
  return { stop: () => (clearInterval(timer), maxMicros / 1000) };
}
let handler = (req, res) => {
  res.statusCode = 503;
  res.end();
};
let storage;
let loadedAt;

function stats() {
  globalThis.gc?.();
  globalThis.gc?.();
  return {
    rss: process.memoryUsage().rss,
    loadStallMs: loadDelay.max / 1e6,
    loadMs: loadedAt,
    compactions: storage?.stats?.compactions ?? 0,
  };
}

const server = http.createServer((req, res) => {
  if (req.url.startsWith('/__bench/')) {
    let body;
    if (req.url === '/__bench/stats') body = stats();
    // Polled while a compaction runs: no forced GC, which would be the longest stall measured.
    else if (req.url === '/__bench/compactions') body = { compactions: storage?.stats?.compactions ?? 0 };
    else if (req.url === '/__bench/eld/start') {
      requestDelay = monitorEventLoopDelay({ resolution: 10 });
      requestDelay.enable();
      requestCpu = cpuStallMonitor();
      body = {};
    } else if (req.url === '/__bench/eld/stop') {
      requestDelay.disable();
      body = { maxMs: requestDelay.max / 1e6, p99Ms: requestDelay.percentile(99) / 1e6, cpuMaxMs: requestCpu.stop() };
    }
    res.setHeader('Content-Type', 'application/json');
    res.end(JSON.stringify(body ?? null));
    return;
  }
  handler(req, res);
});
// The big answers can keep the loop busy for seconds: idle keep-alive sockets must not be closed under the clients meanwhile.
server.keepAliveTimeout = 120_000;
server.listen(0, '127.0.0.1', () => {
  console.log(`listening ${server.address().port}`);
  // Loading starts once the port is known, in a later turn: the parent already polls.
  setImmediate(load);
});
process.on('SIGTERM', () => process.exit(0));

async function load() {
  const started = performance.now();
  if (mode === 'plain') {
    const { default: express } = await import('express');
    const document = JSON.parse(readFileSync(documentPath, 'utf8'));
    const app = express();
    app.get(/.*/, (req, res) => {
      let value = document;
      for (const segment of req.path.split('/').filter(Boolean)) value = value?.[decodeURIComponent(segment)];
      if (value === undefined) res.status(404).end();
      else res.json(value);
    });
    handler = app;
  } else {
    // SCALE_DIST: another build of the package (to measure a before and an after in the same conditions).
    const { jsonStore, fileStorage, redisStorage } = await import(process.env.SCALE_DIST ?? '../../dist/index.js');
    const options = { limit: '200mb', maxDocumentSize: 1e10, maxWriteGrowth: 1e10 };
    let store;
    if (mode === 'store') {
      store = jsonStore({ ...options, initial: JSON.parse(readFileSync(documentPath, 'utf8')) });
    } else if (mode === 'file') {
      storage = fileStorage(documentPath, { fsync: 'never', compactRatio: 1e-9, compactMinSize: 0 });
      store = jsonStore({ ...options, storage });
    } else if (mode === 'redis') {
      const { createClient } = await import('redis');
      const client = createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
      await client.connect();
      storage = redisStorage({ client, key: redisKey, bulkTimeout: 60_000, commandTimeout: 60_000 });
      // `initial` is used only when Redis holds nothing under this key.
      const initial = JSON.parse(readFileSync(documentPath, 'utf8'));
      store = jsonStore({ ...options, storage, initial });
    } else {
      throw new Error(`unknown mode ${mode}`);
    }
    await store.ready();
    handler = store;
  }
  loadedAt = performance.now() - started;
  // The histogram records a stall when its timer finally runs: give it that turn before stopping it.
  await new Promise((resolve) => setTimeout(resolve, 30));
  loadDelay.disable();
}
