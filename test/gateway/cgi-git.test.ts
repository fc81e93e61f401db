/**
 * cgi() with a real program: `git http-backend` mounted with default
 * options, driven by the real git client over HTTP. A 50 MB push of random
 * (incompressible) data goes over `http.postBuffer` as a chunked body: past
 * spoolThreshold it is spooled to a temporary file, never held in memory.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import express from 'express';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cgi } from '../../src/gateway/index.js';
import { captureLogger, listen, type Listening } from './helpers.js';

const run = promisify(execFile);
const httpBackend = '/usr/lib/git-core/git-http-backend';
const size = 50 * 1024 * 1024;

let scratch: string;
let projects: string;
let server: Listening;
let log: ReturnType<typeof captureLogger>;
// git must not read the developer's or the machine's configuration.
let gitEnv: NodeJS.ProcessEnv;

async function git(cwd: string, ...args: string[]): Promise<string> {
  const { stdout } = await run('git', args, { cwd, env: gitEnv, maxBuffer: 16 * 1024 * 1024 });
  return stdout;
}

function sha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), 'gateway-git-'));
  projects = join(scratch, 'projects');
  mkdirSync(projects);
  gitEnv = { PATH: process.env.PATH, HOME: scratch, GIT_CONFIG_NOSYSTEM: '1', GIT_TERMINAL_PROMPT: '0' };
  await git(projects, 'init', '--bare', '--quiet', '--initial-branch=main', 'big.git');
  // Anonymous push is off in git http-backend unless the repository allows it.
  await git(join(projects, 'big.git'), 'config', 'http.receivepack', 'true');

  log = captureLogger();
  const app = express();
  // Default options: only what git http-backend itself needs.
  app.use('/git', cgi(httpBackend, { env: { GIT_PROJECT_ROOT: projects, GIT_HTTP_EXPORT_ALL: '1' }, logger: log.logger }));
  server = await listen(app);
});

afterAll(async () => {
  await server?.close();
  rmSync(scratch, { recursive: true, force: true });
});

describe('git over cgi(git http-backend) with default options', () => {
  it('pushes 50 MB of incompressible data (a chunked, spooled body) and clones it back intact', { timeout: 240_000 }, async () => {
    const work = join(scratch, 'work');
    mkdirSync(work);
    await git(work, 'init', '--quiet', '--initial-branch=main');
    const blob = join(work, 'random.bin');
    writeFileSync(blob, randomBytes(size));
    writeFileSync(join(work, 'README'), 'big repository\n');
    await git(work, 'add', '.');
    await git(work, '-c', 'user.name=Test', '-c', 'user.email=test@example.com', 'commit', '--quiet', '-m', 'big');
    const head = (await git(work, 'rev-parse', 'HEAD')).trim();

    const remote = `${server.url}/git/big.git`;
    await git(work, 'push', '--quiet', remote, 'main');
    expect((await git(join(projects, 'big.git'), 'rev-parse', 'main')).trim()).toBe(head);

    const clone = join(scratch, 'clone');
    await git(scratch, 'clone', '--quiet', remote, clone);
    expect((await git(clone, 'rev-parse', 'HEAD')).trim()).toBe(head);
    expect(sha256(join(clone, 'random.bin'))).toBe(sha256(blob));
    expect(readFileSync(join(clone, 'README'), 'utf8')).toBe('big repository\n');

    // No 413, 502 or 504 on the way, and no spooled body left behind.
    expect(log.lines.filter((line) => /\b(413|502|504)\b|malformed|killed/.test(line))).toEqual([]);
    expect(readdirSync(tmpdir()).filter((name) => name.startsWith(`express-jsonstore-body-${process.pid}-`))).toEqual([]);
  });

  it('fetches new commits into an existing clone', { timeout: 60_000 }, async () => {
    const clone = join(scratch, 'clone');
    const work = join(scratch, 'work');
    writeFileSync(join(work, 'README'), 'changed\n');
    await git(work, '-c', 'user.name=Test', '-c', 'user.email=test@example.com', 'commit', '--quiet', '-am', 'change');
    await git(work, 'push', '--quiet', `${server.url}/git/big.git`, 'main');
    await git(clone, 'pull', '--quiet', '--ff-only');
    expect(readFileSync(join(clone, 'README'), 'utf8')).toBe('changed\n');
  });
});
