/**
 * The framed protocol between `pythonWsgi()` and its Python workers (the
 * runner in `python/jsonstore_wsgi_runner.py` documents the same table): one
 * type byte, a 4-byte big-endian payload length, the payload. Frames travel
 * over the worker's stdin (to Python) and stdout (from Python).
 */

/** Frames Node sends. */
export const ToWorker = {
  /** The environ as NUL-separated names and values (UTF-8); starts a request. Cheaper to build and read than JSON. */
  requestHead: 0x48, // 'H'
  /** The environ as a JSON object; starts a request whose environ has a NUL in a value (not possible from Node's HTTP parser, kept exact anyway). */
  requestHeadJson: 0x4a, // 'J'
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
  /** `status NUL name NUL value ...` (UTF-8), sent with the first non-empty chunk (or at the end). */
  startResponse: 0x73, // 's'
  /** The same as JSON `[status, [[name, value], ...]]`, when a NUL or an unencodable character is in it (Node refuses those). */
  startResponseJson: 0x53, // 'S'
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
/** A worker never sends more than this in one frame (the runner splits bodies and log text, and cuts tracebacks); a larger length means a corrupt stream. */
export const maxFramePayload = 1024 * 1024;
/** The response head (s, S): the same limit as cgi's and fastcgi's `maxHeaderSize` default. */
export const maxHeadPayload = 64 * 1024;

/** Largest payload a frame of this type may have; checked when its header arrives, before it is buffered. */
function maxPayloadOf(type: number | undefined): number {
  return type === FromWorker.startResponse || type === FromWorker.startResponseJson ? maxHeadPayload : maxFramePayload;
}

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

const nul = '\0';
const emptyPayload = Buffer.alloc(0);

/**
 * The frames that start a request, in one buffer: the environ (H, or J when
 * a value holds a NUL), and when the body is already known, its B frame and
 * the E frame. One allocation, the environ written straight into it.
 */
export function requestFrames(environ: Record<string, string>, body: Buffer | undefined): Buffer {
  let text = '';
  let compact = true;
  for (const name in environ) {
    const value = environ[name] as string;
    if (value.includes(nul)) compact = false;
    text += text === '' ? name + nul + value : nul + name + nul + value;
  }
  if (!compact) text = JSON.stringify(environ);
  const textLength = Buffer.byteLength(text, 'utf8');
  const bodyLength = body === undefined ? 0 : body.length;
  const bodyFrameLength = body === undefined ? 0 : bodyLength > 0 ? headerSize + bodyLength : 0;
  const frames = Buffer.allocUnsafe(headerSize + textLength + bodyFrameLength + (body === undefined ? 0 : headerSize));
  frames[0] = compact ? ToWorker.requestHead : ToWorker.requestHeadJson;
  frames.writeUInt32BE(textLength, 1);
  let offset = headerSize + frames.write(text, headerSize, 'utf8');
  if (body !== undefined) {
    if (bodyLength > 0) {
      frames[offset] = ToWorker.body;
      frames.writeUInt32BE(bodyLength, offset + 1);
      offset += headerSize + body.copy(frames, offset + headerSize);
    }
    frames[offset] = ToWorker.bodyEnd;
    frames.writeUInt32BE(0, offset + 1);
  }
  return frames;
}

/** Status and header pairs of a start-response frame (s, or S as JSON). Types are checked by `buildHead`. */
export function decodeResponseHead(frame: Frame): { status: unknown; headers: Array<[unknown, unknown]> } {
  if (frame.type === FromWorker.startResponseJson) {
    const [status, headers] = JSON.parse(frame.payload.toString('utf8')) as [unknown, unknown];
    if (!Array.isArray(headers)) throw new Error('headers are not a list');
    return { status, headers: headers as Array<[unknown, unknown]> };
  }
  const fields = frame.payload.toString('utf8').split(nul);
  if (fields.length % 2 !== 1) throw new Error('odd number of header fields');
  const headers: Array<[unknown, unknown]> = [];
  for (let i = 1; i < fields.length; i += 2) headers.push([fields[i], fields[i + 1]]);
  return { status: fields[0], headers };
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
      if (length > maxPayloadOf(buffer[offset])) throw new Error(`corrupt frame: payload length ${length} for type ${String(buffer[offset])}`);
      const end = offset + headerSize + length;
      if (end > buffer.length) {
        this.#needed = headerSize + length;
        break;
      }
      out.push({ type: buffer[offset] as number, payload: length === 0 ? emptyPayload : buffer.subarray(offset + headerSize, end) });
      offset = end;
    }
    if (offset < buffer.length) {
      const rest = buffer.subarray(offset);
      this.#pending.push(rest);
      this.#pendingLength = rest.length;
    }
  }
}
