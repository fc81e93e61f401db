/**
 * The conformance suite checked against itself: correct reference adapters
 * pass every case, and deliberately broken adapters fail the cases meant to
 * catch them. A suite that cannot fail proves nothing.
 */
import { AssertionError } from 'node:assert';
import { describe, expect, test } from 'vitest';
import { conflictsWith } from '../../src/document/touched-paths.js';
import { applyOperations, RevisionConflictError, type Change, type JsonValue, type StorageAdapter, type StoredDocument } from '../../src/index.js';
import { conformanceCases, storageConformance, type ConformanceCase, type ConformanceSetup } from '../../src/testing/index.js';

// ---- reference adapters ----------------------------------------------------

/** Where a whole-document adapter keeps its bytes: survives its adapters, like a file. */
interface Disk {
  text: string | undefined;
}

interface TextStorageOptions {
  encode?: (stored: StoredDocument) => string;
  decode?: (text: string) => StoredDocument;
  /** Revision to store for a change (a broken adapter counts wrongly). */
  revisionOf?: (change: Change, previous: number) => number;
}

const disks = new WeakMap<StorageAdapter, Disk>();

/** A whole-document adapter writing JSON text to `disk`; the options break it on purpose. */
function textStorage(disk: Disk = { text: undefined }, options: TextStorageOptions = {}): StorageAdapter {
  const encode = options.encode ?? ((stored) => JSON.stringify(stored));
  const decode = options.decode ?? ((text) => JSON.parse(text) as StoredDocument);
  const revisionOf = options.revisionOf ?? ((change) => change.revision);
  let revision = 0;
  const adapter: StorageAdapter = {
    name: 'text',
    capabilities: { wholeDocument: true, persistent: true },
    load() {
      if (disk.text === undefined) return undefined;
      const stored = decode(disk.text);
      revision = stored.revision;
      return stored;
    },
    commit(change) {
      revision = revisionOf(change, revision);
      disk.text = encode({ revision, document: change.document as JsonValue });
    },
  };
  disks.set(adapter, disk);
  return adapter;
}

function diskOf(adapter: StorageAdapter): Disk {
  const disk = disks.get(adapter);
  if (!disk) throw new Error('not a text storage adapter');
  return disk;
}

/** The options that make a `textStorage` variant reopenable. */
function textSetup(options: TextStorageOptions = {}): ConformanceSetup {
  return {
    factory: () => textStorage({ text: undefined }, options),
    reopen: (closed) => textStorage(diskOf(closed), options),
  };
}

/** Storage several "processes" share: a whole document and the log of changes. */
interface SharedDisk {
  document: JsonValue | undefined;
  revision: number;
  log: Change[];
  listeners: Set<(change: Change) => void>;
}

const sharedDisks = new WeakMap<StorageAdapter, SharedDisk>();

function sharedStorage(disk: SharedDisk, options: { conflict?: (revision: number) => Error } = {}): StorageAdapter {
  const conflict = options.conflict ?? ((revision) => new RevisionConflictError(undefined, revision));
  const watching = new Set<(change: Change) => void>();
  const adapter: StorageAdapter = {
    name: 'shared memory',
    capabilities: { shared: true, wholeDocument: true },
    load: () => (disk.document === undefined ? undefined : { document: structuredClone(disk.document), revision: disk.revision }),
    commit(change) {
      if (change.revision !== disk.revision + 1) throw conflict(disk.revision);
      disk.document = structuredClone(change.document as JsonValue);
      disk.revision = change.revision;
      const kept: Change = structuredClone({ revision: change.revision, ops: change.ops });
      disk.log.push(kept);
      // Like a pub/sub feed: later, and to every subscriber (repeats are allowed).
      for (const listener of disk.listeners) setImmediate(() => listener(structuredClone(kept)));
    },
    changesSince: (revision) => structuredClone(disk.log.filter((change) => change.revision > revision)),
    currentRevision: () => disk.revision,
    watch(onChange) {
      disk.listeners.add(onChange);
      watching.add(onChange);
      return () => {
        disk.listeners.delete(onChange);
        watching.delete(onChange);
      };
    },
    close() {
      for (const listener of watching) disk.listeners.delete(listener);
    },
  };
  sharedDisks.set(adapter, disk);
  return adapter;
}

