/**
 * The checks every factory runs on its options, once, when it is called: a
 * bad option is a `TypeError` that starts with the factory's name and names
 * the option, in one style everywhere:
 *
 *   jsonStore(): unknown option "limt"; the options are initial, storage, …
 *   fileStorage(): option "fsync" must be 'always' or 'never', got "sometimes"
 */
import bytes from 'bytes';

/** A value as a message shows it after "got": strings quoted, objects by kind. */
export function shown(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'function') return 'a function';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object' && value !== null) return 'an object';
  if (typeof value === 'bigint') return `${value}n`;
  return String(value);
}

function isWholeNumber(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value);
}

const sizePattern = /^\s*\d+(?:\.\d+)?\s*(?:b|kb|mb|gb|tb|pb)?\s*$/i;

/** A range of whole numbers, and how to describe one. */
export interface WholeNumberRange {
  /** Default 1. */
  min?: number;
  max?: number;
  /** What is counted, e.g. 'bytes' or 'milliseconds'. */
  unit?: string;
  /** Said after the range, e.g. 'such as 86400000 for 24 hours'. */
  example?: string;
}

export interface OptionChecks {
  /** Throws `TypeError('<factory>: <message>')`. */
  fail(message: string): never;
  /** A plain object (not null, not an array); `hint` follows "must be an object", e.g. ' such as { test, factory }'. */
  object(options: unknown, hint?: string): Record<string, unknown>;
  /** `object()`, and every key one of `known` (a misspelt option is an error, not ignored). */
  knownOptions(options: unknown, known: readonly string[], hint?: string): Record<string, unknown>;
  wholeNumber(name: string, value: unknown, fallback: number, range?: WholeNumberRange): number;
  /** A positive number of bytes, given as a number or a size string such as '1mb'. */
  size(name: string, value: unknown, fallback: number): number;
  /** A number above 0; `Infinity` only where `allowInfinity`. */
  positiveNumber(name: string, value: unknown, fallback: number, allowInfinity?: boolean): number;
  boolean(name: string, value: unknown, fallback: boolean): boolean;
  oneOf<T extends string>(name: string, value: unknown, choices: readonly T[], fallback: T): T;
  /** A function; `what` replaces "a function" in the message, e.g. 'a function returning a new adapter'. */
  func<T>(name: string, value: unknown, what?: string): T;
}

function listed(choices: readonly string[]): string {
  const quoted = choices.map((choice) => `'${choice}'`);
  return quoted.length < 2 ? quoted.join('') : `${quoted.slice(0, -1).join(', ')} or ${quoted[quoted.length - 1]}`;
}

function rangeText({ min = 1, max, unit, example }: WholeNumberRange): string {
  const counted = unit === undefined ? '' : ` of ${unit}`;
  let text: string;
  if (max !== undefined) text = `a whole number${counted} from ${min} to ${max}`;
  else if (min === 1) text = `a positive whole number${counted}`;
  else text = `a whole number${counted}, ${min} or more`;
  return example === undefined ? text : `${text}, ${example}`;
}

/** The checks for one factory; `factory` starts every message, e.g. 'jsonStore()'. */
export function optionChecks(factory: string): OptionChecks {
  // Declared (not an arrow) so that TypeScript narrows after a call to it.
  function fail(message: string): never {
    throw new TypeError(`${factory}: ${message}`);
  }
  function object(options: unknown, hint = ''): Record<string, unknown> {
    if (typeof options !== 'object' || options === null || Array.isArray(options)) fail(`options must be an object${hint}, got ${shown(options)}`);
    return options as Record<string, unknown>;
  }
  return {
    fail,
    object,
    knownOptions(options, known, hint) {
      const record = object(options, hint);
      for (const key of Object.keys(record)) {
        if (!known.includes(key)) fail(`unknown option "${key}"; the options are ${known.join(', ')}`);
      }
      return record;
    },
    wholeNumber(name, value, fallback, range = {}) {
      const number = value === undefined ? fallback : value;
      const { min = 1, max = Number.MAX_SAFE_INTEGER } = range;
      if (!isWholeNumber(number) || number < min || number > max) fail(`option "${name}" must be ${rangeText(range)}, got ${shown(value)}`);
      return number;
    },
    size(name, value, fallback) {
      let size: number;
      if (value === undefined) size = fallback;
      else if (typeof value === 'number') size = value;
      // bytes.parse() reads '12xyz' as 12 and '1kb2' as 1; accept only a number and a unit.
      else if (typeof value === 'string') size = sizePattern.test(value) ? (bytes.parse(value.trim()) ?? Number.NaN) : Number.NaN;
      else size = Number.NaN;
      if (!isWholeNumber(size) || size < 1) fail(`option "${name}" must be a positive number of bytes or a size such as '1mb', got ${shown(value)}`);
      return size;
    },
    positiveNumber(name, value, fallback, allowInfinity = false) {
      const number = value === undefined ? fallback : value;
      if (typeof number !== 'number' || Number.isNaN(number) || number <= 0 || (!allowInfinity && number === Infinity)) {
        fail(`option "${name}" must be a positive number${allowInfinity ? ' (Infinity allowed)' : ''}, got ${shown(value)}`);
      }
      return number;
    },
    boolean(name, value, fallback) {
      if (value === undefined) return fallback;
      if (typeof value !== 'boolean') fail(`option "${name}" must be true or false, got ${shown(value)}`);
      return value;
    },
    oneOf<T extends string>(name: string, value: unknown, choices: readonly T[], fallback: T): T {
      if (value === undefined) return fallback;
      if (!choices.includes(value as T)) fail(`option "${name}" must be ${listed(choices)}, got ${shown(value)}`);
      return value as T;
    },
    func<T>(name: string, value: unknown, what = 'a function'): T {
      if (typeof value !== 'function') fail(`option "${name}" must be ${what}, got ${shown(value)}`);
      return value as T;
    },
  };
}
