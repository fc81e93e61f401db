/**
 * The Lua scripts behind `redisStorage`. Each one is a single atomic step on
 * the document's keys, and all of them treat JSON as opaque strings: Redis'
 * bundled cjson would turn `[]` into `{}` and round numbers, so nothing here
 * decodes or encodes a document or a change.
 *
 * Keys (all share the hash tag `{key}`, so they live in one Cluster slot):
 *   KEYS meta        hash: rev, snapshotRev, logBytes, layout
 *   KEYS log         stream: one entry per change, ID `<revision>-0`, field `ops`
 *                    (and `idem`: the idempotency record, for a write sent with a key)
 *   KEYS snapshot    string: the document at `snapshotRev`, as JSON
 *   KEYS compaction  string: token of the process compacting, with an expiry
 *   KEYS idempotency       hash: idempotency key -> its record (JSON), kept across compactions
 *   KEYS idempotency-times sorted set: idempotency key scored by its record's time, to forget the old ones
 *
 * Revisions cross the Lua boundary as decimal strings and are only compared
 * with `tonumber` (exact below 2^53); a stream ID is built by appending `-0`
 * or `-1` to such a string, never by formatting a Lua number.
 */
import { createHash } from 'node:crypto';

/** The storage layout this version reads and writes; stored in `meta` as `layout`. */
export const LAYOUT = '1';

export interface LuaScript {
  readonly name: string;
  readonly source: string;
  /** For EVALSHA; the source is sent with EVAL only when Redis does not know it (first use, after a restart). */
  readonly sha1: string;
}

function luaScript(name: string, source: string): LuaScript {
  return { name, source, sha1: createHash('sha1').update(source).digest('hex') };
}

const checkLayout = `
local function wrongLayout(layout)
  return redis.error_reply('express-jsonstore: ' .. KEYS[1] .. ' holds storage layout ' .. layout .. '; this version reads layout ${LAYOUT}')
end`;

/**
 * Appends one change if, and only if, it is the next revision.
 * KEYS: meta, log, snapshot, compaction, idempotency, idempotency-times.
 * ARGV: revision, ops JSON, compaction min bytes ('' = never compact),
 *       compaction ratio, compaction max changes, lock token, lock ms,
 *       the most missed changes to return on a conflict,
 *       idempotency record JSON ('' = none), its key, its time (ms),
 *       the oldest time to keep, the most records to keep.
 * A record goes into the log entry and the idempotency hash in the same
 * step as the change; each call forgets at most 100 expired or surplus
 * records, so the work per write stays bounded.
 * Returns {1, claimed}: appended, and `claimed` = 1 when this caller now holds
 * the compaction lock and should compact. Or, when the change was made on a
 * stale revision, {0, current revision, the changes the caller missed} (no
 * changes when more are missing than asked for): catching up then needs no
 * round trip of its own, so a process behind does not keep losing the race
 * to one that is not.
 */
export const commitScript = luaScript(
  'commit',
  `${checkLayout}
local meta = redis.call('HMGET', KEYS[1], 'rev', 'snapshotRev', 'layout')
if meta[3] and meta[3] ~= '${LAYOUT}' then return wrongLayout(meta[3]) end
local current = meta[1] or '0'
if tonumber(ARGV[1]) ~= tonumber(current) + 1 then
  local missed = tonumber(current) - tonumber(ARGV[1]) + 1
  if missed < 1 or missed > tonumber(ARGV[8]) then return {0, current, {}} end
  return {0, current, redis.call('XRANGE', KEYS[2], ARGV[1] .. '-0', '+', 'COUNT', ARGV[8])}
end
if ARGV[9] == '' then
  redis.call('XADD', KEYS[2], ARGV[1] .. '-0', 'ops', ARGV[2])
else
  redis.call('XADD', KEYS[2], ARGV[1] .. '-0', 'ops', ARGV[2], 'idem', ARGV[9])
  redis.call('HSET', KEYS[5], ARGV[10], ARGV[9])
  redis.call('ZADD', KEYS[6], ARGV[11], ARGV[10])
  local forget = redis.call('ZRANGEBYSCORE', KEYS[6], '-inf', '(' .. ARGV[12], 'LIMIT', 0, 100)
  local surplus = redis.call('ZCARD', KEYS[6]) - #forget - tonumber(ARGV[13])
  if surplus > 0 then
    local oldest = redis.call('ZRANGE', KEYS[6], #forget, #forget + math.min(surplus, 100) - 1)
    for _, key in ipairs(oldest) do forget[#forget + 1] = key end
  end
  for _, key in ipairs(forget) do
    redis.call('HDEL', KEYS[5], key)
    redis.call('ZREM', KEYS[6], key)
  end
end
redis.call('HSET', KEYS[1], 'rev', ARGV[1], 'layout', '${LAYOUT}')
local logBytes = redis.call('HINCRBY', KEYS[1], 'logBytes', string.len(ARGV[2]))
local claimed = 0
if ARGV[3] ~= '' then
  local changes = tonumber(ARGV[1]) - tonumber(meta[2] or '0')
  local snapshotBytes = redis.call('STRLEN', KEYS[3])
  local bigLog = logBytes >= tonumber(ARGV[3]) and logBytes >= snapshotBytes * tonumber(ARGV[4])
  if bigLog or changes >= tonumber(ARGV[5]) then
    if redis.call('SET', KEYS[4], ARGV[6], 'NX', 'PX', ARGV[7]) then claimed = 1 end
  end
end
return {1, claimed}`,
);

