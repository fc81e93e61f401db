// Collection queries over 100 000 members: Firebase's orderBy a child with
// limitToFirst=10 on an object, and json-server's _sort with _limit=10 on an
// array, through HTTP. Same-run baseline: a plain node:http handler over the
// same data that does the naive thing (copy every member, sort them all,
// keep ten). Prints the median time of a request and the CPU time spent.
//
//   npm run bench -- query          (builds first)
//   node bench/query.bench.mjs      (after `npx tsup`)
//
// One request at a time: the cost of one query is the figure that matters.
import http from 'node:http';
import { performance } from 'node:perf_hooks';
import { isMain, machine, printTable } from './lib.mjs';

const MEMBERS = 100_000;
const REQUESTS = 25;

/** Seeded, so every run queries the same data. */
function members() {
  let state = 42;
  const next = () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
  const object = {};
  const array = [];
  for (let i = 0; i < MEMBERS; i++) {
    const member = { id: i, score: Math.floor(next() * 1_000_000), name: `member ${i}` };
    object[`m${String(i).padStart(6, '0')}`] = member;
    array.push(member);
  }
  return { object, array };
}

/** The naive query: every member copied into an array, all sorted, ten kept. */
function naiveServer({ object, array }) {
  return http.createServer((req, res) => {
    let body;
    if (req.url.startsWith('/members')) {
      const sorted = Object.entries(object).sort(([ka, a], [kb, b]) => a.score - b.score || (ka < kb ? -1 : 1));
      body = `{${sorted.slice(0, 10).map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`;
    } else {
      const sorted = [...array].sort((a, b) => a.score - b.score);
      body = JSON.stringify(sorted.slice(0, 10));
    }
    res.setHeader('Content-Type', 'application/json');
    res.end(body);
  });
}

function get(port, path) {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
        const chunks = [];
        res.on('data', (chunk) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString() }));
      })
      .on('error', reject);
  });
}

async function listen(server) {
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server.address().port;
}

/** Median wall time and mean CPU time (this process: client and server) per request, in ms. */
async function timeRequests(port, path) {
  const first = await get(port, path);
  if (first.status !== 200) throw new Error(`${path}: ${first.status} ${first.text}`);
  const walls = [];
  const cpuBefore = process.cpuUsage();
  for (let i = 0; i < REQUESTS; i++) {
    const start = performance.now();
    await get(port, path);
    walls.push(performance.now() - start);
  }
  const cpu = process.cpuUsage(cpuBefore);
  walls.sort((a, b) => a - b);
  return { median: walls[Math.floor(walls.length / 2)], cpu: (cpu.user + cpu.system) / 1000 / REQUESTS, text: first.text };
}

export default async function run() {
  const { jsonStore } = await import('../dist/index.js');
  const data = members();
  const store = jsonStore({ initial: { members: data.object, list: data.array }, maxDocumentSize: '1gb' });
  await store.ready();
  const ours = http.createServer(store);
  const naive = naiveServer(data);
  const oursPort = await listen(ours);
  const naivePort = await listen(naive);
  const cases = [
    ['orderBy="score"&limitToFirst=10 (object)', '/members?orderBy=%22score%22&limitToFirst=10', '/members'],
    ['_sort=score&_limit=10 (array)', '/list?_sort=score&_limit=10', '/list'],
  ];
  const rows = [['query over 100 000 members', 'jsonstore median', 'CPU/request', 'naive full sort median', 'CPU/request', 'same answer']];
  for (const [name, path, naivePath] of cases) {
    const a = await timeRequests(oursPort, path);
    const b = await timeRequests(naivePort, naivePath);
    rows.push([name, `${a.median.toFixed(1)} ms`, `${a.cpu.toFixed(1)} ms`, `${b.median.toFixed(1)} ms`, `${b.cpu.toFixed(1)} ms`, String(JSON.stringify(JSON.parse(a.text)) === JSON.stringify(JSON.parse(b.text)))]);
  }
  printTable(`${REQUESTS} sequential requests each (${machine()})`, rows);
  ours.close();
  naive.close();
  await store.close();
}

if (isMain(import.meta)) await run();
