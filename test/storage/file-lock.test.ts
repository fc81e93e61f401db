/**
 * fileStorage()'s lock in real processes: many processes racing to take
 * over one stale lock, lock files that are being written, and what a client
 * is told about a locked store (no process ids, no paths).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { buildFixtures } from './fixtures/build.js';
import { expectProblem, filesOf, removeTempDirs, serve, tempDir } from './file-support.js';

let contenderScript: string;
let fixtureDir: string;
const children = new Set<ChildProcess>();

beforeAll(async () => {
  const built = await buildFixtures();
  contenderScript = built.script('lock-contender');
  fixtureDir = built.dir;
});

afterAll(async () => {
  for (const child of children) child.kill('SIGKILL');
  rmSync(fixtureDir, { recursive: true, force: true });
  await removeTempDirs();
});

interface Contender {
  child: ChildProcess;
  pid: number;
  /** Resolves with the next JSON line the contender prints. */
  nextLine(): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

function startContender(file: string): Contender {
  const child = spawn(process.execPath, [contenderScript, file], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.add(child);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  const lines: string[] = [];
  const waiting: Array<(line: string) => void> = [];
  let buffer = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    for (let end = buffer.indexOf('\n'); end !== -1; end = buffer.indexOf('\n')) {
      const line = buffer.slice(0, end);
      buffer = buffer.slice(end + 1);
      const waiter = waiting.shift();
      if (waiter) waiter(line);
      else lines.push(line);
    }
  });
  return {
    child,
    pid: child.pid as number,
    exited,
    nextLine() {
      const line = lines.shift();
      if (line !== undefined) return Promise.resolve(JSON.parse(line) as Record<string, unknown>);
      return new Promise((resolve, reject) => {
        waiting.push((text) => resolve(JSON.parse(text) as Record<string, unknown>));
        void exited.then((code) => reject(new Error(`contender ${child.pid} exited (${code}) without answering`)));
      });
    },
  };
}

/** The pid of a process that has exited. */
async function deadPid(): Promise<number> {
  const gone = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => gone.once('exit', resolve));
  return gone.pid as number;
}

/** What is in `dir` besides the store's snapshot and journal (which a store writes when it starts on empty storage). */
function besidesStoreFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((name) => name !== 'store.json' && name !== 'store.json.journal')
    .sort();
}

/** Sets a file's times far enough in the past that it is not "being written right now". */
function age(path: string): void {
  const past = new Date(Date.now() - 3_600_000);
  utimesSync(path, past, past);
}

describe('taking over a stale lock', () => {
  /** Stale locks to race for, round after round. */
  const staleLocks = [
    { name: 'a dead pid', write: async (lock: string) => writeFileSync(lock, JSON.stringify({ pid: await deadPid(), host: hostname() })) },
    {
      name: 'an empty lock file left long ago',
      write: async (lock: string) => {
        writeFileSync(lock, '');
        age(lock);
      },
    },
    {
      name: 'garbage left long ago',
      write: async (lock: string) => {
        writeFileSync(lock, '{"pid":');
        age(lock);
      },
    },
  ];
  const rounds = 8;

  test(`20 processes race for one stale lock, ${rounds} rounds: exactly one opens the store, the others are told who has it`, { timeout: 300_000 }, async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const lock = filesOf(file).lock;
    const contenders = Array.from({ length: 20 }, () => startContender(file));
    for (const contender of contenders) expect(await contender.nextLine()).toEqual({ ready: true });

    for (let round = 0; round < rounds; round++) {
      const stale = staleLocks[round % staleLocks.length] as (typeof staleLocks)[number];
      const context = `round ${round}, ${stale.name}`;
      await stale.write(lock);
      // Everyone is waiting for this line: it is the starting gun.
      for (const contender of contenders) contender.child.stdin!.write('open\n');
      const results = await Promise.all(contenders.map((contender) => contender.nextLine()));

      const winners = contenders.filter((_, i) => results[i]?.['opened'] === true);
      expect(winners.map((winner) => winner.pid), `${context}: ${JSON.stringify(results)}`).toHaveLength(1);
      const winner = winners[0] as Contender;
      expect(JSON.parse(readFileSync(lock, 'utf8')), context).toMatchObject({ pid: winner.pid, host: hostname() });
      for (const [i, result] of results.entries()) {
        if (contenders[i] === winner) continue;
        // The server's log names the owner and the lock file; the client is told neither.
        expect(result['error'], context).toContain(`process ${winner.pid}`);
        expect(result['error'], context).toContain(lock);
        expect(result['detail'], context).toMatch(/in use by another process/);
        expect(result['detail'], context).not.toMatch(/\d{2,}/);
        expect(result['detail'], context).not.toContain(dir);
      }

      for (const contender of contenders) contender.child.stdin!.write('close\n');
      for (const contender of contenders) expect(await contender.nextLine()).toEqual({ closed: true });
      // The winner released its lock; no temp or takeover file is left beside it.
      expect(besidesStoreFiles(dir), context).toEqual([]);
    }
    for (const contender of contenders) contender.child.stdin!.end();
    for (const contender of contenders) expect(await contender.exited).toBe(0);
  });
});

