/**
 * The standing fuzz test (issue 8): seeded random documents and requests of
 * every kind, valid and invalid, through real HTTP (a socket to the store
 * mounted in Express at /store), checked after every request against the
 * reference model in reference.ts:
 *
 * - no 5xx, and nothing reported on the store's `error` event;
 * - status, body, ETag, Location, Allow and Prefer handling as the model
 *   predicts (errors: an RFC 9457 problem with the same status);
 * - the whole document (GET /store/) equals the model's, byte for byte, key
 *   order included: a refused request changed nothing, an accepted one
 *   changed exactly what the model changed (its target) and nothing else;
 * - ETags: the same bytes always get the same tag, different bytes never do;
 * - on the file adapter, every few dozen steps the document is loaded again
 *   from the files, and must show the same bytes and ETag: once after a clean
 *   close (snapshots rewritten in the background and at close), once from a
 *   copy of the files taken while the store runs (journal replay, as after a
 *   crash).
 *
 *   FUZZ_REQUESTS      requests in all, shared by the three runs (default 3000)
 *   FUZZ_SEED          a number to replay a run, or `random` (default: fixed)
 *   FUZZ_KEEP_GOING=1  triage: go on past discrepancies and list each distinct
 *                      one at the end, with the document shrunk to what still
 *                      shows it (FUZZ_SHRINK=0 skips the shrinking)
 *   FUZZ_STATS=1       print how often each kind of request got each status
 *
 * `npm run test:fuzz` runs 100 000 requests with a random seed. A failure
 * prints the seed, the step, the request and the document before it; when the
 * expectation rests on a behaviour decided for issue 8 that may not be merged
 * yet, it says which (PENDING in reference.ts).
 */
import { randomInt } from 'node:crypto';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { afterEach, describe, expect, test } from 'vitest';
import { fileStorage, jsonStore, memoryStorage, type FileStorage, type JsonStore, type StorageAdapter } from '../../src/index.js';
import { Random, document, nextRequest, type Generated } from './generate.js';
import { BODY_LIMIT, MOUNT, PENDING, POSTED_NAME, ReferenceStore, parseUrlPath, type FuzzRequest, type Json, type Prediction } from './reference.js';
import { PROBLEM_TYPE } from '../support/problem.js';

const JSON_TYPE = 'application/json; charset=utf-8';

const total = Number(process.env['FUZZ_REQUESTS'] ?? 3000);
const seedSetting = process.env['FUZZ_SEED'] ?? '8';
const seed = seedSetting === 'random' ? randomInt(2 ** 31) : Number(seedSetting) >>> 0;
const keepGoing = process.env['FUZZ_KEEP_GOING'] === '1';
if (!Number.isSafeInteger(total) || total < 2) throw new Error(`FUZZ_REQUESTS must be a whole number of at least 2, got ${process.env['FUZZ_REQUESTS']}`);
if (seedSetting !== 'random' && !/^\d+$/.test(seedSetting)) throw new Error(`FUZZ_SEED must be a number or "random", got ${seedSetting}`);
if (seedSetting === 'random') console.log(`fuzz: FUZZ_SEED=${seed} FUZZ_REQUESTS=${total}`);

// ---- serving -------------------------------------------------------------------------

