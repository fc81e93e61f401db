// No framework: the store is a plain node:http request listener.
//   npm run build && node examples/node-http/server.mjs
//   curl localhost:3000/
import http from 'node:http';
import { jsonStore, continueWhenRead } from '../../dist/index.js';

// allowedHosts: answer only requests for this machine's own names, so a page
// on another site whose name was made to resolve to 127.0.0.1 gets 421.
const store = jsonStore({ initial: { visits: 0 }, allowedHosts: ['localhost', '127.0.0.1', '[::1]'] });
const server = http.createServer(store);
// Expect: 100-continue: a body the store refuses anyway (over the limit, not
// JSON) is answered before the client uploads it.
server.on('checkContinue', continueWhenRead(store));

server.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/`);
});

process.on('SIGTERM', async () => {
  server.close();
  await store.close();
  process.exit(0);
});
