/**
 * fileStorage() in real processes: one owner per file, stale locks taken
 * over, and SIGKILL at random moments while clients write — after every
 * restart, every write that got a 2xx is there.
 *
 * CRASH_CYCLES sets the number of kill/restart cycles (default 10);
 * CRASH_SEED replays a run (the seed is printed with any failure).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildFileServer } from './fixtures/build.js';
import { expectProblem, filesOf, journalLines, randomSource, removeTempDirs, serve, tempDir } from './file-support.js';

const cycles = Number(process.env.CRASH_CYCLES ?? 10);
const seed = Number(process.env.CRASH_SEED ?? Math.floor(Math.random() * 2 ** 31));

let script: string;
let fixtureDir: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  ({ script, dir: fixtureDir } = await buildFileServer());
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(fixtureDir, { recursive: true, force: true });
  await removeTempDirs();
});

interface Server {
  child: ChildProcess;
  port: number;
  pid: number;
  exited: Promise<number | null>;
}

function spawnServer(file: string, options: object = {}): { child: ChildProcess; firstLine: Promise<Record<string, unknown>>; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [script, file, JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => {
    children.delete(child);
    resolve(code);
  }));
  const firstLine = new Promise<Record<string, unknown>>((resolve, reject) => {
    let buffer = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('utf8');
      const end = buffer.indexOf('\n');
      if (end !== -1) resolve(JSON.parse(buffer.slice(0, end)) as Record<string, unknown>);
    });
    void exited.then((code) => reject(new Error(`the server exited (${code}) before it said anything`)));
  });
  // Servers killed while starting never answer; that is expected there.
  firstLine.catch(() => {});
  return { child, firstLine, exited };
}

/** Starts a server and waits until it serves; fails the test if it cannot load. */
async function startServer(file: string, options: object = {}): Promise<Server> {
  const { child, firstLine, exited } = spawnServer(file, options);
  const line = await firstLine;
  if (typeof line['port'] !== 'number') throw new Error(`the server did not start: ${String(line['error'])} (seed ${seed})`);
  return { child, port: line['port'], pid: line['pid'] as number, exited };
}

async function kill(server: Server): Promise<void> {
  server.child.kill('SIGKILL');
  await server.exited;
}

async function getDocument(port: number): Promise<Document> {
  const response = await fetch(`http://127.0.0.1:${port}/`);
  expect(response.status).toBe(200);
  return (await response.json()) as Document;
}

describe('one process per file', () => {
  test('a second process is refused with the owner named; a SIGKILLed owner\'s lock is taken over', async () => {
    const dir = await tempDir();
    const file = join(dir, 'data', 'store.json');
    const owner = await startServer(file);
    const write = await fetch(`http://127.0.0.1:${owner.port}/kv/a`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '"kept"' });
    expect(write.status).toBe(201);

    const second = spawnServer(file);
    const refusal = await second.firstLine;
    expect(refusal['error']).toMatch(new RegExp(`${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is in use by process ${owner.pid} \\(lock file ${file}\\.lock\\)`));
    expect(await second.exited).toBe(3);

    // In this process too: the store answers 503; the log names the owner, the client is told neither pid nor path.
    const here = await serve(file);
    const detail = expectProblem(await here.http.get('/store/'), 503, 'The store is in use by another process');
    expect(detail).not.toContain(String(owner.pid));
    expect(detail).not.toContain(dir);
    expect(here.errors.map((error) => error.message).join('\n')).toContain(`is in use by process ${owner.pid} (lock file ${file}.lock)`);
    await here.close();

    await kill(owner);
    // The killed owner could not remove its lock.
    expect(JSON.parse(readFileSync(filesOf(file).lock, 'utf8'))).toMatchObject({ pid: owner.pid });
    const next = await startServer(file);
    expect(JSON.parse(readFileSync(filesOf(file).lock, 'utf8'))).toMatchObject({ pid: next.pid });
    expect(await getDocument(next.port)).toMatchObject({ kv: { a: 'kept' } });
    next.child.kill('SIGTERM');
    expect(await next.exited).toBe(0);
    expect(existsSync(filesOf(file).lock)).toBe(false);
  });

  test('a lock naming a live process is respected; garbage or a dead pid is stale', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const lock = filesOf(file).lock;
    // The process that started this test is alive.
    writeFileSync(lock, JSON.stringify({ pid: process.ppid, host: hostname() }));
    const refused = await serve(file);
    expectProblem(await refused.http.get('/store/'), 503, 'The store is in use by another process');
    expect(refused.errors[0]?.message).toContain(`in use by process ${process.ppid}`);
    await refused.close();
    expect(existsSync(lock)).toBe(true);

    // Another host's process cannot be checked from here, so it counts as running.
    writeFileSync(lock, JSON.stringify({ pid: 12345, host: `${hostname()}-elsewhere` }));
    const remote = await serve(file);
    const detail = expectProblem(await remote.http.get('/store/'), 503, 'The store is in use by another process');
    expect(detail).not.toContain('12345');
    expect(detail).not.toContain('elsewhere');
    expect(remote.errors[0]?.message).toContain(`process 12345 on host ${hostname()}-elsewhere`);
    await remote.close();

    // A process that has exited.
    const gone = spawn(process.execPath, ['-e', '']);
    await new Promise((resolve) => gone.once('exit', resolve));
    for (const content of [JSON.stringify({ pid: gone.pid, host: hostname() }), '', 'not json']) {
      writeFileSync(lock, content);
      // An empty or unreadable lock file counts as stale only once it is old (see file-lock.test.ts).
      if (content === '' || content === 'not json') {
        const past = new Date(Date.now() - 3_600_000);
        utimesSync(lock, past, past);
      }
      const served = await serve(file);
      expect((await served.http.get('/store/')).status).toBe(200);
      expect(JSON.parse(readFileSync(lock, 'utf8'))).toMatchObject({ pid: process.pid });
      await served.close();
      expect(existsSync(lock)).toBe(false);
    }
  });
});

