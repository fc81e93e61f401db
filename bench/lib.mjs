// Shared helpers for the benchmarks: servers run in child processes so the
// load generator (autocannon, in this process) does not share their event loop.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';

// On a machine with two or more cores, the servers run on the last core and
// the load generator (this process) on the first, so they never compete for
// one core. BENCH_PIN=0 turns it off (or when taskset is missing).
const serverCpu = cpus().length - 1;
const pinned = process.env.BENCH_PIN !== '0' && serverCpu > 0 && spawnSync('taskset', ['-pc', '0', String(process.pid)], { stdio: 'ignore' }).status === 0;
import autocannon from 'autocannon';

/**
 * `[command, args]` to run `command` on the servers' CPU (`'server'`) or the
 * load generator's (`'load'`), with taskset when pinning is on.
 */
export function pinnedCommand(role, command, args) {
  return pinned ? ['taskset', ['-c', String(role === 'server' ? serverCpu : 0), command, ...args]] : [command, args];
}

/** CPU seconds (user + system, all threads) a process has used, from /proc (clock ticks of 10 ms). */
export function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // The name in parentheses may itself hold ") ": the fields start after the last one.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Starts `node script ...args`; resolves once it prints `listening <port>`. */
export function startServer(script, args = [], env = {}) {
  return new Promise((resolve, reject) => {
    const [command, commandArgs] = pinnedCommand('server', process.execPath, [script, ...args]);
    const child = spawn(command, commandArgs, { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    let buffer = '';
    child.stdout.on('data', (chunk) => {
      buffer += chunk;
      const match = /listening (\d+)/.exec(buffer);
      if (match) resolve({ port: Number(match[1]), pid: child.pid, stop: () => stopChild(child) });
    });
    child.on('exit', (code) => reject(new Error(`${script} exited with ${code} before listening`)));
    child.on('error', reject);
  });
}

function stopChild(child) {
  return new Promise((resolve) => {
    if (child.exitCode !== null) return resolve();
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

/** Requests per second against one URL (after a short warm-up). */
export async function measure(options) {
  const { warmup = 1, duration = 5, connections = 10, ...rest } = options;
  const warm = await autocannon({ ...rest, connections, duration: warmup });
  const result = await autocannon({ ...rest, connections, duration });
  const bad = result.non2xx + result.errors + result.timeouts;
  if (bad > 0) throw new Error(`${options.url}: ${bad} failed requests out of ${result.requests.total}`);
  return { rps: result.requests.average, latency: result.latency.average, total: result.requests.total, warmupTotal: warm.requests.total };
}

export function machine() {
  const list = cpus();
  const pinning = pinned ? `, server pinned to CPU ${serverCpu} and load generator to CPU 0` : '';
  return `${list.length} × ${list[0]?.model ?? 'unknown CPU'}, Node ${process.version}${pinning}`;
}

export function printTable(title, rows) {
  console.log(`\n${title}`);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  for (const row of rows) console.log('  ' + row.map((cell, i) => String(cell).padEnd(widths[i])).join('  '));
}

/** The middle value (the mean of the two middle ones for an even count). */
export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

export const isMain = (meta) => process.argv[1] !== undefined && meta.url === `file://${process.argv[1]}`;
