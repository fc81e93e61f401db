// One JSON document served by several processes through Redis. Node's cluster
// module forks WORKERS processes that share one port; each has its own Redis
// client and its own copy of the document, and they stay in step through Redis.
//   npm run build && node examples/cluster/server.mjs
//   REDIS_URL=redis://127.0.0.1:6379 WORKERS=4 PORT=3000 STORE_KEY=cluster-example node examples/cluster/server.mjs
//   curl -i localhost:3000/store/          (X-Served-By names the process that answered)
import cluster from 'node:cluster';
import { availableParallelism } from 'node:os';
import express from 'express';
import { createClient } from 'redis';
import { jsonStore, redisStorage } from '../../dist/index.js';

const workers = Number(process.env.WORKERS ?? availableParallelism());
const port = Number(process.env.PORT ?? 3000);

if (cluster.isPrimary) {
  let stopping = false;
  for (let i = 0; i < workers; i++) cluster.fork();

  // Announce once every process listens, so "N processes" is true when read.
  const listening = new Set();
  let announced = false;
  cluster.on('listening', (worker, address) => {
    listening.add(worker.id);
    if (announced || listening.size < workers) return;
    announced = true;
    console.log(`listening on http://127.0.0.1:${address.port}/store (${workers} processes)`);
  });
  cluster.on('exit', (worker, code, signal) => {
    if (!stopping) {
      console.error(`process ${worker.process.pid} ended (${signal ?? code}); starting another`);
      cluster.fork();
    } else if (Object.keys(cluster.workers ?? {}).length === 0) {
      process.exit(0);
    }
  });
  const stop = () => {
    stopping = true;
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM');
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
} else {
  // The app owns the client. disableOfflineQueue: while Redis is away,
  // requests get 503 at once instead of waiting for commandTimeout.
  const client = createClient({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', disableOfflineQueue: true });
  // Without a listener an 'error' event would end the process; the client
  // reconnects by itself, and the store reports what failed meanwhile.
  client.on('error', () => {});
  // Not awaited: the store answers 503 until Redis is reachable, then recovers.
  client.connect().catch(() => {});

  const store = jsonStore({
    initial: { visits: 0, notes: [] },
    storage: redisStorage({ client, key: process.env.STORE_KEY ?? 'cluster-example' }),
  });
  store.on('error', (error) => console.error(`process ${process.pid}: ${error instanceof Error ? error.message : error}`));
  store.on('change', (event) => {
    if (event.origin === 'remote') console.log(`process ${process.pid} followed revision ${event.revision} from another process`);
  });

  const app = express();
  app.use((_req, res, next) => {
    res.setHeader('X-Served-By', String(process.pid));
    next();
  });
  app.use('/store', store);
  const server = app.listen(port, '127.0.0.1');

  let stopping = false;
  const shutdown = async () => {
    // Ctrl-C reaches every process, then the primary sends SIGTERM too.
    if (stopping) return;
    stopping = true;
    server.close();
    server.closeAllConnections();
    await store.close(); // finishes writes in flight, stops following
    client.destroy();
    process.exit(0);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}
