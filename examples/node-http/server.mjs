// No framework: the store is a plain node:http request listener.
//   npm run build && node examples/node-http/server.mjs
//   curl localhost:3000/
import http from 'node:http';
import { jsonStore } from '../../dist/index.js';

const store = jsonStore({ initial: { visits: 0 } });
const server = http.createServer(store);

server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/`);
});

process.on('SIGTERM', async () => {
  server.close();
  await store.close();
  process.exit(0);
});
