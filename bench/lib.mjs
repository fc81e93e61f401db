// Shared helpers for the benchmarks: servers run in child processes so the
// load generator (autocannon, in this process) does not share their event loop.
import { spawn } from 'node:child_process';
import { cpus } from 'node:os';
import autocannon from 'autocannon';

/** Starts `node script ...args`; resolves once it prints `listening <port>`. */
export function startServer(script, args = [], env = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...env } });
    let buffer = '';
    child.stdout.on('data', (chunk) => {
      buffer += chunk;
      const match = /listening (\d+)/.exec(buffer);
      if (match) resolve({ port: Number(match[1]), stop: () => stopChild(child) });
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
  await autocannon({ ...rest, connections, duration: warmup });
  const result = await autocannon({ ...rest, connections, duration });
  const bad = result.non2xx + result.errors + result.timeouts;
  if (bad > 0) throw new Error(`${options.url}: ${bad} failed requests out of ${result.requests.total}`);
  return { rps: result.requests.average, latency: result.latency.average, total: result.requests.total };
}

export function machine() {
  const list = cpus();
  return `${list.length} × ${list[0]?.model ?? 'unknown CPU'}, Node ${process.version}`;
}

export function printTable(title, rows) {
  console.log(`\n${title}`);
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  for (const row of rows) console.log('  ' + row.map((cell, i) => String(cell).padEnd(widths[i])).join('  '));
}

export const isMain = (meta) => process.argv[1] !== undefined && meta.url === `file://${process.argv[1]}`;
