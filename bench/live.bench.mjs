// Live updates (SSE): what idle subscribers cost a write, how fast one write
// reaches many subscribers, and the server memory per idle subscriber.
//   npm run bench -- live
// The store runs in a child process. For (a) the idle streams are held by a
// second client process; for (b) and (c) they are real HTTP connections from
// this process, and for (b') raw sockets that only note arrival times.
import { spawn } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { jsonStore } from '../dist/index.js';
import { cpuSeconds, isMain, machine, measure, median, printTable, startServer } from './lib.mjs';

const server = fileURLToPath(new URL('./servers/live-store.mjs', import.meta.url));
const subscribersScript = fileURLToPath(new URL('./live-subscribers.mjs', import.meta.url));
const IDLE = 10_000;
const HOT = 1_000;
const WRITES = 30;
const HTTP_ROUNDS = 5;

/** Opens a stream; `onEvent(data, receivedAt)` for each `data:` line. Resolves once the first event arrived. */
function subscribe(port, path, onEvent) {
  return new Promise((resolve, reject) => {
    const req = http.request({ port, host: '127.0.0.1', path, headers: { accept: 'text/event-stream' }, agent: false });
    let first = true;
    let buffer = '';
    req.on('response', (res) => {
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        const at = performance.now();
        buffer += chunk;
        let end;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (first) {
            first = false;
            resolve(req);
          } else if (data !== undefined) onEvent?.(data, at);
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** IDLE streams held by a child process (on the load generator's CPU, like this one); resolves once all are open. */
function idleInChild(port) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [subscribersScript, String(port), String(IDLE)], { stdio: ['pipe', 'pipe', 'inherit'] });
    child.stdout.on('data', (chunk) => {
      if (String(chunk).includes('ready')) resolve(() => new Promise((done) => (child.once('exit', done), child.stdin.end())));
    });
    child.on('exit', (code) => reject(new Error(`live-subscribers.mjs exited with ${code}`)));
  });
}

/**
 * A stream on a raw socket that only notes when bytes arrive (the parsing
 * waits until the measurement is over), so that the fan-out's delivery is
 * measured rather than this process' parsing of 1000 streams.
 * `onEvents(count)` for each chunk with events after the first.
 */
function subscribeRaw(port, path, onEvents) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const arrivals = [];
    let started = false;
    let head = '';
    socket.on('data', (chunk) => {
      const at = performance.now();
      if (!started) {
        head += chunk.toString('latin1');
        if (/\r\n\r\n[\s\S]*\n\n/.test(head)) {
          started = true;
          resolve({ socket, arrivals });
        }
        return;
      }
      arrivals.push(at, chunk);
      let count = 0;
      for (let i = chunk.indexOf('\nevent: put'); i !== -1; i = chunk.indexOf('\nevent: put', i + 1)) count++;
      onEvents(count);
    });
    socket.on('error', reject);
    socket.write(`GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n`);
  });
}

/** (b) with receivers on raw sockets: the arrival time of each event, from sending its PUT. */
async function fanOutRaw(port) {
  let received = 0;
  const hot = await inBatches(HOT, 250, () => subscribeRaw(port, '/hot', (count) => (received += count)));
  const sentAt = new Map();
  const base = 1000;
  for (let n = 1; n <= WRITES; n++) {
    const target = received + HOT;
    sentAt.set(base + n, performance.now());
    await fetch(`http://127.0.0.1:${port}/hot/value`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: String(base + n) });
    while (received < target) await new Promise((r) => setTimeout(r, 1));
  }
  const latencies = [];
  for (const { socket, arrivals } of hot) {
    for (let i = 0; i < arrivals.length; i += 2) {
      for (const match of arrivals[i + 1].toString('utf8').matchAll(/^data: (.*)$/gm)) {
        const start = sentAt.get(JSON.parse(match[1]).data);
        if (start !== undefined) latencies.push(arrivals[i] - start);
      }
    }
    socket.destroy();
  }
  return latencies.sort((a, b) => a - b);
}

/** Runs a load test and adds the server's CPU per request (warm-up included in both). */
async function measuredCpu(pid, run) {
  const start = cpuSeconds(pid);
  const result = await run();
  return { ...result, cpuUs: ((cpuSeconds(pid) - start) * 1e6) / (result.total + result.warmupTotal) };
}