function sharedDiskOf(adapter: StorageAdapter): SharedDisk {
  const disk = sharedDisks.get(adapter);
  if (!disk) throw new Error('not a shared storage adapter');
  return disk;
}

function newSharedDisk(): SharedDisk {
  return { document: undefined, revision: 0, log: [], listeners: new Set() };
}

/**
 * Shared storage that keeps the document and rebases (`capabilities.rebase`,
 * `commitBatch`): a stale change goes in after the ones since when none of
 * those wrote where it writes or reads. It seeds empty storage atomically.
 * Broken on purpose: `checksFirstOnly` checks a batch by its first change's
 * paths alone, `neverRebases` refuses every stale batch, `logsBatchAsOne`
 * logs a batch as one change, `seedOverwrites` seeds whatever is stored.
 */
function rebasingStorage(
  disk: SharedDisk,
  options: { checksFirstOnly?: boolean; neverRebases?: boolean; logsBatchAsOne?: boolean; seedOverwrites?: boolean } = {},
): StorageAdapter {
  const append = (changes: readonly Change[]): Change[] | undefined => {
    const first = changes[0] as Change;
    let missed: Change[] = [];
    if (first.revision !== disk.revision + 1) {
      missed = disk.log.filter((change) => change.revision >= first.revision);
      const checked = options.checksFirstOnly ? [first] : changes;
      const overlaps = checked.some(
        (change) => change.touches === undefined || missed.some((done) => done.touches === undefined || conflictsWith(done.touches.writes, change.touches!)),
      );
      if (options.neverRebases || first.revision > disk.revision + 1 || missed.length !== disk.revision - first.revision + 1 || overlaps) {
        throw new RevisionConflictError(undefined, disk.revision);
      }
    }
    for (const change of changes) {
      const state = { root: structuredClone(disk.document ?? {}) as JsonValue };
      applyOperations(state, change.ops);
      disk.document = state.root;
      disk.revision += 1;
      const joined = options.logsBatchAsOne && change !== first ? [...(disk.log.pop() as Change).ops, ...change.ops] : change.ops;
      const kept: Change = structuredClone({ revision: disk.revision, ops: joined, touches: change.touches ?? { writes: [''], reads: [] } });
      disk.log.push(kept);
      for (const listener of disk.listeners) setImmediate(() => listener(structuredClone({ revision: kept.revision, ops: kept.ops })));
    }
    return missed.length === 0 ? undefined : structuredClone(missed.map(({ revision, ops }) => ({ revision, ops })));
  };
  const base = sharedStorage(disk);
  const adapter: StorageAdapter = {
    ...base,
    name: 'rebasing shared memory',
    capabilities: { shared: true, rebase: true },
    load: () => (disk.document === undefined ? undefined : { document: structuredClone(disk.document), revision: disk.revision }),
    commit(change) {
      return adapter.commitBatch!([change]);
    },
    commitBatch(changes) {
      const landed = disk.revision + 1;
      const missed = append(changes);
      return missed === undefined ? undefined : { revision: landed, missed };
    },
    changesSince: (revision) => structuredClone(disk.log.filter((change) => change.revision > revision).map(({ revision: at, ops }) => ({ revision: at, ops }))),
    seed(document) {
      // Broken: overwrites a document another adapter seeded (not one it committed).
      if (disk.document !== undefined && !(options.seedOverwrites && disk.revision === 0)) return { document: structuredClone(disk.document), revision: disk.revision };
      disk.document = structuredClone(document);
      disk.revision = 0;
      disk.log.length = 0;
      return undefined;
    },
  };
  sharedDisks.set(adapter, disk);
  return adapter;
}

