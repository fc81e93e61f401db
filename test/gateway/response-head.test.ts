/**
 * The pure response-head checks every bridge applies to what an app hands
 * over (status, status line, header names and values, Content-Length),
 * called directly: the bridge tests show them over HTTP.
 */
import { describe, expect, it } from 'vitest';
import { GatewayProtocolError } from '../../src/gateway/index.js';
import {
  buildHead,
  checkStatusCode,
  hopByHopHeaders,
  isFieldText,
  isToken,
  parseStatusLine,
  statusAllowsBody,
} from '../../src/gateway/response-head.js';

/** The head's headers as plain `[name, values]` rows, to compare whole. */
function fields(pairs: Iterable<readonly [unknown, unknown]>, dropHopByHop = false): Array<[string, string[]]> {
  return [...buildHead(200, undefined, pairs, 'test', dropHopByHop).headers.values()].map((field) => [field.name, field.values]);
}

function protocolError(run: () => unknown): GatewayProtocolError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayProtocolError);
    return error as GatewayProtocolError;
  }
  throw new Error('expected a GatewayProtocolError, nothing was thrown');
}

describe('isToken', () => {
  it.each(['Content-Type', 'x-a', "!#$%&'*+-.^_`|~09azAZ"])('accepts %j', (name) => {
    expect(isToken(name)).toBe(true);
  });

  it.each(['', 'Bad Name', 'X:Y', 'X\tY', 'caf\u00e9', 'a\r\nb', '(x)'])('refuses %j', (name) => {
    expect(isToken(name)).toBe(false);
  });
});

describe('isFieldText', () => {
  it.each(['', 'plain', 'tab\there', 'caf\u00e9 (Latin-1)', '~!@#'])('accepts %j', (text) => {
    expect(isFieldText(text)).toBe(true);
  });

  it.each(['a\rb', 'a\nb', 'a\u0000b', 'a\u007fb', 'snowman \u2603', 'a\u001bb'])('refuses %j', (text) => {
    expect(isFieldText(text)).toBe(false);
  });
});

describe('statusAllowsBody', () => {
  it('is false for 204 and 304 only', () => {
    expect([200, 201, 204, 206, 302, 304, 404, 500].filter((status) => !statusAllowsBody(status))).toEqual([204, 304]);
  });
});

describe('checkStatusCode', () => {
  it.each([200, 299, 404, 599])('accepts %i', (code) => {
    expect(checkStatusCode(code, 'test')).toBe(code);
  });

  it.each([100, 101, 199, 600, 200.5, Number.NaN, '200', null, undefined])('refuses %j, naming where', (code) => {
    expect(protocolError(() => checkStatusCode(code, 'jsgi')).message).toMatch(/^jsgi: status must be an integer from 200 to 599/);
  });
});

describe('parseStatusLine', () => {
  it('splits code and reason', () => {
    expect(parseStatusLine('200 OK', 'test')).toEqual({ statusCode: 200, reason: 'OK' });
    expect(parseStatusLine('404 Not Found Here', 'test')).toEqual({ statusCode: 404, reason: 'Not Found Here' });
    expect(parseStatusLine('299 caf\u00e9', 'test')).toEqual({ statusCode: 299, reason: 'caf\u00e9' });
  });

  it('needs a reason unless told otherwise (CGI Status), and leaves a blank one to Node', () => {
    expect(protocolError(() => parseStatusLine('418', 'test')).message).toMatch(/three digits, a space and a reason phrase/);
    expect(parseStatusLine('418', 'Status', false)).toEqual({ statusCode: 418, reason: undefined });
    expect(parseStatusLine('418 ', 'Status', false)).toEqual({ statusCode: 418, reason: undefined });
    expect(parseStatusLine('418   ', 'Status', false)).toEqual({ statusCode: 418, reason: undefined });
  });

  it.each([
    ['200OK', /three digits/],
    ['20 OK', /three digits/],
    ['2000 OK', /three digits/],
    ['abc OK', /three digits/],
    ['200 ', /three digits/],
    ['200 OK\r\nX-Injected: 1', /control character/],
    ['200 O\u0000K', /control character/],
    ['200 snowman \u2603', /reason phrase contains U\+2603 \(outside Latin-1\)/],
    ['100 Continue', /from 200 to 599/],
    ['600 Beyond', /from 200 to 599/],
    [200, /must be a string such as '200 OK', got number/],
  ])('refuses %j', (status, message) => {
    const error = protocolError(() => parseStatusLine(status, 'wsgi start_response()'));
    expect(error.message).toMatch(/^wsgi start_response\(\): /);
    expect(error.message).toMatch(message);
  });
});

