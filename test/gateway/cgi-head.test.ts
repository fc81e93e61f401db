/**
 * Reading a CGI script's header block (RFC 3875 section 6.3), called
 * directly: where the block ends in output split at any byte, what it asks
 * for, and the 502 for anything malformed or too large. `cgi.test.ts` runs
 * real scripts through the same code.
 */
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/gateway/index.js';
import { CgiHeadReader, parseCgiHead, type CgiHead, type CompleteCgiHead } from '../../src/gateway/cgi-head.js';

/** A response head as plain data, to compare whole. */
function summary(head: CgiHead): unknown {
  if (head.kind === 'local-redirect') return head;
  const { statusCode, reason, headers, contentLength } = head.head;
  return { statusCode, reason, contentLength, headers: [...headers.values()].map((field) => [field.name, ...field.values]) };
}

function badGateway(run: () => unknown): GatewayError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    expect((error as GatewayError).status).toBe(502);
    return error as GatewayError;
  }
  throw new Error('expected a 502 GatewayError, nothing was thrown');
}

/** Feeds `output` in the given pieces; the first complete result, and how many pieces it took. */
function feed(reader: CgiHeadReader, pieces: readonly Buffer[]): { read: CompleteCgiHead | undefined; used: number } {
  for (let i = 0; i < pieces.length; i++) {
    const read = reader.push(pieces[i] as Buffer);
    if (read !== undefined) return { read, used: i + 1 };
  }
  return { read: undefined, used: pieces.length };
}

describe('parseCgiHead', () => {
  it('answers 200 with the fields as they are', () => {
    expect(summary(parseCgiHead('Content-Type: text/plain\nX-App:  yes  '))).toEqual({
      statusCode: 200,
      reason: undefined,
      contentLength: undefined,
      headers: [['Content-Type', 'text/plain'], ['X-App', 'yes']],
    });
  });

  it('takes the status from Status, with or without a reason, and does not send the field', () => {
    expect(summary(parseCgiHead('Status: 201 Created\nContent-Type: text/plain'))).toMatchObject({
      statusCode: 201,
      reason: 'Created',
      headers: [['Content-Type', 'text/plain']],
    });
    expect(summary(parseCgiHead('status: 418\r\nContent-Type: text/plain'))).toMatchObject({ statusCode: 418, reason: undefined });
  });

  it('serves a local Location in place, and redirects the client to an absolute one', () => {
    expect(parseCgiHead('Location: /native?from=cgi')).toEqual({ kind: 'local-redirect', location: '/native?from=cgi' });
    expect(summary(parseCgiHead('Location: http://example.com/elsewhere'))).toMatchObject({
      statusCode: 302,
      headers: [['Location', 'http://example.com/elsewhere']],
    });
    // "//host/path" is another host (network-path reference), not a local path.
    expect(summary(parseCgiHead('Location: //example.com/x'))).toMatchObject({ statusCode: 302 });
    // With a Status the script answers itself; the Location is just a header.
    expect(summary(parseCgiHead('Status: 201 Created\nLocation: /things/1'))).toMatchObject({
      statusCode: 201,
      headers: [['Location', '/things/1']],
    });
  });

  it('drops hop-by-hop fields and reads Content-Length', () => {
    expect(summary(parseCgiHead('Content-Type: text/plain\nConnection: close\nKeep-Alive: timeout=5\nContent-Length: 5'))).toEqual({
      statusCode: 200,
      reason: undefined,
      contentLength: 5,
      headers: [['Content-Type', 'text/plain'], ['Content-Length', '5']],
    });
  });

  it.each([
    ['', /no header fields/],
    ['Content-Type: text/plain\n\nX-After: blank', /no header fields/],
    ['Content-Type: text/plain\n folded', /folded header line/],
    ['Content-Type: text/plain\n\tfolded', /folded header line/],
    ['Content-Type text/plain', /invalid header line "Content-Type text\/plain"/],
    [': no name', /invalid header line/],
    ['Bad Name: x\nContent-Type: text/plain', /invalid header line "Bad Name: x"/],
    ['X-Only: 1', /it needs a Content-Type, Location or Status field/],
    ['Status: OK\nContent-Type: text/plain', /malformed response: Status: status "OK" must be three digits/],
    ['Status: 200 OK\nStatus: 201 Created\nContent-Type: text/plain', /more than one Status field/],
    ['Status: 99 Low\nContent-Type: text/plain', /three digits/],
    ['Status: 101 Switching Protocols\nContent-Type: text/plain', /from 200 to 599/],
    ['Content-Type: text/plain\nContent-Length: ten', /malformed response: cgi: Content-Length must be one non-negative integer/],
    ['Content-Type: text/plain\nX-Bell: \u0007', /malformed response: cgi: value of header 'X-Bell' contains control character 0x07/],
  ])('refuses %j with a 502 that says why', (text, why) => {
    const error = badGateway(() => parseCgiHead(text));
    expect(error.message).toMatch(/^The CGI script sent a malformed response: /);
    expect(error.message).toMatch(why);
  });
});