interface Served {
  store: JsonStore;
  server: http.Server;
  port: number;
  /** Kept-alive connections: thousands of requests, not thousands of sockets. */
  agent: http.Agent;
  errors: unknown[];
  close(): Promise<void>;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(storage: StorageAdapter, initial: Json): Promise<Served> {
  const store = jsonStore({ initial, storage, limit: BODY_LIMIT });
  const errors: unknown[] = [];
  store.on('error', (error) => errors.push(error));
  await store.ready();
  const app = express();
  app.use(MOUNT, store);
  const server = http.createServer(app);
  // A busy machine may pause between requests: never let an idle kept-alive socket close under a request.
  server.keepAliveTimeout = 600_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let closed = false;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const served: Served = {
    store,
    server,
    port: (server.address() as AddressInfo).port,
    agent,
    errors,
    async close() {
      if (closed) return;
      closed = true;
      agent.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await store.close();
    },
  };
  cleanups.push(() => served.close());
  return served;
}

interface Reply {
  status: number;
  headers: Record<string, string | undefined>;
  text: string;
}

/** Sends the request's bytes exactly as generated (no Content-Type unless it has one) over a real socket. */
function send(served: Served, generated: Generated): Promise<Reply> {
  const req = generated.request;
  const { agent, port } = served;
  const headers: Record<string, string> = { ...req.headers };
  if (req.body !== undefined) headers['content-length'] = String(req.body.length);
  const path = MOUNT + req.path + (req.query === '' ? '' : '?' + req.query);
  return new Promise((resolve, reject) => {
    const outgoing = http.request({ host: '127.0.0.1', port, method: req.method, path, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers as Record<string, string | undefined>, text: Buffer.concat(chunks).toString('utf8') }));
    });
    outgoing.on('error', reject);
    outgoing.end(req.body);
  });
}

function getRoot(served: Served): Promise<Reply> {
  return send(served, { kind: 'GET', request: { method: 'GET', path: '/', query: '', headers: {} } });
}

// ---- checking one answer ------------------------------------------------------------

function clip(text: string, max = 600): string {
  return text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text;
}

function describeRequest(req: FuzzRequest): string {
  const lines = [`${req.method} ${MOUNT}${req.path}${req.query === '' ? '' : '?' + req.query}`];
  for (const [name, value] of Object.entries(req.headers)) lines.push(`  ${name}: ${value}`);
  if (req.body !== undefined) {
    const text = req.body.toString('utf8');
    const lossless = Buffer.from(text, 'utf8').equals(req.body);
    lines.push(`  body: ${clip(lossless ? JSON.stringify(text) : `<bytes ${req.body.toString('hex').slice(0, 400)}>`)}`);
  }
  return lines.join('\n');
}

function describePrediction(p: Prediction): string {
  let out = `${p.statuses.join(' or ')} (${p.why})`;
  if (p.body !== undefined) out += ` body ${clip(p.body, 300)}`;
  if (p.location !== undefined) out += ` Location ${JSON.stringify(p.location)}`;
  return out;
}

interface Verdict {
  problems: string[];
  /** Short labels of what went wrong, for grouping. */
  kinds: string[];
}

