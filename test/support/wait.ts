/**
 * Waiting for conditions, never for fixed times: every suite polls with this.
 * The bound is a guard against a hang, not a timing assertion, so it is
 * generous.
 */

/**
 * Polls `check` until it returns something other than `undefined` or `false`
 * and resolves with that; a check that throws counts as not yet. Fails with
 * `what` (and the last error) after `boundMs`.
 */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined | false> | T | undefined | false,
  boundMs = 20_000,
): Promise<Exclude<T, undefined | false>> {
  const deadline = Date.now() + boundMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value as Exclude<T, undefined | false>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`gave up waiting for ${what}${last === undefined ? '' : `: ${last instanceof Error ? last.message : String(last)}`}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
