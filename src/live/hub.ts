/**
 * The live updates of one store: turns each `change` into events for the
 * subscribers of the paths it touched, and starts new subscriptions with
 * the current value or a catch-up from `Last-Event-ID`.
 *
 * Where event values come from: an event must carry the value *at its
 * revision*. A store that commits one change at a time (memory storage:
 * `pipelinesWrites` false) has its working document at exactly that
 * revision while the `change` listeners run, so the hub reads the values
 * there, encodes them at once and keeps no copy ("direct"). Outside a
 * listener the working document may hold a change still in flight, so the
 * hub reads it only when the store's revision is that of the last event
 * ("in sync"), else waits for that. A store that pipelines (file storage)
 * or commits groups (Redis) may already hold later changes when an event goes out: for it the hub
 * keeps a copy of the committed document that follows the `change` events
 * ("copy"), only while someone subscribes.
 */
import type { DocumentState } from '../document/apply.js';
import { followOperation } from './copy.js';
import { cloneJson, type JsonValue } from '../document/json.js';
import type { PatchOperation } from '../document/patch-types.js';
import { toPath, type Path } from '../document/path.js';
import type { ChangeEvent, DocumentStore } from '../document-store.js';
import { JsonStoreError, StorageError } from '../errors.js';
import type { StorageAdapter } from '../storage/types.js';
import { eventsFor, formatEvent, fullPut, type LiveEvent, type LiveMessage } from './events.js';
import type { ResolvedLiveOptions } from './options.js';
import { changesSinceInStorage, RecentChanges, touchesOfChanges, type StoredChanges } from './replay.js';
import { PathRegistry, type PathNode } from './subscriptions.js';
import { touchedByChange } from './touches.js';

const noBytes = Buffer.alloc(0);

/** The events of one revision for one subscribed path, shared by all its subscribers. */
export class LiveBatch {
  private bytes: Buffer | undefined;
  constructor(
    readonly revision: number,
    readonly events: readonly LiveEvent[],
  ) {}

  /**
   * As Server-Sent Events bytes, encoded once for all the path's streams,
   * which all write this same Buffer. The events may hold the store's own
   * values, which later writes change in place: read them (call this)
   * while the batch is being delivered, never later.
   */
  sse(): Buffer {
    if (this.bytes === undefined) {
      let text = '';
      for (const event of this.events) text += formatEvent(event, this.revision);
      this.bytes = text === '' ? noBytes : Buffer.from(text);
    }
    return this.bytes;
  }
}

/** Where a subscription's events go: an SSE stream or a `subscribe()` listener. */
export interface LiveSink {
  /** The subscription is set up: `first` brings a new client to the current value (empty: it is up to date). */
  start(first: LiveBatch): void;
  deliver(batch: LiveBatch): void;
  /** The server ends the subscription (store closing, …): say why, release. */
  cancel(reason: string): void;
}

/** What `subscribe()` returns. */
export interface LiveHandle {
  /** Resolves once the first events were handed to the sink; rejects when the subscription could not start. */
  readonly started: Promise<void>;
  /** Ends the subscription; safe to call more than once. */
  unsubscribe(): void;
}

/** One subscription, also its own handle (a class, not closures: 10 000 idle streams hold 10 000 of these). */
class Subscription implements LiveHandle {
  node: PathNode<Subscription> | undefined = undefined;
  active = true;
  started: Promise<void> = Promise.resolve();

  constructor(
    private readonly hub: LiveHub,
    readonly path: Path,
    readonly sink: LiveSink,
  ) {}

  unsubscribe(): void {
    this.hub.release(this);
  }
}

export interface LiveStats {
  /** Streams and listeners subscribed (starting ones included). */
  subscriptions: number;
  /** Distinct subscribed paths. */
  paths: number;
}

/** Work that must read the document at the hub's revision: run once the hub is in sync, or told why not. */
interface Waiter {
  ready(): void;
  failed(error: unknown): void;
}