// ---- the crash test --------------------------------------------------------------------

interface Document {
  log: Array<{ id: string }>;
  kv: Record<string, unknown>;
  counters: Record<string, number>;
}

/** What must be in the store: acknowledged writes certainly, unacknowledged ones maybe. */
class Expectations {
  /** POSTed log ids: `true` once acknowledged (must be there), `false` while unknown. */
  readonly log = new Map<string, boolean | 'absent'>();
  /** Keys: the value sent and whether it must be there, must not be, or either. */
  readonly kv = new Map<string, { value: unknown; state: 'present' | 'absent' | 'either' }>();
  /** Per writer: the last acknowledged and the last attempted counter value. */
  readonly counters = new Map<string, { acked: number; attempted: number }>();
  /** Writes acknowledged so far, all writers and cycles together. */
  acked = 0;

  /** Checks a loaded document, then records what it showed: from now on that is on disk. */
  check(document: Document, context: string): void {
    const seen = new Set<string>();
    for (const entry of document.log) {
      expect(seen.has(entry.id), `${context}: log entry ${entry.id} twice`).toBe(false);
      seen.add(entry.id);
      const known = this.log.get(entry.id);
      expect(known === true || known === false, `${context}: log entry ${entry.id} was never sent, or was gone before`).toBe(true);
    }
    for (const [id, state] of this.log) {
      if (state === true) expect(seen.has(id), `${context}: acknowledged POST ${id} is missing`).toBe(true);
      this.log.set(id, seen.has(id) ? true : 'absent');
    }
    for (const key of Object.keys(document.kv)) {
      const known = this.kv.get(key);
      expect(known !== undefined && known.state !== 'absent', `${context}: key ${key} should not exist`).toBe(true);
      expect(document.kv[key], `${context}: key ${key}`).toEqual(known?.value);
    }
    for (const [key, known] of this.kv) {
      const present = Object.prototype.hasOwnProperty.call(document.kv, key);
      if (known.state === 'present') expect(present, `${context}: acknowledged key ${key} is missing`).toBe(true);
      known.state = present ? 'present' : 'absent';
    }
    for (const [writer, known] of this.counters) {
      const value = document.counters[writer] ?? 0;
      expect(value, `${context}: counter ${writer}`).toBeGreaterThanOrEqual(known.acked);
      expect(value, `${context}: counter ${writer}`).toBeLessThanOrEqual(known.attempted);
      known.acked = known.attempted = value;
    }
  }
}

async function send(port: number, method: string, path: string, body: unknown, type = 'application/json'): Promise<number> {
  const response = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': type },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  await response.arrayBuffer();
  return response.status;
}

