/**
 * Option checking, done once when a bridge is created: a misspelt or
 * mistyped option is a `TypeError` naming it, at startup rather than on the
 * first request.
 */
import type { GatewayLogger, GatewayOptions } from './types.js';

/** Options every bridge understands, after checking and defaults. */
export interface ResolvedGatewayOptions {
  /** Statuses that fall through to `next()`; empty when the option is off. */
  fallthrough: ReadonlySet<number>;
  onError: 'problem' | 'next';
  logger: GatewayLogger;
  trustProxy: boolean;
}

export const commonOptionNames = ['fallthrough', 'onError', 'logger', 'trustProxy'] as const;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}

/** Rejects anything but a plain object, and any key not in `allowed` (typos). */
export function checkOptionObject(bridge: string, options: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw new TypeError(`${bridge}(): options must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!allowed.includes(key)) {
      throw new TypeError(`${bridge}(): unknown option '${key}' (known: ${allowed.join(', ')})`);
    }
  }
  return options as Record<string, unknown>;
}

export function checkBoolean(bridge: string, name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') throw new TypeError(`${bridge}(): option '${name}' must be a boolean, got ${describe(value)}`);
  return value;
}

export function checkPositiveNumber(bridge: string, name: string, value: unknown, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new TypeError(`${bridge}(): option '${name}' must be a positive number, got ${describe(value)}`);
  }
  return value;
}

export function checkFunction<T>(bridge: string, name: string, value: unknown): T {
  if (typeof value !== 'function') throw new TypeError(`${bridge}(): ${name} must be a function, got ${describe(value)}`);
  return value as T;
}

function defaultLogger(bridge: string): GatewayLogger {
  return (line) => {
    process.stderr.write(`[express-jsonstore ${bridge}] ${line}\n`);
  };
}

export function resolveCommonOptions(bridge: string, options: Record<string, unknown>): ResolvedGatewayOptions {
  const { fallthrough, onError, logger } = options as GatewayOptions;

  let statuses: number[] = [];
  if (fallthrough === true) statuses = [404];
  else if (Array.isArray(fallthrough)) {
    for (const status of fallthrough) {
      if (!Number.isInteger(status) || status < 200 || status > 599) {
        throw new TypeError(`${bridge}(): option 'fallthrough' must list statuses from 200 to 599, got ${describe(status)}`);
      }
    }
    statuses = [...fallthrough];
  } else if (fallthrough !== undefined && fallthrough !== false) {
    throw new TypeError(`${bridge}(): option 'fallthrough' must be a boolean or an array of statuses, got ${describe(fallthrough)}`);
  }

  if (onError !== undefined && onError !== 'problem' && onError !== 'next') {
    throw new TypeError(`${bridge}(): option 'onError' must be 'problem' or 'next', got ${describe(onError)}`);
  }
  if (logger !== undefined && typeof logger !== 'function') {
    throw new TypeError(`${bridge}(): option 'logger' must be a function, got ${describe(logger)}`);
  }

  return {
    fallthrough: new Set(statuses),
    onError: onError ?? 'problem',
    logger: logger ?? defaultLogger(bridge),
    trustProxy: checkBoolean(bridge, 'trustProxy', options.trustProxy, false),
  };
}

/**
 * The options of the callable bridges (wsgi, jsgi): the app must be a
 * function, and `multiprocess` is what the app is told about its server.
 */
export function resolveCallableBridge(bridge: string, app: unknown, options: unknown): { common: ResolvedGatewayOptions; multiprocess: boolean } {
  checkFunction(bridge, 'app', app);
  const raw = checkOptionObject(bridge, options, [...commonOptionNames, 'multiprocess']);
  return { common: resolveCommonOptions(bridge, raw), multiprocess: checkBoolean(bridge, 'multiprocess', raw.multiprocess, false) };
}

/** Calls the logger without letting a broken logger break the response. */
export function safeLog(logger: GatewayLogger, line: string): void {
  try {
    logger(line);
  } catch {
    // A logger that throws must not turn a handled error into a crash.
  }
}

/** Stack (server side only) or message of anything thrown. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.stack ?? `${error.name}: ${error.message}`;
  return `non-Error value thrown: ${String(error)}`;
}

/** Last line of defence for a request's async work: an error here is logged, never an unhandled rejection. */
export function reportEscaped(logger: GatewayLogger, bridge: string, error: unknown): void {
  safeLog(logger, `${bridge}: unexpected error while answering: ${describeError(error)}`);
}
