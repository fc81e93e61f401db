/**
 * examples/live: the server runs as a user would start it (on the built
 * package); its page, in headless Chromium, follows the document with
 * EventSource, and after a server restart (file storage, same port)
 * reconnects with Last-Event-ID and catches up.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, afterEach, describe, expect, test } from 'vitest';
import { chromium, type Browser } from 'playwright-core';
import { SseClient } from '../support/sse-client.js';
import { eventually } from '../support/wait.js';

const root = resolve(import.meta.dirname, '../..');
const chromiumPath = '/usr/bin/chromium';
const running: ChildProcess[] = [];
const folders: string[] = [];
let browser: Browser | undefined;

afterEach(async () => {
  for (const child of running.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
});
afterAll(async () => {
  await browser?.close();
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});

interface Example {
  url: string;
  child: ChildProcess;
  output(): string;
}

function start(env: Record<string, string>): Promise<Example> {
  const child = spawn(process.execPath, [resolve(root, 'examples/live/server.mjs')], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running.push(child);
  let out = '';
  return new Promise((resolveStart, reject) => {
    child.stdout!.on('data', (chunk) => {
      out += chunk;
      const match = /listening on (http:\/\/\S+?)\/?\n/.exec(out);
      if (match) resolveStart({ url: match[1]!, child, output: () => out });
    });
    child.stderr!.on('data', (chunk) => (out += chunk));
    child.on('exit', (code) => reject(new Error(`examples/live/server.mjs exited with ${code}: ${out}`)));
  });
}

async function stop(example: Example): Promise<void> {
  const exited = once(example.child, 'exit');
  example.child.kill('SIGTERM');
  await exited;
}

const json = { 'content-type': 'application/json' };

describe('examples/live', () => {
  test('serves its page, and the store at /store streams changes', async () => {
    const example = await start({ PORT: '0' });
    const page = await fetch(`${example.url}/`);
    expect(page.headers.get('content-type')).toMatch(/text\/html/);
    expect(await page.text()).toContain("new EventSource('/store/')");
    const stream = await SseClient.open(`${example.url}/store/items`);
    await stream.waitForMessages(1);
    expect(stream.messages[0]).toMatchObject({ event: 'put', path: '/', data: ['bread'] });
    expect((await fetch(`${example.url}/store/items`, { method: 'POST', headers: json, body: '"milk"' })).status).toBe(201);
    await stream.waitForMessages(2);
    expect(stream.messages[1]).toMatchObject({ event: 'put', path: '/1', data: 'milk' });
  });

  test.skipIf(!existsSync(chromiumPath))('in Chromium: the page follows writes, and catches up after a server restart with Last-Event-ID', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'jsonstore-live-example-'));
    folders.push(folder);
    // Port 0 for the first start (a port picked ahead could be taken by another
    // test meanwhile); the restart reuses the port the first server got.
    const env = { PORT: '0', STORE_FILE: join(folder, 'live.json') };
    let example = await start(env);
    env.PORT = new URL(example.url).port;
    browser = await chromium.launch({ executablePath: chromiumPath });
    const page = await browser.newPage();
    await page.goto(`${example.url}/`);
    const shown = async () => JSON.parse((await page.textContent('#document')) || 'null') as unknown;
    await eventually('the first value on the page', async () => JSON.stringify(await shown()) === JSON.stringify({ title: 'Shopping', items: ['bread'] }));

    expect((await fetch(`${example.url}/store/title`, { method: 'PUT', headers: json, body: '"Groceries"' })).status).toBe(200);
    expect((await fetch(`${example.url}/store/items`, { method: 'POST', headers: json, body: '"milk"' })).status).toBe(201);
    await eventually('the page updated', async () => JSON.stringify(await shown()) === JSON.stringify({ title: 'Groceries', items: ['bread', 'milk'] }));
    const seenRevision = await page.getAttribute('#document', 'data-revision');
    expect(seenRevision).toMatch(/^\d+$/);

    // Restart: the page's stream gets cancel, the server stops, another starts on the same port and file.
    await stop(example);
    example = await start(env);
    // Changes the page has not seen yet (it may reconnect before or after them).
    for (const item of ['eggs', 'tea', 'jam']) {
      expect((await fetch(`${example.url}/store/items`, { method: 'POST', headers: json, body: JSON.stringify(item) })).status).toBe(201);
    }
    await fetch(`${example.url}/store/`, { method: 'PATCH', headers: { 'content-type': 'application/merge-patch+json' }, body: '{"title":"Weekly","note":"by Friday"}' });
    const expected = await (await fetch(`${example.url}/store/`)).json();
    await eventually('the page caught up', async () => JSON.stringify(await shown()) === JSON.stringify(expected), 30_000);
    // It reconnected with the id of the last event it had applied.
    expect(example.output()).toContain(`stream /store/ last-event-id ${seenRevision}`);
    await page.close();
  }, 90_000);
});