/** Compares one answer with the prediction; commits the model on success. */
function judge(model: ReferenceStore, req: FuzzRequest, prediction: Prediction, reply: Reply): Verdict {
  const problems: string[] = [];
  const kinds = new Set<string>();
  const problem = (kind: string, text: string) => {
    problems.push(text);
    kinds.add(kind);
  };
  const head = req.method === 'HEAD';
  if (reply.status >= 500) problem('5xx', `answered ${reply.status}: ${clip(reply.text)}`);
  const refused = !prediction.statuses.includes(reply.status) && (prediction.refusals ?? []).includes(reply.status);
  if (!prediction.statuses.includes(reply.status) && !refused) {
    problem('status', `status ${reply.status}, expected ${[...prediction.statuses, ...(prediction.refusals ?? [])].join(' or ')}`);
    return { problems, kinds: [...kinds] };
  }
  if (reply.status >= 400) {
    if (reply.headers['content-type'] !== PROBLEM_TYPE) problem('problem', `error Content-Type ${reply.headers['content-type']}`);
    if (head) {
      if (reply.text !== '') problem('problem', 'HEAD error has a body');
    } else {
      let body: { status?: unknown; detail?: unknown; title?: unknown; type?: unknown } | undefined;
      try {
        body = JSON.parse(reply.text) as typeof body;
      } catch {
        problem('problem', `error body is not JSON: ${clip(reply.text)}`);
      }
      if (body !== undefined && (body.status !== reply.status || typeof body.detail !== 'string' || body.detail === '' || typeof body.title !== 'string' || typeof body.type !== 'string')) {
        problem('problem', `not an RFC 9457 problem: ${clip(reply.text)}`);
      }
    }
    if (prediction.allow !== undefined && reply.headers['allow'] !== prediction.allow) problem('allow', `Allow ${reply.headers['allow']}, expected ${prediction.allow}`);
    return { problems, kinds: [...kinds] };
  }
  // Successes and 304.
  if (prediction.body === undefined) {
    if (reply.text !== '') problem('body', `a body was not expected: ${clip(reply.text)}`);
  } else {
    let expected = prediction.body;
    if (expected === POSTED_NAME) {
      const location = reply.headers['location'];
      const key = location?.startsWith(MOUNT + '/') ? parseUrlPath(location.slice(MOUNT.length))?.pop() : undefined;
      expected = JSON.stringify({ name: key });
    }
    if (reply.text !== expected) problem('body', `body ${clip(reply.text)}\n     expected ${clip(expected)}`);
    if (reply.headers['content-type'] !== JSON_TYPE) problem('body', `Content-Type ${reply.headers['content-type']}`);
  }
  if (head && reply.status === 200 && reply.headers['content-type'] !== JSON_TYPE) problem('body', `HEAD Content-Type ${reply.headers['content-type']}`);
  const etag = reply.headers['etag'];
  if (prediction.etag === null || prediction.etag === undefined) {
    if (etag !== undefined) problem('etag', `an ETag was not expected: ${etag}`);
  } else if (etag === undefined) {
    problem('etag', 'no ETag');
  } else {
    const complaint = model.tags.observe(etag, prediction.etag.rep, prediction.etag.shown);
    if (complaint !== undefined) problem('etag', complaint);
  }
  if (prediction.allow !== undefined) {
    if (reply.headers['allow'] !== prediction.allow) problem('allow', `Allow ${reply.headers['allow']}, expected ${prediction.allow}`);
    if (req.method === 'OPTIONS' && reply.headers['accept-patch'] !== 'application/merge-patch+json, application/json-patch+json') {
      problem('allow', `Accept-Patch ${reply.headers['accept-patch']}`);
    }
  }
  if (prediction.minimal && reply.headers['preference-applied'] !== 'return=minimal') problem('prefer', `Preference-Applied ${reply.headers['preference-applied']}`);
  const location = reply.headers['location'];
  let locationPath: string[] | undefined;
  if (location !== undefined) {
    locationPath = location.startsWith(MOUNT + '/') ? parseUrlPath(location.slice(MOUNT.length)) : undefined;
    if (locationPath === undefined) problem('location', `Location ${location} is not a path below ${MOUNT}`);
  }
  if (prediction.postInto !== undefined) {
    const parent = prediction.postInto;
    const fits = locationPath !== undefined && locationPath.length === parent.length + 1 && parent.every((s, i) => s === locationPath![i]);
    if (!fits) {
      problem('location', `Location ${location} does not name a new member of ${JSON.stringify(parent)}`);
    } else {
      const complaint = prediction.commit!(locationPath![parent.length]);
      if (complaint !== undefined) problem('post', complaint);
    }
    return { problems, kinds: [...kinds] };
  }
  if (prediction.location !== undefined) {
    if (locationPath === undefined || JSON.stringify(locationPath) !== JSON.stringify(prediction.location)) {
      problem('location', `Location ${location}, expected the path ${JSON.stringify(prediction.location)}`);
    }
  } else if (location !== undefined) {
    problem('location', `a Location was not expected: ${location}`);
  }
  prediction.commit?.();
  return { problems, kinds: [...kinds] };
}

/** GET / must show the model's document, byte for byte; records its tag. */
async function checkDocument(model: ReferenceStore, served: Served): Promise<Verdict> {
  const root = await getRoot(served);
  const problems: string[] = [];
  if (root.status !== 200) problems.push(`GET / answered ${root.status}: ${clip(root.text)}`);
  else if (root.text !== model.text()) problems.push(`the document is\n     ${clip(root.text, 2000)}\n   the model has\n     ${clip(model.text(), 2000)}`);
  else {
    const complaint = root.headers['etag'] === undefined ? 'GET / has no ETag' : model.tags.observe(root.headers['etag'], '', root.text);
    if (complaint !== undefined) problems.push(complaint);
  }
  return { problems, kinds: problems.length > 0 ? ['document'] : [] };
}

