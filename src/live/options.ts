/**
 * The `live` option of `jsonStore()`: Server-Sent Events streams. Checked
 * once at factory time, in the style of the store's other options.
 */
import { optionChecks, shown } from '../option-checks.js';

export interface LiveOptions {
  /** Milliseconds between `keep-alive` events on an idle stream; 0 sends none. Default 30 000. */
  keepAlive?: number;
  /**
   * Most bytes of events waiting for one slow subscriber (bytes or a size
   * string). Past it the waiting events are replaced by one fresh `put`; a
   * `put` larger than this ends the stream with `cancel`. Default `'1mb'`.
   */
  bufferSize?: number | string;
  /** Most streams and `subscribe()` listeners open at once; more is 503. Default 10 000. */
  maxSubscriptions?: number;
  /**
   * How many recent changes the store remembers (their paths, not their
   * values) to replay to a client reconnecting with `Last-Event-ID`, before
   * asking the storage's `changesSince`. Default 1000.
   */
  history?: number;
}

export interface ResolvedLiveOptions {
  keepAlive: number;
  bufferSize: number;
  maxSubscriptions: number;
  history: number;
}

const known = ['keepAlive', 'bufferSize', 'maxSubscriptions', 'history'];
const checks = optionChecks('jsonStore()');

/** `undefined` when streaming is turned off (`live: false`). */
export function resolveLiveOptions(options: LiveOptions | boolean | undefined): ResolvedLiveOptions | undefined {
  if (options === false) return undefined;
  if (options !== undefined && typeof options !== 'boolean' && (typeof options !== 'object' || options === null || Array.isArray(options))) {
    checks.fail(`option "live" must be true, false or an object such as { keepAlive: 30000 }, got ${shown(options)}`);
  }
  const given: Record<string, unknown> = options === undefined || options === true ? {} : { ...options };
  for (const key of Object.keys(given)) {
    if (!known.includes(key)) checks.fail(`unknown option "live.${key}"; the live options are ${known.join(', ')}`);
  }
  const pick = (name: string): unknown => {
    const value = given[name];
    return value === undefined ? undefined : value;
  };
  const name = (option: string) => `live.${option}`;
  return {
    keepAlive: checks.wholeNumber(name('keepAlive'), pick('keepAlive'), 30_000, { min: 0, max: 2_147_483_647, unit: 'milliseconds', example: 'such as 30000, or 0 for none' }),
    bufferSize: checks.size(name('bufferSize'), pick('bufferSize'), 1024 * 1024),
    maxSubscriptions: checks.wholeNumber(name('maxSubscriptions'), pick('maxSubscriptions'), 10_000, { min: 0 }),
    history: checks.wholeNumber(name('history'), pick('history'), 1000, { min: 0, max: 1_000_000 }),
  };
}
