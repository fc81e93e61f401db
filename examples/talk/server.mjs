// The talk's JSONStore app on Express 5: one document, addressed by URL path.
//   npm run build && node examples/talk/server.mjs
//   curl -X PUT localhost:3000/store -H 'Content-Type: application/json' \
//     -d '{"sniffles":[{"name":"fred"},{"name":"irma"},{"name":"wobble"}],"snuffle":{"name":"gundar"}}'
//   curl localhost:3000/store/sniffles/0
import express from 'express';
import { jsonStore } from '../../dist/index.js';

const app = express();
const store = jsonStore();
app.use('/store', store);

store.on('change', (event) => {
  for (const op of event.ops) console.log(`revision ${event.revision}: ${op.op} ${op.path}`);
});

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/store`);
});
