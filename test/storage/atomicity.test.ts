/**
 * Every write is atomic in memory and in storage. A failure is injected at
 * each step of the write path (plan, apply, the checks after it, respond,
 * the whole-document copy, commit, the change event) on memory, file and
 * Redis storage; afterwards the document served over HTTP (text and ETag),
 * the one in storage, and the one a restarted store loads are exactly what
 * clients were told, and the next write lands on it.
 */
import { afterEach, describe, expect, test, vi } from 'vitest';
import { planPut } from '../../src/document/operations.js';
import type { JsonValue } from '../../src/document/json.js';
import { expectProblem, type Snapshot } from '../http/support.js';
import { describeRedis } from '../redis/helpers.js';
import { removeTempDirs } from './file-support.js';
import {
  acknowledged,
  closeAll,
  expectKept,
  expectKeptAfterRestart,
  filePlace,
  memoryPlace,
  open,
  redisPlace,
  type Faults,
  type Opened,
  type PlaceFactory,
} from './places.js';
import type { JsonStoreOptions } from '../../src/index.js';

afterEach(async () => {
  vi.restoreAllMocks();
  await closeAll();
  await removeTempDirs();
});

const JSON_PATCH = 'application/json-patch+json';
const seed = { a: 1, list: [1, 2, 3], obj: { k: 'v', deep: { x: { y: 1 } } } };

type Options = Omit<JsonStoreOptions, 'storage'>;

interface Scenario {
  name: string;
  options?: Options;
  faults?: Partial<Faults>;
  only?: 'file';
  /** Runs the failing write(s) and checks what the client was told. */
  inject(ctx: Opened): Promise<void>;
  /** Whether the injected write was acknowledged (its change must then be kept). */
  acknowledged?: boolean;
}

const scenarios: Scenario[] = [
  {
    name: 'plan: a precondition fails (If-Match over HTTP; a precondition that throws)',
    async inject(ctx) {
      expectProblem(await ctx.put('/a', 2, { 'If-Match': '"not-the-tag"' }), 412);
      await expect(
        ctx.store.put('/a', 2, {
          precondition: () => {
            throw new Error('injected: precondition');
          },
        }),
      ).rejects.toThrow('injected: precondition');
    },
  },
  {
    name: 'apply: the third operation of a JSON Patch fails',
    async inject(ctx) {
      const patch = [
        { op: 'add', path: '/b', value: 'new' },
        { op: 'remove', path: '/obj/k' },
        { op: 'test', path: '/a', value: 'not 1' },
      ];
      expectProblem(await ctx.patch('/', patch, JSON_PATCH), 409, /JSON Patch operation 2/);
    },
  },
  {
    name: 'apply: a copy passes maxWriteGrowth after earlier operations were applied',
    options: { maxWriteGrowth: 100 },
    async inject(ctx) {
      const patch = [
        { op: 'remove', path: '/a' },
        { op: 'copy', from: '/obj', path: '/c1' },
        { op: 'copy', from: '/obj', path: '/c2' },
        { op: 'copy', from: '/obj', path: '/c3' },
        { op: 'copy', from: '/obj', path: '/c4' },
      ];
      expectProblem(await ctx.patch('/', patch, JSON_PATCH), 413, /maxWriteGrowth/);
    },
  },
  {
    name: 'after apply: the depth check refuses a copy that nests too deep',
    options: { maxDepth: 5 },
    async inject(ctx) {
      const patch = [
        { op: 'add', path: '/b', value: 1 },
        { op: 'copy', from: '/obj', path: '/obj/deep/x/z' },
      ];
      expectProblem(await ctx.patch('/', patch, JSON_PATCH), 400, /maxDepth/);
    },
  },
  {
    name: 'after apply: maxDocumentSize refuses the result',
    options: { maxDocumentSize: 120 },
    async inject(ctx) {
      const patch = [
        { op: 'add', path: '/b', value: 'x'.repeat(40) },
        { op: 'add', path: '/c', value: 'x'.repeat(40) },
      ];
      expectProblem(await ctx.patch('/', patch, JSON_PATCH), 413, /maxDocumentSize/);
    },
  },
  {
    name: 'respond: the respond callback of DocumentStore.write throws after the change is applied',
    async inject(ctx) {
      let applied: JsonValue | undefined;
      await expect(
        ctx.store.store.write(
          (root) => planPut(root, ['obj', 'k'], 'changed'),
          (root) => {
            applied = structuredClone(root);
            throw new Error('injected: respond');
          },
        ),
      ).rejects.toThrow('injected: respond');
      // It did throw after the change was applied, not before.
      expect(applied).toMatchObject({ obj: { k: 'changed' } });
    },
  },
  {
    name: 'commit: copying the whole document for a wholeDocument adapter throws',
    faults: { wholeDocument: true },
    async inject(ctx) {
      const live = await ctx.store.store.read((root) => root);
      const clone = globalThis.structuredClone;
      const copying = vi.spyOn(globalThis, 'structuredClone').mockImplementation((value, options) => {
        if (value === live) throw new RangeError('injected: out of memory copying the document');
        return clone(value, options);
      });
      expectProblem(await ctx.put('/obj/k', 'changed'), 500);
      copying.mockRestore();
      expect(ctx.errors.map(String)).toContain('RangeError: injected: out of memory copying the document');
    },
  },
  {
    name: 'commit: the adapter throws synchronously',
    async inject(ctx) {
      ctx.faults.next = 'throw';
      expectProblem(await ctx.put('/obj/k', 'changed'), 503);
    },
  },
  {
    name: 'commit: the adapter rejects',
    async inject(ctx) {
      ctx.faults.next = 'reject';
      expectProblem(await ctx.patch('/', { a: null, b: [1] }), 503);
    },
  },
  {
    name: 'commit: a commit fails after a later change was pipelined on top of it',
    only: 'file',
    async inject(ctx) {
      ctx.faults.next = 'hold';
      const first = ctx.put('/obj/k', 'first');
      await vi.waitFor(() => expect(ctx.faults.held).toBeDefined(), { timeout: 15_000 });
      const second = ctx.put('/b', 'built on the first');
      expectProblem(await first, 503);
      expectProblem(await second, 503);
    },
  },
  {
    name: 'change event: a listener throws; the write stays committed and is reported',
    acknowledged: true,
    async inject(ctx) {
      ctx.store.on('change', () => {
        throw new Error('injected: change listener');
      });
      expect((await ctx.put('/obj/k', 'changed')).status).toBe(200);
      expect(ctx.errors.map(String)).toContain('Error: injected: change listener');
    },
  },
  {
    name: 'change event: the change listener and the error listener both throw; the write stays committed',
    acknowledged: true,
    async inject(ctx) {
      const logged = vi.spyOn(console, 'error').mockImplementation(() => {});
      const heard: number[] = [];
      ctx.store.on('change', () => {
        throw new Error('injected: change listener');
      });
      ctx.store.on('change', (event) => heard.push(event.revision));
      ctx.store.on('error', () => {
        throw new Error('injected: error listener');
      });
      const reply = await ctx.put('/obj/k', 'changed');
      expect(reply.status).toBe(200);
      // The listener after the one that threw still heard the change.
      expect(heard).toEqual([ctx.store.store.revision]);
      expect(logged.mock.calls.map((call) => call.join(' ')).join('\n')).toContain('injected: error listener');
    },
  },
];

