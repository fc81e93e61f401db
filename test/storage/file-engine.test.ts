/**
 * fileStorage() replaying what the engine wrote: many removals from one
 * large object, JSON Patch on "" below the root, and refusals that must not
 * reach the journal. Through real HTTP on real files; replay is read from a
 * crash image (a clean close would fold the journal into the snapshot).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { JsonValue } from '../../src/index.js';
import { crashImage, expectProblem, faultyFileSystem, filesOf, journalLines, newFaults, removeTempDirs, serve, tempDir, type Served } from './file-support.js';

afterAll(removeTempDirs);

const JSON_PATCH = 'application/json-patch+json';

async function textOf(served: Served): Promise<string> {
  const response = await served.http.get('/store/');
  expect(response.status).toBe(200);
  return response.text;
}

/** Starts a store on what the files hold right now, as after a crash, and returns its document's text. */
async function textAfterCrash(file: string, dir: string, name: string): Promise<string> {
  const image = crashImage(file, join(dir, name));
  const reopened = await serve(image, { compactRatio: Number.POSITIVE_INFINITY });
  try {
    return await textOf(reopened);
  } finally {
    await reopened.close();
  }
}

function bigObject(): Record<string, JsonValue> {
  const big: Record<string, JsonValue> = {};
  for (let i = 0; i < 20_000; i++) big[`k${i}`] = i % 3 === 0 ? { n: i } : i;
  big['5'] = 'five';
  return big;
}

describe('journal replay', () => {
  test('900 removals from a 20 000-key object, with re-adds and moves, replay to the same text; a refused one leaves no trace', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const faults = newFaults();
    const served = await serve(file, { compactRatio: Number.POSITIVE_INFINITY, fs: faultyFileSystem(faults) }, { big: bigObject(), other: {} });
    // A first write before the ones measured here.
    await served.http.put('/store/first').set('Content-Type', 'application/json').send('true').expect(201);

    const removals: Record<string, JsonValue> = {};
    for (let i = 0; i < 900; i++) removals[`k${i * 21}`] = null;
    removals['5'] = null;
    removals['added'] = 'last';
    await served.http.patch('/store/big').set('Content-Type', 'application/merge-patch+json').send(removals).expect(200);
    await served.http
      .patch('/store/')
      .set('Content-Type', JSON_PATCH)
      .send([
        { op: 'remove', path: '/big/k1' },
        { op: 'add', path: '/big/k1', value: 'back, last' },
        { op: 'move', from: '/big/k2', path: '/big/k2-renamed' },
        { op: 'move', from: '/big/k4', path: '/other/k4' },
        { op: 'replace', path: '/big/k5', value: 'replaced' },
        { op: 'remove', path: '/big/k5' },
      ])
      .expect(200);
    const text = await textOf(served);
    const keys = Object.keys((JSON.parse(text) as { big: object }).big);
    expect(keys).toHaveLength(20_001 - 901 + 1 - 2);
    expect(keys.slice(-3)).toEqual(['added', 'k1', 'k2-renamed']);

    faults.sync = 1;
    const refusal: Record<string, JsonValue> = {};
    for (let i = 0; i < 900; i++) refusal[`k${i * 21 + 1}`] = null;
    expectProblem(await served.http.patch('/store/big').set('Content-Type', 'application/merge-patch+json').send(refusal), 503);
    expect(await textOf(served)).toBe(text);

    expect(await textAfterCrash(file, dir, 'crash')).toBe(text);
    await served.close();
  });

  test('JSON Patch on "" below the root is journaled as applied and replays to the same document', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const served = await serve(file, { compactRatio: Number.POSITIVE_INFINITY }, { a: [{ x: { y: 1 } }, 'gone', { k: [1] }, 'end'] });
    await served.http.put('/store/first').set('Content-Type', 'application/json').send('true').expect(201);
    const patch = (path: string, ops: unknown[]) => served.http.patch(`/store${path}`).set('Content-Type', JSON_PATCH).send(ops);
    expect((await patch('/a/0', [{ op: 'add', path: '', value: { x: { y: 2 }, z: 0 } }])).text).toBe('{"x":{"y":2},"z":0}');
    expect((await patch('/a/0', [{ op: 'move', from: '/x', path: '' }])).text).toBe('{"y":2}');
    expect((await patch('/a/2', [{ op: 'copy', from: '/k', path: '' }])).text).toBe('[1]');
    expect((await patch('/a/1', [{ op: 'remove', path: '' }])).status).toBe(204);
    const text = await textOf(served);
    expect(text).toBe('{"a":[{"y":2},[1],"end"],"first":true}');
    // Every change is one journal line (the first write's too: the snapshot holds initial); replaying them gives the same text.
    expect(journalLines(file).filter((line) => line.includes('"ops"'))).toHaveLength(5);
    expect(await textAfterCrash(file, dir, 'crash')).toBe(text);
    await served.close();
  });

  test('a number out of range and a path deeper than maxDepth are refused before anything reaches the journal', async () => {
    const dir = await tempDir();
    const file = join(dir, 'store.json');
    const served = await serve(file, { compactRatio: Number.POSITIVE_INFINITY }, { a: 1 });
    await served.http.put('/store/first').set('Content-Type', 'application/json').send('true').expect(201);
    const journal = readFileSync(filesOf(file).journal);
    const text = await textOf(served);

    expectProblem(await served.http.put('/store/n').set('Content-Type', 'application/json').send('{"v":[1e400]}'), 400, 'The number at /v/0 in the request body is out of range');
    expectProblem(
      await served.http.patch('/store/').set('Content-Type', JSON_PATCH).send('[{"op":"add","path":"/n","value":-1e400}]'),
      400,
      'The number at /0/value in the request body is out of range',
    );
    expectProblem(await served.http.put('/store' + '/d'.repeat(2000)).send({ x: 1 }), 400, 'The path has 2000 segments');

    expect(readFileSync(filesOf(file).journal)).toEqual(journal);
    expect(await textOf(served)).toBe(text);
    expect(await textAfterCrash(file, dir, 'crash')).toBe(text);
    await served.close();
  });
});
