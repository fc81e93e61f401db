/**
 * Packs the package as npm would publish it, installs the tarball into a
 * scratch app and uses it from ESM, CommonJS and a TypeScript consumer.
 * Relies on `npm test` having built dist/ first.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');
let scratch: string;
let files: string[] = [];

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'jsonstore-pack-'));
  const { stdout } = await run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', scratch], { cwd: root });
  const [info] = JSON.parse(stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  files = info!.files.map((f) => f.path);
  const tarball = join(scratch, info!.filename.replace(/^@.*\//, '').replace('/', '-'));
  await writeFile(join(scratch, 'package.json'), JSON.stringify({ name: 'scratch-app', private: true, version: '1.0.0' }));
  const ours = JSON.parse(await readFile(join(root, 'package.json'), 'utf8')) as { devDependencies: Record<string, string> };
  await run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--ignore-scripts',
      tarball,
      `typescript@${ours.devDependencies['typescript']}`,
      '@types/node@20',
    ],
    { cwd: scratch, timeout: 180_000 },
  );
}, 240_000);

afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe('the published package', () => {
  test('holds only what users need', () => {
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/index.cjs');
    expect(files).toContain('dist/index.d.ts');
    expect(files).toContain('dist/cli.js');
    // Source maps, with the sources inside them (src/ itself is not shipped).
    for (const map of ['dist/index.js.map', 'dist/index.cjs.map', 'dist/testing.js.map', 'dist/gateway.js.map', 'dist/cli.js.map']) expect(files).toContain(map);
    expect(files).toContain('README.md');
    expect(files).toContain('LICENSE');
    // pythonWsgi()'s worker runner, found next to the bundles at run time.
    expect(files).toContain('dist/python/jsonstore_wsgi_runner.py');
    expect(files.filter((f) => f.startsWith('src/') || f.startsWith('test/') || f.startsWith('bench/'))).toEqual([]);
  });

  const serverScript = `
    const store = jsonStore({ initial: { greeting: 'hello' } });
    const server = http.createServer(store).listen(0, '127.0.0.1', async () => {
      const base = 'http://127.0.0.1:' + server.address().port;
      const put = await fetch(base + '/sniffles/0/rank', { method: 'PUT', headers: { 'content-type': 'application/json' }, body: '"sniffle chief"' });
      const got = await (await fetch(base + '/sniffles/0')).json();
      console.log(JSON.stringify({ status: put.status, got, greeting: await store.get('/greeting'), memory: typeof memoryStorage }));
      server.close();
      await store.close();
    });`;

  test('subpath exports: /testing and /gateway, from import and require', async () => {
    const esm = join(scratch, 'subpaths.mjs');
    await writeFile(
      esm,
      `import { storageConformance } from 'express-jsonstore/testing';\nimport { wsgi, cgi } from 'express-jsonstore/gateway';\nconsole.log(JSON.stringify([typeof storageConformance, typeof wsgi, typeof cgi]));\n`,
    );
    const cjs = join(scratch, 'subpaths.cjs');
    await writeFile(
      cjs,
      `const { storageConformance } = require('express-jsonstore/testing');\nconst { wsgi, cgi } = require('express-jsonstore/gateway');\nconsole.log(JSON.stringify([typeof storageConformance, typeof wsgi, typeof cgi]));\n`,
    );
    for (const file of [esm, cjs]) {
      const { stdout } = await run('node', [file], { cwd: scratch });
      expect(JSON.parse(stdout)).toEqual(['function', 'function', 'function']);
    }
  });

  // The runner is found from the installed package's ESM and CommonJS builds alike.
  test.skipIf(!existsSync('/usr/bin/python3'))('pythonWsgi() serves a Python app from the installed package (import and require)', async () => {
    await writeFile(
      join(scratch, 'hello.py'),
      `def app(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'Hello from ' + environ['wsgi.url_scheme'].encode()]\n`,
    );
    const body = (load: string) => `${load}
const pool = pythonWsgi('hello:app', { cwd: ${JSON.stringify(scratch)}, workers: 1 });
const server = http.createServer(pool).listen(0, '127.0.0.1', async () => {
  const text = await (await fetch('http://127.0.0.1:' + server.address().port + '/')).text();
  server.close();
  await pool.close();
  console.log(JSON.stringify(text));
});`;
    const esm = join(scratch, 'python.mjs');
    await writeFile(esm, body(`import http from 'node:http';\nimport { pythonWsgi } from 'express-jsonstore/gateway';`));
    const cjs = join(scratch, 'python.cjs');
    await writeFile(cjs, body(`const http = require('node:http');\nconst { pythonWsgi } = require('express-jsonstore/gateway');`));
    for (const file of [esm, cjs]) {
      const { stdout } = await run('node', [file], { cwd: scratch, timeout: 60_000 });
      expect(JSON.parse(stdout)).toBe('Hello from http');
    }
  });

  test('works with import (ESM)', async () => {
    const file = join(scratch, 'esm.mjs');
    await writeFile(file, `import http from 'node:http';\nimport { jsonStore, memoryStorage } from 'express-jsonstore';\n${serverScript}`);
    const { stdout } = await run('node', [file], { cwd: scratch });
    expect(JSON.parse(stdout)).toEqual({ status: 201, got: { rank: 'sniffle chief' }, greeting: 'hello', memory: 'function' });
  });

  test('works with require (CommonJS)', async () => {
    const file = join(scratch, 'cjs.cjs');
    await writeFile(file, `const http = require('node:http');\nconst { jsonStore, memoryStorage } = require('express-jsonstore');\n${serverScript}`);
    const { stdout } = await run('node', [file], { cwd: scratch });
    expect(JSON.parse(stdout)).toEqual({ status: 201, got: { rank: 'sniffle chief' }, greeting: 'hello', memory: 'function' });
  });

  // Two full tsc runs: 16 s on an idle machine, several times that on a busy one.
  test('type-checks in a TypeScript consumer, and rejects misuse', { timeout: 240_000 }, async () => {
    await writeFile(
      join(scratch, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { strict: true, module: 'NodeNext', moduleResolution: 'NodeNext', target: 'ES2022', noEmit: true, types: ['node'] }, include: ['*.ts', '*.cts'] }),
    );
    await writeFile(
      join(scratch, 'consumer.ts'),
      `import http from 'node:http';
import { jsonStore, memoryStorage, JsonStoreError, type JsonStoreOptions, type StorageAdapter, type ChangeEvent } from 'express-jsonstore';
import { storageConformance } from 'express-jsonstore/testing';
import { wsgi, type WsgiApplication } from 'express-jsonstore/gateway';
const hello: WsgiApplication = (_environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain']]);
  return ['Hello world!\\n'];
};
export const legacy = wsgi(hello);
export const suite: typeof storageConformance = storageConformance;
const options: JsonStoreOptions = { initial: { a: [1, 2] }, storage: memoryStorage(), limit: '2mb', readOnly: false };
const store = jsonStore(options);
const adapter: StorageAdapter = { load: () => undefined, commit: async () => {} };
void adapter;
http.createServer(store);
store.on('change', (event: ChangeEvent) => console.log(event.revision, event.ops.length));
export async function use(): Promise<number> {
  const result = await store.put('/a/2', 3);
  if (result.created) console.log(result.etag);
  const error: JsonStoreError | undefined = undefined;
  void error;
  return result.revision;
}
`,
    );
    await writeFile(
      join(scratch, 'consumer-cjs.cts'),
      `import express_jsonstore = require('express-jsonstore');
const store = express_jsonstore.jsonStore();
export const ready: Promise<void> = store.ready();
`,
    );
    await run(join(scratch, 'node_modules/.bin/tsc'), ['-p', scratch], { cwd: scratch });

    await writeFile(join(scratch, 'misuse.ts'), `import { jsonStore } from 'express-jsonstore';\njsonStore({ limit: true });\n`);
    const failed = await run(join(scratch, 'node_modules/.bin/tsc'), ['-p', scratch], { cwd: scratch }).then(
      () => undefined,
      (error: { stdout: string }) => error.stdout,
    );
    await rm(join(scratch, 'misuse.ts'));
    expect(failed).toMatch(/misuse\.ts\(2,\d+\): error TS2322: Type 'true' is not assignable/);
  });

  test('source maps carry their sources', async () => {
    // The entry files re-export shared chunks: look through every map.
    const dist = join(scratch, 'node_modules/express-jsonstore/dist');
    const maps = await Promise.all(
      (await readdir(dist)).filter((name) => name.endsWith('.js.map')).map(async (name) => JSON.parse(await readFile(join(dist, name), 'utf8')) as { sources: string[]; sourcesContent?: string[] }),
    );
    expect(maps.some((map) => map.sources.some((source) => source.endsWith('src/json-store.ts')))).toBe(true);
    for (const map of maps) expect(map.sourcesContent?.length).toBe(map.sources.length);
  });

  // Older setups (moduleResolution node10, i.e. "node") ignore "exports": typesVersions points them at the subpaths' types.
  test('the subpaths have types under moduleResolution node10 too', { timeout: 240_000 }, async () => {
    const legacy = join(scratch, 'node10');
    await mkdir(legacy, { recursive: true });
    await writeFile(
      join(legacy, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { strict: true, module: 'CommonJS', moduleResolution: 'node10', target: 'ES2022', noEmit: true, types: ['node'], typeRoots: ['../node_modules/@types'] }, include: ['*.ts'] }),
    );
    await writeFile(
      join(legacy, 'consumer.ts'),
      `import { jsonStore, type StorageAdapter } from 'express-jsonstore';
import { storageConformance, type ConformanceOptions } from 'express-jsonstore/testing';
import { wsgi, type WsgiApplication } from 'express-jsonstore/gateway';
const app: WsgiApplication = (_environ, startResponse) => {
  startResponse('200 OK', [['Content-Type', 'text/plain']]);
  return ['hi'];
};
export const legacy = wsgi(app);
export const store = jsonStore();
export const options: ConformanceOptions<StorageAdapter & { path: string }> | undefined = undefined;
export const suite: typeof storageConformance = storageConformance;
`,
    );
    await run(join(scratch, 'node_modules/.bin/tsc'), ['-p', legacy], { cwd: legacy });
    // The check can fail: a name the subpath does not export is an error.
    await writeFile(join(legacy, 'misuse.ts'), `import { notExported } from 'express-jsonstore/testing';\nexport { notExported };\n`);
    const failed = await run(join(scratch, 'node_modules/.bin/tsc'), ['-p', legacy], { cwd: legacy }).then(
      () => undefined,
      (error: { stdout: string }) => error.stdout,
    );
    expect(failed).toMatch(/misuse\.ts\(1,\d+\): error TS2305: Module '"express-jsonstore\/testing"' has no exported member 'notExported'/);
  });

  test('the jsonstore command runs from the installed package', async () => {
    const { stdout } = await run(join(scratch, 'node_modules/.bin/jsonstore'), ['--help'], { cwd: scratch });
    expect(stdout).toMatch(/Usage: jsonstore/);
  });
});
