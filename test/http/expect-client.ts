/**
 * A raw HTTP/1.1 client for `Expect: 100-continue`: it sends the headers,
 * and the body only if (and once) the server answers `100 Continue`. It
 * records what arrived, so a test can tell a 413 sent before any upload from
 * one sent after it.
 */
import { connect } from 'node:net';

export interface ContinueExchange {
  /** Whether the server sent `100 Continue` before its final answer. */
  sawContinue: boolean;
  /** Whether this client sent the body (it does only after a 100). */
  sentBody: boolean;
  status: number;
  headers: Record<string, string>;
  text: string;
  json(): unknown;
}

/**
 * `head` is the request line and header lines (no blank line); `Expect`,
 * `Content-Length` and `Connection: close` are added. `declaredLength` lets a
 * test announce a body far larger than it would ever send.
 */
export function sendExpectingContinue(port: number, head: string, body: string, declaredLength = Buffer.byteLength(body)): Promise<ContinueExchange> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let buffer = Buffer.alloc(0);
    let sawContinue = false;
    let sentBody = false;
    socket.on('connect', () => {
      socket.write(`${head}\r\nExpect: 100-continue\r\nContent-Length: ${declaredLength}\r\nConnection: close\r\n\r\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      buffer = Buffer.concat([buffer, chunk]);
      const interim = /^HTTP\/1\.1 100 [^\r\n]*\r\n\r\n/.exec(buffer.toString('latin1'));
      if (interim) {
        sawContinue = true;
        buffer = buffer.subarray(interim[0].length);
        if (!sentBody && Buffer.byteLength(body) === declaredLength) {
          sentBody = true;
          socket.write(body);
        }
      }
    });
    socket.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'ECONNRESET') reject(error);
    });
    socket.on('close', () => {
      const raw = buffer.toString('utf8');
      const end = raw.indexOf('\r\n\r\n');
      const [statusLine = '', ...lines] = (end === -1 ? raw : raw.slice(0, end)).split('\r\n');
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(':');
        if (colon > 0) headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
      }
      const text = end === -1 ? '' : raw.slice(end + 4);
      resolve({
        sawContinue,
        sentBody,
        status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0),
        headers,
        text,
        json: () => JSON.parse(text) as unknown,
      });
    });
  });
}