/** Polls `check` until it holds (the server finishing closes, say); no fixed sleeps. */
async function until(check) {
  while (!(await check())) await new Promise((r) => setTimeout(r, 20));
}

async function memory(port) {
  return (await fetch(`http://127.0.0.1:${port}/__memory`)).json();
}

async function inBatches(count, size, make) {
  const made = [];
  for (let i = 0; i < count; i += size) made.push(...(await Promise.all(Array.from({ length: Math.min(size, count - i) }, (_, j) => make(i + j)))));
  return made;
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Writes per second through the programmatic API, for `ms` milliseconds. */
async function putsPerSecond(store, ms) {
  let count = 0;
  const end = performance.now() + ms;
  while (performance.now() < end) await store.put('/counter', ++count);
  return count / (ms / 1000);
}

/** (a) without HTTP: the live code's own cost per write, with IDLE listeners on other paths; rounds alternate, so drift in the machine's load hits both alike. */
async function inProcess(rounds = 3) {
  const store = jsonStore({ initial: { counter: 0, rooms: {} }, live: { maxSubscriptions: 50_000 } });
  await putsPerSecond(store, 1000);
  const none = [];
  const withIdle = [];
  for (let round = 0; round < rounds; round++) {
    none.push(await putsPerSecond(store, 2000));
    const unsubscribe = [];
    let started = 0;
    for (let i = 0; i < IDLE; i++) unsubscribe.push(store.subscribe(`/rooms/r${i}`, () => started++));
    // Each listener's first event (its current value) says it is set up.
    while (started < IDLE) await new Promise((r) => setTimeout(r, 1));
    withIdle.push(await putsPerSecond(store, 2000));
    for (const stop of unsubscribe) stop();
  }
  await store.close();
  return { none: median(none), withIdle: median(withIdle), rounds };
}

export default async function run() {
  console.log(`machine: ${machine()}`);
  const api = await inProcess();
  printTable(`(a, in process) store.put() with ${IDLE} subscribe() listeners on other paths (median of ${api.rounds} alternating rounds of 2 s)`, [
    ['listeners elsewhere', 'puts/s'],
    ['none', api.none.toFixed(0)],
    [String(IDLE), api.withIdle.toFixed(0)],
    ['', `${(((api.none - api.withIdle) / api.none) * 100).toFixed(1)}% slower`],
  ]);
  const { port, pid, stop } = await startServer(server);
  const write = { url: `http://127.0.0.1:${port}/counter`, method: 'PUT', headers: { 'content-type': 'application/json' }, body: '1', duration: 3, connections: 10 };
  try {
    // (a) over HTTP. The idle streams are held by a second client process, so
    // the load generator's own process stays as lean in both cases (holding
    // 10 000 sockets slows a client, which is not the server's cost). A warm-up
    // run is not counted, and rounds alternate, so drift hits both alike.
    await measure({ ...write, duration: 2 });
    const rounds = [];
    for (let round = 0; round < HTTP_ROUNDS; round++) {
      // A full GC in the server before each run (GET /__memory forces one), so
      // neither run pays for collecting what opening or closing 10 000
      // connections left behind: that is the cost of connecting, not of idling.
      await memory(port);
      const none = await measuredCpu(pid, () => measure(write));
      const stopIdle = await idleInChild(port);
      await memory(port);
      const withIdle = await measuredCpu(pid, () => measure(write));
      await stopIdle();
      await until(async () => (await memory(port)).subscriptions === 0);
      rounds.push({ none: none.rps, withIdle: withIdle.rps, slower: ((none.rps - withIdle.rps) / none.rps) * 100, cpuNone: none.cpuUs, cpuIdle: withIdle.cpuUs, cpuMore: ((withIdle.cpuUs - none.cpuUs) / none.cpuUs) * 100 });
    }

    // (c) memory per idle stream, the streams held by this process.
    const memoryBefore = await memory(port);
    const idle = await inBatches(IDLE, 500, (i) => subscribe(port, `/rooms/r${i}`));
    const memoryAfter = await memory(port);
    for (const req of idle) req.destroy();
    await until(async () => (await memory(port)).subscriptions === 0);
    await fetch(`http://127.0.0.1:${port}/__fanout`);

    // (b) one write fanned out to HOT subscribers of its path.
    const sentAt = new Map();
    const latencies = [];
    let received = 0;
    const hot = await inBatches(HOT, 250, () =>
      subscribe(port, '/hot', (data, at) => {
        const value = JSON.parse(data).data;
        const start = sentAt.get(value);
        if (start !== undefined) {
          latencies.push(at - start);
          received++;
        }
      }),
    );
    for (let n = 1; n <= WRITES; n++) {
      const target = received + HOT;
      sentAt.set(n, performance.now());
      await fetch(`http://127.0.0.1:${port}/hot/value`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: String(n) });
      while (received < target) await new Promise((r) => setTimeout(r, 1));
    }
    latencies.sort((a, b) => a - b);
    const fanouts = (await (await fetch(`http://127.0.0.1:${port}/__fanout`)).json()).slice(-WRITES).sort((a, b) => a - b);

    for (const req of hot) req.destroy();
    const rawLatencies = await fanOutRaw(port);
    const rawFanouts = (await (await fetch(`http://127.0.0.1:${port}/__fanout`)).json()).slice(-WRITES).sort((a, b) => a - b);
    const middle = (key) => median(rounds.map((r) => r[key]));
    printTable(`(a) PUT /counter over HTTP, 10 connections, ${write.duration} s per run, ${IDLE} idle streams on other paths held by another client process (${HTTP_ROUNDS} alternating rounds after a warm-up)`, [
      ['round', 'none req/s', `${IDLE} idle req/s`, 'slower', 'server CPU µs/request: none', `${IDLE} idle`, 'more CPU'],
      ...rounds.map((r, i) => [String(i + 1), r.none.toFixed(0), r.withIdle.toFixed(0), `${r.slower.toFixed(1)}%`, r.cpuNone.toFixed(1), r.cpuIdle.toFixed(1), `${r.cpuMore.toFixed(1)}%`]),
      [
        'median',
        middle('none').toFixed(0),
        middle('withIdle').toFixed(0),
        `${middle('slower').toFixed(1)}%`,
        middle('cpuNone').toFixed(1),
        middle('cpuIdle').toFixed(1),
        `${middle('cpuMore').toFixed(1)}%`,
      ],
    ]);
    printTable(`(b) one PUT fanned out to ${HOT} subscribers of its path, ${WRITES} writes (from sending the PUT to each event's arrival)`, [
      ['deliveries', 'p50', 'p99', 'max'],
      [String(latencies.length), `${percentile(latencies, 50).toFixed(1)} ms`, `${percentile(latencies, 99).toFixed(1)} ms`, `${latencies[latencies.length - 1].toFixed(1)} ms`],
    ]);
    printTable(`    server side: from the change to the end of its fan-out to ${HOT} streams (${fanouts.length} writes)`, [
      ['p50', 'max'],
      [`${percentile(fanouts, 50).toFixed(1)} ms`, `${fanouts[fanouts.length - 1].toFixed(1)} ms`],
    ]);
    printTable(`(b') the same with receivers on raw sockets that only note arrival times (parsed after the run)`, [
      ['deliveries', 'p50', 'p99', 'max', 'server fan-out p50', 'server max'],
      [
        String(rawLatencies.length),
        `${percentile(rawLatencies, 50).toFixed(1)} ms`,
        `${percentile(rawLatencies, 99).toFixed(1)} ms`,
        `${rawLatencies[rawLatencies.length - 1].toFixed(1)} ms`,
        `${percentile(rawFanouts, 50).toFixed(1)} ms`,
        `${rawFanouts[rawFanouts.length - 1].toFixed(1)} ms`,
      ],
    ]);
    const perRss = (memoryAfter.rss - memoryBefore.rss) / IDLE;
    const perHeap = (memoryAfter.heapUsed - memoryBefore.heapUsed) / IDLE;
    printTable(`(c) server memory per idle subscriber (${IDLE} streams, after GC)`, [
      ['subscriptions', 'RSS per subscriber', 'heap per subscriber'],
      [String(memoryAfter.subscriptions), `${(perRss / 1024).toFixed(1)} KB`, `${(perHeap / 1024).toFixed(1)} KB`],
    ]);
  } finally {
    await stop();
  }
}

if (isMain(import.meta)) await run();
