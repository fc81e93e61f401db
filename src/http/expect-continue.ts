/**
 * `Expect: 100-continue` (RFC 9110 section 10.1.1): the client sends the
 * headers, waits for `100 Continue`, and only then uploads the body. Node
 * answers 100 at once unless the server listens for 'checkContinue', so by
 * default a body the store refuses anyway (too large, not JSON, read-only
 * store, wrong host) is uploaded first and thrown away.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

export type ContinueListener = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * A listener for the server's 'checkContinue' event that hands the request
 * to `handler` at once and sends `100 Continue` only when the handler starts
 * reading the body (a 'data' or 'readable' listener: body parsers, `pipe()`
 * and `for await` all read that way). A request answered before that, such
 * as the store's 413 for a `Content-Length` over `limit`, gets its final
 * status without a 100, and the client sends no body.
 *
 *   server.on('checkContinue', continueWhenRead(app));
 */
export function continueWhenRead(handler: (req: IncomingMessage, res: ServerResponse) => void): ContinueListener {
  if (typeof handler !== 'function') throw new TypeError('continueWhenRead(handler): handler must be a request listener such as an Express app or a jsonStore()');
  return (req, res) => {
    const onNewListener = (event: string | symbol) => {
      if (event !== 'data' && event !== 'readable') return;
      req.off('newListener', onNewListener);
      // A body read after the answer (Node discarding it) needs no 100.
      if (!res.headersSent && !res.writableEnded) res.writeContinue();
    };
    req.on('newListener', onNewListener);
    res.once('close', () => req.off('newListener', onNewListener));
    handler(req, res);
  };
}
