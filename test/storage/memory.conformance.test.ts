import { test } from 'vitest';
import { memoryStorage } from '../../src/index.js';
import { storageConformance } from '../../src/testing/index.js';

// Memory storage lives as long as its adapter object, so "reopening" it is
// using the same object again after the store closed it.
storageConformance({ test, name: 'memory storage', factory: () => memoryStorage(), reopen: (adapter) => adapter });
