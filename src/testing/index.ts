/**
 * `express-jsonstore/testing`: the storage conformance suite for adapter
 * authors, and the exact JSON comparison it uses.
 */
export { storageConformance, conformanceCases, type ConformanceCase } from './conformance.js';
export type { ConformanceOptions, ConformanceSetup } from './options.js';
export { assertSameJson } from './assert-json.js';
