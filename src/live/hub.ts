/**
 * The live updates of one store: keeps a copy of the committed document
 * (only while someone subscribes), turns each `change` into events for the
 * subscribers of the paths it touched, and starts new subscriptions with
 * the current value or a catch-up from `Last-Event-ID`.
 *
 * Why a copy: the engine's working document may already hold changes still
 * in flight to storage (the file adapter pipelines them), while an event
 * must carry the value *at its revision*. The copy follows the `change`
 * events, so it is always exactly at the revision of the last event sent.
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
import { RecentChanges, touchedSinceInStorage } from './replay.js';
import { PathRegistry, type PathNode } from './subscriptions.js';

/** The events of one revision for one subscribed path, shared by all its subscribers. */
export class LiveBatch {
  private text: string | undefined;
  constructor(
    readonly revision: number,
    readonly events: readonly LiveEvent[],
  ) {}

  /** As Server-Sent Events text, serialized once for all the path's streams. */
  sse(): string {
    if (this.text === undefined) {
      let text = '';
      for (const event of this.events) text += formatEvent(event, this.revision);
      this.text = text;
    }
    return this.text;
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

interface Subscription {
  readonly path: Path;
  readonly sink: LiveSink;
  node: PathNode<Subscription> | undefined;
  active: boolean;
}

/** What `subscribe()` returns. */
export interface LiveHandle {
  /** Resolves once the first events were handed to the sink; rejects when the subscription could not start. */
  readonly started: Promise<void>;
  /** Ends the subscription; safe to call more than once. */
  unsubscribe(): void;
}

export interface LiveStats {
  /** Streams and listeners subscribed (starting ones included). */
  subscriptions: number;
  /** Distinct subscribed paths. */
  paths: number;
}

export class LiveHub {
  private readonly registry = new PathRegistry<Subscription>();
  /** Subscriptions counted against the limit: registered and starting. */
  private count = 0;
  private state: DocumentState | undefined;
  private revision = 0;
  private starting: Promise<void> | undefined;
  /** Changes that arrive while the copy is being made. */
  private buffered: ChangeEvent[] | undefined;
  private listening = false;
  private closed = false;
  private readonly history: RecentChanges;

  constructor(
    private readonly store: DocumentStore,
    private readonly adapter: StorageAdapter,
    readonly options: ResolvedLiveOptions,
  ) {
    this.history = new RecentChanges(options.history);
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
    const subscription: Subscription = { path, sink, node: undefined, active: true };
    this.count++;
    const started = this.start(subscription, since).catch((error: unknown) => {
      this.release(subscription);
      throw error;
    });
    // The caller may not wait: a failure must not be an unhandled rejection.
    started.catch(() => {});
    return { started, unsubscribe: () => this.release(subscription) };
  }

  /** `mw.subscribe(path, listener)`: the same events for server code, each with its revision. */
  listen(path: string | readonly string[] | undefined, listener: (message: LiveMessage) => void, onError: (error: unknown) => void): () => void {
    const segments = toPath(path);
    let handle: LiveHandle | undefined;
    const send = (batch: LiveBatch) => {
      for (const event of batch.events) {
        // Listeners get their own copies: the events hold values of the live copy.
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
          listener({ event: 'cancel', path: '/', data: reason, revision: this.revision });
        } catch (error) {
          onError(error);
        }
      },
    });
    handle.started.catch(onError);
    return () => handle?.unsubscribe();
  }

  /** The whole value at a subscribed path now, as one batch (a slow stream's fresh start). */
  current(path: Path): LiveBatch {
    if (this.state === undefined) throw new Error('live: no copy of the document while nobody subscribes');
    return new LiveBatch(this.revision, [fullPut(this.state.root, path)]);
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
    await this.ensureCopy();
    if (!subscription.active) return;
    let first: LiveBatch | undefined;
    if (since !== undefined && since <= this.revision) {
      let touched = this.history.since(since, this.revision);
      if (touched === undefined) {
        const stored = await touchedSinceInStorage(this.adapter, since, () => (this.state as DocumentState).root);
        if (!subscription.active) return;
        if (stored !== undefined) {
          // Changes since storage answered are in the recent history (it is kept while anyone subscribes).
          const rest = stored.through >= this.revision ? [] : this.history.since(stored.through, this.revision);
          touched = rest === undefined ? undefined : [...stored.touched, ...rest];
        }
      }
      if (touched !== undefined) first = new LiveBatch(this.revision, eventsFor(subscription.path, touched, (this.state as DocumentState).root));
    }
    // The store closed while this one was starting: the stream is refused like any request then.
    if (this.closed) throw new StorageError('The store is closed');
    first ??= this.current(subscription.path);
    // From here on synchronous: nothing can change between the first events and registering.
    subscription.node = this.registry.add(subscription.path, subscription);
    subscription.sink.start(first);
  }

  private release(subscription: Subscription): void {
    if (!subscription.active) return;
    subscription.active = false;
    this.count--;
    if (subscription.node !== undefined) this.registry.remove(subscription.node, subscription);
    if (this.count === 0 && this.starting === undefined) this.dropCopy();
  }

  /** Makes the copy of the committed document if there is none, following changes from now on. */
  private ensureCopy(): Promise<void> {
    if (this.state !== undefined) return Promise.resolve();
    if (this.starting !== undefined) return this.starting;
    this.buffered = [];
    this.store.on('change', this.onChange);
    this.listening = true;
    this.starting = (async () => {
      try {
        // What a read returns is durable: its revision is that of the copy.
        const copy = await this.store.read((root) => ({ root: cloneJson(root), revision: this.store.revision }));
        this.state = { root: copy.root };
        this.revision = copy.revision;
        this.history.clear();
        const buffered = this.buffered ?? [];
        this.buffered = undefined;
        for (const event of buffered) if (event.revision > this.revision) this.apply(event);
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
      if (this.count === 0) this.dropCopy();
    }, () => {});
    return starting;
  }

  private dropCopy(): void {
    this.stopListening();
    this.state = undefined;
    this.history.clear();
  }

  private stopListening(): void {
    if (!this.listening) return;
    this.store.off('change', this.onChange);
    this.listening = false;
  }

  private onChange = (event: ChangeEvent): void => {
    if (this.buffered !== undefined) {
      // Kept past this call: the values may be the engine's and change later.
      this.buffered.push({ revision: event.revision, ops: cloneJson(event.ops as unknown as JsonValue) as unknown as PatchOperation[], origin: event.origin });
      return;
    }
    if (this.state !== undefined) this.apply(event);
  };

  /** Follows one committed change and sends its events. */
  private apply(event: ChangeEvent): void {
    const state = this.state as DocumentState;
    const touched: Path[] = [];
    try {
      for (const op of event.ops) followOperation(state, op, touched);
    } catch {
      // Cannot happen for changes the engine committed; if it does, everyone starts afresh.
      this.resync();
      return;
    }
    this.revision = event.revision;
    this.history.push(event.revision, touched);
    const root = state.root;
    for (const [node, paths] of this.registry.affected(touched)) {
      const events = eventsFor(node.path, paths, root);
      if (events.length === 0) continue;
      const batch = new LiveBatch(event.revision, events);
      for (const subscription of [...node.subscribers]) subscription.sink.deliver(batch);
    }
  }

  /** Drops the copy and restarts every subscription from a fresh one. */
  private resync(): void {
    const subscriptions = [...this.registry.all()];
    for (const subscription of subscriptions) {
      this.release(subscription);
      subscription.sink.cancel('the server lost track of the document; reconnect');
    }
    this.dropCopy();
  }
}
