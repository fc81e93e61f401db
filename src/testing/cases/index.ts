/** Which cases apply, given the options: persistence needs `reopen`, sharing needs `peer`. */
import type { ConformanceSetup } from '../options.js';
import { concurrencyCases } from './concurrency.js';
import { contractCases } from './contract.js';
import type { CaseDefinition } from './helpers.js';
import { optionalMethodCases } from './optional-methods.js';
import { persistenceCases, persistenceSkipped } from './persistence.js';
import { revisionCases } from './revisions.js';
import { roundTripCases } from './round-trips.js';
import { sharedCases, sharedWithoutPeer } from './shared.js';

export type { CaseDefinition };

export function caseDefinitions(setup: ConformanceSetup): CaseDefinition[] {
  return [
    ...contractCases,
    ...roundTripCases,
    ...revisionCases,
    ...(setup.reopen ? persistenceCases : [persistenceSkipped]),
    ...concurrencyCases,
    ...(setup.peer ? sharedCases : [sharedWithoutPeer]),
    ...optionalMethodCases,
  ];
}
