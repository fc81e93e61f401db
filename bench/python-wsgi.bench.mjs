// The talk's hello_world in Python, three ways, in one run (issue 15):
//   - gunicorn (Debian's /usr/bin/gunicorn, 2 sync workers) serving it directly;
//   - pythonWsgi() with 2 workers, mounted in Express 5;
//   - Express 5 proxying to that gunicorn with http-proxy-middleware (what users do today).
// Targets: pythonWsgi() at least 0.8× gunicorn direct, and faster than the proxy.
// A native Express 5 handler answering the same text is measured too, as the
// ceiling for anything mounted in Express on the machine as it is, and the
// same two on a bare node:http server (pythonWsgi() is connect-style
// middleware: `http.createServer((req, res) => mw(req, res, notFound))`).
// Beside req/s, each row has the server's CPU time per request (all its
// processes: Node and its Python workers, or gunicorn's arbiter and workers,
// read from /proc before and after the timed run), which a busy machine
// disturbs far less than req/s, and the "CPU ratio": gunicorn's CPU per
// request over the row's, which is the req/s ratio both would reach if the
// server's core were the only limit. Against gunicorn wrk opens a connection
// per request (sync workers answer `Connection: close`), and part of that
// handshake runs on wrk's core; against Node it keeps its 10 connections.
// BENCH_CONNECTIONS (default 10) changes the connections: with few, an idle
// virtual core's wake-up latency can bound req/s before its CPU does.
//
// BENCH_CASES=pool,bare-pool picks rows (gunicorn always runs: the ratios
// need it); BENCH_GATEWAY=/path/gateway.js measures another build.
//
//   npm run bench -- python-wsgi                      (builds first)
//   BENCH_DURATION=3 BENCH_ROUNDS=5 node bench/python-wsgi.bench.mjs
//
// The load generator is wrk (Debian's wrk), not autocannon as in the other
// benches: gunicorn's sync workers close the connection after every response,
// and autocannon reconnects so slowly that it measured gunicorn at ~240 req/s
// where wrk measures ~1 500 on the same machine. Every case uses wrk.
// Servers are pinned to the last CPU and wrk to the first, with taskset, so
// the load generator does not compete with the server for a core (when the
// machine has two or more and taskset is installed).
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { cpuSeconds as cpuSecondsOf, isMain, machine, median, pinnedCommand, printTable } from './lib.mjs';

const execFileAsync = promisify(execFile);

const self = fileURLToPath(import.meta.url);
const appDir = fileURLToPath(new URL('../test/gateway/fixtures/python', import.meta.url));
const python = process.env.BENCH_PYTHON ?? '/usr/bin/python3';
const gunicorn = process.env.BENCH_GUNICORN ?? '/usr/bin/gunicorn';

function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

function accepting(port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      // A port in the ephemeral range can connect to itself (TCP simultaneous open) before anything listens.
      const self = socket.localPort === socket.remotePort;
      socket.destroy();
      resolve(!self);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Spawns `command args` on the server CPU; resolves once something accepts on `port`. */
async function startProcess(command, args, port) {
  const [file, argv] = pinnedCommand('server', command, args);
  // Express reads NODE_ENV; production is how it is deployed (it only changes error pages and view caching, not this path).
  const child = spawn(file, argv, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, NODE_ENV: 'production' } });
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const deadline = Date.now() + 30_000;
  while (!(await accepting(port))) {
    if (exited) throw new Error(`${command} exited before listening on ${port}`);
    if (Date.now() > deadline) throw new Error(`${command} did not listen on ${port}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return {
    port,
    pid: child.pid, // taskset execs the command: the same process
    stop: () =>
      new Promise((resolve) => {
        if (exited) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

async function startGunicorn() {
  const port = await freePort();
  // Sync workers, as the issue asks; gunicorn's own access log off.
  return startProcess(gunicorn, ['-w', '2', '-k', 'sync', '--chdir', appDir, '-b', `127.0.0.1:${port}`, '--log-level', 'warning', 'hello:app'], port);
}

const gatewayModule = process.env.BENCH_GATEWAY ?? '../dist/gateway.js';
const notFound = (res) => {
  res.statusCode = 404;
  res.end();
};

/** A bare node:http server: pythonWsgi() called as connect-style middleware, or a fixed-text handler. */
async function serveBare(kind, port) {
  const { createServer: createHttpServer } = await import('node:http');
  let handler;
  let pool;
  if (kind === 'bare-pool') {
    const { pythonWsgi } = await import(gatewayModule);
    pool = pythonWsgi('hello:app', { python, cwd: appDir, workers: 2 });
    await pool.ready();
    handler = (req, res) => pool(req, res, () => notFound(res));
  } else {
    const body = 'Hello world!\n';
    handler = (req, res) => {
      if (req.url !== '/') return notFound(res);
      res.writeHead(200, { 'Content-Type': 'text/plain', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    };
  }
  // Node's defaults: keep-alive on (5 s idle), no per-request timer beyond the server's header/request timeouts.
  const server = createHttpServer(handler).listen(port, '127.0.0.1');
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close();
    void (pool?.close() ?? Promise.resolve()).then(() => process.exit(0));
  });
}

/** `node this-file --serve <kind> <port> [upstream]`: the Node servers. */
async function serve(kind, port, upstream) {
  if (kind.startsWith('bare-')) return serveBare(kind, port);
  const { default: express } = await import('express');
  const app = express();
  let pool;
  if (kind === 'pool') {
    const { pythonWsgi } = await import(gatewayModule);
    pool = pythonWsgi('hello:app', { python, cwd: appDir, workers: 2 });
    await pool.ready();
    app.use('/', pool);
  } else if (kind === 'native') {
    app.get('/', (_req, res) => {
      res.type('text/plain').send('Hello world!\n');
    });
  } else if (kind === 'proxy') {
    const { createProxyMiddleware } = await import('http-proxy-middleware');
    app.use('/', createProxyMiddleware({ target: `http://127.0.0.1:${upstream}` }));
  } else throw new Error(`unknown server kind ${kind}`);
  const server = app.listen(port, '127.0.0.1');
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close();
    void (pool?.close() ?? Promise.resolve()).then(() => process.exit(0));
  });
}

