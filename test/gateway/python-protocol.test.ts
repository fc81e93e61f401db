/**
 * The frame codec between pythonWsgi() and its workers: frames split across
 * reads, several in one read, large ones, and a corrupt length.
 */
import { describe, expect, it } from 'vitest';
import { decodeResponseHead, encodeFrame, FrameDecoder, frameHeader, maxFramePayload, requestFrames, type Frame } from '../../src/gateway/python-protocol.js';
import { randomSource } from '../support/random.js';

function decodeInPieces(bytes: Buffer, pieceSizes: () => number): Frame[] {
  const decoder = new FrameDecoder();
  const frames: Frame[] = [];
  for (let offset = 0; offset < bytes.length; ) {
    const size = Math.max(1, pieceSizes());
    decoder.push(bytes.subarray(offset, offset + size), frames);
    offset += size;
  }
  return frames;
}

describe('python protocol frames', () => {
  it('decodes the same frames whatever the read boundaries', () => {
    const random = randomSource(15);
    const sent: Array<[number, Buffer]> = [
      [0x53, Buffer.from('["200 OK", [["Content-Type", "text/plain"]]]')],
      [0x42, Buffer.alloc(0)],
      [0x42, Buffer.alloc(300_000, 7)],
      [0x4c, Buffer.from('a log line\n')],
      [0x45, Buffer.alloc(0)],
    ];
    const bytes = Buffer.concat(sent.map(([type, payload]) => encodeFrame(type, payload)));
    for (const pieces of [() => bytes.length, () => 1, () => 4096, () => 1 + Math.floor(random() * 70_000)]) {
      const frames = decodeInPieces(bytes, pieces);
      // Compared as base64 text: a deep comparison of large Buffers is slow.
      expect(frames.map((frame) => [frame.type, frame.payload.toString('base64')])).toEqual(sent.map(([type, payload]) => [type, payload.toString('base64')]));
    }
  });

  it('keeps a partial frame until the rest arrives', () => {
    const decoder = new FrameDecoder();
    const frames: Frame[] = [];
    const frame = encodeFrame(0x42, 'hello');
    decoder.push(frame.subarray(0, 3), frames);
    decoder.push(frame.subarray(3, 7), frames);
    expect(frames).toEqual([]);
    decoder.push(Buffer.concat([frame.subarray(7), encodeFrame(0x45)]), frames);
    expect(frames.map((entry) => [entry.type, entry.payload.toString()])).toEqual([
      [0x42, 'hello'],
      [0x45, ''],
    ]);
  });

  it('refuses a length past the limit as a corrupt stream', () => {
    expect(() => new FrameDecoder().push(frameHeader(0x42, maxFramePayload + 1), [])).toThrow(/corrupt frame/);
  });

  it('limits frames by type when their header arrives: 1 MiB, 64 KiB for a response head', () => {
    expect(maxFramePayload).toBe(1024 * 1024);
    for (const type of [0x42, 0x4c, 0x58, 0x46]) {
      expect(() => new FrameDecoder().push(frameHeader(type, 1024 * 1024), [])).not.toThrow();
      expect(() => new FrameDecoder().push(frameHeader(type, 1024 * 1024 + 1), [])).toThrow(/corrupt frame/);
    }
    for (const type of [0x73, 0x53]) {
      expect(() => new FrameDecoder().push(frameHeader(type, 64 * 1024), [])).not.toThrow();
      expect(() => new FrameDecoder().push(frameHeader(type, 64 * 1024 + 1), [])).toThrow(/corrupt frame/);
    }
  });

  it('starts a request with the environ as NUL-separated pairs, body and end in the same buffer', () => {
    const frames: Frame[] = [];
    new FrameDecoder().push(requestFrames({ PATH_INFO: '/caf\u00e9', HTTP_X: '' }, Buffer.from('body')), frames);
    expect(frames.map((frame) => [String.fromCharCode(frame.type), frame.payload.toString('utf8')])).toEqual([
      ['H', 'PATH_INFO\0/caf\u00e9\0HTTP_X\0'],
      ['B', 'body'],
      ['E', ''],
    ]);
  });

  it('falls back to a JSON environ when a value holds a NUL; no body frame for an empty body, none at all for a streamed one', () => {
    const frames: Frame[] = [];
    const decoder = new FrameDecoder();
    decoder.push(requestFrames({ QUERY_STRING: 'a\0b' }, Buffer.alloc(0)), frames);
    decoder.push(requestFrames({ QUERY_STRING: 'x' }, undefined), frames);
    expect(frames.map((frame) => [String.fromCharCode(frame.type), frame.payload.toString('utf8')])).toEqual([
      ['J', '{"QUERY_STRING":"a\\u0000b"}'],
      ['E', ''],
      ['H', 'QUERY_STRING\0x'],
    ]);
  });

  it('reads a response head in both encodings', () => {
    const compact = { type: 0x73, payload: Buffer.from('200 OK\0Content-Type\0text/plain\0X-Empty\0', 'utf8') };
    expect(decodeResponseHead(compact)).toEqual({ status: '200 OK', headers: [['Content-Type', 'text/plain'], ['X-Empty', '']] });
    const json = { type: 0x53, payload: Buffer.from('["200 OK", [["X-Bad", "a\\u0000b"]]]') };
    expect(decodeResponseHead(json)).toEqual({ status: '200 OK', headers: [['X-Bad', 'a\0b']] });
    expect(() => decodeResponseHead({ type: 0x73, payload: Buffer.from('200 OK\0Lonely') })).toThrow(/odd number/);
  });
});
