/**
 * The framed protocol between `pythonWsgi()` and its Python workers (the
 * runner in `python/jsonstore_wsgi_runner.py` documents the same table): one
 * type byte, a 4-byte big-endian payload length, the payload. Frames travel
 * over the worker's stdin (to Python) and stdout (from Python).
 */

/** Frames Node sends. */
export const ToWorker = {
  /** The environ as JSON; starts a request. */
  requestHead: 0x48, // 'H'
  /** A request body chunk. */
  body: 0x42, // 'B'
  /** End of the request body. */
  bodyEnd: 0x45, // 'E'
  /** The client left: stop streaming, fail reads of wsgi.input. */
  abort: 0x41, // 'A'
} as const;

/** Frames a worker sends. */
export const FromWorker = {
  /** The app was imported: JSON `{pid}`. */
  ready: 0x52, // 'R'
  /** The app could not be imported: traceback text; the worker exits. */
  loadFailed: 0x46, // 'F'
  /** JSON `[status, [[name, value], ...]]`, sent with the first non-empty chunk (or at the end). */
  startResponse: 0x53, // 'S'
  /** A response body chunk. */
  body: 0x42, // 'B'
  /** The response is complete; the worker takes the next request. */
  end: 0x45, // 'E'
  /** The app failed: JSON `{traceback, disconnected?}`; the worker takes the next request. */
  failed: 0x58, // 'X'
  /** `wsgi.errors` text. */
  log: 0x4c, // 'L'
} as const;

export type FromWorkerType = (typeof FromWorker)[keyof typeof FromWorker];

export interface Frame {
  type: number;
  payload: Buffer;
}

const headerSize = 5;
/** A worker never sends more than this in one frame (the runner's chunks are the app's); a larger length means a corrupt stream. */
export const maxFramePayload = 256 * 1024 * 1024;

/** The 5-byte header of a frame. */
export function frameHeader(type: number, length: number): Buffer {
  const header = Buffer.allocUnsafe(headerSize);
  header[0] = type;
  header.writeUInt32BE(length, 1);
  return header;
}

/** A whole frame in one buffer (for small payloads; large ones go as header then payload). */
export function encodeFrame(type: number, payload?: Buffer | string): Buffer {
  if (payload === undefined) return frameHeader(type, 0);
  const bytes = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  const frame = Buffer.allocUnsafe(headerSize + bytes.length);
  frame[0] = type;
  frame.writeUInt32BE(bytes.length, 1);
  bytes.copy(frame, headerSize);
  return frame;
}

/** Splits a byte stream into frames; partial frames wait for the rest. */
export class FrameDecoder {
  #pending: Buffer[] = [];
  #pendingLength = 0;
  /** Bytes the pending frame needs in all (header included), once its header is in. */
  #needed = 0;

  /** Appends the complete frames in `chunk` (and what was pending) to `out`. Throws on a corrupt length. */
  push(chunk: Buffer, out: Frame[]): void {
    let buffer: Buffer;
    if (this.#pendingLength === 0) buffer = chunk;
    else {
      this.#pending.push(chunk);
      this.#pendingLength += chunk.length;
      // A large frame arrives in many reads: join them once, when it is whole.
      if (this.#needed > 0 && this.#pendingLength < this.#needed) return;
      buffer = Buffer.concat(this.#pending, this.#pendingLength);
      this.#pending = [];
      this.#pendingLength = 0;
      this.#needed = 0;
    }
    let offset = 0;
    while (buffer.length - offset >= headerSize) {
      const length = buffer.readUInt32BE(offset + 1);
      if (length > maxFramePayload) throw new Error(`corrupt frame: payload length ${length}`);
      const end = offset + headerSize + length;
      if (end > buffer.length) {
        this.#needed = headerSize + length;
        break;
      }
      out.push({ type: buffer[offset] as number, payload: buffer.subarray(offset + headerSize, end) });
      offset = end;
    }
    if (offset < buffer.length) {
      const rest = buffer.subarray(offset);
      this.#pending.push(rest);
      this.#pendingLength = rest.length;
    }
  }
}