// ---- the run ------------------------------------------------------------------------

interface Discrepancy {
  signature: string;
  step: number;
  before: Json;
  generated: Generated;
  prediction: Prediction;
  reply: Reply;
  problems: string[];
  count: number;
}

function signatureOf(generated: Generated, prediction: Prediction, reply: Reply, kinds: string[]): string {
  const pending = prediction.pending.length > 0 ? ` [pending: ${prediction.pending.join(', ')}]` : '';
  return `${generated.kind}: expected ${prediction.statuses.join('|')} (${prediction.why}), got ${reply.status}; ${kinds.sort().join(', ')}${pending}`;
}

function report(run: string, step: number, steps: number, generated: Generated, prediction: Prediction, reply: Reply | undefined, problems: string[], before: Json): string {
  const lines = [
    `fuzz discrepancy: FUZZ_SEED=${seed}, ${run}, step ${step} of ${steps}`,
    `request:\n  ${describeRequest(generated.request).replace(/\n/g, '\n  ')}`,
    `expected: ${describePrediction(prediction)}`,
  ];
  if (reply !== undefined) lines.push(`actual:   ${reply.status} ${clip(reply.text, 400)}${reply.headers['location'] ? ` Location ${reply.headers['location']}` : ''}`);
  lines.push(...problems.map((p) => `  - ${p}`));
  if (prediction.pending.length > 0) {
    lines.push('this step relies on intended semantics that may not be merged yet:');
    for (const rule of prediction.pending) lines.push(`  * ${rule}: ${PENDING[rule]}`);
  }
  lines.push(`document before the request: ${clip(JSON.stringify(before), 1500)}`);
  lines.push(`replay: FUZZ_SEED=${seed} FUZZ_REQUESTS=${total} npx vitest run test/fuzz/fuzz.test.ts -t '${run}'`);
  return lines.join('\n');
}

/**
 * Replays one request on a fresh memory store holding `doc`, and answers
 * with the signature of the discrepancy it shows (undefined: none).
 */
async function reproduce(doc: Json, generated: Generated, tags: ReferenceStore['tags']): Promise<string | undefined> {
  const served = await serve(memoryStorage(), doc);
  try {
    const model = new ReferenceStore(doc);
    Object.assign(model, { tags });
    const prediction = model.predict(generated.request);
    const reply = await send(served, generated);
    const verdict = judge(model, generated.request, prediction, reply);
    const whole = verdict.problems.length === 0 ? await checkDocument(model, served) : { kinds: [] };
    const kinds = [...verdict.kinds, ...whole.kinds];
    return kinds.length === 0 ? undefined : signatureOf(generated, prediction, reply, kinds);
  } finally {
    await served.close();
  }
}

/** Smaller documents (a member or element dropped, a container emptied) to try a discrepancy on. */
function* simpler(doc: Json): Generator<Json> {
  const paths: string[][] = [];
  const walk = (node: Json, path: string[]) => {
    if (Array.isArray(node)) node.forEach((child, i) => (paths.push([...path, String(i)]), walk(child, [...path, String(i)])));
    else if (node !== null && typeof node === 'object') for (const k of Object.keys(node)) (paths.push([...path, k]), walk(node[k] as Json, [...path, k]));
  };
  walk(doc, []);
  for (const path of paths) {
    const copy = JSON.parse(JSON.stringify(doc)) as Json;
    let parent = copy as Json;
    for (const s of path.slice(0, -1)) parent = (parent as Record<string, Json>)[s] as Json;
    const last = path[path.length - 1] as string;
    if (Array.isArray(parent)) parent.splice(Number(last), 1);
    else delete (parent as Record<string, Json>)[last];
    yield copy;
  }
}

