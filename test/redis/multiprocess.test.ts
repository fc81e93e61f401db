/**
 * Four server processes, each a real HTTP server with its own Redis client,
 * on one Redis key, with clients spread across them: no increment is lost,
 * and a write through one process is read back at once through another.
 * The processes run test/redis/fixtures/server.mjs on the built dist/.
 */
import { expect, test } from 'vitest';
import { describeRedis, fetchJson, type RedisTestEnv, type ServerProcess } from './helpers.js';

const processCount = 4;

async function startServers(env: RedisTestEnv, key: string, initial: unknown): Promise<ServerProcess[]> {
  return Promise.all(Array.from({ length: processCount }, () => env.server({ key, initial })));
}

describeRedis('redisStorage: several server processes on one key', (env) => {
  test('concurrent increments through four processes: the count equals the increments that succeeded', async () => {
    const servers = await startServers(env, env.key('counter'), { count: 0 });
    const clients = 8;
    const incrementsPerClient = 15;
    let succeeded = 0;
    let conflicts = 0;

    // Half the clients guard with a JSON Patch `test` (409 when stale), half
    // with If-Match (412 when stale); every request goes to the next process.
    const client = async (index: number) => {
      let turn = index;
      const next = () => (servers[turn++ % servers.length] as ServerProcess).url;
      for (let done = 0; done < incrementsPerClient; ) {
        const read = await fetchJson(`${next()}/count`);
        expect(read.status).toBe(200);
        const current = read.body as number;
        const useTest = index % 2 === 0;
        const response = useTest
          ? await fetch(`${next()}/count`, {
              method: 'PATCH',
              headers: { 'content-type': 'application/json-patch+json' },
              body: JSON.stringify([
                { op: 'test', path: '', value: current },
                { op: 'replace', path: '', value: current + 1 },
              ]),
            })
          : await fetch(`${next()}/count`, {
              method: 'PUT',
              headers: { 'content-type': 'application/json', 'if-match': read.etag ?? '' },
              body: JSON.stringify(current + 1),
            });
        await response.arrayBuffer();
        if (response.ok) {
          succeeded += 1;
          done += 1;
        } else if (response.status === (useTest ? 409 : 412)) {
          conflicts += 1;
        } else {
          throw new Error(`unexpected ${response.status} from an increment`);
        }
      }
    };
    await Promise.all(Array.from({ length: clients }, (_, index) => client(index)));

    expect(succeeded).toBe(clients * incrementsPerClient);
    for (const server of servers) {
      const final = await fetchJson(`${server.url}/count`);
      expect(final.body).toBe(succeeded);
    }
    // Not a requirement, but without contention the test proves little.
    console.log(`[redis multi-process] ${succeeded} increments, ${conflicts} refused as stale and retried`);
  });

  test('a write through one process is read back at once through any other', async () => {
    const servers = await startServers(env, env.key('read-your-writes'), { value: 0, list: [] });
    for (let i = 1; i <= 40; i++) {
      const writer = servers[i % servers.length] as ServerProcess;
      const reader = servers[(i + 1 + (i % 3)) % servers.length] as ServerProcess;
      const put = await fetch(`${writer.url}/value`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(i) });
      expect(put.status).toBe(200);
      await put.arrayBuffer();
      const post = await fetch(`${writer.url}/list`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ i }) });
      expect(post.status).toBe(201);
      await post.arrayBuffer();
      expect((await fetchJson(`${reader.url}/value`)).body).toBe(i);
      expect(((await fetchJson(`${reader.url}/list`)).body as unknown[]).length).toBe(i);
    }
  });

  test('awkward values written through one process come back exactly through the others', async () => {
    const servers = await startServers(env, env.key('http-fidelity'), {});
    const text =
      '{"emptyArray":[],"emptyObject":{},"max":9007199254740991,"small":1e-7,"unicode":{"ключ":"значение","🔑":"🎉"},"a/b":{"~":"~1"},"nested":[[],{},[[]]]}';
    const put = await fetch(`${servers[0]!.url}/`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: text });
    expect(put.ok).toBe(true);
    await put.arrayBuffer();
    for (const server of servers.slice(1)) {
      const response = await fetch(`${server.url}/`);
      expect(JSON.stringify(await response.json())).toBe(JSON.stringify(JSON.parse(text)));
      const member = await fetchJson(`${server.url}/a%2Fb/~`);
      expect(member.body).toBe('~1');
    }
  });
});
