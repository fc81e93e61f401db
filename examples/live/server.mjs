// Live updates: a page that shows a document as it changes and edits it.
//   npm run build && node examples/live/server.mjs
//   open http://127.0.0.1:3000/ in two windows, edit in one, watch the other.
// STORE_FILE=data/live.json keeps the document in a file (else in memory).
import http from 'node:http';
import { readFile } from 'node:fs/promises';
import { jsonStore, fileStorage, memoryStorage } from '../../dist/index.js';

const page = await readFile(new URL('./index.html', import.meta.url));
const storage = process.env.STORE_FILE ? fileStorage(process.env.STORE_FILE) : memoryStorage();
const store = jsonStore({
  storage,
  initial: { title: 'Shopping', items: ['bread'] },
  allowedHosts: ['localhost', '127.0.0.1', '[::1]'],
});

const server = http.createServer((req, res) => {
  if (req.url === '/' || req.url === '/index.html') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' });
    res.end(page);
    return;
  }
  if (req.url === '/store' || req.url.startsWith('/store/')) {
    const lastEventId = req.headers['last-event-id'];
    if (req.headers.accept?.includes('text/event-stream')) console.log(`stream ${req.url} last-event-id ${lastEventId ?? '-'}`);
    // Mounted at /store: the store sees the path below it.
    req.originalUrl = req.url;
    req.url = req.url.slice('/store'.length) || '/';
    store(req, res);
    return;
  }
  res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
});

server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/`);
});

async function stop() {
  // Streams get `event: cancel` and end; browsers reconnect with Last-Event-ID.
  await store.close();
  server.close();
  server.closeAllConnections();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