async function shrink(found: Discrepancy, tags: ReferenceStore['tags']): Promise<Json | 'does not reproduce alone'> {
  let doc = found.before;
  if ((await reproduce(doc, found.generated, tags)) !== found.signature) return 'does not reproduce alone';
  let budget = 150;
  for (let improved = true; improved && budget > 0; ) {
    improved = false;
    for (const candidate of simpler(doc)) {
      if (--budget <= 0) break;
      if ((await reproduce(candidate, found.generated, tags)) === found.signature) {
        doc = candidate;
        improved = true;
        break;
      }
    }
  }
  return doc;
}

type Run = 'memory' | 'file' | 'file-crash';

/** The snapshot and journal as they are on disk now, copied into a new folder; a crash would leave these. */
async function crashImage(file: string): Promise<string> {
  const into = await mkdtemp(join(tmpdir(), 'jsonstore-fuzz-crash-'));
  cleanups.push(() => rm(into, { recursive: true, force: true }));
  const target = join(into, 'doc.json');
  for (const suffix of ['', '.journal']) {
    try {
      await copyFile(file + suffix, target + suffix);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }
  return target;
}

async function fuzz(run: Run, steps: number, streamSeed: number): Promise<void> {
  const r = new Random(streamSeed);
  const initial = document(r);
  const model = new ReferenceStore(JSON.parse(JSON.stringify(initial)) as Json);
  let file = '';
  let compactions = 0;
  let storage: StorageAdapter | undefined;
  const storageFor = (): StorageAdapter => {
    if (run === 'memory') storage = memoryStorage();
    // 'file': a small threshold, so snapshots are rewritten in the background, not only at close.
    // 'file-crash': no compaction while running, so a copy of the files is a consistent crash image.
    else if (run === 'file') storage = fileStorage(file, { fsync: 'never', compactMinSize: 2048 });
    else storage = fileStorage(file, { fsync: 'never', compactRatio: Infinity });
    return storage;
  };
  if (run !== 'memory') {
    const dir = await mkdtemp(join(tmpdir(), 'jsonstore-fuzz-'));
    file = join(dir, 'doc.json');
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
  }
  let served = await serve(storageFor(), initial);
  let nextReopen = 20 + r.int(60);
  const found = new Map<string, Discrepancy>();
  // FUZZ_STATS=1: how often each kind of request got each status, to see what the generator reaches.
  const stats = process.env['FUZZ_STATS'] === '1' ? new Map<string, number>() : undefined;
  const failOrRecord = async (step: number, generated: Generated, prediction: Prediction, reply: Reply | undefined, problems: string[], kinds: string[], before: Json) => {
    if (!keepGoing) expect.fail(report(run, step, steps, generated, prediction, reply, problems, before));
    const signature = reply === undefined ? `reload (${run}): ${problems[0]?.slice(0, 60)}` : signatureOf(generated, prediction, reply, kinds);
    const known = found.get(signature);
    if (known !== undefined) known.count++;
    else found.set(signature, { signature, step, before, generated, prediction, reply: reply as Reply, problems, count: 1 });
    // Go on from the model's document: put it in the store, so one discrepancy
    // does not cascade (a value the store should have refused may not even be JSON).
    const reset: Generated = {
      kind: 'RESET',
      request: { method: 'PUT', path: '/', query: '', headers: { 'content-type': 'application/json' }, body: Buffer.from(model.text()) },
    };
    const answer = await send(served, reset);
    const root = await getRoot(served);
    if (answer.status !== 200 || root.text !== model.text()) expect.fail(`could not put the model's document back into the store: ${answer.status} ${clip(root.text)}`);
  };

  for (let step = 1; step <= steps; step++) {
    const before = model.doc;
    const generated = nextRequest(r, model);
    const prediction = model.predict(generated.request);
    let reply: Reply;
    try {
      reply = await send(served, generated);
    } catch (error) {
      // The connection failed: the store crashed or cut it short. Say where, with the seed.
      return expect.fail(report(run, step, steps, generated, prediction, undefined, [`the request failed: ${String(error)}`], before));
    }
    if (stats !== undefined) {
      const label = `${generated.kind} ${reply.status}`;
      stats.set(label, (stats.get(label) ?? 0) + 1);
    }
    const verdict = judge(model, generated.request, prediction, reply);
    const whole = verdict.problems.length === 0 ? await checkDocument(model, served) : { problems: [], kinds: [] };
    const problems = [...verdict.problems, ...whole.problems];
    if (served.errors.length > 0) problems.push(`the store reported: ${served.errors.map((e) => (e instanceof Error ? e.stack : String(e))).join('; ')}`);
    if (problems.length > 0) {
      await failOrRecord(step, generated, prediction, reply, problems, [...verdict.kinds, ...whole.kinds, ...(served.errors.length > 0 ? ['error-event'] : [])], before);
      served.errors.length = 0;
    }

    if (run !== 'memory' && step === nextReopen) {
      nextReopen += 20 + r.int(60);
      const shown = await getRoot(served);
      let reloaded: Reply;
      if (run === 'file') {
        // Closed cleanly (which folds the journal into the snapshot) and opened again.
        compactions += (storage as FileStorage).stats.compactions;
        await served.close();
        // A different `initial`: the files must win.
        served = await serve(storageFor(), { reopened: true });
        reloaded = await getRoot(served);
      } else {
        // A second store on a copy of the files, as a crash would leave them: the journal is replayed.
        const copy = await serve(fileStorage(await crashImage(file), { fsync: 'never' }), { reopened: true });
        reloaded = await getRoot(copy);
        await copy.close();
      }
      if (reloaded.text !== shown.text || reloaded.headers['etag'] !== shown.headers['etag']) {
        const how = run === 'file' ? 'after closing and reopening the file store' : 'loaded from a copy of the files (snapshot + journal)';
        const problem = `${how}, GET / shows ${clip(reloaded.text, 1500)} (ETag ${reloaded.headers['etag']}), before it showed ${clip(shown.text, 1500)} (ETag ${shown.headers['etag']})`;
        await failOrRecord(step, generated, prediction, undefined, [problem], ['reload'], model.doc);
      }
    }
  }
  if (run === 'file' && steps >= 500) {
    // The run is meant to reload from snapshots written in the background too.
    compactions += (storage as FileStorage).stats.compactions;
    expect(compactions, 'background compactions during the file run').toBeGreaterThan(0);
  }

  if (stats !== undefined) console.log([...stats.entries()].sort().map(([label, n]) => `${label}: ${n}`).join('\n'));
  if (found.size > 0) {
    const lines = [`${found.size} distinct discrepancies (FUZZ_SEED=${seed}, ${run}, ${steps} steps):`];
    for (const d of found.values()) {
      const minimal = d.reply === undefined || d.prediction.pending.length > 0 || process.env['FUZZ_SHRINK'] === '0' ? d.before : await shrink(d, model.tags);
      lines.push('', `[${d.count}×] ${d.signature}`, report(run, d.step, steps, d.generated, d.prediction, d.reply, d.problems, d.before), `shrunk document before: ${typeof minimal === 'string' ? minimal : clip(JSON.stringify(minimal), 1500)}`);
    }
    expect.fail(lines.join('\n'));
  }
}

// Budget generously: the point is the requests, never the time they take.
const timeout = 120_000 + total * 40;

describe('fuzz: random requests against the reference model', () => {
  // FUZZ_REQUESTS is shared: 40% on memory storage, 30% on each file run.
  const share = (part: number) => Math.max(1, Math.round(total * part));
  test('memory storage', () => fuzz('memory', share(0.4), seed), timeout);
  test('file storage, closed and reopened from its files every few dozen steps', () => fuzz('file', share(0.3), (seed ^ 0x5bd1e995) >>> 0), timeout);
  test('file storage, loaded from a crash image of its files every few dozen steps', () => fuzz('file-crash', share(0.3), (seed ^ 0x27d4eb2f) >>> 0), timeout);
});
