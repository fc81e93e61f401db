/**
 * The explorer over plain HTTP: who gets the page (browsers only), what it
 * holds (escaped data, a CSP), and that it is opt-in for the middleware.
 */
import { createServer, type Server } from 'node:http';
import express from 'express';
import request from 'supertest';
import { afterAll, describe, expect, test } from 'vitest';
import { jsonStore } from '../../src/index.js';
import { wantsHtml } from '../../src/explorer/accept.js';

const browserAccept = 'text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8';
const servers: Server[] = [];
afterAll(() => {
  for (const server of servers) server.close();
});

const initial = { '<b>key</b>': '</script><script>alert(1)</script>', list: [1, { "a'\"": '&amp;' }] };

describe('who gets the page', () => {
  test.each([
    [browserAccept, true],
    ['text/html', true],
    ['application/xhtml+xml', true],
    ['text/html;q=0.5, application/json', false],
    ['application/json, text/html;q=0.9', false],
    ['*/*', false],
    ['application/json', false],
    ['text/*', false],
    ['text/html;q=0', false],
    ['', false],
  ])('Accept: %j → page %s', (accept, page) => {
    expect(wantsHtml({ method: 'GET', headers: { accept } } as never)).toBe(page);
  });

  test('no Accept, and methods other than GET and HEAD, never get it', () => {
    expect(wantsHtml({ method: 'GET', headers: {} } as never)).toBe(false);
    expect(wantsHtml({ method: 'POST', headers: { accept: 'text/html' } } as never)).toBe(false);
  });
});

describe('the middleware option', () => {
  test('off by default: a browser gets JSON', async () => {
    const app = express().use('/store', jsonStore({ initial }));
    const reply = await request(app).get('/store/').set('Accept', browserAccept).expect(200);
    expect(reply.headers['content-type']).toBe('application/json; charset=utf-8');
  });

  test('explorer: true — a browser gets the page under the mount path; API clients get JSON with Vary: Accept', async () => {
    const app = express().use('/store', jsonStore({ initial, explorer: true }));
    const page = await request(app).get('/store/list').set('Accept', browserAccept).expect(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(page.headers['vary']).toMatch(/Accept/);
    expect(page.headers['x-content-type-options']).toBe('nosniff');
    const csp = page.headers['content-security-policy'] as string;
    expect(csp).toMatch(/default-src 'none'/);
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)![1]!;
    expect(page.text).toContain(`<script nonce="${nonce}">`);
    // Links lead to each member's own page, under the mount path.
    expect(page.text).toContain('href="/store/list/1/a\'%22"'.replace("'", '&#39;'));
    const data = await request(app).get('/store/list').set('Accept', '*/*').expect(200);
    expect(data.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(data.headers['vary']).toMatch(/Accept/);
    await request(app).head('/store/').set('Accept', browserAccept).expect(200).expect('Content-Type', 'text/html; charset=utf-8');
    // A query asks for data: "this path as JSON" (?pretty) is JSON in the browser too.
    const pretty = await request(app).get('/store/list?pretty').set('Accept', browserAccept).expect(200);
    expect(pretty.headers['content-type']).toBe('application/json; charset=utf-8');
  });

  test('everything from the document is escaped', async () => {
    const server = createServer(jsonStore({ initial, explorer: true }));
    servers.push(server);
    const page = await request(server).get('/').set('Accept', browserAccept).expect(200);
    expect(page.text).toContain('&lt;b&gt;key&lt;/b&gt;');
    expect(page.text).toContain('&quot;&lt;/script&gt;&lt;script&gt;alert(1)&lt;/script&gt;&quot;');
    expect(page.text).not.toContain('<b>key</b>');
    expect(page.text.match(/<script\b/g)).toHaveLength(1);
    // Only the page's own script, whatever the data holds.
    expect(page.text).not.toContain('alert(1)</script>');
  });

  test('a missing path is a 404 page; a host not allowed gets the store\'s 421; readOnly is passed to the page', async () => {
    const app = express().use('/s', jsonStore({ initial, explorer: true, readOnly: true, allowedHosts: ['localhost'] }));
    const missing = await request(app).get('/s/nope').set('Host', 'localhost').set('Accept', browserAccept).expect(404);
    expect(missing.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(missing.text).toContain('Nothing at /nope.');
    const page = await request(app).get('/s/').set('Host', 'localhost').set('Accept', browserAccept).expect(200);
    expect(page.text).toContain('data-read-only="true"');
    const refused = await request(app).get('/s/').set('Host', 'evil.example').set('Accept', browserAccept).expect(421);
    expect(refused.headers['content-type']).toBe('application/problem+json; charset=utf-8');
  });

  test('explorer must be a boolean', () => {
    expect(() => jsonStore({ explorer: 'yes' as never })).toThrow(/option "explorer" must be true or false/);
  });
});
