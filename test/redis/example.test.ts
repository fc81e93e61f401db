/**
 * examples/cluster/server.mjs runs as its README says: several processes
 * behind one port (Node's cluster module), one document through Redis.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { request } from 'node:http';
import { resolve } from 'node:path';
import { expect, test } from 'vitest';
import { describeRedis, eventually } from './helpers.js';

const example = resolve(import.meta.dirname, '../../examples/cluster/server.mjs');

/** One request on a connection of its own: Node's cluster module hands out connections, not requests. */
function send(url: string, method = 'GET', body?: string): Promise<{ status: number; servedBy: string; body: unknown }> {
  return new Promise((resolveResponse, reject) => {
    const req = request(url, { method, agent: false, headers: body === undefined ? {} : { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString()));
      res.on('end', () => resolveResponse({ status: res.statusCode ?? 0, servedBy: String(res.headers['x-served-by']), body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describeRedis('examples/cluster', (env) => {
  test('two processes on one port serve one document', async () => {
    const child = spawn(process.execPath, [example], {
      env: { ...process.env, REDIS_URL: env.url, WORKERS: '2', PORT: '0', STORE_KEY: env.key('example') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    env.defer(async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    });
    const base = await eventually('the example to listen', () => /listening on (http:\/\/\S+)/.exec(output)?.[1]);

    const servedBy = new Set<string>();
    for (let i = 0; i < 12; i++) {
      const written = await send(`${base}/notes`, 'POST', JSON.stringify(`note ${i}`));
      expect(written.status, output).toBe(201);
      // The read may land on the other process: it must see every note so far.
      const read = await send(`${base}/notes`);
      expect((read.body as string[]).length).toBe(i + 1);
      servedBy.add(written.servedBy).add(read.servedBy);
    }
    expect(servedBy.size).toBe(2);

    // SIGTERM: the processes finish and close, and the primary exits.
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    expect(code, output).toBe(0);
    expect(output).not.toMatch(/could not load/);
  });
});