/** Takes overlapping commits and makes them durable a tick later, in order. */
function pipelinedStorage(disk: Disk = { text: undefined }, options: { copy?: boolean } = {}): StorageAdapter {
  const copy = options.copy ?? true;
  let accepted = 0;
  let last: Promise<void> = Promise.resolve();
  const adapter: StorageAdapter = {
    name: 'pipelined',
    capabilities: { pipelining: true, persistent: true },
    load() {
      if (disk.text === undefined) return undefined;
      const stored = JSON.parse(disk.text) as StoredDocument;
      accepted = stored.revision;
      return stored;
    },
    commit(change) {
      if (change.revision !== accepted + 1) throw new Error(`revision ${change.revision} does not follow ${accepted}`);
      accepted = change.revision;
      const kept = copy ? structuredClone(change.ops) : change.ops;
      last = last.then(
        () =>
          new Promise<void>((resolve) => {
            setImmediate(() => {
              const state = { root: (disk.text === undefined ? {} : (JSON.parse(disk.text) as StoredDocument).document) as JsonValue };
              applyOperations(state, structuredClone(kept));
              disk.text = JSON.stringify({ revision: change.revision, document: state.root });
              resolve();
            });
          }),
      );
      return last;
    },
  };
  disks.set(adapter, disk);
  return adapter;
}

// ---- correct adapters pass everything ----------------------------------------

describe('reference adapters pass the whole suite', () => {
  storageConformance({ test, name: 'whole-document text', ...textSetup() });
  storageConformance({
    test,
    name: 'shared memory',
    factory: () => sharedStorage(newSharedDisk()),
    reopen: (closed) => sharedStorage(sharedDiskOf(closed)),
    peer: (adapter) => sharedStorage(sharedDiskOf(adapter)),
  });
  storageConformance({
    test,
    name: 'rebasing shared memory',
    factory: () => rebasingStorage(newSharedDisk()),
    reopen: (closed) => rebasingStorage(sharedDiskOf(closed)),
    peer: (adapter) => rebasingStorage(sharedDiskOf(adapter)),
  });
  storageConformance({
    test,
    name: 'pipelined',
    factory: () => pipelinedStorage(),
    reopen: (closed) => pipelinedStorage(diskOf(closed)),
  });
});

// ---- broken adapters fail the cases meant to catch them ------------------------

function caseNamed(setup: ConformanceSetup, title: string): ConformanceCase {
  const found = conformanceCases(setup).filter((candidate) => candidate.name.includes(title));
  expect(found.map((candidate) => candidate.name)).toHaveLength(1);
  return found[0] as ConformanceCase;
}

async function expectFailure(setup: ConformanceSetup, title: string, message: RegExp): Promise<void> {
  const error = await caseNamed(setup, title).run().then(
    () => undefined,
    (failure: unknown) => failure,
  );
  expect(error, `the case "${title}" passed a broken adapter`).toBeInstanceOf(AssertionError);
  expect((error as Error).message).toMatch(message);
}

/** Turns every `[]` into `{}` on the way to storage, as some JSON encoders do. */
const lossyEncoding: TextStorageOptions = {
  encode: (stored) => JSON.stringify(stored, (_key, value: unknown) => (Array.isArray(value) && value.length === 0 ? {} : value)),
};

/** Rebuilds parsed objects by assignment, so `"__proto__"` sets a prototype instead of a key. */
const protoMangling: TextStorageOptions = {
  decode(text) {
    const rebuild = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(rebuild);
      if (typeof value !== 'object' || value === null) return value;
      const out: Record<string, unknown> = {};
      for (const [key, member] of Object.entries(value)) out[key] = rebuild(member);
      return out;
    };
    return rebuild(JSON.parse(text)) as StoredDocument;
  },
};

/** Counts operations instead of changes. */
const wrongRevision: TextStorageOptions = { revisionOf: (change, previous) => previous + change.ops.length };

