/**
 * The README's five-minute tour, run as written (bash + curl) against the
 * jsonstore command, so the front door cannot drift from what the store does.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, test } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);
let child: ChildProcess | undefined;

afterAll(() => {
  child?.kill('SIGKILL');
});

function tourScript(): string {
  const readme = readFileSync(resolve(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## A five-minute tour'));
  const block = /```sh\n([\s\S]*?)```/.exec(section);
  if (!block) throw new Error('README has no sh block in "A five-minute tour"');
  return block[1]!;
}

function startCli(): Promise<string> {
  child = spawn(process.execPath, [resolve(root, 'dist/cli.js'), '--memory', '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolveHost, reject) => {
    let out = '';
    child!.stdout!.on('data', (chunk) => {
      out += chunk;
      const match = /at http:\/\/(127\.0\.0\.1:\d+)\//.exec(out);
      if (match) resolveHost(match[1]!);
    });
    child!.on('exit', (code) => reject(new Error(`jsonstore exited with ${code}: ${out}`)));
  });
}

test('the five-minute tour runs as written and leaves the document it describes', async () => {
  const host = await startCli();
  const script = tourScript();
  expect(script).toContain('localhost:3000');
  const { stdout } = await run('bash', ['-euo', 'pipefail', '-c', script.replaceAll('localhost:3000', host)], { timeout: 30_000 });

  // What the comments in the tour promise.
  expect(stdout).toContain('[{"name":"fred"},{"name":"irma"},{"name":"wobble"}]');
  expect(stdout).toContain('[{"name":"wobble"},{"name":"irma"}][{"name":"fred"}]');
  expect(stdout).toContain('{"name":"fred","rank":"sniffle chief"}');
  expect(stdout).toMatch(/HTTP\/1\.1 201 Created[\s\S]*Location: \/sniffles\/3/);
  expect(stdout).toMatch(/HTTP\/1\.1 200 OK[\s\S]*"gundar the great"/);
  expect(stdout).toMatch(/HTTP\/1\.1 412 Precondition Failed/);
  expect(stdout).toContain('"detail":"Cannot PUT /sniffles/0/name/first: /sniffles/0/name is a string"');
  expect(stdout).toMatch(/HTTP\/1\.1 204 No Content/);

  const document = await (await fetch(`http://${host}/`)).json();
  expect(document).toEqual({
    sniffles: [{ name: 'fred', rank: 'sniffle chief' }, { name: 'irma', rank: 'deputy' }, { name: 'bob' }],
    snuffle: { name: 'gundar the great', rank: 'elder' },
  });
});
