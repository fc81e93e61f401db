// Redis storage: CPU time per committed write, 1 vs 2 server processes,
// PATCHes each on one of 1024 leaves (the case where processes should add
// up). Counts CPU from /proc for every server process, redis-server and the
// load generator (this process), so the figures hold on a shared machine
// better than requests/s. Rounds alternate 1, 2, 1, 2, ... processes.
//
//   npm run bench -- redis-cpu          (or: npx tsup && node bench/redis-cpu.bench.mjs)
//   REDIS_CPU_ROUNDS=3 BENCH_DURATION=3 node bench/redis-cpu.bench.mjs
//   REDIS_CPU_DIST=/tmp/before/index.js,dist/index.js node bench/redis-cpu.bench.mjs   (two builds, alternating)
//   REDIS_CPU_ONLY=2 REDIS_CPU_PROF=/tmp/prof ...   (only 2 processes; CPU profiles of the servers)
//   REDIS_CPU_CONNECTIONS=8 (default 32), REDIS_CPU_FOLLOW=0 (no follower),
//   REDIS_CPU_FULL=1 (all 1024 leaves exist from the start), REDIS_CPU_MINIMAL=1
//   (Prefer: return=minimal: no body to serialize): to see what each costs.
//
// Linux only (/proc). Servers are not pinned (BENCH_PIN does not apply):
// they, Redis and the load generator share the cores; the load generator's
// own CPU per write is reported so a reader can tell what it took.
import cluster from 'node:cluster';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { resolve } from 'node:path';
import autocannon from 'autocannon';
import { createClient } from 'redis';

const self = fileURLToPath(import.meta.url);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
// REDIS_CPU_DIST=a.js,b.js compares two builds, round by round (workers get theirs in BENCH_DIST).
const dists = process.env.REDIS_CPU_DIST ? process.env.REDIS_CPU_DIST.split(',').map((file) => pathToFileURL(resolve(file)).href) : [new URL('../dist/index.js', import.meta.url).href];
let dist = process.env.BENCH_DIST ?? dists[0];
const ticksPerSecond = 100;

async function connect() {
  const client = createClient({ url: redisUrl, disableOfflineQueue: true });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/**
 * CPU seconds (user + system, all threads) of a process, from /proc. As in
 * lib.mjs, which this file does not import: importing it pins the process
 * to one core, and these servers and their load generator must float.
 */
function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticksPerSecond;
}

/** Context switches of a process's main thread (voluntary: it waited for I/O; involuntary: preempted), from /proc. */
function contextSwitches(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const count = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? 0);
  return { voluntary: count('voluntary_ctxt_switches'), involuntary: count('nonvoluntary_ctxt_switches') };
}

async function serveWorker() {
  const { jsonStore, redisStorage } = await import(dist);
  const client = await connect();
  // REDIS_CPU_FOLLOW=0: no follower (other processes' changes arrive only with this process' commits), to see what following costs.
  const storage = redisStorage({ client, key: process.env.BENCH_KEY, follow: process.env.REDIS_CPU_FOLLOW !== '0' });
  const counts = { commits: 0, rebased: 0, refused: 0, remote: 0, local: 0 };
  const commit = storage.commit.bind(storage);
  storage.commit = async (change, options) => {
    counts.commits += 1;
    try {
      const outcome = await commit(change, options);
      if (outcome !== undefined) counts.rebased += 1;
      return outcome;
    } catch (error) {
      counts.refused += 1;
      throw error;
    }
  };
  if (storage.commitBatch) {
    const batch = storage.commitBatch.bind(storage);
    storage.commitBatch = async (changes, options) => {
      counts.commits += 1;
      counts.batched = (counts.batched ?? 0) + changes.length;
      return batch(changes, options);
    };
  }
  const store = jsonStore({ storage, limit: '1kb' });
  store.on('change', (event) => (counts[event.origin] += 1));
  store.on('error', (error) => console.error(`worker ${process.pid}:`, error.message));
  await store.ready();
  const server = http.createServer(store);
  server.listen(Number(process.env.BENCH_PORT), '127.0.0.1', () => process.send?.('ready'));
  process.on('message', async (message) => {
    if (message === 'counts') return process.send?.({ counts });
    if (message !== 'stop') return;
    server.close();
    server.closeAllConnections();
    await store.close();
    client.destroy();
    process.exit(0);
  });
}

