/**
 * Stores mounted after middleware that reads request bodies: what reaches
 * the store is checked (a body consumed without a parsed value: see
 * safety.test.ts).
 */
import express from 'express';
import express4 from 'express4';
import { afterEach, describe, test } from 'vitest';
import { closeServers, hosts, serve, type Host, type Middleware } from './hosts.js';
import { expectProblem, expectUnchanged, snapshot } from './support.js';

afterEach(closeServers);

function jsonParser(host: Host): Middleware {
  return (host.framework === 'express4' ? express4.json() : express.json()) as unknown as Middleware;
}

describe.each(hosts.filter((host) => host.framework !== 'node'))('$name', (host) => {
  test('an empty body that express.json() read as {} is refused, not stored over the target', async () => {
    const ctx = await serve(host, { initial: { a: { keep: 1 } } }, { before: [jsonParser(host)] });
    const before = await snapshot(ctx);
    for (const method of ['PUT', 'POST', 'PATCH']) {
      const reply = await ctx.request(method, '/a', { body: '', headers: { 'Content-Type': 'application/json' } });
      expectProblem(reply, 400, /^The request body is empty; send a JSON value .*A body parser before the store \(such as express.json\(\)\) read it as \{\}/);
    }
    await expectUnchanged(ctx, before);
  });
});
