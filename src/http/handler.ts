/**
 * The HTTP layer: turns a request below the mount point into a read or a
 * write on the document store, and the outcome into a response. Works with
 * Express 4 and 5, connect and plain `node:http` (it only uses Node's own
 * request and response objects).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { JsonStoreError, StorageError } from '../errors.js';
import { valueAt } from '../document/apply.js';
import { describeType, isContainer, isObject, type JsonValue } from '../document/json.js';
import { contentTag, formatEtag, type Representation } from '../document/etag.js';
import { compactJsonOf, knownLargeJson, needsSlicing, prettyNeedsSlicing, slicedJsonOf } from '../document/value-cache.js';
import { jsonBytesInSlices } from '../document/json-slices.js';
import { isStreamed, sendStreamed, type StreamedBody } from './chunked-body.js';
import { displayPath, isArrayIndex, parseUrlPath, urlPath } from '../document/path.js';
import { planWrite, valueAfterWrite, type WriteKind } from '../document/operations.js';
import { idempotencyFingerprint, type DocumentStore, type IdempotentWrite, type Precondition } from '../document-store.js';
import type { ResolvedOptions } from '../options.js';
import { acceptedPatchTypes, bodyKindOf, jsonBodyOf } from './body.js';
import { checkWritePreconditions, hasPreconditions, isNotModified, preconditionsOf } from './conditional.js';
import { checkHost } from './host.js';
import { idempotencyKeyOf } from './idempotency-key.js';
import { sendProblem } from './problem.js';
import { answerCollectionQuery } from './query-read.js';
import { postedNameBody, returnPreference } from './post-answer.js';
import { checkWriteQuery, parseReadQuery } from '../document/query-parse.js';
import { mountPrefix, splitTarget } from './request-target.js';
import type { LiveHub } from '../live/hub.js';
import { openStream, wantsEventStream } from '../live/stream.js';

export type NextFunction = (error?: unknown) => void;
export type RequestHandler = (req: IncomingMessage, res: ServerResponse, next?: NextFunction) => void;

const writeMethods = ['PUT', 'POST', 'PATCH', 'DELETE'];
const JSON_TYPE = 'application/json; charset=utf-8';

interface ReadOutcome {
  value: JsonValue | undefined;
  body: string | Buffer | StreamedBody | undefined;
  etag: string | undefined;
  /** Too large to serialize in one go: serialized in slices once the read returns (the store is frozen for it). */
  sliced?: boolean;
  /** Sliced, and answered pretty-printed (`?pretty`). */
  pretty?: boolean;
}

interface WriteOutcome {
  status: number;
  body: string | undefined;
  etag: string | undefined;
  location: string | undefined;
  /** The answer to a repeat of a write sent with the same Idempotency-Key: nothing was written. */
  replayed?: boolean;
}

/** Spaces per level of `?pretty` answers. */
const prettyIndent = 2;

function serialize(value: JsonValue, pretty: boolean): string {
  return pretty ? JSON.stringify(value, null, prettyIndent) + '\n' : JSON.stringify(value);
}

/** A container with each child replaced by `true`; scalars as they are. */
function shallowOf(value: JsonValue): JsonValue {
  if (Array.isArray(value)) return value.map(() => true);
  if (isObject(value)) {
    const out: Record<string, JsonValue> = {};
    for (const key of Object.keys(value)) Object.defineProperty(out, key, { value: true, enumerable: true, writable: true, configurable: true });
    return out;
  }
  return value;
}

/** Explains a 404 by naming the deepest part of the path that exists. */
function describeMissing(root: JsonValue, path: readonly string[]): string {
  let node: JsonValue = root;
  for (let i = 0; i < path.length; i++) {
    const segment = path[i] as string;
    const here = displayPath(path.slice(0, i));
    const next = isContainer(node) ? valueAt(node, [segment]) : undefined;
    if (next === undefined) {
      if (Array.isArray(node)) {
        return isArrayIndex(segment)
          ? `Nothing at ${displayPath(path)}: the array at ${here} has ${node.length} element${node.length === 1 ? '' : 's'}`
          : `Nothing at ${displayPath(path)}: ${here} is an array, and "${segment}" is not an index`;
      }
      if (isObject(node)) return `Nothing at ${displayPath(path)}: ${here} has no member "${segment}"`;
      return `Nothing at ${displayPath(path)}: ${here} is ${describeType(node)}`;
    }
    node = next;
  }
  return `Nothing at ${displayPath(path)}`;
}

