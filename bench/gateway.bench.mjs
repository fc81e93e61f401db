// Hello world through each gateway bridge against the same handler written
// natively for Express 5, in one run. Target (issue 4): every bridge within
// 15% of native, i.e. a ratio of at least 0.85; issue 15: fetchHandler() and
// jsgi() at least 0.9, a WSGI generator of 100 chunks at least 0.8 of native
// res.write().
//
//   npm run build && node bench/gateway.bench.mjs      (or: npm run bench -- gateway)
//   BENCH_DURATION=3 BENCH_ROUNDS=5 node bench/gateway.bench.mjs
//
// Each server runs in a child process of its own (this file, started with
// `--serve <kind>`), so autocannon, here, does not share its event loop.
import { fileURLToPath } from 'node:url';
import { isMain, machine, measure, median, printTable, startServer } from './lib.mjs';

const self = fileURLToPath(import.meta.url);
const hello = 'Hello world!\n';
const chunkLine = 'a line of a streamed body, one of a hundred\n';

/** Express 5 app with the hello-world handler for one `kind`, mounted at /hello. */
async function helloApp(kind) {
  const { default: express } = await import('express');
  const { wsgi, jsgi, fetchHandler, cgi } = await import('../dist/gateway.js');
  const app = express();
  // The server's own CPU time, read before and after a run: CPU time per
  // request is steadier than req/s on a machine others are loading.
  app.get('/__cpu', (_req, res) => {
    res.json(process.cpuUsage());
  });
  switch (kind) {
    case 'native':
      app.get('/hello', (_req, res) => {
        res.type('text/plain').send(hello);
      });
      break;
    case 'wsgi':
      // The talk's hello_world, as WSGI.
      app.use('/hello', wsgi((_environ, startResponse) => {
        startResponse('200 OK', [['Content-Type', 'text/plain']]);
        return [hello];
      }));
      break;
    case 'jsgi':
      app.use('/hello', jsgi(() => [200, { 'content-type': 'text/plain' }, [hello]]));
      break;
    case 'fetch':
      app.use('/hello', fetchHandler(() => new Response(hello, { headers: { 'content-type': 'text/plain' } })));
      break;
    case 'native-write':
      // A body of 100 chunks written one by one, natively...
      app.get('/hello', (_req, res) => {
        res.type('text/plain');
        for (let i = 0; i < 100; i++) res.write(chunkLine);
        res.end();
      });
      break;
    case 'wsgi-generator':
      // ...and as a WSGI app whose body is a generator of the same 100 chunks.
      app.use('/hello', wsgi((_environ, startResponse) => {
        startResponse('200 OK', [['Content-Type', 'text/plain']]);
        return (function* chunks() {
          for (let i = 0; i < 100; i++) yield chunkLine;
        })();
      }));
      break;
    case 'cgi':
      app.use('/hello', cgi(fileURLToPath(new URL('../examples/legacy/cgi-bin/hello.cgi', import.meta.url))));
      break;
    default:
      throw new Error(`unknown server kind ${kind}`);
  }
  return app;
}

async function serve(kind) {
  const app = await helloApp(kind);
  const server = app.listen(0, '127.0.0.1', () => {
    console.log(`listening ${server.address().port}`);
  });
  process.on('SIGTERM', () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}

/**
 * Cases run round-robin, `rounds` times, each against a fresh server. A
 * bridge's ratio is the median of its ratios to the native run of the same
 * round, so load that drifts during the run (a shared machine) skews it less.
 */
export default async function run({
  duration = Number(process.env.BENCH_DURATION ?? 5),
  rounds = Number(process.env.BENCH_ROUNDS ?? 3),
} = {}) {
  const cases = [
    ['native Express 5 handler', 'native'],
    ['wsgi() in Express 5', 'wsgi'],
    ['jsgi() in Express 5', 'jsgi'],
    ['fetchHandler() in Express 5', 'fetch'],
    ['cgi() in Express 5 (a process per request; no target)', 'cgi'],
    ['native res.write() x 100', 'native-write'],
    ['wsgi() generator of 100 chunks', 'wsgi-generator'],
  ];
  // The generator is compared with native res.write(), not with the hello world.
  const baselineOf = (kind) => (kind === 'wsgi-generator' || kind === 'native-write' ? 'native-write' : 'native');
  const runs = new Map(cases.map(([, kind]) => [kind, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [, kind] of cases) {
      const server = await startServer(self, ['--serve', kind]);
      try {
        const cpu = async () => {
          const { user, system } = await (await fetch(`http://127.0.0.1:${server.port}/__cpu`)).json();
          return user + system;
        };
        const before = await cpu(); // measure() warms up first: its requests are counted too.
        const result = await measure({ url: `http://127.0.0.1:${server.port}/hello`, duration });
        const used = (await cpu()) - before;
        runs.get(kind).push({ ...result, cpuPerRequest: used / (result.total + result.warmupTotal) });
      } finally {
        await server.stop();
      }
    }
  }
  const results = cases.map(([label, kind]) => {
    const own = runs.get(kind);
    const native = runs.get(baselineOf(kind));
    return {
      label,
      kind,
      rps: median(own.map((r) => r.rps)),
      latency: median(own.map((r) => r.latency)),
      ratio: median(own.map((r, round) => r.rps / native[round].rps)),
      cpu: median(own.map((r) => r.cpuPerRequest)),
      cpuRatio: median(own.map((r, round) => native[round].cpuPerRequest / r.cpuPerRequest)),
      perRound: own.map((r) => Math.round(r.rps)),
    };
  });
  printTable(
    `GET /hello, "Hello world!\\n" (${machine()}; 10 connections, ${duration} s per run after 1 s warm-up, ${rounds} rounds, medians)`,
    [
      ['server', 'req/s', 'mean latency ms', 'ratio to native', 'server CPU µs/req', 'CPU ratio (native/bridge)', 'req/s per round'],
      ...results.map((r) => [r.label, Math.round(r.rps), r.latency.toFixed(2), r.ratio.toFixed(2), Math.round(r.cpu), r.cpuRatio.toFixed(2), r.perRound.join(' / ')]),
    ],
  );
  console.log('');
  for (const kind of ['wsgi', 'jsgi', 'fetch', 'wsgi-generator']) {
    const result = results.find((r) => r.kind === kind);
    console.log(`  ${result.label}: ${result.ratio.toFixed(2)} of native by req/s, ${result.cpuRatio.toFixed(2)} by server CPU per request (target >= ${kind === 'wsgi-generator' ? '0.8 of native res.write()' : '0.9'})`);
  }
  return results;
}

if (process.argv[2] === '--serve') await serve(process.argv[3]);
else if (isMain(import.meta)) await run();
