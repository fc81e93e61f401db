// `npm run bench -- scale`: the costs that grow with the document, and the
// hot path itself (issue 12). Every figure comes with a baseline measured in
// the same run, because the machine is shared and absolute figures move.
//
// Servers run in child processes, with --expose-gc, pinned like every bench
// (lib.mjs: the servers on the last core, the load generator, wrk or else
// autocannon in a child process, and this process on core 0). `SCALE_MAX_MB` (default 100) caps
// the document sizes for a quick run; `BENCH_DURATION` (s) the wrk runs.
import { spawn, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMain, machine, median, pinnedCommand, printTable } from './lib.mjs';

const here = (file) => fileURLToPath(new URL(file, import.meta.url));
const has = (command) => {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const hasWrk = has('wrk');

/** Starts the server on the servers' core; resolves with its port once it listens (it loads after that). */
function startServer(script, args, { gc = true } = {}) {
  const [command, argv] = pinnedCommand('server', process.execPath, [...(gc ? ['--expose-gc', '--max-old-space-size=8192'] : []), script, ...args]);
  const startedAt = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, argv, { stdio: ['ignore', 'pipe', 'inherit'] });
    let buffer = '';
    child.stdout.on('data', (chunk) => {
      buffer += chunk;
      const match = /listening (\d+)/.exec(buffer);
      if (match) {
        buffer = '';
        resolve({
          port: Number(match[1]),
          startedAt,
          url: (path) => `http://127.0.0.1:${match[1]}${path}`,
          stop: () =>
            new Promise((done) => {
              if (child.exitCode !== null) return done();
              child.once('exit', () => done());
              child.kill('SIGTERM');
            }),
        });
      }
    });
    child.on('exit', (code) => reject(new Error(`${script} exited with ${code} before listening`)));
    child.on('error', reject);
  });
}

/** Requests per second from wrk on the load generator's core (or autocannon in a child process there). */
function load(url, { connections = 10, duration = Number(process.env.BENCH_DURATION ?? 5) } = {}) {
  const [command, args] = hasWrk
    ? pinnedCommand('load', 'wrk', ['-t1', `-c${connections}`, `-d${duration}s`, '--timeout', '60s', url])
    : pinnedCommand('load', process.execPath, [here('../node_modules/autocannon/autocannon.js'), '-j', '-c', String(connections), '-d', String(duration), url]);
  const out = execFileSync(command, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
  if (hasWrk) {
    if (/Non-2xx|Socket errors/.test(out)) throw new Error(`${url}: failed requests\n${out}`);
    return Number(/Requests\/sec:\s*([\d.]+)/.exec(out)[1]);
  }
  return JSON.parse(out).requests.average;
}

async function json(url, init) {
  const response = await fetch(url, init);
  if (!response.ok) throw new Error(`${init?.method ?? 'GET'} ${url}: ${response.status}`);
  return response.json();
}

/** Milliseconds from the server's process start to the first 200 answer of `path`. */
async function untilAnswered(server, path) {
  for (;;) {
    const response = await fetch(server.url(path)).catch(() => undefined);
    if (response?.ok) {
      await response.arrayBuffer();
      return performance.now() - server.startedAt;
    }
    await response?.arrayBuffer();
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function timed(fn) {
  const start = performance.now();
  await fn();
  return performance.now() - start;
}

const percentile = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((xs.length * p) / 100))];

async function patchLeaf(server, n) {
  const response = await fetch(server.url('/meta'), {
    method: 'PATCH',
    headers: { 'Content-Type': 'application/merge-patch+json', Prefer: 'return=minimal' },
    body: JSON.stringify({ count: n }),
  });
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`PATCH: ${response.status}`);
}

/** First leaf PATCH after start, then the median of 20 more. */
async function patches(server) {
  const first = await timed(() => patchLeaf(server, 1));
  const steady = [];
  for (let i = 0; i < 20; i++) steady.push(await timed(() => patchLeaf(server, i + 2)));
  return { first, steady: median(steady) };
}

/** The whole document downloaded by one client while four others GET a leaf: the server's longest stall and the leaf p99. */
async function bigGet(server) {
  await json(server.url('/__bench/eld/start'));
  let done = false;
  const latencies = [];
  let failures = 0;
  const leafLoop = async () => {
    while (!done) {
      const start = performance.now();
      try {
        const response = await fetch(server.url('/meta/count'));
        await response.arrayBuffer();
        latencies.push(performance.now() - start);
      } catch {
        failures += 1;
      }
    }
  };
  const loops = [leafLoop(), leafLoop(), leafLoop(), leafLoop()];
  const ms = await timed(async () => {
    const response = await fetch(server.url('/'));
    for await (const _ of response.body) void _;
  });
  done = true;
  await Promise.all(loops);
  const { maxMs, cpuMaxMs } = await json(server.url('/__bench/eld/stop'));
  return { ms, stallMs: maxMs, stallCpuMs: cpuMaxMs, leafP99: percentile(latencies, 99), leafCount: latencies.length + (failures > 0 ? ` (${failures} failed)` : '') };
}

