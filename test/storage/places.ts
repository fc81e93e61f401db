/**
 * One document in each kind of real storage (memory, a file, Redis), served
 * over HTTP by stores that can be closed and reopened on it; an adapter
 * wrapper that fails on demand; and the checks that what a client was told
 * is exactly what the store serves, what the storage holds, and what a
 * restarted store loads.
 */
import { join } from 'node:path';
import { expect } from 'vitest';
import type { JsonStoreOptions } from '../../src/index.js';
import { fileStorage } from '../../src/storage/file.js';
import { memoryStorage } from '../../src/storage/memory.js';
import { redisStorage } from '../../src/storage/redis.js';
import type { Change, StorageAdapter, StoredDocument } from '../../src/storage/types.js';
import { closeServers, hosts, serve, type Served } from '../http/hosts.js';
import { snapshot, type Snapshot } from '../http/support.js';
import type { RedisTestEnv } from '../redis/helpers.js';
import { crashImage, tempDir } from './file-support.js';

export type PlaceKind = 'memory' | 'file' | 'redis';

/** Where one document lives; every adapter made here sees the same data. */
export interface Place {
  readonly kind: PlaceKind;
  adapter(): Promise<StorageAdapter>;
  /** What the storage holds right now, as a fresh adapter loads it (a file: from a copy, as a crash would leave it). */
  stored(): Promise<StoredDocument | undefined>;
}

export function memoryPlace(): Place {
  const storage = memoryStorage();
  return { kind: 'memory', adapter: async () => storage, stored: async () => storage.load() };
}

export async function filePlace(): Promise<Place> {
  const dir = await tempDir();
  const file = join(dir, 'store.json');
  let images = 0;
  return {
    kind: 'file',
    // No compaction while open: a restart replays the journal line by line.
    adapter: async () => fileStorage(file, { compactRatio: Number.POSITIVE_INFINITY }),
    async stored() {
      const image = crashImage(file, join(dir, `image-${++images}`));
      const storage = fileStorage(image);
      try {
        return await storage.load();
      } finally {
        await storage.close?.();
      }
    },
  };
}

export function redisPlace(env: RedisTestEnv, label: string): Place {
  const key = env.key(label);
  return {
    kind: 'redis',
    adapter: async () => redisStorage({ client: await env.client(), key }),
    async stored() {
      const storage = redisStorage({ client: await env.client(), key, follow: false });
      try {
        return await storage.load();
      } finally {
        await storage.close?.();
      }
    },
  };
}

export type PlaceFactory = () => Promise<Place>;

/** Failures the wrapped adapter produces on its next commit. */
export interface Faults {
  /** `throw`: commit throws synchronously; `reject`: it rejects; `hold`: it settles only when the next change arrives, then rejects. */
  next: 'throw' | 'reject' | 'hold' | undefined;
  /** Declare `wholeDocument`, so the engine copies the document for each commit. */
  wholeDocument: boolean;
  /** A held commit, until the next one arrives. */
  held: ((error: Error) => void) | undefined;
  /** Revisions handed on to the real adapter. */
  passed: number[];
}

/** The real adapter, with failures switched on by the test before a write. */
export function faulty(real: StorageAdapter, faults: Faults): StorageAdapter {
  const wrapped: StorageAdapter = {
    name: real.name,
    capabilities: { ...real.capabilities, ...(faults.wholeDocument ? { wholeDocument: true } : {}) },
    load: () => real.load(),
    commit(change: Change) {
      const held = faults.held;
      faults.held = undefined;
      held?.(new Error('injected: this commit failed after a later change was handed over'));
      const fault = faults.next;
      faults.next = undefined;
      if (fault === 'throw') throw new Error('injected: commit threw');
      if (fault === 'reject') return Promise.reject(new Error('injected: commit rejected'));
      if (fault === 'hold') return new Promise<void>((_resolve, reject) => (faults.held = reject));
      faults.passed.push(change.revision);
      return real.commit(change);
    },
    close: async () => {
      await real.close?.();
    },
  };
  if (real.changesSince) wrapped.changesSince = (revision) => real.changesSince!(revision);
  if (real.currentRevision) wrapped.currentRevision = () => real.currentRevision!();
  if (real.watch) wrapped.watch = (onChange, onError) => real.watch!(onChange, onError);
  return wrapped;
}

export interface Opened extends Served {
  place: Place;
  faults: Faults;
  /** What the store reported on `error`. */
  errors: unknown[];
  close(): Promise<void>;
}

const express5 = hosts.find((host) => host.framework === 'express5' && host.base === '/store')!;
const opened = new Set<Opened>();

/** A store on `place` (through the failure wrapper), served by Express 5 at /store on a real socket. */
export async function open(place: Place, options: Omit<JsonStoreOptions, 'storage'> = {}, faults: Partial<Faults> = {}): Promise<Opened> {
  const allFaults: Faults = { next: undefined, wholeDocument: false, held: undefined, passed: [], ...faults };
  const served = await serve(express5, { ...options, storage: faulty(await place.adapter(), allFaults) });
  const errors: unknown[] = [];
  served.store.on('error', (error) => errors.push(error));
  await served.store.ready();
  const ctx: Opened = { ...served, place, faults: allFaults, errors, close: () => served.store.close() };
  opened.add(ctx);
  return ctx;
}

/** Closes every store and server opened since the last call (use in afterEach). */
export async function closeAll(): Promise<void> {
  const stores = [...opened];
  opened.clear();
  await closeServers();
  for (const ctx of stores) await ctx.close().catch(() => {});
}

/** What the client was last told: the document's exact text, its ETag, the revision. */
export function acknowledged(ctx: Opened): Promise<Snapshot> {
  return snapshot(ctx);
}

/**
 * The store serves exactly what was acknowledged (text, key order, ETag,
 * revision), and the storage holds exactly that at that revision.
 */
export async function expectKept(ctx: Opened, ack: Snapshot): Promise<void> {
  expect(await snapshot(ctx)).toEqual(ack);
  const stored = await ctx.place.stored();
  expect({ revision: stored?.revision, text: JSON.stringify(stored?.document) }).toEqual({ revision: ack.revision, text: ack.text });
}

/**
 * After a restart the document is exactly what was acknowledged: the store is
 * closed and a new one opened on the same storage (for Redis, another store
 * on the key is checked first, while this one still runs). Returns the new store.
 */
export async function expectKeptAfterRestart(ctx: Opened, ack: Snapshot, options: Omit<JsonStoreOptions, 'storage'> = {}): Promise<Opened> {
  if (ctx.place.kind === 'redis') {
    const other = await open(ctx.place, options);
    expect(await snapshot(other)).toEqual(ack);
    await other.close();
  }
  await ctx.close();
  const again = await open(ctx.place, options);
  expect(await snapshot(again)).toEqual(ack);
  return again;
}
