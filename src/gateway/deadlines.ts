/**
 * Deadlines of requests that all get the same timeout: arrival order is
 * deadline order, so they are kept in one insertion-ordered Map and a single
 * timer waits for the oldest. A request costs a Map entry instead of a timer
 * of its own (setTimeout and clearTimeout on every request were a visible
 * part of a small request's cost).
 */
import { performance } from 'node:perf_hooks';

/** setTimeout's longest delay; a longer one would fire at once. A far deadline is re-armed in steps. */
const maxTimerDelayMs = 0x7fffffff;

export interface Expiring {
  /** Called once when the deadline passed before `delete`. */
  expire(): void;
}

export class Deadlines<T extends Expiring> {
  readonly #timeoutMs: number;
  readonly #entries = new Map<T, number>();
  #timer: NodeJS.Timeout | undefined;

  constructor(timeoutMs: number) {
    this.#timeoutMs = timeoutMs;
  }

  /** Starts `entry`'s clock: `timeoutMs` from now. */
  add(entry: T): void {
    const deadline = performance.now() + this.#timeoutMs; // monotonic, as setTimeout is
    this.#entries.set(entry, deadline);
    if (this.#timer === undefined) this.#arm(deadline);
  }

  /** Stops `entry`'s clock (it finished). With nothing left to time, the timer goes, so it keeps no process alive. */
  delete(entry: T): void {
    if (!this.#entries.delete(entry) || this.#entries.size > 0 || this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  get size(): number {
    return this.#entries.size;
  }

  #arm(deadline: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer); // an expire() may have added an entry meanwhile
    this.#timer = setTimeout(this.#fire, Math.min(maxTimerDelayMs, Math.max(0, Math.ceil(deadline - performance.now()))));
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    const now = performance.now();
    for (const [entry, deadline] of this.#entries) {
      if (deadline > now) {
        this.#arm(deadline);
        return;
      }
      this.#entries.delete(entry);
      entry.expire();
    }
  };
}