/** The takeover lock for a stale lock file with these bytes (see src/storage/file-lock.ts). */
function takeoverPath(lock: string, staleBytes: string): string {
  return `${lock}.takeover-${createHash('sha256').update(staleBytes).digest('hex').slice(0, 16)}`;
}

describe('what counts as stale', () => {
  test('a lock file changed moments ago but empty or cut short may be one being written: it is respected, not taken over', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const lock = filesOf(file).lock;
    for (const content of ['', '{"pid":12']) {
      writeFileSync(lock, content);
      const served = await serve(file);
      const detail = expectProblem(await served.http.get('/store/'), 503, 'The store is in use by another process');
      expect(detail).not.toContain(dir);
      expect(served.errors[0]?.message).toContain(`its lock file ${lock} is empty or unreadable and was changed less than 10 seconds ago`);
      await served.close();
      expect(readFileSync(lock, 'utf8')).toBe(content);
    }
    // Old, it is stale.
    age(lock);
    const served = await serve(file);
    expect((await served.http.get('/store/')).status).toBe(200);
    await served.close();
  });

  test('a takeover in progress by a live process is respected; one abandoned by a dead process is taken over and cleaned up', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const lock = filesOf(file).lock;
    const stale = JSON.stringify({ pid: await deadPid(), host: hostname() });
    writeFileSync(lock, stale);
    // The process that started this test is alive, and (as far as the lock can tell) taking the stale lock over.
    writeFileSync(takeoverPath(lock, stale), JSON.stringify({ pid: process.ppid, host: hostname() }));
    const refused = await serve(file);
    expectProblem(await refused.http.get('/store/'), 503, 'The store is in use by another process');
    expect(refused.errors[0]?.message).toContain(`in use by process ${process.ppid}, which is taking over a stale lock`);
    await refused.close();
    expect(readFileSync(lock, 'utf8')).toBe(stale);

    // The taker died in the middle: its takeover lock is stale too, and taken over in turn.
    writeFileSync(takeoverPath(lock, stale), JSON.stringify({ pid: await deadPid(), host: hostname() }));
    const served = await serve(file);
    expect((await served.http.get('/store/')).status).toBe(200);
    expect(JSON.parse(readFileSync(lock, 'utf8'))).toMatchObject({ pid: process.pid });
    expect(besidesStoreFiles(dir)).toEqual(['store.json.lock']);
    await served.close();
    expect(besidesStoreFiles(dir)).toEqual([]);
  });

  test("leftovers of processes that died while taking the lock are removed; a live process's are not", async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const lock = filesOf(file).lock;
    const dead = JSON.stringify({ pid: await deadPid(), host: hostname() });
    const live = JSON.stringify({ pid: process.ppid, host: hostname() });
    writeFileSync(`${lock}.0123456789ab.tmp`, dead);
    writeFileSync(`${lock}.ba9876543210.tmp`, '');
    age(`${lock}.ba9876543210.tmp`);
    writeFileSync(`${lock}.takeover-0123456789abcdef`, dead);
    writeFileSync(`${lock}.takeover-fedcba9876543210`, live);
    const served = await serve(file);
    expect((await served.http.get('/store/')).status).toBe(200);
    expect(besidesStoreFiles(dir)).toEqual(['store.json.lock', 'store.json.lock.takeover-fedcba9876543210']);
    await served.close();
  });
});

describe('a symbolic link as the lock file', () => {
  test('is refused at startup, and what it points to is left alone', async () => {
    const dir = await tempDir();
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    const target = join(outside, 'precious.txt');
    writeFileSync(target, 'precious');
    const data = join(dir, 'data');
    mkdirSync(data);
    const file = join(data, 'store.json');
    const lock = filesOf(file).lock;
    for (const pointsTo of [target, join(outside, 'missing.txt')]) {
      symlinkSync(pointsTo, lock);
      const served = await serve(file);
      const detail = expectProblem(await served.http.get('/store/'), 503, "The store's lock file is a symbolic link");
      expect(detail).not.toContain(dir);
      await expect(served.store.ready()).rejects.toThrow(`${lock} is a symbolic link`);
      expectProblem(await served.http.put('/store/a').send({ x: 1 }), 503);
      await served.close();
      expect(readFileSync(target, 'utf8')).toBe('precious');
      expect(existsSync(join(outside, 'missing.txt'))).toBe(false);
      expect(readdirSync(data)).toEqual(['store.json.lock']);
      rmSync(lock);
    }
  });
});