/** Writes keys sorted, as a canonical-JSON encoder or a JSONB column would. */
const sortedKeys: TextStorageOptions = {
  encode(stored) {
    const sort = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(sort);
      if (typeof value !== 'object' || value === null) return value;
      const out: Record<string, unknown> = {};
      for (const key of Object.keys(value).sort()) {
        Object.defineProperty(out, key, { value: sort((value as Record<string, unknown>)[key]), enumerable: true, writable: true, configurable: true });
      }
      return out;
    };
    return JSON.stringify(sort(stored));
  },
};

/** Holds each change in a buffer until the next one, and forgets to flush it on close. */
function forgetfulStorage(disk: Disk): StorageAdapter {
  let buffered: string | undefined;
  const adapter: StorageAdapter = {
    capabilities: { wholeDocument: true, persistent: true },
    load: () => (disk.text === undefined ? undefined : (JSON.parse(disk.text) as StoredDocument)),
    commit(change) {
      if (buffered !== undefined) disk.text = buffered;
      buffered = JSON.stringify({ revision: change.revision, document: change.document });
    },
  };
  disks.set(adapter, disk);
  return adapter;
}

/** Logs the changes it is given without copying them, and replays the log on load. */
function referenceKeepingStorage(log: Change[] = []): StorageAdapter {
  const adapter: StorageAdapter = {
    load() {
      if (log.length === 0) return undefined;
      const state = { root: {} as JsonValue };
      for (const change of log) applyOperations(state, structuredClone(change.ops));
      return { document: state.root, revision: log.length };
    },
    commit(change) {
      log.push(change);
    },
  };
  return adapter;
}

/** Applies changes to the document it keeps, and hands that very object to `load` callers. */
function sharingLoadStorage(): StorageAdapter {
  let stored: { root: JsonValue; revision: number } | undefined;
  return {
    load: () => stored && { document: stored.root, revision: stored.revision },
    commit(change) {
      const state = stored ?? { root: {}, revision: 0 };
      applyOperations(state, structuredClone(change.ops));
      state.revision = change.revision;
      stored = state;
    },
  };
}

