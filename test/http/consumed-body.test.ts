/**
 * Stores mounted after middleware that reads request bodies: what reaches
 * the store is checked, and what cannot be used is refused with a detail
 * that says how to mount the store.
 */
import type http from 'node:http';
import express from 'express';
import express4 from 'express4';
import { afterEach, describe, expect, test } from 'vitest';
import { closeServers, hosts, serve, type Host, type Middleware } from './hosts.js';
import { expectProblem, expectUnchanged, snapshot } from './support.js';

afterEach(closeServers);

function jsonParser(host: Host): Middleware {
  return (host.framework === 'express4' ? express4.json() : express.json()) as unknown as Middleware;
}

/** A middleware that reads the body for itself (a logger, a signature check) and leaves nothing on the request. */
const drain: Middleware = (req: http.IncomingMessage, _res, next) => {
  req.resume();
  req.on('end', () => next());
};

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

  test('a body another middleware consumed without parsing is a 500 that says how to mount the store', async () => {
    const ctx = await serve(host, { initial: { a: 1 } }, { before: [drain] });
    const before = await snapshot(ctx);
    const errors: unknown[] = [];
    ctx.store.on('error', (error) => errors.push(error));
    const reply = await ctx.put('/a', 2);
    expectProblem(reply, 500, /consumed by another middleware.*Mount the store before that middleware \(app\.use\('\/store', jsonStore\(\)\) first/);
    expect(errors).toHaveLength(1);
    await expectUnchanged(ctx, before);
  });
});
