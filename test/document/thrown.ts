/** Shared by the document engine's unit tests. */
import { expect } from 'vitest';
import { JsonStoreError } from '../../src/errors.js';

/** Runs `run`, expecting a JsonStoreError; returns it for closer checks. */
export function thrownBy(run: () => unknown): JsonStoreError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(JsonStoreError);
    return error as JsonStoreError;
  }
  throw new Error('expected a JsonStoreError, but nothing was thrown');
}