describe('broken adapters fail', () => {
  test('a lossy JSON encoding that turns [] into {}', async () => {
    await expectFailure(textSetup(lossyEncoding), 'an empty array at the root', /expected array \[\], got object \{\}/);
    await expectFailure(textSetup(lossyEncoding), 'empty objects and arrays nested', /at "\/array" expected array/);
  });

  test('an adapter that forgets the last change when it is reopened', async () => {
    const setup: ConformanceSetup = {
      factory: () => forgetfulStorage({ text: undefined }),
      reopen: (closed) => forgetfulStorage(diskOf(closed)),
    };
    await expectFailure(setup, 'persistence: many small writes survive reopening', /revision 149 after 150 committed/);
    await expectFailure(setup, 'revision: the first change on empty storage', /load\(\) returned nothing after 1 committed/);
  });

  test('an adapter that reports the wrong revision', async () => {
    await expectFailure(textSetup(wrongRevision), 'revision: load().revision is the number of committed changes', /says revision 2 after 1 committed/);
    await expectFailure(textSetup(wrongRevision), 'write kinds: PATCH with a JSON Patch', /says revision 9 after 2 committed/);
  });

  test('an adapter that mangles __proto__ keys', async () => {
    await expectFailure(textSetup(protoMangling), "'__proto__'", /expected the keys .*__proto__/);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });

  test('an adapter whose seed() stores nothing, or keeps the object it was handed', async () => {
    const forgetful = (): ConformanceSetup => ({
      factory: () => {
        const adapter = textStorage();
        return Object.assign(adapter, { seed: () => undefined });
      },
    });
    await expectFailure(forgetful(), 'seed(): on empty storage it stores the document as revision 0', /load\(\) returned nothing/);
    const byReference = (): ConformanceSetup => ({
      factory: () => {
        let kept: StoredDocument | undefined;
        const adapter = textStorage();
        const load = adapter.load.bind(adapter);
        return Object.assign(adapter, {
          load: () => kept ?? load(),
          seed: (document: JsonValue) => {
            kept = { revision: 0, document };
            return undefined;
          },
          commit: (change: Change) => {
            kept = undefined;
            diskOf(adapter).text = JSON.stringify({ revision: change.revision, document: change.document });
          },
        });
      },
    });
    await expectFailure(byReference(), 'seed(): on empty storage it stores the document as revision 0', /a copy, not the object handed over/);
  });

  test('an adapter that sorts keys', async () => {
    await expectFailure(textSetup(sortedKeys), 'key order, exactly as written', /expected the keys \["zulu","alpha","order","beta"\] in this order/);
  });

  test('an adapter whose factory hands out the same storage twice', async () => {
    const disk: Disk = { text: undefined };
    await expectFailure({ factory: () => textStorage(disk) }, 'fresh, independent storage', /factory\(\) must give fresh storage/);
  });

  test('an adapter that keeps the changes it was given by reference', async () => {
    const setup: ConformanceSetup = { factory: () => referenceKeepingStorage() };
    await expectFailure(setup, 'commit keeps copies', /at the root expected the keys \["list","object"\] in this order, got \[\]/);
  });

  test('an adapter whose load() hands out the document it keeps applying changes to', async () => {
    await expectFailure(
      { factory: sharingLoadStorage, reopen: (closed) => closed },
      'a reopened store loads the document and continues',
      /at "\/list" expected an array of 3 elements, got 4/,
    );
  });

  test('a pipelining adapter that keeps the change without copying it before returning', async () => {
    const setup: ConformanceSetup = {
      factory: () => pipelinedStorage({ text: undefined }, { copy: false }),
      reopen: (closed) => pipelinedStorage(diskOf(closed), { copy: false }),
    };
    await expectFailure(setup, 'from copies taken before commit returns', /expected the keys \["n"\] in this order, got \["n","mutated"\]/);
  });

  test('a pipelining adapter that takes a revision out of order', async () => {
    const lax: StorageAdapter = { ...pipelinedStorage(), commit: () => undefined };
    await expectFailure({ factory: () => lax }, 'does not follow the last accepted one', /should have been refused/);
  });

  test('a shared adapter that throws a plain Error at a stale revision', async () => {
    const conflict = (revision: number) => new Error(`stale: storage is at ${revision}`);
    const setup: ConformanceSetup = {
      factory: () => sharedStorage(newSharedDisk(), { conflict }),
      peer: (adapter) => sharedStorage(sharedDiskOf(adapter), { conflict }),
    };
    await expectFailure(setup, 'a commit at a stale revision', /must throw RevisionConflictError .* it threw Error: stale/);
  });

  test('a rebasing adapter whose commitBatch checks only the first change for overlap, or never rebases', async () => {
    for (const [broken, message] of [
      [{ checksFirstOnly: true }, /a batch made at revision 4, its second change overlapping/],
      [{ neverRebases: true }, /overlaps nothing committed since must be appended after it .* it threw RevisionConflictError/],
      [{ logsBatchAsOne: true }, /after a batch of three changes: changesSince\(1\) must list every change/],
    ] as const) {
      const setup: ConformanceSetup = {
        factory: () => rebasingStorage(newSharedDisk(), broken),
        peer: (adapter) => rebasingStorage(sharedDiskOf(adapter), broken),
      };
      await expectFailure(setup, 'commitBatch(): consecutive changes go in together', message);
    }
  });

  test('a shared adapter whose seed() is not atomic: the second of two stores its own document over the first', async () => {
    const setup: ConformanceSetup = {
      factory: () => rebasingStorage(newSharedDisk(), { seedOverwrites: true }),
      peer: (adapter) => rebasingStorage(sharedDiskOf(adapter), { seedOverwrites: true }),
    };
    await expectFailure(setup, 'seed(): when another adapter wrote first', /what a second seed\(\) resolved with/);
  });

  test('a shared adapter registered without the peer option', async () => {
    await expectFailure({ factory: () => sharedStorage(newSharedDisk()) }, 'shared: not declared', /pass the peer option/);
  });

  test('a peer option for an adapter that does not declare shared', async () => {
    await expectFailure({ factory: () => textStorage(), peer: () => textStorage() }, 'shared: declares capabilities.shared', /does not declare capabilities.shared/);
  });

  test('capabilities that are not booleans', async () => {
    const adapter = { ...textStorage(), capabilities: { wholeDocument: 'yes' } } as unknown as StorageAdapter;
    await expectFailure({ factory: () => adapter }, 'capabilities are booleans', /capabilities.wholeDocument must be true or false/);
  });
});

