/**
 * `jsonStore()`: the middleware and, on the same object, the programmatic
 * API of the store it serves.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JsonValue } from './document/json.js';
import { createRequestHandler, type NextFunction } from './http/handler.js';
import { resolveOptions, type JsonStoreOptions } from './options.js';
import { DocumentStore, type ChangeEvent, type WriteOptions, type WriteResult } from './document-store.js';
import { LiveHub, type LiveStats } from './live/hub.js';
import type { LiveMessage } from './live/events.js';
import { resolveLiveOptions } from './live/options.js';
import { withExplorer } from './explorer/middleware.js';

type PathArgument = string | readonly string[] | undefined;

export interface JsonStore {
  /** Mount it: `app.use('/store', store)`, or `http.createServer(store)`. */
  (req: IncomingMessage, res: ServerResponse, next?: NextFunction): void;
  /** The engine behind the middleware (events, revision, lower-level `read`/`write`). */
  readonly store: DocumentStore;
  /** Resolves once the document is loaded from storage. */
  ready(): Promise<void>;
  /** The value at `path` (a copy), or `undefined`. A path is `'/a/0'` (URL-style, percent-decoded) or `['a', '0']`. */
  get(path?: PathArgument): Promise<JsonValue | undefined>;
  put(path: PathArgument, value: JsonValue, options?: WriteOptions): Promise<WriteResult>;
  post(path: PathArgument, value: JsonValue, options?: WriteOptions): Promise<WriteResult>;
  patch(path: PathArgument, patch: JsonValue, options?: WriteOptions & { type?: 'merge' | 'json-patch' }): Promise<WriteResult>;
  delete(path?: PathArgument, options?: WriteOptions): Promise<WriteResult>;
  /** `change`: every committed change, local or from other processes. `error`: storage failures. */
  on(event: 'change', listener: (event: ChangeEvent) => void): this;
  on(event: 'error', listener: (error: unknown) => void): this;
  off(event: 'change', listener: (event: ChangeEvent) => void): this;
  off(event: 'error', listener: (error: unknown) => void): this;
  once(event: 'change', listener: (event: ChangeEvent) => void): this;
  once(event: 'error', listener: (error: unknown) => void): this;
  /**
   * Live updates for server code: `listener` gets the events a stream on
   * `path` would send (first a `put` of the current value), each with its
   * revision. Returns the function that unsubscribes.
   */
  subscribe(path: PathArgument, listener: (message: LiveMessage) => void): () => void;
  /** Live subscriptions open now (streams and `subscribe()` listeners). */
  readonly live: LiveStats;
  /** Finishes pending writes and releases the storage; later requests get 503; live streams get `cancel`. */
  close(): Promise<void>;
}

/**
 * Creates the middleware serving one JSON document. Options are checked
 * here: a bad one throws a `TypeError` naming it.
 */
export function jsonStore(options?: JsonStoreOptions): JsonStore {
  const resolved = resolveOptions(options);
  const store = new DocumentStore({
    initial: resolved.initial,
    storage: resolved.storage,
    maxDepth: resolved.maxDepth,
    maxRetries: resolved.maxRetries,
    readConsistency: resolved.readConsistency,
    maxPatchOperations: resolved.maxPatchOperations,
    maxWriteGrowth: resolved.maxWriteGrowth,
    maxDocumentSize: resolved.maxDocumentSize,
    idempotencyWindow: resolved.idempotencyWindow,
    idempotencyKeys: resolved.idempotencyKeys,
  });
  // Without streams (`live: false`), subscribe() still works, with the default limits.
  const live = new LiveHub(store, resolved.storage, resolved.live ?? (resolveLiveOptions(true) as NonNullable<typeof resolved.live>));
  const reportError = (error: unknown) => {
    if (store.listenerCount('error') > 0) {
      // An error listener that throws must not make the request crash the process.
      try {
        store.emit('error', error);
        return;
      } catch (thrown) {
        console.error('express-jsonstore: an error listener threw:', thrown);
      }
    }
    console.error('express-jsonstore:', error);
  };
  const handler = createRequestHandler(store, resolved, reportError, resolved.live && live);
  const middleware = (resolved.explorer ? withExplorer(store, resolved, handler) : (req: IncomingMessage, res: ServerResponse) => handler(req, res)) as JsonStore;
  Object.defineProperty(middleware, 'store', { value: store, enumerable: true });
  Object.defineProperty(middleware, 'live', { get: () => live.stats, enumerable: true });
  Object.assign(middleware, {
    ready: () => store.ready(),
    get: (path?: PathArgument) => store.get(path),
    put: (path: PathArgument, value: JsonValue, o?: WriteOptions) => store.put(path, value, o),
    post: (path: PathArgument, value: JsonValue, o?: WriteOptions) => store.post(path, value, o),
    patch: (path: PathArgument, patch: JsonValue, o?: WriteOptions & { type?: 'merge' | 'json-patch' }) => store.patch(path, patch, o),
    delete: (path?: PathArgument, o?: WriteOptions) => store.delete(path, o),
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- EventEmitter's own listener type
    on(event: string, listener: (...args: any[]) => void) {
      store.on(event, listener);
      return middleware;
    },
    off(event: string, listener: (...args: any[]) => void) {
      store.off(event, listener);
      return middleware;
    },
    once(event: string, listener: (...args: any[]) => void) {
      store.once(event, listener);
      return middleware;
    },
    subscribe: (path: PathArgument, listener: (message: LiveMessage) => void) => live.listen(path, listener, reportError),
    close: () => store.close().finally(() => live.close()),
  });
  return middleware;
}
