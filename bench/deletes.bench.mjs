// Deleting half of a 100 000-key object in one request: a merge patch of
// 50 000 nulls, and a JSON Patch of 50 000 `remove` operations; then the same
// merge patch refused by storage (rolled back), and the file adapter
// replaying it from its journal on restart. Same-run baseline: a merge patch
// replacing 50 000 values (same body shape, no key removed). Prints the time
// of each and the event loop's longest stall (perf_hooks.monitorEventLoopDelay).
// Target: each under 200 ms.
//
//   npm run bench -- deletes          (builds first)
//   node bench/deletes.bench.mjs      (after `npx tsup`)
//
// In one process: the stall that matters is the server's, and one request at
// a time is the load.
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { isMain, machine, printTable } from './lib.mjs';

const KEYS = 100_000;

function bigDocument() {
  const big = {};
  for (let i = 0; i < KEYS; i++) big[`key${i}`] = i;
  return { big };
}

/** Store options for a body of megabytes and tens of thousands of operations. */
function storeOptions(extra) {
  // The defaults (1000 operations, 4 × limit of growth) would refuse these patches.
  return { initial: bigDocument(), limit: '50mb', maxPatchOperations: 1_000_000, ...extra };
}

const halfNulls = () => JSON.stringify(Object.fromEntries(Array.from({ length: KEYS / 2 }, (_, i) => [`key${i * 2}`, null])));
const halfReplaced = () => JSON.stringify(Object.fromEntries(Array.from({ length: KEYS / 2 }, (_, i) => [`key${i * 2}`, -i])));
const halfRemoves = () => JSON.stringify(Array.from({ length: KEYS / 2 }, (_, i) => ({ op: 'remove', path: `/key${i * 2}` })));

function send(port, method, path, body, type) {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method, path, agent: false, headers: { 'Content-Type': type, 'Content-Length': Buffer.byteLength(body), Prefer: 'return=minimal' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * Runs `action`, returning its time, the CPU time this process spent
 * meanwhile (steadier than wall time on a shared machine), and the event
 * loop's longest stall, in ms.
 */
async function timed(action) {
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  const cpuStart = process.cpuUsage();
  const start = performance.now();
  const result = await action();
  const ms = performance.now() - start;
  const cpu = process.cpuUsage(cpuStart);
  delay.disable();
  return { ms, cpu: (cpu.user + cpu.system) / 1000, stall: delay.max / 1e6, result };
}

async function withServer(store, work) {
  const server = http.createServer(store);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    return await work(server.address().port);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await store.close();
  }
}

/** One request against a fresh store holding the 100 000-key object. */
async function oneRequest(jsonStore, label, body, type, expected, extra = {}, beforeRequest = () => {}) {
  const store = jsonStore(storeOptions(extra));
  store.on('error', () => {});
  await store.ready();
  // The first write hands storage the whole starting document: not what is measured here.
  await store.put('/warm', true);
  beforeRequest();
  return withServer(store, async (port) => {
    const { ms, cpu, stall, result } = await timed(() => send(port, 'PATCH', '/big', body, type));
    if (result !== expected) throw new Error(`${label}: status ${result}, expected ${expected}`);
    return { label, ms, cpu, stall, bytes: body.length };
  });
}

export default async function run() {
  const { jsonStore, fileStorage } = await import('../dist/index.js');
  const merge = 'application/merge-patch+json';
  const rows = [];
  rows.push(await oneRequest(jsonStore, 'baseline: merge patch replacing 50 000 values', halfReplaced(), merge, 200));
  rows.push(await oneRequest(jsonStore, 'merge patch deleting 50 000 keys', halfNulls(), merge, 200));
  rows.push(await oneRequest(jsonStore, 'JSON Patch of 50 000 removes', halfRemoves(), 'application/json-patch+json', 200));
  let refuse = false;
  const refusing = {
    load: () => undefined,
    commit: () => {
      if (refuse) throw new Error('refused on purpose');
    },
  };
  const arm = () => void (refuse = true);
  rows.push(await oneRequest(jsonStore, 'merge patch deleting 50 000 keys, refused by storage (rolled back)', halfNulls(), merge, 503, { storage: refusing }, arm));

  // The file adapter writes the change to its journal; a restart replays it.
  const dir = mkdtempSync(join(tmpdir(), 'jsonstore-bench-deletes-'));
  try {
    const file = join(dir, 'store.json');
    rows.push(await oneRequest(jsonStore, 'merge patch deleting 50 000 keys, file storage', halfNulls(), merge, 200, { storage: fileStorage(file, { fsync: 'never' }) }));
    const reopened = jsonStore({ storage: fileStorage(file, { fsync: 'never' }) });
    const { ms, cpu, stall } = await timed(() => reopened.ready());
    const left = Object.keys((await reopened.get('/big')) ?? {}).length;
    await reopened.close();
    if (left !== KEYS / 2) throw new Error(`replay left ${left} keys, expected ${KEYS / 2}`);
    rows.push({ label: 'file storage restart: replaying that change from the journal', ms, cpu, stall, bytes: 0 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  printTable(`One request on a ${KEYS.toLocaleString('en')}-key object (${machine()})`, [
    ['case', 'body', 'time ms', 'CPU ms', 'longest stall ms'],
    ...rows.map((r) => [r.label, r.bytes ? `${(r.bytes / 1024).toFixed(0)} KB` : '', r.ms.toFixed(0), r.cpu.toFixed(0), r.stall.toFixed(0)]),
  ]);
  const worst = Math.max(...rows.slice(1).map((r) => r.ms));
  console.log(`\n  slowest delete case: ${worst.toFixed(0)} ms (target < 200 ms); baseline ${rows[0].ms.toFixed(0)} ms`);
  return rows;
}

if (isMain(import.meta)) await run();
