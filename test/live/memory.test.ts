import { describe } from 'vitest';
import { memoryStorage } from '../../src/index.js';
import { liveRules } from './rules.js';

describe('live updates on memory storage', () => liveRules(async () => memoryStorage()));