describe('CgiHeadReader', () => {
  const output = Buffer.from('Status: 201 Created\r\nContent-Type: text/plain\r\n\r\nbody bytes');
  const expected = { statusCode: 201, reason: 'Created', contentLength: undefined, headers: [['Content-Type', 'text/plain']] };

  it('reads a block that arrives in one chunk, and hands back the body bytes that came with it', () => {
    const { read } = feed(new CgiHeadReader(1024), [output]);
    expect(summary(read!.head)).toEqual(expected);
    expect(read!.body.toString()).toBe('body bytes');
  });

  it('finds the end of the block wherever the output is split', () => {
    for (let split = 1; split < output.length; split++) {
      const { read, used } = feed(new CgiHeadReader(1024), [output.subarray(0, split), output.subarray(split)]);
      expect(summary(read!.head), `split at ${split}`).toEqual(expected);
      // The body bytes are those that came after the blank line, up to the end of the chunk that completed the block.
      const bodyStart = output.indexOf('\r\n\r\n') + 4;
      const body = used === 1 ? output.subarray(bodyStart, split) : output.subarray(bodyStart);
      expect(read!.body.toString(), `split at ${split}`).toBe(body.toString());
    }
  });

  it('finds the end of the block fed one byte at a time, LF or CRLF', () => {
    for (const text of ['Content-Type: text/plain\n\nbody', 'Content-Type: text/plain\r\n\r\nbody', 'Content-Type: text/plain\n\r\nbody']) {
      const bytes = Buffer.from(text);
      const pieces = [...bytes].map((byte) => Buffer.from([byte]));
      const { read, used } = feed(new CgiHeadReader(1024), pieces);
      expect(summary(read!.head), JSON.stringify(text)).toMatchObject({ statusCode: 200, headers: [['Content-Type', 'text/plain']] });
      expect(used, JSON.stringify(text)).toBe(text.indexOf('body'));
      expect(read!.body.length).toBe(0);
    }
  });

  it('waits while the blank line has not come', () => {
    const reader = new CgiHeadReader(1024);
    expect(reader.push(Buffer.from('Content-Type: text/plain\r\n'))).toBeUndefined();
    expect(reader.push(Buffer.from('X-More: 1\r'))).toBeUndefined();
    expect(reader.push(Buffer.from('\n\r'))).toBeUndefined();
    const read = reader.push(Buffer.from('\nrest'));
    expect(summary(read!.head)).toMatchObject({ headers: [['Content-Type', 'text/plain'], ['X-More', '1']] });
    expect(read!.body.toString()).toBe('rest');
  });

  it('answers an empty header block (output starting with a blank line) with a 502', () => {
    expect(badGateway(() => new CgiHeadReader(1024).push(Buffer.from('\nbody'))).message).toMatch(/no header fields/);
    expect(badGateway(() => new CgiHeadReader(1024).push(Buffer.from('\r\nbody'))).message).toMatch(/no header fields/);
  });

  it('accepts a block of exactly maxHeaderSize bytes and refuses one byte more, complete or not', () => {
    const block = 'Content-Type: text/plain\nX-Pad: ';
    const exact = block + 'a'.repeat(64 - block.length);
    expect(exact.length).toBe(64);
    expect(summary(new CgiHeadReader(64).push(Buffer.from(`${exact}\n\nbody`))!.head)).toMatchObject({ statusCode: 200 });

    const tooLarge = `${exact}a\n\nbody`;
    expect(badGateway(() => new CgiHeadReader(64).push(Buffer.from(tooLarge))).message).toBe(
      "The CGI script's header block is larger than 64 bytes.",
    );
    // No blank line yet, but already past the limit: no point waiting for it.
    const reader = new CgiHeadReader(64);
    expect(reader.push(Buffer.from(exact))).toBeUndefined();
    expect(badGateway(() => reader.push(Buffer.from('a'))).message).toMatch(/larger than 64 bytes/);
  });
});
