// jsonStore() serving the benchmark document, in Express 5 or on bare node:http.
import http from 'node:http';
import express from 'express';
import { jsonStore } from '../../dist/index.js';
import { document } from './document.mjs';

const kind = process.argv[2];
const store = jsonStore({ initial: document });
let server;
if (kind === 'express') {
  const app = express();
  app.use('/store', store);
  server = http.createServer(app);
} else if (kind === 'node') {
  server = http.createServer(store);
} else {
  throw new Error(`unknown server kind ${kind}`);
}
server.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
