/**
 * Option checking, done once when a bridge is created: a misspelt or
 * mistyped option is a `TypeError` naming it, at startup rather than on the
 * first request.
 */
import { optionChecks, shown, type OptionChecks } from '../option-checks.js';
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

/** The shared checks, with messages that start with `<bridge>()`. */
function checksFor(bridge: string): OptionChecks {
  return optionChecks(`${bridge}()`);
}

/** Rejects anything but a plain object, and any key not in `allowed` (typos). */
export function checkOptionObject(bridge: string, options: unknown, allowed: readonly string[]): Record<string, unknown> {
  if (options === undefined) return {};
  return checksFor(bridge).knownOptions(options, allowed);
}

export function checkBoolean(bridge: string, name: string, value: unknown, fallback: boolean): boolean {
  return checksFor(bridge).boolean(name, value, fallback);
}

export function checkPositiveNumber(bridge: string, name: string, value: unknown, fallback: number): number {
  return checksFor(bridge).positiveNumber(name, value, fallback);
}

/** An argument (not an option) that must be a function, such as the app. */
export function checkFunction<T>(bridge: string, name: string, value: unknown): T {
  if (typeof value !== 'function') checksFor(bridge).fail(`${name} must be a function, got ${shown(value)}`);
  return value as T;
}

function defaultLogger(bridge: string): GatewayLogger {
  return (line) => {
    process.stderr.write(`[express-jsonstore ${bridge}] ${line}\n`);
  };
}

export function resolveCommonOptions(bridge: string, options: Record<string, unknown>): ResolvedGatewayOptions {
  const checks = checksFor(bridge);
  const { fallthrough, onError, logger } = options as GatewayOptions;

  let statuses: number[] = [];
  if (fallthrough === true) statuses = [404];
  else if (Array.isArray(fallthrough)) {
    for (const status of fallthrough) {
      if (!Number.isInteger(status) || status < 200 || status > 599) {
        checks.fail(`option "fallthrough" must list statuses from 200 to 599, got ${shown(status)}`);
      }
    }
    statuses = [...fallthrough];
  } else if (fallthrough !== undefined && fallthrough !== false) {
    checks.fail(`option "fallthrough" must be true, false or an array of statuses, got ${shown(fallthrough)}`);
  }

  return {
    fallthrough: new Set(statuses),
    onError: checks.oneOf('onError', onError, ['problem', 'next'] as const, 'problem'),
    logger: logger === undefined ? defaultLogger(bridge) : checks.func<GatewayLogger>('logger', logger),
    trustProxy: checks.boolean('trustProxy', options.trustProxy, false),
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
