/**
 * The frame codec between pythonWsgi() and its workers: frames split across
 * reads, several in one read, large ones, and a corrupt length.
 */
import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder, frameHeader, maxFramePayload, type Frame } from '../../src/gateway/python-protocol.js';
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
});
