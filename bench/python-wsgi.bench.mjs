// The talk's hello_world in Python, three ways, in one run (issue 15):
//   - gunicorn (Debian's /usr/bin/gunicorn, 2 sync workers) serving it directly;
//   - pythonWsgi() with 2 workers, mounted in Express 5;
//   - Express 5 proxying to that gunicorn with http-proxy-middleware (what users do today).
// Targets: pythonWsgi() at least 0.8× gunicorn direct, and faster than the proxy.
// A native Express 5 handler answering the same text is measured too, as the
// ceiling for anything mounted in Express on the machine as it is.
//
//   npm run bench -- python-wsgi                      (builds first)
//   BENCH_DURATION=3 BENCH_ROUNDS=5 node bench/python-wsgi.bench.mjs
//
// The load generator is wrk (Debian's wrk), not autocannon as in the other
// benches: gunicorn's sync workers close the connection after every response,
// and autocannon reconnects so slowly that it measured gunicorn at ~240 req/s
// where wrk measures ~1 500 on the same machine. All three cases use wrk.
// Servers are pinned to the last CPU and wrk to the first, with taskset, so
// the load generator does not compete with the server for a core (when the
// machine has two or more and taskset is installed).
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { isMain, machine, printTable } from './lib.mjs';

const execFileAsync = promisify(execFile);

const self = fileURLToPath(import.meta.url);
const appDir = fileURLToPath(new URL('../test/gateway/fixtures/python', import.meta.url));
const python = process.env.BENCH_PYTHON ?? '/usr/bin/python3';
const gunicorn = process.env.BENCH_GUNICORN ?? '/usr/bin/gunicorn';
const cpuCount = cpus().length;
const canPin = cpuCount >= 2 && existsSync('/usr/bin/taskset') && process.env.BENCH_PIN !== '0';
const serverCpu = String(cpuCount - 1);
const loadCpu = '0';

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
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Spawns `command args` on the server CPU; resolves once something accepts on `port`. */
async function startProcess(command, args, port) {
  const [file, argv] = canPin ? ['taskset', ['-c', serverCpu, command, ...args]] : [command, args];
  const child = spawn(file, argv, { stdio: ['ignore', 'ignore', 'inherit'] });
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

/** `node this-file --serve <kind> <port> [upstream]`: the Express servers. */
async function serve(kind, port, upstream) {
  const { default: express } = await import('express');
  const app = express();
  let pool;
  if (kind === 'pool') {
    const { pythonWsgi } = await import('../dist/gateway.js');
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

function milliseconds(text) {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text);
  if (!match) return Number.NaN;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value;
}

/** Requests per second with wrk (one thread, 10 connections), after a 1 s warm-up. */
async function measure({ url, duration, connections = 10 }) {
  const command = (seconds) =>
    canPin ? ['taskset', ['-c', loadCpu, wrk, '-t1', `-c${connections}`, `-d${seconds}s`, url]] : [wrk, ['-t1', `-c${connections}`, `-d${seconds}s`, url]];
  await execFileAsync(...command(1));
  const { stdout } = await execFileAsync(...command(duration));
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const latency = milliseconds(/Latency\s+(\S+)/.exec(stdout)?.[1] ?? '');
  const total = Number(/(\d+) requests in/.exec(stdout)?.[1]);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(stdout)?.[1] ?? 0);
  const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  // gunicorn closes every connection; wrk may count a read error on a socket closed under it. Timeouts and non-2xx are failures.
  const bad = non2xx + Number(socketErrors?.[4] ?? 0) + Number(socketErrors?.[1] ?? 0);
  if (bad > 0 || !Number.isFinite(rps)) throw new Error(`${url}: ${bad} failed requests out of ${total}\n${stdout}`);
  return { rps, latency, total };
}

const median = (values) => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
};

export default async function run({
  duration = Number(process.env.BENCH_DURATION ?? 5),
  rounds = Number(process.env.BENCH_ROUNDS ?? 3),
} = {}) {
  if (!existsSync(python) || !existsSync(gunicorn) || !existsSync(wrk)) {
    console.log(`  skipped: needs ${python}, ${gunicorn} and ${wrk} (apt-get install python3 gunicorn wrk)`);
    return [];
  }
  const cases = [
    ['gunicorn -w 2 (sync), direct', 'gunicorn'],
    ['pythonWsgi(), 2 workers, in Express 5', 'pool'],
    ['Express 5 + http-proxy-middleware -> gunicorn -w 2', 'proxy'],
    // Not a target: how fast Express itself answers here, which bounds any bridge mounted in it.
    ['(reference) native Express 5 handler, same text', 'native'],
  ];
  const runs = new Map(cases.map(([, kind]) => [kind, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [, kind] of cases) {
      const started = [];
      try {
        let target;
        if (kind === 'gunicorn') target = await startGunicorn();
        else if (kind === 'pool' || kind === 'native') target = await startExpress(kind);
        else {
          const upstream = await startGunicorn();
          started.push(upstream);
          target = await startExpress('proxy', upstream.port);
        }
        started.push(target);
        runs.get(kind).push(await measure({ url: `http://127.0.0.1:${target.port}/`, duration }));
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
      ratio: median(own.map((r, round) => r.rps / direct[round].rps)),
      perRound: own.map((r) => Math.round(r.rps)),
    };
  });
  const pinning = canPin ? `servers on CPU ${serverCpu}, wrk on CPU ${loadCpu}` : 'not pinned';
  printTable(
    `GET /, Python hello_world "Hello world!\\n" (${machine()}; ${pinning}; 10 connections, ${duration} s per run after 1 s warm-up, ${rounds} rounds, medians)`,
    [
      ['server', 'req/s', 'mean latency ms', 'ratio to gunicorn', 'req/s per round'],
      ...results.map((r) => [r.label, Math.round(r.rps), r.latency.toFixed(2), r.ratio.toFixed(2), r.perRound.join(' / ')]),
    ],
  );
  const pool = results.find((r) => r.kind === 'pool');
  const proxy = results.find((r) => r.kind === 'proxy');
  const overProxy = median(runs.get('pool').map((r, round) => r.rps / runs.get('proxy')[round].rps));
  console.log('');
  console.log(`  pythonWsgi() / gunicorn direct: ${pool.ratio.toFixed(2)} (target >= 0.8: ${pool.ratio >= 0.8 ? 'met' : 'NOT met'})`);
  const overNative = median(runs.get('pool').map((r, round) => r.rps / runs.get('native')[round].rps));
  console.log(`  pythonWsgi() / native Express 5 handler: ${overNative.toFixed(2)} (no target; the ceiling for a bridge mounted in Express)`);
  console.log(`  pythonWsgi() / Express + proxy to gunicorn: ${overProxy.toFixed(2)} (target > 1: ${overProxy > 1 ? 'met' : 'NOT met'}; proxy ${Math.round(proxy.rps)} req/s)`);
  return results;
}

if (process.argv[2] === '--serve') await serve(process.argv[3], Number(process.argv[4]), process.argv[5]);
else if (isMain(import.meta)) await run();