function atomicity(kind: 'memory' | 'file' | 'redis', place: PlaceFactory): void {
  for (const scenario of scenarios) {
    if (scenario.only !== undefined && scenario.only !== kind) continue;
    test(scenario.name, async () => {
      const ctx = await open(await place(), scenario.options, scenario.faults);
      expect((await ctx.put('/', seed)).status).toBe(200);
      const before = await acknowledged(ctx);
      await scenario.inject(ctx);
      let ack: Snapshot;
      if (scenario.acknowledged) {
        ack = await acknowledged(ctx);
        expect(ack.revision).toBe(before.revision + 1);
        expect(ack.text).not.toBe(before.text);
      } else {
        ack = before;
      }
      await expectKept(ctx, ack);
      // The next write lands on the acknowledged document, and is kept with it.
      expect((await ctx.put('/next', 'write')).status).toBe(201);
      const next = await acknowledged(ctx);
      expect(JSON.parse(next.text)).toEqual({ ...(JSON.parse(ack.text) as object), next: 'write' });
      expect(next.revision).toBe(ack.revision + 1);
      await expectKept(ctx, next);
      const restarted = await expectKeptAfterRestart(ctx, next, scenario.options);
      expect((await restarted.put('/after', 'restart')).status).toBe(201);
    });
  }

  test("the issue's scenario: 560 copies of a 1 MB string are refused by maxWriteGrowth, and nothing is kept", async () => {
    const ctx = await open(await place());
    const before = await issueScenario(ctx);
    expectProblem(await ctx.patch('/', copies(560), JSON_PATCH), 413, /maxWriteGrowth/);
    await afterIssueScenario(ctx, before);
  });
}

/** PUT /s with a 1 MB string of control characters (170 000 × \u0001, 6 bytes each as JSON), PUT /arr []. */
async function issueScenario(ctx: Opened): Promise<Snapshot> {
  expect((await ctx.put('/s', '\u0001'.repeat(170_000))).status).toBe(201);
  expect((await ctx.put('/arr', [])).status).toBe(201);
  return acknowledged(ctx);
}

function copies(count: number): unknown[] {
  return Array.from({ length: count }, () => ({ op: 'copy', from: '/s', path: '/arr/-' }));
}

async function afterIssueScenario(ctx: Opened, before: Snapshot, options?: Options): Promise<void> {
  await expectKept(ctx, before);
  expect((await ctx.get('/arr')).text).toBe('[]');
  expect((await ctx.put('/next', 1)).status).toBe(201);
  const next = await acknowledged(ctx);
  await expectKept(ctx, next);
  const restarted = await expectKeptAfterRestart(ctx, next, options);
  expect((await restarted.get('/arr')).text).toBe('[]');
}

describe('memory storage', () => {
  atomicity('memory', async () => memoryPlace());
});

describe('file storage', () => {
  atomicity('file', filePlace);

  // The real failure, with the budgets out of the way: answering needs a string
  // of more than 500 million characters, which JSON.stringify cannot make.
  test("the issue's scenario with budgets raised: the answer cannot be serialized, and the applied change is undone", { timeout: 180_000 }, async () => {
    const options: Options = { maxWriteGrowth: '1gb', maxDocumentSize: '1gb' };
    const ctx = await open(await filePlace(), options);
    const before = await issueScenario(ctx);
    expectProblem(await ctx.patch('/', copies(560), JSON_PATCH), 500);
    expect(ctx.errors.map(String).join('\n')).toMatch(/RangeError: Invalid string length/);
    await afterIssueScenario(ctx, before, options);
  });
});

describeRedis('Redis storage', (env) => {
  let count = 0;
  atomicity('redis', async () => redisPlace(env, `atomic-${++count}`));
});