/** Writes until the server goes away, recording what was acknowledged. */
async function writer(port: number, name: string, cycle: number, model: Expectations, random: () => number): Promise<number> {
  const counter = model.counters.get(name) ?? { acked: 0, attempted: 0 };
  model.counters.set(name, counter);
  let acknowledged = 0;
  for (let i = 0; ; i++) {
    const id = `${name}-${cycle}-${i}`;
    const choice = random();
    try {
      if (choice < 0.3) {
        model.log.set(id, false);
        const status = await send(port, 'POST', '/log', { id, pad: 'x'.repeat(Math.floor(random() * 80)) });
        expect(status).toBe(201);
        model.log.set(id, true);
      } else if (choice < 0.5) {
        const value = { i, at: cycle };
        model.kv.set(id, { value, state: 'either' });
        expect(await send(port, 'PUT', `/kv/${id}`, value)).toBe(201);
        (model.kv.get(id) as { state: string }).state = 'present';
      } else if (choice < 0.6) {
        const value = [i, 'ops'];
        model.kv.set(id, { value, state: 'either' });
        expect(await send(port, 'PATCH', '/kv', [{ op: 'add', path: `/${id}`, value }], 'application/json-patch+json')).toBe(200);
        (model.kv.get(id) as { state: string }).state = 'present';
      } else if (choice < 0.7) {
        const victim = [...model.kv].find(([key, known]) => key.startsWith(`${name}-`) && known.state === 'present');
        if (victim === undefined) continue;
        victim[1].state = 'either';
        expect(await send(port, 'DELETE', `/kv/${victim[0]}`, undefined)).toBe(204);
        victim[1].state = 'absent';
      } else {
        const next = counter.attempted + 1;
        counter.attempted = next;
        expect(await send(port, 'PATCH', '/counters', { [name]: next }, 'application/merge-patch+json')).toBe(200);
        counter.acked = next;
      }
      acknowledged++;
      model.acked++;
    } catch (error) {
      // The server was killed: this write's fate is unknown, and the writer stops.
      if (error instanceof TypeError) return acknowledged;
      throw error;
    }
  }
}

const optionSets = [
  { compactMinSize: 2048, compactRatio: 0.25 },
  { fsync: 'never', compactMinSize: 2048, compactRatio: 0.25 },
  {},
];

describe('SIGKILL at random moments', () => {
  test(`${cycles} kill/restart cycles: every acknowledged write survives and the store loads`, { timeout: 20_000 + cycles * 4_000 }, async () => {
    const random = randomSource(seed);
    const dir = await tempDir();
    const file = join(dir, 'data', 'store.json');
    const model = new Expectations();
    let acknowledged = 0;
    for (let cycle = 0; cycle < cycles; cycle++) {
      const context = `cycle ${cycle} (seed ${seed})`;
      const options = optionSets[cycle % optionSets.length] as object;
      if (cycle % 4 === 3) {
        // Killed while it loads (and may be cutting off a torn append).
        const early = spawnServer(file, options);
        await new Promise((resolve) => setTimeout(resolve, Math.floor(random() * 40)));
        early.child.kill('SIGKILL');
        await early.exited;
      }
      const server = await startServer(file, options);
      model.check(await getDocument(server.port), context);
      const writers = Array.from({ length: 4 }, (_, w) => writer(server.port, `w${w}`, cycle, model, random));
      // Killed after a random amount of work rather than of time, so a busy
      // machine changes when it happens, not how much is tested.
      const goal = model.acked + 11 + Math.floor(random() * 60);
      const writersDone = Promise.all(writers);
      let done = false;
      void writersDone.finally(() => (done = true));
      // Polled with a timer, not setImmediate: a spinning test would take a core from the server.
      while (model.acked < goal && !done) await new Promise((resolve) => setTimeout(resolve, 1));
      await kill(server);
      for (const count of await Promise.all(writers)) acknowledged += count;
    }

    const last = await startServer(file);
    const document = await getDocument(last.port);
    model.check(document, `after the last cycle (seed ${seed})`);
    // Enough happened for the test to mean something.
    expect(acknowledged).toBeGreaterThan(cycles * 10);
    last.child.kill('SIGTERM');
    expect(await last.exited).toBe(0);
    // A clean stop leaves the snapshot as the whole document and the journal empty.
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(document);
    expect(journalLines(file)).toHaveLength(1);
    expect(existsSync(filesOf(file).lock)).toBe(false);
  });
});