/**
 * Process start → first answer of a leaf, for Express parsing the file
 * (`plain`), `jsonStore({ initial })` (`store`) and file storage loading it
 * (`file`, a fresh folder each time), in turn, `rounds` times: single
 * starts of a 100 MB document vary by a third on this machine, and
 * alternating keeps a slow moment from weighing on one side only.
 */
async function startRounds(path, dir, rounds) {
  const times = { plain: [], store: [], file: [] };
  for (let round = 0; round < rounds; round++) {
    for (const mode of Object.keys(times)) {
      let document = path;
      if (mode === 'file') {
        document = join(mkdtempSync(join(dir, 'start-')), 'store.json');
        copyFileSync(path, document);
      }
      const server = await startServer(here('./servers/scale-server.mjs'), [mode, document]);
      times[mode].push(await untilAnswered(server, '/meta/count'));
      await server.stop();
    }
  }
  return times;
}

/** A document of about `bytes` of compact JSON: { meta, parts: { p0, p1, … } }, parts of at most 10 MB. */
function writeDocument(path, bytes, textRepeats = 4) {
  const record = (i) => `"r${i}":{"id":${i},"name":"item ${i}","tags":["a","b","c"],"score":${(i % 1000) / 7},"text":"${'lorem ipsum '.repeat(textRepeats)}"}`;
  const recordSize = record(100000).length + 1;
  const partBytes = Math.min(bytes, 10 * 1024 * 1024);
  const parts = Math.max(1, Math.round(bytes / partBytes));
  const perPart = Math.max(1, Math.floor(partBytes / recordSize));
  const chunks = ['{"meta":{"count":0,"name":"scale bench"},"parts":{'];
  let id = 0;
  for (let p = 0; p < parts; p++) {
    const records = [];
    for (let i = 0; i < perPart; i++) records.push(record(id++));
    chunks.push(`${p > 0 ? ',' : ''}"p${p}":{${records.join(',')}}`);
  }
  chunks.push('}}');
  writeFileSync(path, chunks.join(''));
}

const mb = (bytes) => (bytes >= 1024 * 1024 ? `${Math.round(bytes / 1024 / 1024)} MB` : `${Math.round(bytes / 1024)} KB`);
const f0 = (x) => (x === undefined ? '-' : Math.round(x).toLocaleString('en-US'));
const f1 = (x) => (x === undefined ? '-' : x.toFixed(1));
const f2 = (x) => (x === undefined ? '-' : x.toFixed(2));

