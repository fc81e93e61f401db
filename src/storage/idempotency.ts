/**
 * Idempotency records as adapters store them: checking one read back from
 * storage, and choosing which to keep. Pure: no I/O.
 */
import type { IdempotencyRecord, IdempotencyRetention } from './types.js';

/** What a key may be: 1 to 255 printable ASCII characters (RFC 8941 sf-string content). */
export const idempotencyKeyPattern = /^[\x20-\x7e]{1,255}$/;

function isRevision(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 1;
}

/**
 * A record read back from storage, or `undefined` when it is not one (a
 * damaged or foreign value is dropped rather than trusted: the worst that
 * costs is a retry that writes again).
 */
export function asIdempotencyRecord(value: unknown): IdempotencyRecord | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const { key, fingerprint, revision, at, status, etag, location } = value as Record<string, unknown>;
  if (typeof key !== 'string' || !idempotencyKeyPattern.test(key)) return undefined;
  if (typeof fingerprint !== 'string' || fingerprint.length === 0 || fingerprint.length > 200) return undefined;
  if (!isRevision(revision) || typeof at !== 'number' || !Number.isFinite(at)) return undefined;
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 200 || status > 299) return undefined;
  if (etag !== undefined && typeof etag !== 'string') return undefined;
  if (location !== undefined && typeof location !== 'string') return undefined;
  const record: { -readonly [K in keyof IdempotencyRecord]: IdempotencyRecord[K] } = { key, fingerprint, revision, at, status };
  if (etag !== undefined) record.etag = etag;
  if (location !== undefined) record.location = location;
  return record;
}

/** The record as a JSON text, its fields in a fixed order. */
export function encodeIdempotencyRecord(record: IdempotencyRecord): string {
  const { key, fingerprint, revision, at, status, etag, location } = record;
  return JSON.stringify({ key, fingerprint, revision, at, status, etag, location });
}

/**
 * The records to keep, oldest first: one per key (the latest revision wins),
 * none older than `window` before `now`, at most the newest `count`.
 */
export function retainedRecords(records: Iterable<IdempotencyRecord>, retention: IdempotencyRetention, now: number): IdempotencyRecord[] {
  const byKey = new Map<string, IdempotencyRecord>();
  for (const record of records) {
    const known = byKey.get(record.key);
    if (known === undefined || known.revision < record.revision) byKey.set(record.key, record);
  }
  const oldest = now - retention.window;
  const kept = [...byKey.values()].filter((record) => record.at >= oldest);
  kept.sort((a, b) => a.at - b.at || a.revision - b.revision);
  return kept.length > retention.count ? kept.slice(kept.length - retention.count) : kept;
}