function allowHeader(readOnly: boolean): string {
  return readOnly ? 'GET, HEAD, OPTIONS' : 'GET, HEAD, PUT, POST, PATCH, DELETE, OPTIONS';
}

function prefersMinimal(req: IncomingMessage): boolean {
  const header = req.headers['prefer'];
  const prefer = Array.isArray(header) ? header.join(', ') : header;
  return prefer !== undefined && /(?:^|[,;\s])return\s*=\s*"?minimal"?/i.test(prefer);
}

/** Whether the preconditions of a read answer it without a body: If-None-Match matches (304) or If-Match fails (412). */
function answeredWithoutBody(preconditions: ReturnType<typeof preconditionsOf>, etag: string): boolean {
  if (!hasPreconditions(preconditions)) return false;
  try {
    return isNotModified(preconditions, etag, '');
  } catch {
    return true;
  }
}

/**
 * Sends the status, headers and body. The headers go in one `writeHead`
 * (an object, which middleware wrapping `writeHead` understands) rather than
 * one `setHeader` each: this runs for every request. Headers set before
 * (by Express, CORS, `Vary`) are kept; these win over them.
 */
function send(res: ServerResponse, status: number, body: string | Buffer | StreamedBody | undefined, headers: Record<string, string | undefined>, head: boolean): void {
  const fields: Record<string, string> = {};
  for (const name in headers) {
    const value = headers[name];
    if (value !== undefined) fields[name] = value;
  }
  if (body === undefined) {
    res.writeHead(status, fields);
    res.end();
    return;
  }
  fields['Content-Type'] = JSON_TYPE;
  if (isStreamed(body)) {
    res.statusCode = status;
    for (const name in fields) res.setHeader(name, fields[name] as string);
    sendStreamed(res, body, head);
    return;
  }
  fields['Content-Length'] = String(typeof body === 'string' ? Buffer.byteLength(body) : body.length);
  res.writeHead(status, fields);
  res.end(head ? undefined : body);
}

