/** Whether a value returned by user code (an adapter, a gateway app) is a Promise or promise-like. */
export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as { then?: unknown }).then === 'function';
}
