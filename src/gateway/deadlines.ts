/**
 * Deadlines of requests that all get the same timeout: arrival order is
 * deadline order, so they are kept in one insertion-ordered Map and a single
 * timer waits for the oldest. A request costs a Map entry instead of a timer
 * of its own (setTimeout and clearTimeout on every request were a visible
 * part of a small request's cost).
 */
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
    const deadline = Date.now() + this.#timeoutMs;
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
    this.#timer = setTimeout(this.#fire, Math.max(0, deadline - Date.now()));
  }

  readonly #fire = (): void => {
    this.#timer = undefined;
    const now = Date.now();
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
