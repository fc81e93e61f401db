import { redisStorage } from '../../src/index.js';
import { describeRedis } from '../redis/helpers.js';
import { liveRules } from './rules.js';

describeRedis('live updates on Redis storage', (env) => {
  liveRules(async () => redisStorage({ client: await env.client(), key: env.key('live') }));
});
