/**
 * What one conformance case works with: it opens adapters and stores through
 * here, so that every adapter is closed and cleaned up when the case ends,
 * whether it passed or failed.
 */
import assert from 'node:assert/strict';
import type { JsonValue } from '../document/json.js';
import { jsonStore, type JsonStore } from '../json-store.js';
import type { StorageAdapter, StoredDocument } from '../storage/types.js';
import type { ConformanceSetup } from './options.js';

/** One opening of an adapter; `reopen` may hand back the same object again. */
interface Opening {
  adapter: StorageAdapter;
  /** The store that owns the adapter: closing it closes the adapter. */
  store: JsonStore | undefined;
  closed: boolean;
}

export interface StoreOptions {
  initial?: JsonValue;
  readConsistency?: 'strong' | 'local';
}

export class CaseContext {
  readonly setup: ConformanceSetup;
  /** Errors the stores reported (they would otherwise go to the console). */
  readonly storeErrors: unknown[] = [];
  private readonly openings: Opening[] = [];
  /** For each store read back through `reopen`, the adapter its data lives on now. */
  private readonly successors = new Map<JsonStore, StorageAdapter>();

  constructor(setup: ConformanceSetup) {
    this.setup = setup;
  }

  get canReopen(): boolean {
    return this.setup.reopen !== undefined;
  }

  /** A new adapter on fresh, empty storage. */
  async open(): Promise<StorageAdapter> {
    return this.track(await this.setup.factory(), 'factory()');
  }

  /** Closes `adapter` (through its store, if one owns it) and opens a new adapter on its data. */
  async reopen(adapter: StorageAdapter): Promise<StorageAdapter> {
    const reopen = this.setup.reopen;
    assert.ok(reopen, 'this case needs the reopen option');
    await this.release(adapter);
    return this.track(await reopen(adapter), 'reopen()');
  }

  /** A second adapter on the same data, open at the same time. */
  async peer(adapter: StorageAdapter): Promise<StorageAdapter> {
    const peer = this.setup.peer;
    assert.ok(peer, 'this case needs the peer option');
    return this.track(await peer(adapter), 'peer()');
  }

  /**
   * A store on `adapter`, which it then owns. `storage` is what the store
   * talks to, when that is a wrapper around `adapter` (closing it must close
   * `adapter`).
   */
  storeOn(adapter: StorageAdapter, options: StoreOptions = {}, storage: StorageAdapter = adapter): JsonStore {
    const opening = this.liveOpening(adapter);
    assert.ok(opening, 'the adapter is closed');
    assert.equal(opening.store, undefined, 'the adapter already serves a store');
    const store = jsonStore({ storage, ...options });
    store.on('error', (error) => this.storeErrors.push(error));
    opening.store = store;
    return store;
  }

  /** A store on a new adapter on fresh storage, loaded. */
  async newStore(options: StoreOptions = {}): Promise<{ store: JsonStore; adapter: StorageAdapter }> {
    const adapter = await this.open();
    const store = this.storeOn(adapter, options);
    await store.ready();
    return { store, adapter };
  }

  /** The adapter that holds the data `store` wrote, most recently opened. */
  latestAdapter(store: JsonStore): StorageAdapter {
    const successor = this.successors.get(store);
    if (successor) return successor;
    const opening = this.openings.find((candidate) => candidate.store === store);
    assert.ok(opening, 'the store was not opened by this case');
    return opening.adapter;
  }

  /**
   * What storage holds after `store`'s writes. With `reopen`: closes the
   * store, reopens the data on a new adapter, loads it and closes that
   * adapter again, so this is what another process would find. Without:
   * `load()` on the live adapter.
   */
  async readBack(store: JsonStore): Promise<StoredDocument | undefined> {
    const adapter = this.latestAdapter(store);
    const { stored, current } = await this.readBackAdapter(adapter);
    if (current !== adapter) this.successors.set(store, current);
    return stored;
  }

  /** As `readBack`, for an adapter used without a store; `current` is the adapter now holding the data. */
  async readBackAdapter(adapter: StorageAdapter): Promise<{ stored: StoredDocument | undefined; current: StorageAdapter }> {
    if (!this.canReopen) return { stored: (await adapter.load()) ?? undefined, current: adapter };
    const reopened = await this.reopen(adapter);
    try {
      return { stored: (await reopened.load()) ?? undefined, current: reopened };
    } finally {
      await this.release(reopened);
    }
  }

  /** A store on the data `store` wrote, on a reopened adapter; without `reopen`, `store` itself. */
  async continueStore(store: JsonStore, options: StoreOptions = {}): Promise<JsonStore> {
    if (!this.canReopen) return store;
    const next = await this.reopen(this.latestAdapter(store));
    const reopened = this.storeOn(next, options);
    await reopened.ready();
    return reopened;
  }

  /** Closes the live opening of `adapter`, through its store if it has one. No-op when closed. */
  async release(adapter: StorageAdapter): Promise<void> {
    const opening = this.liveOpening(adapter);
    if (opening) await this.closeOpening(opening);
  }

  async closeStore(store: JsonStore): Promise<void> {
    const opening = this.openings.find((candidate) => candidate.store === store && !candidate.closed);
    if (opening) await this.closeOpening(opening);
  }

  /**
   * Ends the case: closes whatever is still open (newest first), then hands
   * every adapter to `cleanup`. Returns the errors that raised, so a failing
   * case still reports its own failure first.
   */
  async finish(): Promise<unknown[]> {
    const errors: unknown[] = [];
    for (const opening of [...this.openings].reverse()) {
      if (opening.closed) continue;
      try {
        await this.closeOpening(opening);
      } catch (error) {
        errors.push(error);
      }
    }
    if (this.setup.cleanup) {
      const adapters = [...new Set(this.openings.map((opening) => opening.adapter))];
      try {
        await this.setup.cleanup(adapters);
      } catch (error) {
        errors.push(error);
      }
    }
    return errors;
  }

  private async closeOpening(opening: Opening): Promise<void> {
    // Marked first: a close that throws must not be retried by `finish`.
    opening.closed = true;
    if (opening.store) await opening.store.close();
    else await opening.adapter.close?.();
  }

  private liveOpening(adapter: StorageAdapter): Opening | undefined {
    for (let i = this.openings.length - 1; i >= 0; i--) {
      const opening = this.openings[i] as Opening;
      if (opening.adapter === adapter && !opening.closed) return opening;
    }
    return undefined;
  }

  private track(adapter: StorageAdapter, source: string): StorageAdapter {
    if (typeof adapter !== 'object' || adapter === null) {
      assert.fail(`${source} returned ${adapter === null ? 'null' : typeof adapter}, not a storage adapter object`);
    }
    this.openings.push({ adapter, store: undefined, closed: false });
    return adapter;
  }
}