export class LiveHub {
  private readonly registry = new PathRegistry<Subscription>();
  /** Subscriptions counted against the limit: registered and starting. */
  private count = 0;
  /** Read the store's working document (true) or keep a copy (false): see the top of this file. */
  private readonly direct: boolean;
  /** Copy mode: the copy of the committed document, while anyone subscribes. */
  private copy: DocumentState | undefined;
  /** The revision of the last event: what the document the hub reads is at. `undefined`: not known yet. */
  private published: number | undefined;
  private starting: Promise<void> | undefined;
  /** Copy mode: changes that arrive while the copy is being made. */
  private buffered: ChangeEvent[] | undefined;
  private listening = false;
  private closed = false;
  private readonly history: RecentChanges;
  /** Direct mode only (copy mode never queues): work waiting for the store to be in sync. */
  private waiters: Waiter[] = [];
  private polling = false;

  constructor(
    private readonly store: DocumentStore,
    private readonly adapter: StorageAdapter,
    readonly options: ResolvedLiveOptions,
  ) {
    this.history = new RecentChanges(options.history);
    this.direct = !store.pipelinesWrites;
  }

  get stats(): LiveStats {
    let paths = 0;
    const seen = new Set<Path>();
    for (const subscription of this.registry.all()) {
      if (subscription.node !== undefined && !seen.has(subscription.node.path)) {
        seen.add(subscription.node.path);
        paths++;
      }
    }
    return { subscriptions: this.count, paths };
  }

  get subscriptions(): number {
    return this.count;
  }

  /**
   * Subscribes `sink` to `path`. Throws at once (503) past `maxSubscriptions`
   * or once the store is closed. `since`: the client's `Last-Event-ID`.
   */
  subscribe(path: Path, sink: LiveSink, since?: number): LiveHandle {
    if (this.closed) throw new StorageError('The store is closed');
    if (this.count >= this.options.maxSubscriptions) {
      throw new JsonStoreError(
        'subscription-limit',
        `This server already serves ${this.options.maxSubscriptions} live subscriptions, its limit; close streams you no longer need, or try again later`,
        { headers: { 'Retry-After': '5' } },
      );
    }
    const subscription = new Subscription(this, path, sink);
    this.count++;
    const started = this.start(subscription, since).catch((error: unknown) => {
      this.release(subscription);
      throw error;
    });
    // The caller may not wait: a failure must not be an unhandled rejection.
    started.catch(() => {});
    subscription.started = started;
    return subscription;
  }

  /** `mw.subscribe(path, listener)`: the same events for server code, each with its revision. */
  listen(path: string | readonly string[] | undefined, listener: (message: LiveMessage) => void, onError: (error: unknown) => void): () => void {
    const segments = toPath(path);
    let handle: LiveHandle | undefined;
    const send = (batch: LiveBatch) => {
      for (const event of batch.events) {
        // Listeners get their own copies: the events hold the document's values.
        try {
          listener({ event: event.event, path: event.path, data: cloneJson(event.data), revision: batch.revision });
        } catch (error) {
          onError(error);
        }
      }
    };
    handle = this.subscribe(segments, {
      start: send,
      deliver: send,
      cancel: (reason) => {
        handle?.unsubscribe();
        try {
          listener({ event: 'cancel', path: '/', data: reason, revision: this.published ?? this.store.revision });
        } catch (error) {
          onError(error);
        }
      },
    });
    handle.started.catch(onError);
    return () => handle?.unsubscribe();
  }

  /**
   * Hands `send` the whole value at a subscribed path as one batch (a slow
   * stream's fresh start): at once, or once the store is in sync; never when
   * the hub stops following the store meanwhile.
   */
  current(path: Path, send: (batch: LiveBatch) => void): void {
    this.whenInSync({ ready: () => send(new LiveBatch(this.published as number, [fullPut(this.root(), path)])), failed: () => {} });
  }

  /** Ends every subscription with `cancel` and refuses new ones. */
  close(reason = 'the store is closing'): void {
    if (this.closed) return;
    this.closed = true;
    for (const subscription of [...this.registry.all()]) {
      this.release(subscription);
      subscription.sink.cancel(reason);
    }
  }

