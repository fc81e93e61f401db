// Live updates measured in CPU time and heap, in one process: steadier than
// req/s on a shared machine. Not part of `npm run bench`.
//   npm run build && node --expose-gc bench/live-cpu.mjs
// LIVE_DIST=/path/to/dist compares another build.
//  1. CPU per store.put('/counter') with 10 000 subscribe() listeners on other
//     paths vs none: median over rounds of the ratio, each round's runs
//     adjacent in time (after a full GC, so the listeners' setup garbage is gone).
//  2. What one subscriber costs on a 5.8 MB document: heap, and CPU until its first event.
import { pathToFileURL } from 'node:url';
import { median } from './lib.mjs';

const dist = process.env.LIVE_DIST ? pathToFileURL(`${process.env.LIVE_DIST}/index.js`).href : '../dist/index.js';
const { jsonStore } = await import(dist);
if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc');

async function idleListeners(rounds = 15, writes = 30_000) {
  const store = jsonStore({ initial: { counter: 0, rooms: {} }, live: { maxSubscriptions: 50_000 } });
  const cpuPerWrite = async () => {
    gc();
    const start = process.cpuUsage();
    for (let i = 0; i < writes; i++) await store.put('/counter', i);
    const used = process.cpuUsage(start);
    return (used.user + used.system) / writes;
  };
  await cpuPerWrite();
  const none = [];
  const idle = [];
  const ratio = [];
  for (let round = 0; round < rounds; round++) {
    const before = await cpuPerWrite();
    let started = 0;
    const stops = Array.from({ length: 10_000 }, (_, i) => store.subscribe(`/rooms/r${i}`, () => started++));
    while (started < 10_000) await new Promise((resolve) => setTimeout(resolve, 1));
    const withIdle = await cpuPerWrite();
    for (const stop of stops) stop();
    const after = await cpuPerWrite();
    none.push((before + after) / 2);
    idle.push(withIdle);
    ratio.push(withIdle / ((before + after) / 2));
  }
  await store.close();
  console.log(`1. store.put('/counter'), CPU per write: none ${median(none).toFixed(2)} µs, 10 000 listeners elsewhere ${median(idle).toFixed(2)} µs; median ratio +${((median(ratio) - 1) * 100).toFixed(1)} % (${rounds} rounds of ${writes} writes)`);
}

async function oneSubscriberOnALargeDocument() {
  const big = {};
  for (let i = 0; i < 100_000; i++) big[`k${i}`] = { name: `item ${i}`, n: i, tags: ['a', 'b'] };
  const store = jsonStore({ initial: { big, counter: 0 } });
  await store.put('/counter', 1);
  gc();
  const heapBefore = process.memoryUsage().heapUsed;
  const start = process.cpuUsage();
  let events = 0;
  const stop = store.subscribe('/counter', () => events++);
  while (events < 1) await new Promise((resolve) => setImmediate(resolve));
  const used = process.cpuUsage(start);
  for (let i = 0; i < 100; i++) await store.put('/counter', i + 2);
  gc();
  const heapAfter = process.memoryUsage().heapUsed;
  stop();
  await store.close();
  const json = JSON.stringify(big).length;
  console.log(`2. one subscriber on a ${(json / 1e6).toFixed(1)} MB document: ${((used.user + used.system) / 1000).toFixed(1)} ms CPU until its first event, ${((heapAfter - heapBefore) / 1e6).toFixed(1)} MB more heap`);
}

await idleListeners();
await oneSubscriberOnALargeDocument();
