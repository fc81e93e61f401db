/**
 * Sends a large body made of chunks with backpressure: the next chunk is
 * written only once the socket took the last one, so a slow client holds
 * back the sending, not the memory of the whole answer twice over, and a
 * client that goes away stops it.
 */
import type { ServerResponse } from 'node:http';

export function isChunked(body: unknown): body is readonly Buffer[] {
  return Array.isArray(body);
}

export function sendChunks(res: ServerResponse, chunks: readonly Buffer[], head: boolean): void {
  let size = 0;
  for (const chunk of chunks) size += chunk.length;
  res.setHeader('Content-Length', size);
  if (head) {
    res.end();
    return;
  }
  let next = 0;
  const pump = (): void => {
    while (next < chunks.length) {
      if (res.destroyed) return;
      if (!res.write(chunks[next++] as Buffer)) {
        res.once('drain', pump);
        return;
      }
    }
    res.end();
  };
  pump();
}
