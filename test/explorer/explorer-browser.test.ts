/**
 * The explorer page in headless Chromium (playwright-core with the system's
 * chromium), against the jsonstore command as a user runs it: open, expand,
 * edit a value with the keyboard, see another client's change appear, see a
 * conflict reported, and the page without JavaScript. Screenshots go to
 * test-artifacts/ (not committed).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const root = resolve(import.meta.dirname, '../..');
const cli = join(root, 'dist/cli.js');
const artifacts = join(root, 'test-artifacts');
const executablePath = process.env['CHROMIUM_PATH'] ?? '/usr/bin/chromium';
const json = { 'content-type': 'application/json' };

let browser: Browser | undefined;
let child: ChildProcess | undefined;
let dir: string;
let base: string;

const initial = {
  posts: [
    { id: 1, title: 'hello', tags: ['a', 'b'] },
    { id: 2, title: '<img src=x onerror=alert(1)>', draft: true },
  ],
  '<script>alert("key")</script>': { nested: { deeper: null } },
};

beforeAll(async () => {
  if (!existsSync(executablePath)) throw new Error(`the explorer test needs Chromium at ${executablePath} (set CHROMIUM_PATH)`);
  await mkdir(artifacts, { recursive: true });
  dir = await mkdtemp(join(tmpdir(), 'jsonstore-explorer-'));
  await writeFile(join(dir, 'db.json'), JSON.stringify(initial));
  child = spawn(process.execPath, [cli, '--memory', '--initial', 'db.json', '--port', '0', '--quiet'], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
  base = await new Promise<string>((resolveBase, reject) => {
    let out = '';
    child!.stdout!.on('data', (chunk) => {
      out += chunk;
      const match = /at (http:\/\/\S+?)\/?(?:\s|$)/.exec(out);
      if (match) resolveBase(match[1]!);
    });
    child!.on('exit', (code) => reject(new Error(`jsonstore exited with ${code}: ${out}`)));
  });
  browser = await chromium.launch({ executablePath, args: ['--no-sandbox', '--disable-gpu'] });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  child?.kill('SIGTERM');
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A page that fails the test on any dialog (an injected alert would open one) or script error. */
async function openPage(path: string, javaScriptEnabled = true, beforeOpening?: (page: Page) => Promise<unknown>): Promise<{ page: Page; problems: string[] }> {
  const context = await browser!.newContext({ javaScriptEnabled });
  const page = await context.newPage();
  await beforeOpening?.(page);
  const problems: string[] = [];
  page.on('dialog', (dialog) => {
    problems.push(`dialog: ${dialog.message()}`);
    void dialog.dismiss();
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error' && !/Failed to load resource|EventSource/.test(message.text())) problems.push(`console: ${message.text()}`);
  });
  await page.goto(`${base}${path}`);
  return { page, problems };
}

