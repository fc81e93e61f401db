/**
 * An in-process adapter may keep the engine's working document instead of a
 * copy of its own: the engine then hands each commit a way to read it. Not
 * part of the public storage contract (`types.ts`): an adapter that a user
 * wraps, or writes, gets the operations as always.
 */
import type { JsonValue } from '../document/json.js';
import type { Change, StorageAdapter } from './types.js';

/** Marks an adapter that keeps the working document; non-enumerable, so a wrapper made by spreading it is an ordinary adapter. */
const keepsWorkingDocument = Symbol('express-jsonstore.keepsWorkingDocument');
/** On a change for such an adapter: reads the committing store's working document. */
const workingDocumentOf = Symbol('express-jsonstore.workingDocument');

type WithWorkingDocument = Change & { [workingDocumentOf]?: () => JsonValue };

export function markKeepsWorkingDocument<T extends StorageAdapter>(adapter: T): T {
  Object.defineProperty(adapter, keepsWorkingDocument, { value: true, enumerable: false });
  return adapter;
}

export function keepsWorkingDocumentOf(adapter: StorageAdapter): boolean {
  return (adapter as { [keepsWorkingDocument]?: boolean })[keepsWorkingDocument] === true;
}

/** Attaches the reader to a change (invisible to JSON and to spreading). */
export function withWorkingDocument(change: Change, read: () => JsonValue): Change {
  Object.defineProperty(change, workingDocumentOf, { value: read, enumerable: false });
  return change;
}

export function workingDocumentReader(change: Change): (() => JsonValue) | undefined {
  return (change as WithWorkingDocument)[workingDocumentOf];
}

/**
 * The working document kept as it is at one revision (the engine freezes it:
 * copy-on-write from then on), for an in-process adapter that writes it out
 * slice by slice while writes go on (the file adapter's compaction).
 */
export interface FrozenDocument {
  root: JsonValue;
  /** The engine's revision: changes handed to the adapter, durable or not yet. */
  revision: number;
}

/** Marks an adapter that takes frozen working documents; non-enumerable, like `keepsWorkingDocument`. */
const foldsWorkingDocument = Symbol('express-jsonstore.foldsWorkingDocument');
/** On a change for such an adapter: freezes the committing store's working document and returns it. */
const frozenDocumentOf = Symbol('express-jsonstore.frozenDocument');

type WithFrozenDocument = Change & { [frozenDocumentOf]?: () => FrozenDocument };

export function markFoldsWorkingDocument<T extends StorageAdapter>(adapter: T): T {
  Object.defineProperty(adapter, foldsWorkingDocument, { value: true, enumerable: false });
  return adapter;
}

export function foldsWorkingDocumentOf(adapter: StorageAdapter): boolean {
  return (adapter as { [foldsWorkingDocument]?: boolean })[foldsWorkingDocument] === true;
}

/** Attaches the freezer to a change (invisible to JSON and to spreading). */
export function withFrozenDocument(change: Change, freeze: () => FrozenDocument): Change {
  Object.defineProperty(change, frozenDocumentOf, { value: freeze, enumerable: false });
  return change;
}

export function frozenDocumentReader(change: Change): (() => FrozenDocument) | undefined {
  return (change as WithFrozenDocument)[frozenDocumentOf];
}