  private async start(subscription: Subscription, since: number | undefined): Promise<void> {
    await this.follow();
    if (!subscription.active) return;
    let stored: StoredChanges | undefined;
    if (since !== undefined) {
      // A hint only (the revision may move on before the end): whether the recent history lacks what the client missed.
      await new Promise<void>((resolve, reject) => this.whenInSync({ ready: resolve, failed: reject }));
      if (!subscription.active) return;
      const revision = this.published;
      if (revision !== undefined && since <= revision && this.history.since(since, revision) === undefined) {
        stored = await changesSinceInStorage(this.adapter, since);
        if (!subscription.active) return;
      }
    }
    await new Promise<void>((resolve, reject) =>
      this.whenInSync({
        ready: () => {
          try {
            this.finishStart(subscription, since, stored);
            resolve();
          } catch (error) {
            reject(error);
          }
        },
        // Released meanwhile: nothing to start.
        failed: (error) => (subscription.active ? reject(error) : resolve()),
      }),
    );
  }

  /** The first events and the registration, in one synchronous step while in sync: nothing can change between them. */
  private finishStart(subscription: Subscription, since: number | undefined, stored: StoredChanges | undefined): void {
    if (!subscription.active) return;
    // The store closed while this one was starting: the stream is refused like any request then.
    if (this.closed) throw new StorageError('The store is closed');
    const revision = this.published as number;
    const root = this.root();
    let first: LiveBatch | undefined;
    if (since !== undefined && since <= revision) {
      let touched = this.history.since(since, revision);
      if (touched === undefined && stored !== undefined) {
        // Changes since storage answered are in the recent history (it is kept while anyone subscribes).
        const rest = stored.through >= revision ? [] : this.history.since(stored.through, revision);
        touched = rest === undefined ? undefined : [...touchesOfChanges(stored.changes, root), ...rest];
      }
      if (touched !== undefined) first = new LiveBatch(revision, eventsFor(subscription.path, touched, root));
    }
    first ??= new LiveBatch(revision, [fullPut(root, subscription.path)]);
    subscription.node = this.registry.add(subscription.path, subscription);
    subscription.sink.start(first);
  }

  /** Ends a subscription (its `unsubscribe()`); safe to call more than once. */
  release(subscription: Subscription): void {
    if (!subscription.active) return;
    subscription.active = false;
    this.count--;
    if (subscription.node !== undefined) this.registry.remove(subscription.node, subscription);
    if (this.count === 0 && this.starting === undefined) this.stopFollowing();
  }

  // ---- following the store --------------------------------------------------

  /** The document at `published`; only while in sync. */
  private root(): JsonValue {
    return this.direct ? this.store.peekWorkingDocument() : (this.copy as DocumentState).root;
  }

  /** Whether the document the hub reads is at `published`. */
  private inSync(): boolean {
    if (!this.direct) return this.copy !== undefined;
    return this.listening && this.published !== undefined && this.store.revision === this.published;
  }

  private whenInSync(waiter: Waiter): void {
    if (this.inSync()) {
      waiter.ready();
      return;
    }
    // Copy mode is in sync whenever it has a copy; no copy after \`follow()\` means the hub started afresh
    // (resync): nothing would ever wake a waiter, so fail now and let the client reconnect.
    if (!this.direct) {
      waiter.failed(new StorageError('live: the server lost track of the document; reconnect'));
      return;
    }
    this.waiters.push(waiter);
    this.poll();
  }

  private runWaiters(): void {
    if (this.waiters.length === 0 || !this.inSync()) return;
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.ready();
  }

  /**
   * Direct mode, with work waiting: a read resolves once the changes in
   * flight are saved (their events went out) or undone (no event: the
   * store's revision falls back to the last one published).
   */
  private poll(): void {
    if (this.polling || !this.listening) return;
    this.polling = true;
    this.store.read(() => this.store.revision).then(
      (seen) => {
        this.polling = false;
        // Nothing published since the hub started listening: the store is at what the read saw.
        if (this.listening && this.published === undefined && this.store.revision === seen) this.published = seen;
        this.runWaiters();
        if (this.waiters.length > 0) setImmediate(() => this.poll());
      },
      (error: unknown) => {
        this.polling = false;
        this.failWaiters(error);
      },
    );
  }