describe('buildHead', () => {
  it('keeps the status and reason, and each name as first spelt with all its values in order', () => {
    const head = buildHead(201, 'Made', [['Set-Cookie', 'a=1'], ['X-App', 'yes'], ['set-cookie', 'b=2']], 'test');
    expect([head.statusCode, head.reason, head.contentLength]).toEqual([201, 'Made', undefined]);
    expect([...head.headers.keys()]).toEqual(['set-cookie', 'x-app']);
    expect(head.headers.get('set-cookie')).toEqual({ name: 'Set-Cookie', values: ['a=1', 'b=2'] });
  });

  it('accepts finite numbers as values, as text', () => {
    expect(fields([['X-Count', 12], ['X-Ratio', 0.5]])).toEqual([
      ['X-Count', ['12']],
      ['X-Ratio', ['0.5']],
    ]);
  });

  it.each<[readonly [unknown, unknown], RegExp]>([
    [['Bad Name', 'x'], /header name "Bad Name" is not a valid HTTP token/],
    [['', 'x'], /header name "" is not a valid HTTP token/],
    [[42, 'x'], /header name 42 is not a valid HTTP token/],
    [['X-Split', 'a\r\nSet-Cookie: evil=1'], /value of header 'X-Split' contains CR/],
    [['X-Newline', 'a\nb'], /contains LF/],
    [['X-Nul', 'a\u0000b'], /contains NUL/],
    [['X-Escape', 'a\u001bb'], /contains control character 0x1b/],
    [['X-Wide', 'snowman \u2603'], /contains U\+2603 \(outside Latin-1\)/],
    [['X-Object', {}], /value of header 'X-Object' must be a string, got object/],
    [['X-Infinite', Infinity], /must be a string, got number/],
    [['X-Missing', undefined], /must be a string, got undefined/],
  ])('refuses the header %j', (pair, message) => {
    const error = protocolError(() => buildHead(200, undefined, [pair], 'jsgi'));
    expect(error.message).toMatch(/^jsgi: /);
    expect(error.message).toMatch(message);
  });

  it.each([...hopByHopHeaders])('refuses the hop-by-hop header %j, or drops it for a proxied response', (name) => {
    expect(protocolError(() => fields([[name, 'x']])).message).toMatch(/is a hop-by-hop header; the server manages the connection/);
    expect(fields([[name, 'x'], ['X-Kept', '1']], true)).toEqual([['X-Kept', ['1']]]);
  });

  it('reads Content-Length: one non-negative integer, repeated copies of it folded to one', () => {
    expect(buildHead(200, undefined, [['Content-Length', '11']], 'test').contentLength).toBe(11);
    expect(buildHead(200, undefined, [['Content-Length', 0]], 'test').contentLength).toBe(0);
    const repeated = buildHead(200, undefined, [['Content-Length', '5'], ['content-length', ' 5 ']], 'test');
    expect(repeated.contentLength).toBe(5);
    expect(repeated.headers.get('content-length')).toEqual({ name: 'Content-Length', values: ['5'] });
  });

  it.each([['ten'], ['-1'], ['1.5'], ['1e3'], [''], ['9007199254740993']])('refuses the Content-Length %j', (value) => {
    expect(protocolError(() => fields([['Content-Length', value]])).message).toMatch(/Content-Length must be one non-negative integer/);
  });

  it('refuses two different Content-Lengths', () => {
    expect(protocolError(() => fields([['Content-Length', '5'], ['Content-Length', '6']])).message).toMatch(
      /Content-Length must be one non-negative integer, got \["5","6"\]/,
    );
  });
});
