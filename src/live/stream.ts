/**
 * The HTTP side of live updates: which GET asks for a stream, and opening
 * one. `src/http/handler.ts` calls `wantsEventStream` and `openStream`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Path } from '../document/path.js';
import { parseReadQuery } from '../document/query-parse.js';
import { JsonStoreError } from '../errors.js';
import { liveQueryRefused } from '../http/query-read.js';
import { sendProblem } from '../http/problem.js';
import type { LiveHub } from './hub.js';
import { SseStream } from './sse-stream.js';

/** Whether the client accepts `text/event-stream` (and does not refuse it with `q=0`). */
export function wantsEventStream(req: IncomingMessage): boolean {
  const accept = req.headers.accept;
  if (accept === undefined || !accept.toLowerCase().includes('text/event-stream')) return false;
  for (const range of accept.split(',')) {
    const [type, ...params] = range.split(';');
    if (type?.trim().toLowerCase() !== 'text/event-stream') continue;
    const q = params.map((param) => param.trim().toLowerCase()).find((param) => param.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  }
  return false;
}

/** `Last-Event-ID` as a revision, or `undefined` when absent or not one of ours. */
export function lastEventIdOf(req: IncomingMessage): number | undefined {
  const header = req.headers['last-event-id'];
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined || !/^\d{1,15}$/.test(value.trim())) return undefined;
  return Number(value.trim());
}

/** Answers a GET that asked for `text/event-stream`: the stream, or a problem before it starts. */
export async function openStream(hub: LiveHub, req: IncomingMessage, res: ServerResponse, path: Path, query: string): Promise<void> {
  if (query !== '') {
    // Unknown parameters get the same 400 as on a plain GET; a collection query is refused by name.
    if (parseReadQuery(query).collection !== undefined) {
      throw liveQueryRefused();
    }
    throw new JsonStoreError('bad-request', `A live stream takes no query string (got ?${query}); subscribe to the path alone`);
  }
  const stream = new SseStream(res, hub, path);
  let handle;
  try {
    handle = hub.subscribe(path, stream, lastEventIdOf(req));
  } catch (error) {
    // The limit is policy, not a fault: answered, not logged.
    if (error instanceof JsonStoreError && error.code === 'subscription-limit') {
      sendProblem(res, error);
      return;
    }
    throw error;
  }
  stream.attach(handle);
  // The client may be gone already (closed before the subscription existed).
  if (res.destroyed || req.socket.destroyed) handle.unsubscribe();
  await handle.started;
}
