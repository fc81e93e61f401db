/**
 * A Server-Sent Events client for the live-update tests: opens a stream over
 * real HTTP, parses the event stream as the WHATWG spec says (fields, blank
 * line dispatch, `id` carried over), and can stop reading (to play a slow
 * consumer) or abort.
 */
import { request, type IncomingHttpHeaders, type IncomingMessage, type ClientRequest } from 'node:http';
import { eventually } from './wait.js';

export interface SseEvent {
  event: string;
  data: string;
  /** The last event id seen so far (as EventSource keeps it). */
  id: string | undefined;
}

export interface OpenOptions {
  headers?: Record<string, string>;
  /** Socket receive buffer: small makes a stopped reader back the server up sooner. */
  highWaterMark?: number;
}

export class SseClient {
  readonly events: SseEvent[] = [];
  status = 0;
  headers: IncomingHttpHeaders = {};
  /** The body when the answer was not a stream (a problem, JSON). */
  body = '';
  ended = false;
  private buffer = '';
  private lastId: string | undefined;
  private pending: { event: string; data: string[] } = { event: '', data: [] };
  private response: IncomingMessage | undefined;

  private constructor(private readonly req: ClientRequest) {}

  /** Opens `url` with `Accept: text/event-stream`; resolves once the response head arrived. */
  static open(url: string, options: OpenOptions = {}): Promise<SseClient> {
    return new Promise((resolve, reject) => {
      const req = request(url, { headers: { accept: 'text/event-stream', ...options.headers }, agent: false });
      const client = new SseClient(req);
      req.on('error', (error) => {
        client.ended = true;
        if (client.status === 0) reject(error);
      });
      req.on('response', (res) => {
        client.response = res;
        client.status = res.statusCode ?? 0;
        client.headers = res.headers;
        res.setEncoding('utf8');
        const streaming = String(res.headers['content-type']).startsWith('text/event-stream');
        res.on('data', (chunk: string) => (streaming ? client.feed(chunk) : (client.body += chunk)));
        res.on('end', () => (client.ended = true));
        res.on('close', () => (client.ended = true));
        res.on('error', () => (client.ended = true));
        resolve(client);
      });
      req.end();
    });
  }

  /** Events other than keep-alives, as `{ event, path, data, id }`. */
  get messages(): Array<{ event: string; id: string | undefined; path?: string; data: unknown }> {
    return this.events
      .filter((event) => event.event !== 'keep-alive')
      .map((event) => {
        const parsed = JSON.parse(event.data) as unknown;
        if (event.event === 'put' || event.event === 'patch') {
          const { path, data } = parsed as { path: string; data: unknown };
          return { event: event.event, id: event.id, path, data };
        }
        return { event: event.event, id: event.id, data: parsed };
      });
  }

  /** Waits until at least `count` events (keep-alives excluded) arrived. */
  async waitForMessages(count: number, what = `${count} events`): Promise<void> {
    await eventually(what, () => this.messages.length >= count);
  }

  async waitForEnd(): Promise<void> {
    await eventually('the stream to end', () => this.ended);
  }

  /** Stops reading: the socket's buffers fill and the server sees backpressure. */
  pause(): void {
    this.response?.pause();
  }

  resume(): void {
    this.response?.resume();
  }

  /** Aborts the connection, as a browser closing the tab. */
  close(): void {
    this.req.destroy();
  }

  private feed(chunk: string): void {
    this.buffer += chunk;
    for (;;) {
      const newline = this.buffer.search(/\r\n|\r|\n/);
      if (newline === -1) return;
      const line = this.buffer.slice(0, newline);
      const width = this.buffer.startsWith('\r\n', newline) ? 2 : 1;
      this.buffer = this.buffer.slice(newline + width);
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === '') {
      if (this.pending.data.length > 0) {
        this.events.push({ event: this.pending.event || 'message', data: this.pending.data.join('\n'), id: this.lastId });
      }
      this.pending = { event: '', data: [] };
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.pending.event = value;
    else if (field === 'data') this.pending.data.push(value);
    else if (field === 'id' && !value.includes('\0')) this.lastId = value;
  }
}
