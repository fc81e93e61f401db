export { jsonStore, type JsonStore } from './json-store.js';
export type { JsonStoreOptions } from './options.js';
export { applyLiveEvent, type LiveEvent, type LiveMessage } from './live/events.js';
export type { LiveOptions } from './live/options.js';
export type { LiveStats } from './live/hub.js';
export { etagOf } from './document/etag.js';
export { DocumentStore, type ChangeEvent, type WriteOptions, type WriteResult, type Precondition } from './document-store.js';
export { memoryStorage, type MemoryStorage, type MemoryStorageOptions } from './storage/memory.js';
export {
  fileStorage,
  nodeFileSystem,
  type FileStorage,
  type FileStorageOptions,
  type FileStorageStats,
  type FileStorageFileSystem,
  type FileStorageFile,
} from './storage/file.js';
export {
  redisStorage,
  type RedisStorage,
  type RedisStorageOptions,
  type RedisStorageKeys,
  type RedisCompactionOptions,
  type RedisClientLike,
  type RedisClusterLike,
} from './storage/redis.js';
export type {
  Change,
  MaybePromise,
  OutcomeUnknown,
  RebasedCommit,
  StorageAdapter,
  StorageCallOptions,
  StorageCapabilities,
  StoredDocument,
  TouchedPaths,
  Unwatch,
} from './storage/types.js';
export type { JsonValue, JsonObject, JsonArray, JsonPrimitive } from './document/json.js';
export type { PatchOperation } from './document/patch-types.js';
export { applyOperations, valueAt, type DocumentState, type AppliedChange } from './document/apply.js';
export { toPointer, parsePointer } from './document/path.js';
export { JsonStoreError, StorageError, RevisionConflictError, type JsonStoreErrorCode } from './errors.js';
export type { ProblemDetails } from './http/problem.js';
export type { RequestHandler, NextFunction } from './http/handler.js';
export { continueWhenRead, type ContinueListener } from './http/expect-continue.js';
export { wsgi, jsgi, fetchHandler, cgi, fastcgi, pythonWsgi, GatewayError, GatewayProtocolError } from './gateway/index.js';
export type {
  WsgiApplication,
  WsgiEnviron,
  WsgiBody,
  WsgiHeaders,
  WsgiOptions,
  WsgiWrite,
  StartResponse,
  JsgiApplication,
  JsgiRequest,
  JsgiResponse,
  JsgiResponseObject,
  JsgiResponseTuple,
  JsgiHeaders,
  JsgiBody,
  JsgiInfo,
  JsgiOptions,
  FetchHandler,
  FetchHandlerOptions,
  FetchContext,
  CgiOptions,
  FastCgiOptions,
  FastCgiMiddleware,
  PythonWsgiOptions,
  PythonWsgiMiddleware,
  GatewayErrorCode,
  GatewayOptions,
  GatewayMiddleware,
  GatewayLogger,
  BodyChunk,
  CgiVariables,
  Closable,
  ErrorStream,
  RequestInput,
} from './gateway/index.js';
