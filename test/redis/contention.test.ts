/**
 * Many writers, one document (issue 13): four server processes on one Redis
 * key, 500 PATCHes through each, as fast as they are answered. Half
 * increment one shared counter with a JSON Patch `test` + `replace` (the
 * client reads again and retries on 409/412), half increment a leaf of the
 * process' own. No write may be refused with 503, the final values must be
 * exact, and every process must serve the same document with the same ETags.
 * The processes run test/redis/fixtures/server.mjs on the built dist/.
 */
import { Agent, request as httpRequest } from 'node:http';
import { afterAll, expect, test } from 'vitest';
import { describeRedis, type ServerProcess } from './helpers.js';

const processCount = 4;
const patchesPerProcess = 500;
const sharedPerProcess = patchesPerProcess / 2;
const ownPerProcess = patchesPerProcess - sharedPerProcess;

// node:http with kept-alive connections: half the client CPU of fetch, which matters with 4 servers on 2 cores.
const agent = new Agent({ keepAlive: true, maxSockets: 16 });
afterAll(() => agent.destroy());

interface Answer {
  status: number;
  etag: string | undefined;
  text: string;
}

function send(url: string, method = 'GET', body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = body === undefined ? {} : { 'content-type': 'application/json-patch+json', 'content-length': Buffer.byteLength(body) };
    const req = httpRequest(url, { method, agent, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, etag: res.headers.etag, text }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

interface Tally {
  /** PATCHes answered 2xx. */
  done: number;
  /** Answered 409 or 412: the value changed since it was read; read again and retry. */
  stale: number;
  /** Any other status, with what the body said (503s land here). */
  refused: string[];
}

/**
 * Increments the number at `path` through `server` `times` times, each
 * with `test` + `replace` on the value it last saw: the answer to a PATCH
 * carries the new value, a 409/412 sends it to read the value again.
 */
async function increment(server: ServerProcess, path: string, times: number, tally: Tally): Promise<void> {
  const url = `${server.url}${path}`;
  let current: number | undefined;
  while (tally.done < times) {
    if (current === undefined) {
      const read = await send(url);
      if (read.status !== 200) throw new Error(`GET ${path} answered ${read.status}: ${read.text}`);
      current = JSON.parse(read.text) as number;
    }
    const patch = JSON.stringify([
      { op: 'test', path: '', value: current },
      { op: 'replace', path: '', value: current + 1 },
    ]);
    const response = await send(url, 'PATCH', patch);
    const text = response.text;
    if (response.status === 200) {
      tally.done += 1;
      current = JSON.parse(text) as number;
    } else if (response.status === 409 || response.status === 412) {
      tally.stale += 1;
      current = undefined;
    } else {
      tally.refused.push(`${response.status} ${text}`);
      // Keep going: the test reports every refusal, not only the first.
      current = undefined;
      if (tally.refused.length > 20) throw new Error(`PATCH ${path} keeps being refused: ${tally.refused.slice(0, 3).join(' | ')}`);
    }
  }
}

describeRedis('redisStorage: four processes writing one document flat out', (env) => {
  test(`${processCount} processes x ${patchesPerProcess} PATCHes, half on one shared counter: no 503, exact values, one document everywhere`, async () => {
    const key = env.key('contention');
    const leaves = Object.fromEntries(Array.from({ length: processCount }, (_, i) => [`p${i}`, 0]));
    const initial = { counter: 0, leaves };
    const servers = await Promise.all(Array.from({ length: processCount }, () => env.server({ key, initial })));

    const shared: Tally[] = servers.map(() => ({ done: 0, stale: 0, refused: [] }));
    const own: Tally[] = servers.map(() => ({ done: 0, stale: 0, refused: [] }));
    await Promise.all(
      servers.flatMap((server, i) => [
        increment(server, '/counter', sharedPerProcess, shared[i] as Tally),
        increment(server, `/leaves/p${i}`, ownPerProcess, own[i] as Tally),
      ]),
    );

    const refused = [...shared, ...own].flatMap((tally) => tally.refused);
    expect(refused, 'writes refused other than as stale').toEqual([]);
    // Nobody else writes a process' own leaf, so its `test` never fails.
    expect(own.map((tally) => tally.stale)).toEqual(servers.map(() => 0));

    const expected = { counter: processCount * sharedPerProcess, leaves: Object.fromEntries(servers.map((_, i) => [`p${i}`, ownPerProcess])) };
    const documents = await Promise.all(servers.map((server) => send(`${server.url}/`)));
    const counters = await Promise.all(servers.map((server) => send(`${server.url}/counter`)));
    for (const [i, document] of documents.entries()) {
      expect(document.status).toBe(200);
      expect(JSON.parse(document.text), `the document through process ${i}`).toEqual(expected);
      // Same bytes, so the same ETag: member order included.
      expect(document.text).toBe(documents[0]?.text);
      expect(document.etag).toBeDefined();
      expect(document.etag).toBe(documents[0]?.etag);
      expect(counters[i]?.etag).toBe(counters[0]?.etag);
    }
    const stale = shared.reduce((sum, tally) => sum + tally.stale, 0);
    console.log(`[redis contention] ${processCount * patchesPerProcess} PATCHes, ${stale} answered 409/412 on the shared counter and retried by the client, 0 refused`);
  }, 120_000);
});
