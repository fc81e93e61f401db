// Mounting the store inside an existing Express 4 app, next to the app's own
// routes and behind its own auth middleware.
//   npm run build && node examples/express4-mount/server.mjs
//   curl localhost:3000/health
//   curl -H 'Authorization: Bearer let-me-in' localhost:3000/api/settings
import express from 'express4';
import { jsonStore } from '../../dist/index.js';

const app = express();

// The app's own routes keep working beside the store.
app.get('/health', (req, res) => res.json({ ok: true }));

// The app's own auth: the store only sees requests that pass it.
function requireToken(req, res, next) {
  if (req.get('authorization') !== `Bearer ${process.env.API_TOKEN ?? 'let-me-in'}`) {
    res.status(401).type('application/problem+json').send({ title: 'Unauthorized', status: 401, detail: 'Send Authorization: Bearer <token>' });
    return;
  }
  next();
}

// The app's body parser runs before the store; the store reuses what it parsed.
app.use(express.json({ strict: false, type: ['application/json', 'application/*+json'] }));
app.use('/api/settings', requireToken, jsonStore({ initial: { theme: 'dark', notifications: { email: true } } }));

app.use((req, res) => res.status(404).json({ error: 'no such route' }));

const server = app.listen(Number(process.env.PORT ?? 3000), '127.0.0.1', () => {
  console.log(`listening on http://127.0.0.1:${server.address().port}/api/settings`);
});