/**
 * Everything needed to rebuild the latest document, read atomically.
 * KEYS: meta, log, snapshot, idempotency.
 * Returns {} when nothing is stored, else
 * {rev, snapshotRev, snapshot JSON or '', logBytes, entries after the snapshot,
 *  the idempotency records (HGETALL: key, record, ...)}. The commit script
 * keeps that hash near the configured count.
 */
export const loadScript = luaScript(
  'load',
  `${checkLayout}
local meta = redis.call('HMGET', KEYS[1], 'rev', 'snapshotRev', 'logBytes', 'layout')
if not meta[1] then return {} end
if meta[4] and meta[4] ~= '${LAYOUT}' then return wrongLayout(meta[4]) end
local snapshotRev = meta[2] or '0'
local snapshot = ''
if snapshotRev ~= '0' then snapshot = redis.call('GET', KEYS[3]) or '' end
-- IDs are <revision>-0, so the first ID at or after <snapshotRev>-1 is the change after the snapshot.
local entries = redis.call('XRANGE', KEYS[2], snapshotRev .. '-1', '+')
return {meta[1], snapshotRev, snapshot, meta[3] or '0', entries, redis.call('HGETALL', KEYS[4])}`,
);

/**
 * The latest revision and the log entries from a given ID on, atomically.
 * KEYS: meta, log. ARGV: first stream ID wanted (`<since + 1>-0`), since,
 * the most changes to return.
 * Returns {rev, entries}; entries is empty when nothing is newer than
 * `since`. Returns {rev} alone when more changes than that are missing:
 * loading the snapshot is then cheaper, and the reply stays small enough for
 * an everyday command timeout.
 */
export const changesScript = luaScript(
  'changes',
  `local rev = redis.call('HGET', KEYS[1], 'rev') or '0'
local missing = tonumber(rev) - tonumber(ARGV[2])
if missing <= 0 then return {rev, {}} end
if missing > tonumber(ARGV[3]) then return {rev} end
return {rev, redis.call('XRANGE', KEYS[2], ARGV[1], '+', 'COUNT', ARGV[3])}`,
);

/**
 * Installs a new snapshot if nobody else did since it was read, then drops
 * the log entries the previous snapshot already covered (the entries between
 * the two snapshots stay, so processes a little behind still catch up from
 * the log rather than reloading). Releases the compaction lock.
 * KEYS: meta, log, snapshot, compaction.
 * ARGV: snapshotRev it was built from, new snapshotRev, snapshot JSON,
 *       minus the log bytes it folds in, lock token.
 * Returns 1 when installed, 0 when the storage moved on (another snapshot).
 */
export const compactScript = luaScript(
  'compact',
  `local function release()
  if redis.call('GET', KEYS[4]) == ARGV[5] then redis.call('DEL', KEYS[4]) end
end
local meta = redis.call('HMGET', KEYS[1], 'snapshotRev', 'rev')
if (meta[1] or '0') ~= ARGV[1] or not meta[2] or tonumber(meta[2]) < tonumber(ARGV[2]) then
  release()
  return 0
end
redis.call('SET', KEYS[3], ARGV[3])
redis.call('HSET', KEYS[1], 'snapshotRev', ARGV[2])
redis.call('HINCRBY', KEYS[1], 'logBytes', ARGV[4])
if ARGV[1] ~= '0' then redis.call('XTRIM', KEYS[2], 'MINID', ARGV[1] .. '-1') end
release()
return 1`,
);

/** Releases the compaction lock if this caller still holds it. KEYS: compaction. ARGV: token. */
export const unlockScript = luaScript(
  'unlock',
  `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`,
);
