/**
 * The FastCGI record codec, byte for byte against the specification's layout.
 */
import { describe, expect, it } from 'vitest';
import {
  decodeEndRequest,
  decodeNameValuePairs,
  encodeAbortRequest,
  encodeBeginRequest,
  encodeEndRequest,
  encodeNameValuePairs,
  encodeParams,
  encodeRecords,
  RecordReader,
  RecordType,
} from '../../src/gateway/fastcgi-protocol.js';

describe('FastCGI records', () => {
  it('encodes BEGIN_REQUEST for a responder with FCGI_KEEP_CONN', () => {
    expect([...encodeBeginRequest(1, true)]).toEqual([1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0]);
    expect(encodeBeginRequest(258, false)[10]).toBe(0);
    expect([...encodeBeginRequest(258, false).subarray(2, 4)]).toEqual([1, 2]);
  });

  it('encodes ABORT_REQUEST as an empty record', () => {
    expect([...encodeAbortRequest(1)]).toEqual([1, 2, 0, 1, 0, 0, 0, 0]);
  });

  it('pads content to a multiple of 8 and splits it at 65535 bytes', () => {
    const [head, content, pad] = encodeRecords(RecordType.Stdin, 1, Buffer.from('hello'));
    expect([...(head as Buffer)]).toEqual([1, 5, 0, 1, 0, 5, 3, 0]);
    expect(content?.toString()).toBe('hello');
    expect(pad?.length).toBe(3);
    const big = Buffer.alloc(70_000, 1);
    const reader = new RecordReader();
    const records = reader.push(Buffer.concat(encodeRecords(RecordType.Stdout, 1, big)));
    expect(records.map((record) => record.content.length)).toEqual([65_535, 4_465]);
    expect(Buffer.concat(records.map((record) => record.content)).equals(big)).toBe(true);
  });

  it('encodes name-value lengths in 1 byte below 128 and 4 bytes (high bit set) from 128', () => {
    const short = encodeNameValuePairs([['A', 'bc']]);
    expect([...short]).toEqual([1, 2, 65, 98, 99]);
    const long = encodeNameValuePairs([['N', 'x'.repeat(200)]]);
    expect([...long.subarray(0, 5)]).toEqual([1, 0x80, 0, 0, 200]);
    const pairs: Array<[string, string]> = [['REQUEST_URI', '/a?b'], ['EMPTY', ''], ['LONG_'.repeat(40), 'v'.repeat(1000)]];
    expect(decodeNameValuePairs(encodeNameValuePairs(pairs))).toEqual(pairs);
    expect(() => decodeNameValuePairs(Buffer.from([5, 1, 65]))).toThrow(/truncated/);
  });

  it('ends PARAMS with an empty record', () => {
    const reader = new RecordReader();
    const records = reader.push(encodeParams(1, [['A', 'b']]));
    expect(records.map((record) => [record.type, record.content.length])).toEqual([[RecordType.Params, 4], [RecordType.Params, 0]]);
    expect(reader.push(encodeParams(1, [])).map((record) => record.content.length)).toEqual([0]);
  });

  it('reads records across any chunk boundaries', () => {
    const stream = Buffer.concat([
      ...encodeRecords(RecordType.Stdout, 1, Buffer.from('Content-Type: text/plain\r\n\r\nhi')),
      ...encodeRecords(RecordType.Stderr, 1, Buffer.from('warn')),
      encodeEndRequest(1, 255, 0),
    ]);
    for (let size = 1; size <= stream.length; size += 7) {
      const reader = new RecordReader();
      const records = [];
      for (let offset = 0; offset < stream.length; offset += size) records.push(...reader.push(stream.subarray(offset, offset + size)));
      expect(records.map((record) => record.type)).toEqual([RecordType.Stdout, RecordType.Stderr, RecordType.EndRequest]);
      expect(records[1]?.content.toString()).toBe('warn');
      expect(decodeEndRequest(records[2]?.content as Buffer)).toEqual({ appStatus: 255, protocolStatus: 0 });
      expect(reader.partial).toBe(false);
    }
  });

  it('refuses bytes that are not FastCGI records', () => {
    expect(() => new RecordReader().push(Buffer.from('HTTP/1.1 200 OK\r\n'))).toThrow(/not a FastCGI record/);
    expect(() => decodeEndRequest(Buffer.alloc(3))).toThrow(/not 8/);
  });
});