export function createRequestHandler(store: DocumentStore, options: ResolvedOptions, onUnexpected: (error: unknown) => void, live?: LiveHub): RequestHandler {
  /**
   * A GET or HEAD. Answered synchronously when the store can read now (the
   * hot path: no promise per request); otherwise returns the promise of the
   * answer. Throws (or rejects) a JsonStoreError for the caller to send.
   */
  function handleRead(req: IncomingMessage, res: ServerResponse, path: string[], query: string, head: boolean): Promise<void> | undefined {
    const { shallow, pretty, collection } = parseReadQuery(query);
    if (collection !== undefined) {
      return answerCollectionQuery(store, req, res, path, collection, { pretty, head, describeMissing: () => store.read((root) => describeMissing(root, path)) });
    }
    const preconditions = preconditionsOf(req.headers);
    const representation = ((shallow ? 'shallow' : '') + (shallow && pretty ? '-' : '') + (pretty ? 'pretty' : '')) as Representation;
    const view = (root: JsonValue): ReadOutcome => {
      const value = valueAt(root, path);
      if (value === undefined) return { value, body: undefined, etag: undefined };
      if (representation === '') {
        const known = knownLargeJson(value);
        if (known !== undefined && (head || answeredWithoutBody(preconditions, known.etag))) {
          // A HEAD, 304 or 412 sends none of the body: no freeze, which would make the next write copy its path.
          return { value, body: { streamed: value, size: known.size }, etag: known.etag };
        }
        if (needsSlicing(value)) {
          store.freeze();
          return { value, body: undefined, etag: undefined, sliced: true };
        }
        // Cached per value, dropped along the path of each write (value-cache.ts).
        const json = compactJsonOf(value);
        return { value, body: json.bytes, etag: json.etag };
      }
      if (!shallow) {
        if (prettyNeedsSlicing(value)) {
          store.freeze();
          return { value, body: undefined, etag: undefined, sliced: true, pretty: true };
        }
        // Pretty: the tag is the compact JSON's, cached per value; only the pretty text is made.
        return { value, body: serialize(value, true), etag: formatEtag(compactJsonOf(value).tag, representation) };
      }
      const shown = shallowOf(value);
      const compact = JSON.stringify(shown);
      const body = pretty ? serialize(shown, true) : compact;
      return { value, body, etag: formatEtag(contentTag(compact), representation) };
    };
    // Synchronously when nothing is in flight: no promise on the hot path.
    const now = store.readNow(view)?.result;
    if (now !== undefined && now.sliced !== true && now.etag !== undefined) {
      answerRead(res, path, preconditions, now, head);
      return undefined;
    }
    return readLater(res, path, preconditions, now, view, head);
  }

  async function readLater(
    res: ServerResponse,
    path: string[],
    preconditions: ReturnType<typeof preconditionsOf>,
    now: ReadOutcome | undefined,
    view: (root: JsonValue) => ReadOutcome,
    head: boolean,
  ): Promise<void> {
    let outcome = now ?? (await store.read(view));
    if (outcome.sliced === true) {
      const value = outcome.value as JsonValue;
      const json = await slicedJsonOf(value, () => res.destroyed);
      if (json === undefined) return;
      if (outcome.pretty === true) {
        // The tag is the compact JSON's; the pretty text is measured in slices, then made again as it is sent.
        const size = await jsonBytesInSlices(value, { indent: prettyIndent, aborted: () => res.destroyed });
        if (size === undefined) return;
        outcome = { value, body: { streamed: value, size: size + 1, indent: prettyIndent }, etag: formatEtag(json.tag, 'pretty') };
      } else outcome = { value, body: 'bytes' in json ? json.bytes : { streamed: json.value, size: json.size }, etag: json.etag };
    }
    // Preconditions only apply to what would otherwise be a 2xx (RFC 9110 section 13.2.1).
    if (outcome.value === undefined || outcome.etag === undefined) {
      const detail = await store.read((root) => describeMissing(root, path));
      throw new JsonStoreError('not-found', detail);
    }
    answerRead(res, path, preconditions, outcome, head);
  }

  /** 200, or 304 when If-None-Match matches; throws 412 when If-Match does not. */
  function answerRead(res: ServerResponse, path: string[], preconditions: ReturnType<typeof preconditionsOf>, outcome: ReadOutcome, head: boolean): void {
    const etag = outcome.etag as string;
    if (hasPreconditions(preconditions) && isNotModified(preconditions, etag, displayPath(path))) {
      send(res, 304, undefined, { ETag: etag, 'Cache-Control': 'no-cache' }, head);
      return;
    }
    send(res, 200, outcome.body, { ETag: etag, 'Cache-Control': 'no-cache' }, head);
  }

  async function handleWrite(req: IncomingMessage, res: ServerResponse, method: string, path: string[]): Promise<void> {
    if (options.readOnly) {
      throw new JsonStoreError('method-not-allowed', `This store is read-only; ${method} is not allowed`, {
        headers: { Allow: allowHeader(true) },
      });
    }
    const preconditions = preconditionsOf(req.headers);
    const idempotencyKey = idempotencyKeyOf(req.headers);
    if (options.requirePreconditions && !hasPreconditions(preconditions)) {
      throw new JsonStoreError(
        'precondition-required',
        `${method} needs If-Match with the ETag you last read (or If-None-Match: * to create); this store refuses unconditional writes`,
      );
    }
    let kind: WriteKind = 'DELETE';
    let body: JsonValue = null;
    // What makes this request this request, for its Idempotency-Key.
    let request: JsonValue = [method, path, preconditions as unknown as JsonValue];
    if (method !== 'DELETE') {
      const bodyKind = bodyKindOf(req.headers['content-type'], method);
      body = await jsonBodyOf(req, options.limit, options.maxDepth);
      request = [method, path, preconditions as unknown as JsonValue, bodyKind, body];
      kind = method === 'PUT' || method === 'POST' ? method : bodyKind === 'json-patch' ? 'PATCH json-patch' : 'PATCH merge';
      // Before planning: an over-long patch costs nothing more.
      if (kind === 'PATCH json-patch') store.checkPatchLength(body);
    }
    const what = displayPath(path);
    const precondition: Precondition | undefined = hasPreconditions(preconditions) ? (current) => checkWritePreconditions(preconditions, current, what) : undefined;
    const minimal = prefersMinimal(req);
    const preference = returnPreference(req);
    // A POST to an object answers {"name": key} unless the value is asked for.
    const nameOnly = kind === 'POST' && preference === undefined;
    const prefix = method === 'DELETE' ? '' : mountPrefix(req);
    const idempotent: IdempotentWrite<WriteOutcome> | undefined =
      idempotencyKey === undefined
        ? undefined
        : {
            key: idempotencyKey,
            fingerprint: idempotencyFingerprint(request),
            remember: ({ status, etag, location }) => ({ status, etag, location }),
            replay(record, root) {
              // The body only while the value is still what the first write left: a replay never claims a value it did not write.
              let body: string | undefined;
              if (record.status !== 204 && record.etag !== undefined && !minimal) {
                const resultPath = record.location === undefined ? path : record.location.startsWith(prefix) ? parseUrlPath(record.location.slice(prefix.length)) : undefined;
                const value = resultPath === undefined ? undefined : valueAt(root, resultPath);
                const compact = value === undefined ? undefined : JSON.stringify(value);
                if (compact !== undefined && formatEtag(contentTag(compact)) === record.etag) body = compact;
                if (nameOnly && resultPath !== undefined) body = postedNameBody(root, path, resultPath) ?? body;
              }
              return { status: record.status, body, etag: record.etag, location: record.location, replayed: true };
            },
          };
    const outcome = await store.write<WriteOutcome>(planWrite(kind, path, body), (root, plan) => {
      const value = valueAfterWrite(root, plan);
      if (value === undefined) return { status: 204, body: undefined, etag: undefined, location: undefined };
      const compact = JSON.stringify(value);
      return {
        status: plan.created ? 201 : 200,
        body: minimal ? undefined : ((nameOnly ? postedNameBody(root, path, plan.resultPath) : undefined) ?? compact),
        etag: formatEtag(contentTag(compact)),
        location: plan.created ? prefix + urlPath(plan.resultPath) : undefined,
      };
    }, idempotent, { path, precondition });
    send(
      res,
      outcome.status,
      outcome.body,
      {
        ETag: outcome.etag,
        Location: outcome.location,
        'Preference-Applied': outcome.status === 204 ? undefined : minimal ? 'return=minimal' : preference === 'representation' ? 'return=representation' : undefined,
        'Idempotent-Replayed': outcome.replayed ? 'true' : undefined,
        'Cache-Control': 'no-store',
      },
      false,
    );
  }

  /** Answers synchronously, or returns the promise of the answer; throws or rejects for `fail` to answer. */
  function handle(req: IncomingMessage, res: ServerResponse): Promise<void> | undefined {
    // Before anything else, reads included: a rebound page could read too.
    if (options.allowedHosts !== undefined) checkHost(req, options.allowedHosts);
    const method = req.method ?? 'GET';
    const target = splitTarget(req.url);
    const path = parseUrlPath(target.path);
    if (method === 'GET' && live !== undefined && wantsEventStream(req)) return openStream(live, req, res, path, target.query);
    if (method === 'GET' || method === 'HEAD') return handleRead(req, res, path, target.query, method === 'HEAD');
    if (writeMethods.includes(method)) {
      checkWriteQuery(method, target.query);
      return handleWrite(req, res, method, path);
    }
    if (method === 'OPTIONS') {
      const headers: Record<string, string> = { Allow: allowHeader(options.readOnly) };
      if (!options.readOnly) headers['Accept-Patch'] = acceptedPatchTypes.join(', ');
      send(res, 204, undefined, headers, false);
      return undefined;
    }
    throw new JsonStoreError('method-not-allowed', `${method} is not supported here; use ${allowHeader(options.readOnly)}`, {
      headers: { Allow: allowHeader(options.readOnly) },
    });
  }

  function fail(req: IncomingMessage, res: ServerResponse, error: unknown): void {
    const head = req.method === 'HEAD';
    if (error instanceof JsonStoreError) {
      // Storage failures were already reported by the store.
      if (error.status >= 500 && !(error instanceof StorageError)) onUnexpected(error);
      sendProblem(res, error, { head });
      return;
    }
    onUnexpected(error);
    sendProblem(res, new JsonStoreError('internal-error', 'The store failed to handle this request; the error was logged on the server'), { head });
  }

  return function jsonStoreHandler(req, res) {
    let pending: Promise<void> | undefined;
    try {
      pending = handle(req, res);
    } catch (error) {
      fail(req, res, error);
      return;
    }
    pending?.catch((error: unknown) => fail(req, res, error));
  };
}