async function startExpress(kind, upstream) {
  const port = await freePort();
  return startProcess(process.execPath, [self, '--serve', kind, String(port), String(upstream ?? '')], port);
}

const wrk = process.env.BENCH_WRK ?? '/usr/bin/wrk';
/** `pid` and all its descendants. */
function processTree(pid) {
  const pids = [pid];
  for (let i = 0; i < pids.length; i++) {
    try {
      for (const task of readFileSync(`/proc/${pids[i]}/task/${pids[i]}/children`, 'utf8').split(' ')) if (task.trim()) pids.push(Number(task));
    } catch {
      // Gone, or not Linux.
    }
  }
  return pids;
}

/** CPU seconds (user + system) used so far by each process of the tree, by pid. */
function cpuSeconds(pid) {
  const used = new Map();
  for (const member of processTree(pid)) {
    try {
      used.set(member, cpuSecondsOf(member));
    } catch {
      // Exited meanwhile.
    }
  }
  return used;
}

function cpuBetween(before, after) {
  let total = 0;
  for (const [pid, seconds] of after) total += seconds - (before.get(pid) ?? 0);
  return total;
}

function milliseconds(text) {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text);
  if (!match) return Number.NaN;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value;
}

/** Requests per second with wrk (one thread, `connections` connections), after a 1 s warm-up. */
async function measure({ url, duration, connections, pid }) {
  const command = (seconds) => pinnedCommand('load', wrk, ['-t1', `-c${connections}`, `-d${seconds}s`, url]);
  await execFileAsync(...command(1));
  const cpuBefore = cpuSeconds(pid);
  const { stdout } = await execFileAsync(...command(duration));
  const cpu = cpuBetween(cpuBefore, cpuSeconds(pid));
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const latency = milliseconds(/Latency\s+(\S+)/.exec(stdout)?.[1] ?? '');
  const total = Number(/(\d+) requests in/.exec(stdout)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  // gunicorn closes every connection; wrk may count a read error on a socket closed under it. Timeouts and non-2xx are failures.
  const bad = non2xx + Number(socketErrors?.[4] ?? 0) + Number(socketErrors?.[1] ?? 0);
  if (bad > 0 || !Number.isFinite(rps)) throw new Error(`${url}: ${bad} failed requests out of ${total}\n${stdout}`);
  return { rps, latency, total, cpuPerRequest: (cpu / total) * 1e6 };
}

export default async function run({
  duration = Number(process.env.BENCH_DURATION ?? 5),
  rounds = Number(process.env.BENCH_ROUNDS ?? 3),
  connections = Number(process.env.BENCH_CONNECTIONS ?? 10),
} = {}) {
  if (!existsSync(python) || !existsSync(gunicorn) || !existsSync(wrk)) {
    console.log(`  skipped: needs ${python}, ${gunicorn} and ${wrk} (apt-get install python3 gunicorn wrk)`);
    return [];
  }
  const cases = [
    ['gunicorn -w 2 (sync), direct', 'gunicorn'],
    ['pythonWsgi(), 2 workers, in Express 5', 'pool'],
    ['pythonWsgi(), 2 workers, bare node:http', 'bare-pool'],
    ['Express 5 + http-proxy-middleware -> gunicorn -w 2', 'proxy'],
    // Not targets: how fast Express and node:http themselves answer here, which bounds any bridge mounted in them.
    ['(reference) native Express 5 handler, same text', 'native'],
    ['(reference) bare node:http handler, same text', 'bare-native'],
  ].filter(([, kind]) => kind === 'gunicorn' || !process.env.BENCH_CASES || process.env.BENCH_CASES.split(',').includes(kind));
  const runs = new Map(cases.map(([, kind]) => [kind, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [, kind] of cases) {
      const started = [];
      try {
        let target;
        if (kind === 'gunicorn') target = await startGunicorn();
        else if (kind !== 'proxy') target = await startExpress(kind);
        else {
          const upstream = await startGunicorn();
          started.push(upstream);
          target = await startExpress('proxy', upstream.port);
        }
        started.push(target);
        runs.get(kind).push(await measure({ url: `http://127.0.0.1:${target.port}/`, duration, connections, pid: target.pid }));
      } finally {
        for (const entry of started.reverse()) await entry.stop();
      }
    }
  }
  const direct = runs.get('gunicorn');
  const results = cases.map(([label, kind]) => {
    const own = runs.get(kind);
    return {
      label,
      kind,
      rps: median(own.map((r) => r.rps)),
      latency: median(own.map((r) => r.latency)),
      cpuPerRequest: median(own.map((r) => r.cpuPerRequest)),
      // What req/s over gunicorn would be if both were bound by the server's core: gunicorn's CPU per request over this row's.
      cpuRatio: median(own.map((r, round) => direct[round].cpuPerRequest / r.cpuPerRequest)),
      ratio: median(own.map((r, round) => r.rps / direct[round].rps)),
      perRound: own.map((r) => Math.round(r.rps)),
    };
  });
  printTable(
    `GET /, Python hello_world "Hello world!\\n" (${machine()}; ${connections} connections, ${duration} s per run after 1 s warm-up, ${rounds} rounds, medians)`,
    [
      ['server', 'req/s', 'mean latency ms', 'ratio to gunicorn', 'server CPU µs/request', 'CPU ratio', 'req/s per round'],
      ...results.map((r) => [r.label, Math.round(r.rps), r.latency.toFixed(2), r.ratio.toFixed(2), Math.round(r.cpuPerRequest), r.cpuRatio.toFixed(2), r.perRound.join(' / ')]),
    ],
  );
  const byKind = new Map(results.map((r) => [r.kind, r]));
  /** Median over rounds of a's req/s over b's, when both ran. */
  const over = (a, b) => (runs.has(a) && runs.has(b) ? median(runs.get(a).map((r, round) => r.rps / runs.get(b)[round].rps)) : undefined);
  console.log('');
  for (const [kind, where] of [
    ['pool', 'in Express 5'],
    ['bare-pool', 'on bare node:http'],
  ]) {
    const row = byKind.get(kind);
    if (row) {
      console.log(
        `  pythonWsgi() ${where} / gunicorn direct: ${row.ratio.toFixed(2)} (target >= 0.8: ${row.ratio >= 0.8 ? 'met' : 'NOT met'}); by CPU per request ${row.cpuRatio.toFixed(2)}`,
      );
    }
  }
  const ceilings = [
    ['pool', 'native', 'pythonWsgi() / native Express 5 handler', 'the ceiling for a bridge mounted in Express'],
    ['bare-pool', 'bare-native', 'pythonWsgi() / bare node:http handler, both bare', 'the ceiling for a bridge on node:http'],
    ['native', 'gunicorn', 'native Express 5 handler / gunicorn', 'Express alone'],
    ['bare-native', 'gunicorn', 'bare node:http handler / gunicorn', 'node:http alone'],
  ];
  for (const [a, b, label, note] of ceilings) {
    const ratio = over(a, b);
    if (ratio !== undefined) console.log(`  ${label}: ${ratio.toFixed(2)} (${note})`);
  }
  const overProxy = over('pool', 'proxy');
  if (overProxy !== undefined) {
    console.log(`  pythonWsgi() / Express + proxy to gunicorn: ${overProxy.toFixed(2)} (target > 1: ${overProxy > 1 ? 'met' : 'NOT met'}; proxy ${Math.round(byKind.get('proxy').rps)} req/s)`);
  }
  return results;
}

if (process.argv[2] === '--serve') await serve(process.argv[3], Number(process.argv[4]), process.argv[5]);
else if (isMain(import.meta)) await run();