export default async function run() {
  const maxMb = Number(process.env.SCALE_MAX_MB ?? 100);
  const dir = mkdtempSync(join(tmpdir(), 'jsonstore-scale-'));
  console.log(`${machine()}; load generator: ${hasWrk ? 'wrk' : 'autocannon'}; load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  try {
    // ---- the hot path: a small leaf ----
    // Both servers stay up; rounds alternate between them (single runs of a few seconds vary by a third here).
    const floor = await startServer(here('./servers/http-floor.mjs'), ['node-fixed'], { gc: false });
    const leafStore = await startServer(here('./servers/http-store.mjs'), ['node'], { gc: false });
    await untilAnswered(leafStore, '/sniffles/0/name');
    const leafRounds = Number(process.env.SCALE_LEAF_ROUNDS ?? 3);
    const fixedRps = [];
    const storeRps = [];
    for (let round = 0; round < leafRounds; round++) {
      fixedRps.push(load(floor.url('/sniffles/0/name')));
      storeRps.push(load(leafStore.url('/sniffles/0/name')));
    }
    await floor.stop();
    await leafStore.stop();
    const leafRatios = storeRps.map((rps, i) => rps / fixedRps[i]);
    printTable(`GET of a small leaf (10 connections, ${leafRounds} alternating rounds)`, [
      ['server', 'req/s per round', 'median'],
      ['bare node:http, fixed bytes', fixedRps.map(f0).join(' '), f0(median(fixedRps))],
      ['jsonStore() on bare node:http', storeRps.map(f0).join(' '), f0(median(storeRps))],
    ]);
    console.log(`  ratio per round: ${leafRatios.map(f2).join(' ')}; median ${f2(median(leafRatios))} (target >= 0.75)`);

    // ---- sizes ----
    const sizes = [1024, 10 * 1024 * 1024, 100 * 1024 * 1024].filter((b) => b <= maxMb * 1024 * 1024);
    if (sizes.length === 0 || sizes[sizes.length - 1] < maxMb * 1024 * 1024) sizes.push(Math.max(1024, maxMb * 1024 * 1024));
    const rows = [];
    let largest;
    for (const bytes of [...new Set(sizes)]) {
      const path = join(dir, `doc-${bytes}.json`);
      writeDocument(path, bytes);
      const isLargest = bytes === Math.max(...sizes);
      const row = { bytes };
      // The baseline: Express holding one parsed copy, res.json.
      const plain = await startServer(here('./servers/scale-server.mjs'), ['plain', path]);
      row.plainStart = await untilAnswered(plain, '/meta/count');
      row.plainRss = (await json(plain.url('/__bench/stats'))).rss;
      row.plainSubtree = load(plain.url('/parts/p0'), { connections: 2, duration: 5 });
      if (isLargest) largest = { plainGet: await bigGet(plain) };
      await plain.stop();

      const store = await startServer(here('./servers/scale-server.mjs'), ['store', path]);
      row.start = await untilAnswered(store, '/meta/count');
      const loaded = await json(store.url('/__bench/stats'));
      row.rss = loaded.rss;
      row.loadStall = loaded.loadStallMs;
      Object.assign(row, await patches(store));
      // Warmed up by one GET, as the baseline's code is by its first requests: the first answer fills the cache.
      await untilAnswered(store, '/parts/p0');
      row.subtree = load(store.url('/parts/p0'), { connections: 2, duration: 5 });
      if (isLargest) largest.storeGet = await bigGet(store);
      await store.stop();
      rows.push(row);

      if (isLargest) {
        // File storage: load stall, and one compaction of the whole document.
        const filePath = join(dir, 'file-store.json');
        copyFileSync(path, filePath);
        const file = await startServer(here('./servers/scale-server.mjs'), ['file', filePath]);
        largest.fileStart = await untilAnswered(file, '/meta/count');
        largest.fileLoadStall = (await json(file.url('/__bench/stats'))).loadStallMs;
        await json(file.url('/__bench/eld/start'));
        largest.compactMs = await timed(async () => {
          await patchLeaf(file, 1);
          while ((await json(file.url('/__bench/compactions'))).compactions < 1) await new Promise((r) => setTimeout(r, 50));
        });
        ({ maxMs: largest.compactStall, cpuMaxMs: largest.compactStallCpu } = await json(file.url('/__bench/eld/stop')));
        await file.stop();
        largest.bytes = bytes;
        largest.parseMs = await timed(async () => JSON.parse((await import('node:fs')).readFileSync(path, 'utf8')));
        largest.starts = await startRounds(path, dir, Number(process.env.SCALE_START_ROUNDS ?? 3));
        // RSS per JSON byte depends on the document's shape: the same records with 480-character texts instead of 48.
        const wordy = join(dir, 'wordy.json');
        writeDocument(wordy, bytes, 40);
        largest.wordy = {};
        for (const mode of ['plain', 'store']) {
          const server = await startServer(here('./servers/scale-server.mjs'), [mode, wordy]);
          await untilAnswered(server, '/meta/count');
          largest.wordy[mode] = (await json(server.url('/__bench/stats'))).rss;
          await server.stop();
        }
        rmSync(wordy);
      }
    }
    printTable('Documents (memory storage) against a plain Express handler holding one parsed copy', [
      ['document', 'RSS/JSON', 'plain RSS/JSON', 'start ms', 'plain start ms', 'start ratio', 'load stall ms', '1st PATCH ms', 'steady PATCH ms', 'subtree req/s', 'res.json req/s', 'subtree ratio'],
      ...rows.map((r) => [
        mb(r.bytes),
        f1(r.rss / r.bytes),
        f1(r.plainRss / r.bytes),
        f0(r.start),
        f0(r.plainStart),
        f2(r.start / r.plainStart),
        f0(r.loadStall),
        f1(r.first),
        f1(r.steady),
        f1(r.subtree),
        f1(r.plainSubtree),
        f2(r.subtree / r.plainSubtree),
      ]),
    ]);
    console.log('  (RSS/JSON is meaningful for the large documents only; subtree = /parts/p0, up to 10 MB. Targets: RSS/JSON <= 3, start ratio <= 1.3, 1st PATCH < 50 ms, subtree ratio >= 5)');
    if (largest) {
      const { storeGet, plainGet } = largest;
      printTable(`${mb(largest.bytes)} document: stalls (monitorEventLoopDelay max) and leaf GETs from 4 other clients`, [
        ['what', 'time ms', 'longest stall ms', 'its CPU ms', 'leaf GET p99 ms', 'leaf GETs'],
        ['GET / from jsonStore()', f0(storeGet.ms), f0(storeGet.stallMs), f0(storeGet.stallCpuMs), f1(storeGet.leafP99), storeGet.leafCount],
        ['GET / from Express res.json (baseline)', f0(plainGet.ms), f0(plainGet.stallMs), f0(plainGet.stallCpuMs), f1(plainGet.leafP99), plainGet.leafCount],
        ['file storage: load', f0(largest.fileStart), f0(largest.fileLoadStall), '', '', ''],
        ['file storage: compaction after one PATCH', f0(largest.compactMs), f0(largest.compactStall), f0(largest.compactStallCpu), '', ''],
        ['JSON.parse of the file (baseline, this process)', f0(largest.parseMs), '', '', '', ''],
      ]);
      console.log('  (longest stall: monitorEventLoopDelay max, wall time; its CPU ms: the most CPU the server used between two turns of a 1 ms timer, which other processes do not inflate)');
      console.log('  (targets: stalls <= ~50 ms, leaf p99 < 100 ms during the big GET, load <= 1.3 x JSON.parse)');
      const { starts } = largest;
      const ratios = (mode) => starts[mode].map((ms, i) => ms / starts.plain[i]);
      printTable(`${mb(largest.bytes)} document: process start -> first answer, ${starts.plain.length} alternating rounds`, [
        ['server', 'rounds ms', 'median ms', 'ratio to Express, per round', 'median ratio'],
        ['Express 5 parsing the file (baseline)', starts.plain.map(f0).join(' '), f0(median(starts.plain)), '', ''],
        ['jsonStore({ initial }) of the parsed file', starts.store.map(f0).join(' '), f0(median(starts.store)), ratios('store').map(f2).join(' '), f2(median(ratios('store')))],
        ['jsonStore() on fileStorage loading the file', starts.file.map(f0).join(' '), f0(median(starts.file)), ratios('file').map(f2).join(' '), f2(median(ratios('file')))],
      ]);
      console.log('  (target: start and load <= 1.3 x a plain handler parsing the same file)');
      console.log(
        `\n${mb(largest.bytes)} of records with 480-character texts instead of 48: RSS after GC / JSON size ${f1(largest.wordy.store / largest.bytes)} ` +
          `(Express holding one parsed copy: ${f1(largest.wordy.plain / largest.bytes)}; target <= 3)`,
      );
    }

    // ---- Redis: first PATCH after start ----
    const redisBytes = Math.min(20, maxMb) * 1024 * 1024;
    const redisDoc = join(dir, 'redis-doc.json');
    writeDocument(redisDoc, redisBytes);
    const key = `scale-bench-${process.pid}-${Date.now()}`;
    const { createClient } = await import('redis');
    const client = createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
    let redisRows;
    try {
      await client.connect();
      const fresh = await startServer(here('./servers/scale-server.mjs'), ['redis', redisDoc, key]);
      const freshStart = await untilAnswered(fresh, '/meta/count');
      const freshPatch = await patches(fresh);
      await fresh.stop();
      const again = await startServer(here('./servers/scale-server.mjs'), ['redis', redisDoc, key]);
      const againStart = await untilAnswered(again, '/meta/count');
      const againPatch = await patches(again);
      await again.stop();
      redisRows = [
        ['Redis empty, starts from initial', f0(freshStart), f1(freshPatch.first), f1(freshPatch.steady)],
        ['Redis holds the document (restart)', f0(againStart), f1(againPatch.first), f1(againPatch.steady)],
      ];
    } catch (error) {
      console.log(`\n  Redis rows skipped: ${error.message}`);
    } finally {
      if (client.isOpen) {
        const keys = await client.keys(`{${key}}*`);
        if (keys.length > 0) await client.del(keys);
        await client.quit();
      }
    }
    if (redisRows) {
      printTable(`Redis storage, ${mb(redisBytes)} document: first leaf PATCH after start (target < 50 ms)`, [
        ['case', 'start ms', '1st PATCH ms', 'steady PATCH ms'],
        ...redisRows,
      ]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (isMain(import.meta)) await run();
