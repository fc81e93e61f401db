/**
 * Sends a large value's compact JSON as it is made, a slice at a time
 * (json-slices.ts), with backpressure: the next slice is made only once the
 * socket took the last one, so a slow client holds back the work and the
 * answer is never held in memory whole; a client that goes away stops it.
 * The size was measured before (the Content-Length and the ETag come first);
 * the value is frozen, so the bytes made now are the bytes measured then.
 */
import type { ServerResponse } from 'node:http';
import type { JsonValue } from '../document/json.js';
import { piecesInSlices } from '../document/json-slices.js';

/**
 * A body sent as it is serialized: `value`'s compact JSON, `size` bytes of
 * it; with `indent`, its pretty JSON and a line break (as `?pretty` answers).
 */
export interface StreamedBody {
  readonly streamed: JsonValue;
  readonly size: number;
  readonly indent?: number;
}

export function isStreamed(body: unknown): body is StreamedBody {
  return typeof body === 'object' && body !== null && 'streamed' in body;
}

/** Resolves once the socket wants more, or is gone. */
function drained(res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

async function* withFinalLineBreak(pieces: AsyncIterable<string>): AsyncGenerator<string, void, undefined> {
  yield* pieces;
  yield '\n';
}

export function sendStreamed(res: ServerResponse, body: StreamedBody, head: boolean): void {
  res.setHeader('Content-Length', body.size);
  if (head) {
    res.end();
    return;
  }
  const pump = async (): Promise<void> => {
    let sent = 0;
    const indent = body.indent ?? 0;
    const pieces = piecesInSlices(body.streamed, { aborted: () => res.destroyed, indent });
    for await (const piece of indent > 0 ? withFinalLineBreak(pieces) : pieces) {
      if (res.destroyed) return;
      sent += Buffer.byteLength(piece, 'utf8');
      // Cannot happen while the value stays frozen; if it did, a cut answer beats a wrong one.
      if (sent > body.size) throw new Error('the value changed while it was sent');
      if (!res.write(piece, 'utf8')) await drained(res);
    }
    if (res.destroyed) return;
    if (sent !== body.size) throw new Error('the value changed while it was sent');
    res.end();
  };
  pump().catch((error: unknown) => res.destroy(error instanceof Error ? error : new Error(String(error))));
}
