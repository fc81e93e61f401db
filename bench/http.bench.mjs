// GET of a small leaf: jsonStore() against the floors set by Express and by
// node:http, in one run. Targets: within 10% of a plain Express handler, and
// on bare node:http at least 60% of a server answering fixed bytes.
import { fileURLToPath } from 'node:url';
import { isMain, machine, measure, printTable, startServer } from './lib.mjs';

const here = (file) => fileURLToPath(new URL(file, import.meta.url));

export default async function run({ duration = Number(process.env.BENCH_DURATION ?? 5) } = {}) {
  const cases = [
    ['plain Express 5 handler (res.json)', here('./servers/http-floor.mjs'), 'express-plain', '/store/sniffles/0/name'],
    ['jsonStore() in Express 5', here('./servers/http-store.mjs'), 'express', '/store/sniffles/0/name'],
    ['bare node:http, fixed bytes', here('./servers/http-floor.mjs'), 'node-fixed', '/sniffles/0/name'],
    ['jsonStore() on bare node:http', here('./servers/http-store.mjs'), 'node', '/sniffles/0/name'],
  ];
  const results = [];
  for (const [label, script, kind, path] of cases) {
    const server = await startServer(script, [kind]);
    try {
      results.push({ label, ...(await measure({ url: `http://127.0.0.1:${server.port}${path}`, duration })) });
    } finally {
      await server.stop();
    }
  }
  const [expressPlain, storeExpress, nodeFixed, storeNode] = results;
  printTable(`GET /sniffles/0/name (${machine()}; 10 connections, ${duration} s each)`, [
    ['server', 'req/s', 'mean latency ms'],
    ...results.map((r) => [r.label, Math.round(r.rps), r.latency.toFixed(2)]),
  ]);
  console.log(`\n  jsonStore() in Express 5 / plain Express handler: ${(storeExpress.rps / expressPlain.rps).toFixed(2)} (target >= 0.90)`);
  console.log(`  jsonStore() on node:http / fixed bytes on node:http: ${(storeNode.rps / nodeFixed.rps).toFixed(2)} (target >= 0.60)`);
  return results;
}

if (isMain(import.meta)) await run();