async function startWorkers(count, env) {
  cluster.setupPrimary({ exec: self, silent: false, execArgv: process.env.REDIS_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.REDIS_CPU_PROF}`] : [] });
  const workers = Array.from({ length: count }, () => cluster.fork({ ...env, REDIS_CPU_WORKER: '1' }));
  await Promise.all(workers.map((w) => new Promise((resolve, reject) => {
    w.once('message', (m) => (m === 'ready' ? resolve() : reject(new Error(String(m)))));
    w.once('exit', (code) => reject(new Error(`worker exited with ${code}`)));
  })));
  return workers;
}

const countsOf = (worker) => new Promise((resolve) => {
  const on = (m) => { if (m?.counts) { worker.off('message', on); resolve(m.counts); } };
  worker.on('message', on);
  worker.send('counts');
});

/** Calls per command since Redis started (INFO commandstats). */
async function commandStats(client) {
  const text = await client.info('commandstats');
  const stats = {};
  for (const [, name, calls] of text.matchAll(/cmdstat_([^:]+):calls=(\d+)/g)) stats[name] = Number(calls);
  return stats;
}

async function round(processes, duration, port, redisPid) {
  const { jsonStore, redisStorage } = await import(dist);
  const key = `jsonstore-redis-cpu:${process.pid}:${processes}:${Date.now()}`;
  const seed = await connect();
  // REDIS_CPU_FULL=1: every leaf exists from the start, so the run only replaces values.
  const leaves = process.env.REDIS_CPU_FULL === '1' ? Object.fromEntries(Array.from({ length: 1024 }, (_, i) => [`k${i}`, 0])) : {};
  const writer = jsonStore({ initial: { leaves }, storage: redisStorage({ client: seed, key }) });
  await writer.put('/leaves/k0', 0);
  await writer.close();
  const workers = await startWorkers(processes, { BENCH_KEY: key, BENCH_PORT: String(port), BENCH_DIST: dist });
  let m = 0;
  const options = {
    url: `http://127.0.0.1:${port}/leaves`,
    connections: Number(process.env.REDIS_CPU_CONNECTIONS ?? 32),
    requests: [{ method: 'PATCH', headers: { 'content-type': 'application/merge-patch+json', ...(process.env.REDIS_CPU_MINIMAL === '1' ? { prefer: 'return=minimal' } : {}) }, setupRequest: (r) => ({ ...r, body: JSON.stringify({ [`k${++m % 1024}`]: m }) }) }],
  };
  await autocannon({ ...options, duration: 1 });
  const pids = workers.map((w) => w.process.pid);
  const statsBefore = await commandStats(seed);
  const before = { switches: pids.map(contextSwitches), servers: pids.map(cpuSeconds), redis: cpuSeconds(redisPid), self: process.cpuUsage(), counts: await Promise.all(workers.map(countsOf)) };
  const result = await autocannon({ ...options, duration });
  const after = { switches: pids.map(contextSwitches), servers: pids.map(cpuSeconds), redis: cpuSeconds(redisPid), self: process.cpuUsage(before.self), counts: await Promise.all(workers.map(countsOf)) };
  const statsAfter = await commandStats(seed);
  await Promise.all(workers.map((w) => new Promise((resolve) => { w.once('exit', resolve); w.send('stop'); })));
  const { keys } = redisStorage({ client: seed, key, follow: false });
  await seed.del(Object.values(keys));
  seed.destroy();
  const ok = result['2xx'];
  const delta = (name) => after.counts.reduce((s, c, i) => s + ((c[name] ?? 0) - (before.counts[i][name] ?? 0)), 0);
  const servers = after.servers.reduce((s, v, i) => s + v - before.servers[i], 0);
  const redis = after.redis - before.redis;
  const gen = (after.self.user + after.self.system) / 1e6;
  const us = (seconds) => ((seconds / ok) * 1e6).toFixed(0);
  const switches = (kind) => (after.switches.reduce((s, v, i) => s + v[kind] - before.switches[i][kind], 0) / ok).toFixed(2);
  return {
    build: dists.indexOf(dist), processes, writesPerSecond: Math.round(ok / duration), refused: result.non2xx + result.errors + result.timeouts,
    serverUs: us(servers), switches: `${switches('voluntary')} + ${switches('involuntary')}`, redisUs: us(redis), sumUs: us(servers + redis), loadGenUs: us(gen),
    redisCalls: Object.entries(statsAfter).map(([c, n]) => [c, n - (statsBefore[c] ?? 0)]).filter(([, n]) => n > 0).map(([c, n]) => `${c} ${(n / ok).toFixed(2)}`).join(', '),
    commitCalls: delta('commits'), batched: delta('batched'), rebased: delta('rebased'), conflicts: delta('refused'), remoteApplied: delta('remote'), writes: ok,
  };
}

export default async function main() {
  const duration = Number(process.env.BENCH_DURATION ?? 3);
  const rounds = Number(process.env.REDIS_CPU_ROUNDS ?? 2);
  let probe;
  try {
    probe = await connect();
  } catch (error) {
    console.log(`redis-cpu benchmark skipped: no Redis at ${redisUrl} (${error.message}); set REDIS_URL`);
    return undefined;
  }
  const info = await probe.info('server');
  probe.destroy();
  const redisPid = Number(/process_id:(\d+)/.exec(info)?.[1]);
  const port = 19_000 + (process.pid % 1000);
  const rows = [];
  const counts = (process.env.REDIS_CPU_ONLY ?? '1,2').split(',').map(Number);
  for (let r = 0; r < rounds; r++) {
    for (const d of dists) {
      dist = d;
      for (const n of counts) rows.push(await round(n, duration, port, redisPid));
    }
  }
  const flags = ['FOLLOW', 'MINIMAL', 'FULL'].filter((flag) => process.env[`REDIS_CPU_${flag}`] !== undefined).map((flag) => `REDIS_CPU_${flag}=${process.env[`REDIS_CPU_${flag}`]}`);
  console.log(
    `CPU µs per committed write (different leaves, ${process.env.REDIS_CPU_CONNECTIONS ?? 32} connections${flags.length > 0 ? `, ${flags.join(', ')}` : ''}, ` +
      `${duration} s per round, load average ${loadavg()[0].toFixed(1)} at the end)`,
  );
  console.table(rows);
  dists.forEach((d, build) => {
    console.log(`build ${build}: ${fileURLToPath(d)}`);
    for (const n of counts) {
      const mine = rows.filter((r) => r.processes === n && r.build === build);
      const med = (k) => [...mine.map((r) => Number(r[k]))].sort((a, b) => a - b)[Math.floor(mine.length / 2)];
      console.log(`  ${n} process(es): median writes/s ${med('writesPerSecond')}, servers ${med('serverUs')} µs + redis ${med('redisUs')} µs = ${med('sumUs')} µs per write; load generator ${med('loadGenUs')} µs`);
    }
  });
}

if (cluster.isWorker && process.env.REDIS_CPU_WORKER === '1') await serveWorker();
else if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) await main();