  private failWaiters(error: unknown): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter.failed(error);
  }

  /** Starts following the store's changes, if not yet: direct mode listens, copy mode makes the copy. */
  private follow(): Promise<void> {
    if (!this.direct) return this.ensureCopy();
    if (!this.listening) {
      this.published = undefined;
      this.history.clear();
      this.store.on('change', this.onChange);
      this.listening = true;
    }
    return Promise.resolve();
  }

  private stopFollowing(): void {
    this.stopListening();
    this.copy = undefined;
    this.published = undefined;
    this.history.clear();
    this.failWaiters(new StorageError('live: nobody subscribes any more'));
  }

  /** Copy mode: makes the copy of the committed document if there is none, following changes from now on. */
  private ensureCopy(): Promise<void> {
    if (this.copy !== undefined) return Promise.resolve();
    if (this.starting !== undefined) return this.starting;
    this.buffered = [];
    this.store.on('change', this.onChange);
    this.listening = true;
    this.starting = (async () => {
      try {
        // What a read returns is durable: its revision is that of the copy.
        const copy = await this.store.read((root) => ({ root: cloneJson(root), revision: this.store.revision }));
        this.copy = { root: copy.root };
        this.published = copy.revision;
        this.history.clear();
        const buffered = this.buffered ?? [];
        this.buffered = undefined;
        for (const event of buffered) if (event.revision > copy.revision) this.followOnCopy(event);
      } catch (error) {
        this.buffered = undefined;
        this.stopListening();
        throw error;
      } finally {
        this.starting = undefined;
      }
    })();
    const starting = this.starting;
    // Everyone left while the copy was made.
    starting.then(() => {
      if (this.count === 0) this.stopFollowing();
    }, () => {});
    return starting;
  }

  private stopListening(): void {
    if (!this.listening) return;
    this.store.off('change', this.onChange);
    this.listening = false;
  }

  private onChange = (event: ChangeEvent): void => {
    if (this.direct) {
      this.followDirect(event);
      return;
    }
    if (this.buffered !== undefined) {
      // Kept past this call: the values may be the engine's and change later.
      this.buffered.push({ revision: event.revision, ops: cloneJson(event.ops as unknown as JsonValue) as unknown as PatchOperation[], origin: event.origin });
      return;
    }
    if (this.copy !== undefined) this.followOnCopy(event);
  };

  /** Direct mode: the working document is at the event's revision now (the store commits one change at a time). */
  private followDirect(event: ChangeEvent): void {
    if (this.store.revision !== event.revision) {
      // Cannot happen without pipelining; if it does, everyone starts afresh.
      this.resync();
      return;
    }
    const root = this.store.peekWorkingDocument();
    let touched: Path[];
    try {
      touched = touchedByChange(root, event.ops);
    } catch {
      this.resync();
      return;
    }
    this.published = event.revision;
    this.history.push(event.revision, touched);
    this.fanOut(event.revision, touched, root);
    this.runWaiters();
  }

  /** Copy mode: follows one committed change on the copy and sends its events. */
  private followOnCopy(event: ChangeEvent): void {
    const state = this.copy as DocumentState;
    const touched: Path[] = [];
    try {
      for (const op of event.ops) followOperation(state, op, touched);
    } catch {
      // Cannot happen for changes the engine committed; if it does, everyone starts afresh.
      this.resync();
      return;
    }
    this.published = event.revision;
    this.history.push(event.revision, touched);
    this.fanOut(event.revision, touched, state.root);
  }

  /** Sends one change's events to the subscribers it concerns (none: no work beyond the trie walk). */
  private fanOut(revision: number, touched: readonly Path[], root: JsonValue): void {
    const affected = this.registry.affected(touched);
    if (affected === undefined) return;
    for (const [node, paths] of affected) {
      const events = eventsFor(node.path, paths, root);
      if (events.length === 0) continue;
      const batch = new LiveBatch(revision, events);
      // A copy of the set: a sink may unsubscribe while it is handed the batch.
      for (const subscription of [...node.subscribers]) subscription.sink.deliver(batch);
    }
  }

  /** Drops what the hub follows and restarts every subscription from scratch. */
  private resync(): void {
    const subscriptions = [...this.registry.all()];
    for (const subscription of subscriptions) {
      this.release(subscription);
      subscription.sink.cancel('the server lost track of the document; reconnect');
    }
    this.stopFollowing();
  }
}
