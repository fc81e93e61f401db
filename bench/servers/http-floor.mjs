// The baselines: what Express alone costs, and what node:http alone costs.
import http from 'node:http';
import express from 'express';
import { document } from './document.mjs';

const kind = process.argv[2];
let server;
if (kind === 'express-plain') {
  // The floor Express itself sets: route match plus res.json of the value.
  const app = express();
  app.get('/store/sniffles/0/name', (req, res) => res.json(document.sniffles[0].name));
  server = http.createServer(app);
} else if (kind === 'node-fixed') {
  const body = Buffer.from(JSON.stringify(document.sniffles[0].name));
  server = http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': body.length });
    res.end(body);
  });
} else {
  throw new Error(`unknown server kind ${kind}`);
}
server.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
process.on('SIGTERM', () => process.exit(0));
