/**
 * One subscriber's Server-Sent Events connection: writes events as they
 * come while the socket takes them; once `res.write()` says the socket is
 * full, holds them (at most `bufferSize` bytes) until `'drain'`. A consumer
 * further behind than that gets its held events replaced by one fresh `put`
 * of the current value when it drains; if even that is larger than the
 * buffer, `cancel` and the end. Everything it holds (timers, listeners, the
 * subscription) is released when the connection closes, however it closes.
 */
import type { ServerResponse } from 'node:http';
import { formatControl } from './events.js';
import type { LiveBatch, LiveHandle, LiveSink } from './hub.js';
import type { Path } from '../document/path.js';

/** How long a stream ended on purpose may take to flush its last bytes before the socket is destroyed. */
const lingerMs = 5_000;
const keepAliveEvent = formatControl('keep-alive', null);

/** The keep-alive timer's callback, shared by all streams (the stream is the timer's argument). */
function keepAlive(stream: SseStream): void {
  stream.keepAlive();
}

/** What a stream needs of the hub (shared by all its streams: no per-stream closures). */
export interface SseSource {
  readonly options: {
    readonly bufferSize: number;
    /** 0: no keep-alive events. */
    readonly keepAlive: number;
  };
  /** Hands `send` the current value at `path` as one batch (now or once it can be read), for a consumer that fell too far behind. */
  current(path: Path, send: (batch: LiveBatch) => void): void;
}

export class SseStream implements LiveSink {
  private held: Buffer[] = [];
  private heldBytes = 0;
  /** The socket said it is full: write nothing more before 'drain'. */
  private blocked = false;
  /** Held events were dropped: send the current value at the next 'drain'. */
  private stale = false;
  private ended = false;
  /** The connection is gone. */
  private closed = false;
  private keepAliveTimer: ReturnType<typeof setInterval> | undefined;
  private lingerTimer: ReturnType<typeof setTimeout> | undefined;
  /** The subscription, released when the connection closes. */
  private handle: LiveHandle | undefined;

  constructor(
    private readonly res: ServerResponse,
    private readonly source: SseSource,
    private readonly path: Path,
  ) {
    res.once('close', this.onClosed);
  }

  /** The subscription this stream feeds; released at once if the connection is already gone. */
  attach(handle: LiveHandle): void {
    this.handle = handle;
    if (this.closed) handle.unsubscribe();
  }

  /** Sends the head and the first events. */
  start(first: LiveBatch): void {
    if (this.ended) return;
    const { res } = this;
    res.statusCode = 200;
    res.setHeader('Content-Type', 'text/event-stream');
    res.setHeader('Cache-Control', 'no-cache');
    // Proxies such as nginx would otherwise hold events back.
    res.setHeader('X-Accel-Buffering', 'no');
    res.flushHeaders();
    res.on('drain', this.onDrain);
    // The first value goes out whatever its size: it is what a GET would send.
    const bytes = first.sse();
    if (bytes.length > 0) this.blocked = !this.write(bytes);
    if (this.source.options.keepAlive > 0) {
      this.keepAliveTimer = setInterval(keepAlive, this.source.options.keepAlive, this);
      this.keepAliveTimer.unref();
    }
  }

  deliver(batch: LiveBatch): void {
    if (this.ended) return;
    if (this.stale) {
      // Waiting for its fresh start: the current value (read now, with this change in it) replaces the batch.
      if (!this.blocked) this.source.current(this.path, (batch) => this.sendCurrent(batch));
      return;
    }
    if (!this.blocked) {
      this.blocked = !this.write(batch.sse());
      return;
    }
    const bytes = batch.sse();
    if (this.heldBytes + bytes.length > this.source.options.bufferSize) {
      // Too far behind: forget the details, send where things are once it catches up.
      this.held = [];
      this.heldBytes = 0;
      this.stale = true;
      return;
    }
    this.held.push(bytes);
    this.heldBytes += bytes.length;
  }

  cancel(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.held = [];
    this.heldBytes = 0;
    this.stopKeepAlive();
    const { res } = this;
    if (!res.headersSent) {
      res.destroy();
      return;
    }
    res.end(formatControl('cancel', reason));
    // A client that reads nothing would keep the socket and its buffers forever.
    this.lingerTimer = setTimeout(() => res.destroy(), lingerMs);
    this.lingerTimer.unref();
  }

  private onDrain = (): void => {
    if (this.ended) return;
    this.blocked = false;
    if (this.stale) {
      this.source.current(this.path, (batch) => this.sendCurrent(batch));
      return;
    }
    while (!this.blocked && this.held.length > 0) {
      const bytes = this.held.shift() as Buffer;
      this.heldBytes -= bytes.length;
      this.blocked = !this.write(bytes);
    }
  };

  /** The fresh start of a stream that fell behind. Until it is sent the stream stays stale: events meanwhile are dropped, since this value includes them. */
  private sendCurrent(batch: LiveBatch): void {
    if (this.ended || this.blocked || !this.stale) return;
    this.stale = false;
    const bytes = batch.sse();
    if (bytes.length > this.source.options.bufferSize) {
      this.cancel('slow consumer: the stream fell behind and the current value is larger than its buffer; reconnect');
      return;
    }
    this.blocked = !this.write(bytes);
  }

  /** Writes, and flushes a compression middleware's buffer (compression() adds `res.flush`), so events are not held back. */
  private write(bytes: Buffer | string): boolean {
    const written = this.res.write(bytes);
    (this.res as { flush?: () => void }).flush?.();
    return written;
  }

  /** A full socket shows the connection is busy enough. */
  keepAlive(): void {
    if (this.ended || this.blocked) return;
    this.blocked = !this.write(keepAliveEvent);
  }

  private stopKeepAlive(): void {
    if (this.keepAliveTimer !== undefined) clearInterval(this.keepAliveTimer);
    this.keepAliveTimer = undefined;
  }

  private onClosed = (): void => {
    this.closed = true;
    this.ended = true;
    this.held = [];
    this.stopKeepAlive();
    if (this.lingerTimer !== undefined) clearTimeout(this.lingerTimer);
    this.res.off('drain', this.onDrain);
    this.handle?.unsubscribe();
  };
}
