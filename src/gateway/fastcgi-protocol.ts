/**
 * The FastCGI 1.0 record codec (https://fastcgi-archives.github.io/FastCGI_Specification.html):
 * 8-byte record headers, name-value pairs, and a reader that cuts a byte
 * stream into records. Pure: the connection handling is `fastcgi.ts`.
 */

export const fcgiVersion = 1;
export const recordHeaderSize = 8;
/** Largest content of one record (16-bit length). */
export const maxRecordContent = 0xffff;

export const RecordType = {
  BeginRequest: 1,
  AbortRequest: 2,
  EndRequest: 3,
  Params: 4,
  Stdin: 5,
  Stdout: 6,
  Stderr: 7,
  Data: 8,
  GetValues: 9,
  GetValuesResult: 10,
  UnknownType: 11,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

export const Role = { Responder: 1, Authorizer: 2, Filter: 3 } as const;
/** BEGIN_REQUEST flag: keep the connection open after the request, for the next one. */
export const keepConnectionFlag = 1;

/** END_REQUEST protocolStatus values. */
export const ProtocolStatus = { RequestComplete: 0, CantMultiplex: 1, Overloaded: 2, UnknownRole: 3 } as const;

export interface FastCgiRecord {
  type: number;
  requestId: number;
  content: Buffer;
}

function header(type: RecordType, requestId: number, contentLength: number, paddingLength: number): Buffer {
  const head = Buffer.allocUnsafe(recordHeaderSize);
  head[0] = fcgiVersion;
  head[1] = type;
  head.writeUInt16BE(requestId, 2);
  head.writeUInt16BE(contentLength, 4);
  head[6] = paddingLength;
  head[7] = 0;
  return head;
}

const padding = Buffer.alloc(8);

/**
 * One stream's data as records of at most 65535 bytes each, padded to a
 * multiple of 8 as the specification recommends. Empty content gives the one
 * empty record that ends a stream (PARAMS, STDIN).
 */
export function encodeRecords(type: RecordType, requestId: number, content: Buffer = Buffer.alloc(0)): Buffer[] {
  const parts: Buffer[] = [];
  let offset = 0;
  do {
    const length = Math.min(maxRecordContent, content.length - offset);
    const pad = (8 - (length % 8)) % 8;
    parts.push(header(type, requestId, length, pad));
    if (length > 0) parts.push(content.subarray(offset, offset + length));
    if (pad > 0) parts.push(padding.subarray(0, pad));
    offset += length;
  } while (offset < content.length);
  return parts;
}

/** BEGIN_REQUEST for a responder; `keepConnection` sets FCGI_KEEP_CONN. */
export function encodeBeginRequest(requestId: number, keepConnection: boolean, role: number = Role.Responder): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt16BE(role, 0);
  body[2] = keepConnection ? keepConnectionFlag : 0;
  return Buffer.concat(encodeRecords(RecordType.BeginRequest, requestId, body));
}

export function encodeAbortRequest(requestId: number): Buffer {
  return Buffer.concat(encodeRecords(RecordType.AbortRequest, requestId));
}

export function encodeEndRequest(requestId: number, appStatus: number, protocolStatus: number): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt32BE(appStatus >>> 0, 0);
  body[4] = protocolStatus;
  return Buffer.concat(encodeRecords(RecordType.EndRequest, requestId, body));
}

function lengthBytes(length: number): Buffer {
  if (length < 0x80) return Buffer.from([length]);
  const bytes = Buffer.allocUnsafe(4);
  bytes.writeUInt32BE((length | 0x80000000) >>> 0, 0);
  return bytes;
}

/** Name-value pairs as PARAMS (and GET_VALUES) content: lengths of 1 byte below 128, else 4. */
export function encodeNameValuePairs(pairs: Iterable<readonly [string, string]>): Buffer {
  const parts: Buffer[] = [];
  for (const [name, value] of pairs) {
    const nameBytes = Buffer.from(name, 'latin1');
    const valueBytes = Buffer.from(value, 'latin1');
    parts.push(lengthBytes(nameBytes.length), lengthBytes(valueBytes.length), nameBytes, valueBytes);
  }
  return Buffer.concat(parts);
}

/** The reverse of `encodeNameValuePairs`; throws on a truncated pair. */
export function decodeNameValuePairs(content: Buffer): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  let offset = 0;
  const readLength = (): number => {
    const first = content[offset];
    if (first === undefined) throw new RangeError('FastCGI name-value pair truncated');
    if (first < 0x80) {
      offset += 1;
      return first;
    }
    if (offset + 4 > content.length) throw new RangeError('FastCGI name-value pair truncated');
    const length = content.readUInt32BE(offset) & 0x7fffffff;
    offset += 4;
    return length;
  };
  while (offset < content.length) {
    const nameLength = readLength();
    const valueLength = readLength();
    if (offset + nameLength + valueLength > content.length) throw new RangeError('FastCGI name-value pair truncated');
    const name = content.toString('latin1', offset, offset + nameLength);
    offset += nameLength;
    const value = content.toString('latin1', offset, offset + valueLength);
    offset += valueLength;
    pairs.push([name, value]);
  }
  return pairs;
}

/** PARAMS records for `pairs`, then the empty PARAMS record that ends them. */
export function encodeParams(requestId: number, pairs: Iterable<readonly [string, string]>): Buffer {
  const content = encodeNameValuePairs(pairs);
  const parts = content.length > 0 ? encodeRecords(RecordType.Params, requestId, content) : [];
  parts.push(...encodeRecords(RecordType.Params, requestId));
  return Buffer.concat(parts);
}

export interface EndRequestBody {
  appStatus: number;
  protocolStatus: number;
}

export function decodeEndRequest(content: Buffer): EndRequestBody {
  if (content.length < 8) throw new RangeError(`FastCGI END_REQUEST body has ${content.length} bytes, not 8`);
  return { appStatus: content.readUInt32BE(0), protocolStatus: content[4] as number };
}

/**
 * Cuts a byte stream into records, whatever the chunk boundaries. Throws a
 * `RangeError` for a record of another protocol version (not FastCGI).
 */
export class RecordReader {
  #pending: Buffer = Buffer.alloc(0);

  /** Appends `chunk` and returns every record now complete (content is a view, valid until the next push). */
  push(chunk: Buffer): FastCgiRecord[] {
    let buffer = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const records: FastCgiRecord[] = [];
    let offset = 0;
    while (buffer.length - offset >= recordHeaderSize) {
      if (buffer[offset] !== fcgiVersion) throw new RangeError(`not a FastCGI record (version byte ${buffer[offset]})`);
      const contentLength = buffer.readUInt16BE(offset + 4);
      const total = recordHeaderSize + contentLength + (buffer[offset + 6] as number);
      if (buffer.length - offset < total) break;
      records.push({
        type: buffer[offset + 1] as number,
        requestId: buffer.readUInt16BE(offset + 2),
        content: buffer.subarray(offset + recordHeaderSize, offset + recordHeaderSize + contentLength),
      });
      offset += total;
    }
    // Copied, so the kept tail does not pin a large chunk.
    buffer = buffer.subarray(offset);
    this.#pending = buffer.length === 0 ? Buffer.alloc(0) : Buffer.from(buffer);
    return records;
  }

  /** Whether a partial record is waiting for more bytes. */
  get partial(): boolean {
    return this.#pending.length > 0;
  }
}
