/**
 * fileStorage({ watch }): edits of the snapshot file made while the store
 * runs reach the engine as a whole-document replacement, through real files
 * and a listening server.
 */
import { createServer, type Server } from 'node:http';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { jsonStore, type ChangeEvent, type JsonStore } from '../../src/index.js';
import { fileStorage, type FileStorage } from '../../src/storage/file.js';
import { eventually } from '../support/wait.js';

let dir: string;
const opened: Array<{ store: JsonStore; server: Server }> = [];
const warnings: string[] = [];
const onWarning = (warning: Error) => warnings.push(`${(warning as Error & { code?: string }).code}: ${warning.message}`);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'jsonstore-watch-'));
  process.on('warning', onWarning);
});
afterEach(async () => {
  for (const { store, server } of opened.splice(0)) {
    server.close();
    await store.close();
  }
  warnings.length = 0;
});
afterAll(async () => {
  process.off('warning', onWarning);
  await rm(dir, { recursive: true, force: true });
});

async function serve(file: string, options: Parameters<typeof fileStorage>[1] = {}) {
  const storage = fileStorage(file, { watch: { interval: 20 }, ...options });
  const store = jsonStore({ storage, initial: {} });
  await store.ready();
  const changes: ChangeEvent[] = [];
  store.on('change', (event) => changes.push(event));
  const server = createServer(store);
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  opened.push({ store, server });
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  return { store, storage: storage as FileStorage, base, changes };
}

const json = { 'content-type': 'application/json' };

describe('fileStorage watch', () => {
  test('an edit is served as a whole-document replacement: new ETag, a change event, journaled so a restart loads it', async () => {
    const file = join(dir, 'edit.json');
    const { base, changes, store } = await serve(file);
    expect((await fetch(`${base}/todo`, { method: 'PUT', headers: json, body: '["a"]' })).status).toBe(201);
    const before = (await fetch(`${base}/`)).headers.get('etag');
    // The write is folded into the file once writes pause; a person edits the file as it is then.
    await eventually('the write folded into the file', async () => JSON.stringify(JSON.parse(await readFile(file, 'utf8'))) === '{"todo":["a"]}');
    await writeFile(file, JSON.stringify({ todo: ['a', 'b by hand'] }, null, 4));
    await eventually('the edit to be served', async () => (await (await fetch(`${base}/todo/1`)).status) === 200);
    expect(await (await fetch(`${base}/`)).json()).toEqual({ todo: ['a', 'b by hand'] });
    expect((await fetch(`${base}/`)).headers.get('etag')).not.toBe(before);
    expect(changes.map((change) => [change.revision, change.origin, change.ops])).toEqual([
      [1, 'local', [{ op: 'add', path: '/todo', value: ['a'] }]],
      [2, 'remote', [{ op: 'replace', path: '', value: { todo: ['a', 'b by hand'] } }]],
    ]);
    // Writes go on from the edit.
    expect((await fetch(`${base}/todo/-`, { method: 'PUT', headers: json, body: '"c"' })).status).toBeLessThan(300);
    await store.close();
    const again = await serve(file);
    expect(await (await fetch(`${again.base}/`)).json()).toEqual({ todo: ['a', 'b by hand', 'c'] });
    expect(again.store.store.revision).toBe(3);
    expect(warnings).toEqual([]);
  });

  test("the store's own writes (first snapshot, compactions, idle folding) never look like an edit", async () => {
    const file = join(dir, 'own.json');
    const { base, changes, storage } = await serve(file, { compactMinSize: 0, compactRatio: 0.01 });
    for (let i = 0; i < 30; i++) expect((await fetch(`${base}/n${i % 3}`, { method: 'PUT', headers: json, body: String(i) })).status).toBeLessThan(300);
    await eventually('compactions to have run', () => storage.stats.compactions > 2);
    // Idle folding puts the whole document in the file; give the watch time to see the file as it is now.
    await eventually('the file to hold every write', async () => JSON.parse(await readFile(file, 'utf8')).n2 === 29);
    // A real edit afterwards: once it is served, the watch has looked at the file after every write of the store.
    await writeFile(file, '{"sentinel":true}');
    await eventually('the sentinel edit to be served', async () => (await (await fetch(`${base}/sentinel`)).status) === 200);
    expect(changes.filter((change) => change.origin === 'remote')).toHaveLength(1);
    expect(changes).toHaveLength(31);
  });

  test('an invalid edit is reported once and ignored; the next valid edit is served', async () => {
    const file = join(dir, 'invalid.json');
    const { base, changes } = await serve(file);
    await fetch(`${base}/a`, { method: 'PUT', headers: json, body: '1' });
    await writeFile(file, '{"a": 2,');
    await eventually('the warning', () => warnings.some((warning) => warning.startsWith('JSONSTORE_EDIT_IGNORED: ignored an edit of')));
    expect(await (await fetch(`${base}/a`)).json()).toBe(1);
    await writeFile(file, '{"a": 3}');
    await eventually('the valid edit', async () => (await (await fetch(`${base}/a`)).json()) === 3);
    expect(warnings.filter((warning) => warning.startsWith('JSONSTORE_EDIT_IGNORED'))).toHaveLength(1);
    expect(changes.map((change) => change.origin)).toEqual(['local', 'remote']);
  });

  test('readOnly: edits are served, nothing is written', async () => {
    const file = join(dir, 'readonly.json');
    await writeFile(file, '{"v":1}');
    const { base } = await serve(file, { readOnly: true });
    expect((await fetch(`${base}/v`, { method: 'PUT', headers: json, body: '2' })).status).toBe(503);
    await writeFile(file, '{"v":"edited"}');
    await eventually('the edit to be served', async () => (await (await fetch(`${base}/v`)).json()) === 'edited');
    const { readdir } = await import('node:fs/promises');
    expect((await readdir(dir)).filter((name) => name.startsWith('readonly.json'))).toEqual(['readonly.json']);
  });

  test('watch is checked like the other options', () => {
    expect(() => fileStorage(join(dir, 'x.json'), { watch: 'yes' as never })).toThrow(/option "watch" must be true, false or \{ interval: milliseconds \}/);
    expect(() => fileStorage(join(dir, 'x.json'), { watch: { interval: 1 } })).toThrow(/option "watch.interval" must be/);
    expect(() => fileStorage(join(dir, 'x.json'), { readOnly: 'no' as never })).toThrow(/option "readOnly" must be true or false/);
  });
});