// ---- the harness itself ----------------------------------------------------------

describe('the suite', () => {
  test('closes every adapter it opened and cleans up, also when a case fails', async () => {
    const opened: StorageAdapter[] = [];
    const closed = new Set<StorageAdapter>();
    const cleaned: StorageAdapter[][] = [];
    const tracked = (disk: Disk) => {
      const adapter: StorageAdapter = {
        ...textStorage(disk, lossyEncoding),
        close() {
          expect(closed.has(adapter), 'an adapter was closed twice').toBe(false);
          closed.add(adapter);
        },
      };
      disks.set(adapter, disk);
      opened.push(adapter);
      return adapter;
    };
    const setup: ConformanceSetup = {
      factory: () => tracked({ text: undefined }),
      reopen: (adapter) => tracked(diskOf(adapter)),
      cleanup: (adapters) => void cleaned.push(adapters),
    };
    await expect(caseNamed(setup, 'an empty array at the root').run()).rejects.toThrow(AssertionError);
    expect(opened.length).toBeGreaterThanOrEqual(2);
    expect(opened.every((adapter) => closed.has(adapter))).toBe(true);
    expect(cleaned).toEqual([opened]);
  });

  test('fails a case whose adapter cannot close', async () => {
    const setup: ConformanceSetup = {
      factory: () => ({
        ...textStorage(),
        close() {
          throw new Error('the handle is gone');
        },
      }),
    };
    await expect(caseNamed(setup, 'empty storage loads undefined').run()).rejects.toThrow(/Closing the adapters .*the handle is gone/);
  });

  test('prefixes every test name with the name option', () => {
    const names: string[] = [];
    storageConformance({ test: (name) => void names.push(name), name: 'prefix', factory: () => textStorage() });
    expect(names.length).toBeGreaterThan(20);
    expect(names.every((name) => name.startsWith('prefix: '))).toBe(true);
    expect(names).toContain('prefix: persistence: SKIPPED, no reopen option (storage that does not outlive its adapter)');
    expect(new Set(names).size).toBe(names.length);
  });

  test('checks its options when called, naming the bad one', () => {
    const test = () => undefined;
    const factory = () => textStorage();
    const call = (options: unknown) => () => storageConformance(options as Parameters<typeof storageConformance>[0]);
    expect(call(undefined)).toThrow(new TypeError('storageConformance(): options must be an object such as { test, factory }, got undefined'));
    expect(call({ factory })).toThrow(/option "test" must be the test runner's test function/);
    expect(call({ test })).toThrow(/option "factory" must be a function/);
    expect(call({ test, factory, name: 3 })).toThrow(/option "name" must be a string/);
    expect(call({ test, factory, reopen: true })).toThrow(/option "reopen" must be a function/);
    expect(call({ test, factory, peer: {} })).toThrow(/option "peer" must be a function/);
    expect(call({ test, factory, cleanup: 'rm' })).toThrow(/option "cleanup" must be a function/);
    expect(call({ test, factory, reopn: () => undefined })).toThrow(/unknown option "reopn"/);
    expect(() => conformanceCases({ factory, reopen: 1 } as unknown as ConformanceSetup)).toThrow(/conformanceCases\(\): option "reopen" must be a function/);
    // The same options object works for both.
    expect(conformanceCases({ test, factory } as ConformanceSetup).length).toBeGreaterThan(20);
  });
});
