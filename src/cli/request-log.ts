/**
 * The CLI's request log: one line per request once it is answered (or the
 * client went away), like morgan's `dev` format without colours:
 *   GET /posts/1 200 1.9 ms
 * Small enough that the CLI needs no logging dependency.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** Control characters (and the escape character) never reach the terminal as they are. */
function printable(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0').toUpperCase()}`);
}

/** Calls `write` with the log line of this request when its response is done. */
export function logRequest(req: IncomingMessage, res: ServerResponse, write: (line: string) => void): void {
  const started = process.hrtime.bigint();
  const method = printable(req.method ?? '-');
  const url = printable(req.url ?? '-');
  res.once('close', () => {
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    const status = res.writableFinished ? String(res.statusCode) : `${res.headersSent ? res.statusCode : '-'} (connection closed before the answer was sent)`;
    write(`${method} ${url} ${status} ${ms.toFixed(1)} ms\n`);
  });
}