describe('the explorer page in Chromium', () => {
  test('open, expand, edit a value with the keyboard, and see another client\'s change appear', { timeout: 120_000 }, async () => {
    const { page, problems } = await openPage('/');
    await expect.poll(() => page.locator('#live').textContent()).toMatch(/^live/);
    await page.screenshot({ path: join(artifacts, 'explorer-1-opened.png'), fullPage: true });

    // Top-level members start open; the posts themselves start closed. Expand the first one.
    const firstPost = page.locator('summary[data-focus-key="/posts/0:toggle"]');
    await firstPost.focus();
    await page.keyboard.press('Enter');
    const edit = page.getByRole('button', { name: 'Edit /posts/0/title' });
    await edit.waitFor();
    await page.screenshot({ path: join(artifacts, 'explorer-2-expanded.png'), fullPage: true });

    // Edit with the keyboard only: the button, then the input it focuses, then Enter.
    await edit.focus();
    await page.keyboard.press('Enter');
    const input = page.getByRole('textbox', { name: 'New JSON value for /posts/0/title' });
    await expect.poll(() => page.evaluate('document.activeElement && document.activeElement.getAttribute("aria-label")')).toBe('New JSON value for /posts/0/title');
    void input;
    await page.keyboard.press('Control+A');
    await page.keyboard.type('"edited in the browser"');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#status').textContent()).toBe('Saved /posts/0/title.');
    expect(await (await fetch(`${base}/posts/0/title`)).json()).toBe('edited in the browser');
    await page.screenshot({ path: join(artifacts, 'explorer-3-edited.png'), fullPage: true });

    // Another client changes the document: the page shows it without a reload.
    expect((await fetch(`${base}/posts/0/title`, { method: 'PUT', headers: json, body: '"changed by another client"' })).status).toBe(200);
    await expect.poll(() => page.locator('li', { hasText: 'title' }).first().textContent(), { timeout: 20_000 }).toContain('"changed by another client"');
    await page.screenshot({ path: join(artifacts, 'explorer-4-live.png'), fullPage: true });

    // Add and delete go through the API too.
    const tagsToggle = page.locator('summary[data-focus-key="/posts/0/tags:toggle"]');
    await tagsToggle.click();
    await page.getByRole('button', { name: 'Add a member to /posts/0/tags' }).click();
    await page.getByRole('textbox', { name: 'JSON value of the new member' }).fill('"c"');
    await page.keyboard.press('Enter');
    await expect.poll(async () => (await fetch(`${base}/posts/0/tags`)).json()).toEqual(['a', 'b', 'c']);
    await page.getByRole('button', { name: 'Delete /posts/0/tags/0' }).click();
    await expect.poll(async () => (await fetch(`${base}/posts/0/tags`)).json()).toEqual(['b', 'c']);

    // Document keys and values with markup are text, never markup.
    await expect.poll(() => page.getByText('<script>alert("key")</script>').count()).toBe(1);
    expect(problems).toEqual([]);
    await page.context().close();
  });

  test('a burst of changes: at most one GET of the value in flight, and the page ends at the last value', { timeout: 120_000 }, async () => {
    expect([200, 201]).toContain((await fetch(`${base}/burst`, { method: 'PUT', headers: json, body: '{"n":0}' })).status);
    const context = await browser!.newContext();
    // Counted in the page itself: the page's GETs from the call of fetch until its answer is in.
    await context.addInitScript(`
      var counts = (window.loadCounts = { inFlight: 0, most: 0, loads: 0 });
      var original = window.fetch.bind(window);
      window.fetch = function (input, init) {
        if (init && init.method && init.method !== 'GET') return original(input, init);
        counts.loads++;
        counts.most = Math.max(counts.most, ++counts.inFlight);
        return original(input, init).finally(function () { counts.inFlight--; });
      };
    `);
    const page = await context.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    await page.goto(`${base}/burst`);
    await expect.poll(() => page.locator('#live').textContent()).toMatch(/^live/);
    const writes = 60;
    for (let n = 1; n <= writes; n++) {
      expect((await fetch(`${base}/burst/n`, { method: 'PUT', headers: json, body: String(n) })).status).toBe(200);
    }
    await expect.poll(() => page.locator('#tree').textContent(), { timeout: 20_000 }).toContain(String(writes));
    const counts = (await page.evaluate('window.loadCounts')) as { inFlight: number; most: number; loads: number };
    expect(counts.loads).toBeGreaterThan(1);
    expect(counts.most).toBe(1);
    expect(problems).toEqual([]);
    await context.close();
  });

  test('a change made meanwhile by someone else is a 412 the page shows, then it shows the latest; bad JSON is refused', { timeout: 120_000 }, async () => {
    // The page checks for changes with conditional GETs (on each event of its stream, the first one
    // included). Once `hold` is set they are answered "not modified", so its view stays as loaded.
    let hold = false;
    let checksOnTheirWay = 0;
    const { page, problems } = await openPage('/posts/1', true, (page) =>
      page.route('**/*', async (route) => {
        const request = route.request();
        if (request.method() !== 'GET' || request.headers()['if-none-match'] === undefined) return route.continue();
        if (hold) return route.fulfill({ status: 304 });
        checksOnTheirWay += 1;
        try {
          await route.fulfill({ response: await route.fetch() });
        } finally {
          checksOnTheirWay -= 1;
        }
      }),
    );
    await expect.poll(() => page.locator('#live').textContent()).toMatch(/^live/);
    hold = true;
    // A check sent before (the stream's first event sets one off) could reach the store after the change below.
    await expect.poll(() => checksOnTheirWay, { timeout: 30_000 }).toBe(0);
    expect((await fetch(`${base}/posts/1/draft`, { method: 'PUT', headers: json, body: 'false' })).status).toBe(200);
    await page.getByRole('button', { name: 'Edit /draft' }).click();
    const input = page.getByRole('textbox', { name: 'New JSON value for /draft' });
    await input.fill('not json');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#status').textContent()).toMatch(/^Not saved: that is not JSON/);
    await input.fill('"published"');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#status').textContent()).toMatch(/^Not saved: someone else changed this since it was loaded/);
    await expect.poll(() => page.locator('#tree').textContent()).toContain('draft: false');
    await page.screenshot({ path: join(artifacts, 'explorer-5-conflict.png'), fullPage: true });
    expect(await (await fetch(`${base}/posts/1/draft`)).json()).toBe(false);
    expect(problems).toEqual([]);
    await page.context().close();
  });

  test('without JavaScript: a read-only tree of nested details, markup in the data shown as text', { timeout: 60_000 }, async () => {
    const { page, problems } = await openPage('/', false);
    expect(await page.locator('details').count()).toBeGreaterThan(3);
    expect(await page.getByRole('button').count()).toBe(0);
    // Top-level members start open, deeper ones closed; a summary opens them.
    expect(await page.locator('a.k', { hasText: 'nested' }).isVisible()).toBe(true);
    expect(await page.locator('a.k', { hasText: 'deeper' }).isVisible()).toBe(false);
    await page.locator('summary', { hasText: 'nested' }).click();
    await expect.poll(() => page.locator('a.k', { hasText: 'deeper' }).isVisible()).toBe(true);
    expect(await page.locator('#tree').textContent()).toContain('"<img src=x onerror=alert(1)>"');
    await page.screenshot({ path: join(artifacts, 'explorer-6-no-javascript.png'), fullPage: true });
    expect(problems).toEqual([]);
    await page.context().close();
  });
});

