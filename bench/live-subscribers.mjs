// Idle live subscribers in a process of their own, for bench/live.bench.mjs:
// `node live-subscribers.mjs PORT COUNT` opens COUNT streams to /rooms/r<i>,
// prints `ready COUNT` once each got its first event, and holds them until
// stdin closes. Keeps the load generator's process free of their sockets
// (and of their share of garbage collection).
import http from 'node:http';

const [port, count] = process.argv.slice(2).map(Number);
const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });

function open(i) {
  return new Promise((resolve, reject) => {
    const req = http.request({ port, host: '127.0.0.1', path: `/rooms/r${i}`, headers: { accept: 'text/event-stream' }, agent });
    req.on('response', (res) => res.once('data', () => resolve(req)));
    req.on('error', reject);
    req.end();
  });
}

const held = [];
for (let i = 0; i < count; i += 500) held.push(...(await Promise.all(Array.from({ length: Math.min(500, count - i) }, (_, j) => open(i + j)))));
process.stdout.write(`ready ${held.length}\n`);
process.stdin.resume();
process.stdin.on('end', () => {
  for (const req of held) req.destroy();
  process.exit(0);
});
