/**
 * `LogFollower` against a scripted client: orderings of replies that a real
 * Redis gives only by chance (a commit of this process's landing while the
 * follower's own command is on its way).
 */
import { describe, expect, test } from 'vitest';
import type { RedisClientLike } from '../../src/storage/redis-client.js';
import { LogFollower } from '../../src/storage/redis-follower.js';
import type { Change } from '../../src/storage/types.js';
import { eventually } from '../support/wait.js';

/** A client whose replies the test gives: each command waits in `sent` until answered. */
function scriptedClient() {
  type Command = { args: string[]; answer: (reply: unknown) => void; fail: (error: Error) => void };
  /** Sent and not yet taken by `next`. */
  const sent: Command[] = [];
  /** Sent and not yet answered: failed when the client is destroyed. */
  const unanswered = new Set<Command>();
  const errorListeners: ((error: Error) => void)[] = [];
  const client: RedisClientLike = {
    sendCommand: (args) =>
      new Promise((answer, fail) => {
        const command = { args, answer, fail };
        sent.push(command);
        unanswered.add(command);
      }),
    duplicate: () => client,
    connect: async () => undefined,
    destroy: () => {
      for (const command of unanswered) command.fail(new Error('destroyed'));
      unanswered.clear();
    },
    on: (_event, listener) => {
      errorListeners.push(listener);
      return client;
    },
    once: () => client,
    removeListener: () => client,
    unref: () => {},
    isOpen: true,
    isReady: true,
  };
  const next = (name: string) =>
    eventually(`the follower's ${name}`, () => {
      const index = sent.findIndex((command) => command.args[0] === name);
      if (index === -1) return undefined;
      const command = sent.splice(index, 1)[0] as Command;
      return {
        args: command.args,
        answer: (reply: unknown) => {
          unanswered.delete(command);
          command.answer(reply);
        },
      };
    });
  /** What node-redis does when the connection drops: an 'error' event, then it reconnects. */
  const breakConnection = (error: Error) => {
    for (const listener of errorListeners) listener(error);
  };
  return { client, next, breakConnection };
}

/** A follower of `doc:log` from revision 5 on `client`, with no timeouts; `settings` replace the rest. */
function follower(client: RedisClientLike, settings: Partial<ConstructorParameters<typeof LogFollower>[0]>): LogFollower {
  return new LogFollower({ client, keys: { meta: 'doc:meta', log: 'doc:log' }, from: 5, commandTimeout: 0, onChange: () => {}, onError: () => {}, ...settings });
}

describe('LogFollower', () => {
  test('a commit of this process that lands while the follower asks for the revision is not taken for lost data', async () => {
    const { client, next } = scriptedClient();
    const errors: unknown[] = [];
    const delivered: Change[] = [];
    const following = follower(client, { onChange: (change) => delivered.push(change), onError: (error) => errors.push(error) });
    try {
      // The log was quiet: the XREAD comes back empty, so the follower checks the revision.
      (await next('XREAD')).answer(null);
      const check = await next('HGET');
      // Meanwhile a commit of this process's lands at 6 (Redis answered the HGET first: 5).
      following.heard(6, 6, 1, () => []);
      check.answer('5');
      // The follower reads on from 6, with no alarm.
      const read = await next('XREAD');
      expect(read.args.at(-1)).toBe('6-0');
      expect(errors).toEqual([]);
      expect(delivered).toEqual([]);
    } finally {
      await following.stop();
    }
  });

  test('a connection that broke while this process was committing (no XREAD waiting) is reported, and the engine told to catch up', async () => {
    const { client, next, breakConnection } = scriptedClient();
    const errors: string[] = [];
    // A commit of this process's is with Redis until the test settles it.
    let settle = () => {};
    let commits: Promise<void> | undefined = new Promise<void>((resolve) => (settle = resolve));
    const following = follower(client, { onError: (error) => errors.push(String(error)), committing: () => commits });
    try {
      breakConnection(new Error('Socket closed unexpectedly'));
      commits = undefined;
      settle();
      // It asks where Redis is before reading on: Redis may have come back with less.
      (await next('HGET')).answer('5');
      const read = await next('XREAD');
      expect(read.args.at(-1)).toBe('5-0');
      expect(errors).toHaveLength(2);
      expect(errors[0]).toMatch(/lost the Redis connection .*Socket closed unexpectedly/);
      expect(errors[1]).toMatch(/is back; catching up from the log/);
    } finally {
      await following.stop();
    }
  });

  test('stop() ends a follower that waits for commits that never settle', async () => {
    const { client } = scriptedClient();
    let asked = 0;
    const following = follower(client, {
      committing: () => {
        asked += 1;
        return new Promise<void>(() => {});
      },
    });
    await eventually('the follower waiting for commits', () => asked > 0);
    await following.stop();
  });

  test('Redis going back to a lower revision is still reported', async () => {
    const { client, next } = scriptedClient();
    const errors: unknown[] = [];
    const following = follower(client, { onError: (error) => errors.push(error) });
    try {
      (await next('XREAD')).answer(null);
      (await next('HGET')).answer('3');
      const read = await next('XREAD');
      expect(read.args.at(-1)).toBe('3-0');
      expect(String(errors[0])).toMatch(/holds revision 3 .* seen revision 5/);
    } finally {
      await following.stop();
    }
  });
});
