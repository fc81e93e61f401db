/**
 * The response body an app returns (array, string, bytes, iterable, async
 * iterable, or JSGI's `forEach` object): its chunks turned into bytes and
 * driven through a ResponseWriter, and the body released exactly once:
 * `return()` on an iterator stopped early, then the body's own `close()`,
 * whether the body ran to the end, failed, or the client went away.
 * (The request body is `input.ts`.)
 */
import { GatewayProtocolError } from './errors.js';
import { describeError, reportEscaped, safeLog } from './options.js';
import type { ResponseWriter } from './response-writer.js';
import type { GatewayLogger } from './types.js';

type AnyIterator = Iterator<unknown> | AsyncIterator<unknown>;

/** A body chunk as bytes: strings are UTF-8, other views are wrapped without copying. */
export function chunkToBuffer(chunk: unknown, where: string): Buffer {
  if (typeof chunk === 'string') return Buffer.from(chunk, 'utf8');
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk instanceof Uint8Array) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  const kind = chunk === null ? 'null' : Array.isArray(chunk) ? 'an array' : typeof chunk;
  throw new GatewayProtocolError(`${where}: body chunks must be strings or Uint8Arrays, got ${kind}`);
}

/** A body chunk for `ResponseWriter.write`: strings stay strings (written as UTF-8), views become Buffers. */
export function chunkForWrite(chunk: unknown, where: string): Buffer | string {
  return typeof chunk === 'string' ? chunk : chunkToBuffer(chunk, where);
}

function hasMethod<K extends string>(value: unknown, name: K): value is Record<K, (...args: unknown[]) => unknown> {
  return value !== null && (typeof value === 'object' || typeof value === 'function') && typeof (value as Record<K, unknown>)[name] === 'function';
}

/** Calls a clean-up function so that neither a throw nor a rejected promise escapes. */
function callQuietly(call: () => unknown, logger: GatewayLogger, what: string): void {
  try {
    const result = call();
    if (result !== null && typeof result === 'object' && typeof (result as PromiseLike<unknown>).then === 'function') {
      (result as PromiseLike<unknown>).then(undefined, (error: unknown) => safeLog(logger, `${what} failed: ${describeError(error)}`));
    }
  } catch (error) {
    safeLog(logger, `${what} failed: ${describeError(error)}`);
  }
}

/** Whether `body` can be streamed by `streamBody` (checked before the response is committed). */
export function isBody(body: unknown, allowForEach: boolean): boolean {
  if (typeof body === 'string' || body instanceof Uint8Array) return true;
  if (body === null || (typeof body !== 'object' && typeof body !== 'function')) return false;
  return (
    Symbol.iterator in body ||
    Symbol.asyncIterator in body ||
    (allowForEach && typeof (body as { forEach?: unknown }).forEach === 'function')
  );
}

/**
 * Streams `body` and ends the response. Errors from the body propagate to the
 * caller (which decides between a 500 and a cut connection); the body is
 * released before this settles either way.
 */
export async function streamBody(writer: ResponseWriter, body: unknown, where: string, logger: GatewayLogger): Promise<void> {
  let iterator: AnyIterator | undefined;
  // The iterator finished by itself (or threw from next()), so return() is not owed.
  let iteratorSettled = false;
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    if (iterator !== undefined && !iteratorSettled && typeof iterator.return === 'function') {
      const open = iterator;
      callQuietly(() => open.return?.(), logger, `${where}: the body iterator's return()`);
    }
    if (hasMethod(body, 'close')) callQuietly(() => body.close(), logger, `${where}: the body's close()`);
  };
  const unsubscribe = writer.onClientGone(release);

  try {
    if (writer.fallsThrough) {
      // The status is already known to pass the request on: the body is not read.
      writer.end();
      return;
    }
    if (typeof body === 'string' || body instanceof Uint8Array) {
      await writer.writeAll([chunkToBuffer(body, where)]);
      return;
    }
    if (Array.isArray(body)) {
      // Every chunk is checked before anything is sent, so a bad one still gets a clean 500.
      await writer.writeAll(body.map((chunk) => chunkToBuffer(chunk, where)));
      return;
    }
    if (body !== null && typeof body === 'object' && (Symbol.asyncIterator in body || Symbol.iterator in body)) {
      const isAsync = Symbol.asyncIterator in body;
      iterator = isAsync
        ? (body as AsyncIterable<unknown>)[Symbol.asyncIterator]()
        : (body as Iterable<unknown>)[Symbol.iterator]();
      for (;;) {
        let step: IteratorResult<unknown>;
        try {
          step = isAsync ? await (iterator as AsyncIterator<unknown>).next() : (iterator as Iterator<unknown>).next();
        } catch (error) {
          iteratorSettled = true;
          throw error;
        }
        if (step.done) {
          iteratorSettled = true;
          break;
        }
        if (!writer.active) break;
        const wait = writer.write(chunkForWrite(step.value, where));
        if (wait) await wait;
        if (!writer.active) break;
      }
      writer.end();
      return;
    }
    if (hasMethod(body, 'forEach')) {
      // A forEach cannot be stopped; once the response is over its chunks are
      // ignored. Returning the drain promise lets a forEach that awaits its
      // callback follow backpressure.
      await body.forEach((chunk: unknown) => (writer.active ? writer.write(chunkToBuffer(chunk, where)) : undefined));
      writer.end();
      return;
    }
    throw new GatewayProtocolError(`${where}: the body must be an iterable, an async iterable, a string or bytes, got ${body === null ? 'null' : typeof body}`);
  } finally {
    unsubscribe();
    release();
  }
}

/**
 * Runs a callable bridge's app to the end: `produce` calls the app and returns
 * its body; the body is streamed, any failure goes to the writer (500, or a
 * cut connection once headers are out), and the app's error stream is flushed.
 */
export function runApp(
  writer: ResponseWriter,
  errors: { flush(): void },
  where: string,
  logger: GatewayLogger,
  produce: () => Promise<unknown>,
): void {
  (async () => {
    try {
      await streamBody(writer, await produce(), where, logger);
    } catch (error) {
      writer.fail(error, where);
    } finally {
      errors.flush();
    }
  })().catch((error: unknown) => reportEscaped(logger, where, error));
}
