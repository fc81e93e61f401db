// The store for bench/live.bench.mjs: memory storage, room for many streams,
// and GET /__memory to read this process' memory after a full GC.
import http from 'node:http';
import v8 from 'node:v8';
import vm from 'node:vm';
import { jsonStore } from '../../dist/index.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc');

const store = jsonStore({ initial: { counter: 0, hot: { value: 0 }, rooms: {} }, live: { maxSubscriptions: 50_000 } });
// Registered before the store's own live listener: from a change to the end of
// the synchronous fan-out (every res.write for it done).
const fanouts = [];
store.on('change', () => {
  const start = performance.now();
  setImmediate(() => fanouts.push(performance.now() - start));
});

const server = http.createServer((req, res) => {
  if (req.url === '/__fanout') {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(fanouts.splice(0)));
    return;
  }
  if (req.url === '/__memory') {
    gc();
    gc();
    const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ rss, heapUsed, external, arrayBuffers, subscriptions: store.live.subscriptions }));
    return;
  }
  store(req, res);
});
server.maxConnections = 100_000;
server.listen(0, '127.0.0.1', () => process.stdout.write(`listening ${server.address().port}\n`));
process.on('SIGTERM', async () => {
  await store.close();
  server.closeAllConnections();
  server.close();
  process.exit(0);
});
