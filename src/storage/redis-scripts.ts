/**
 * The Lua scripts behind `redisStorage`. Each one is a single atomic step on
 * the document's keys, and all of them treat JSON as opaque strings: Redis'
 * bundled cjson would turn `[]` into `{}` and round numbers, so nothing here
 * decodes or encodes a document or a change.
 *
 * Keys (all share the hash tag `{key}`, so they live in one Cluster slot):
 *   KEYS meta        hash: rev, snapshotRev, logBytes, layout
 *   KEYS log         stream: one entry per change, ID `<revision>-0`, field `ops`,
 *                    `paths` (the pointers it wrote, for rebasing others' changes on it)
 *                    (and `idem`: the idempotency record, for a write sent with a key)
 *   KEYS snapshot    string: the document at `snapshotRev`, as JSON (at
 *                    `snapshotRev` 0: the starting document the seed script stored)
 *   KEYS compaction  string: token of the process compacting, with an expiry
 *   KEYS idempotency       hash: idempotency key -> its record (JSON), kept across compactions
 *   KEYS idempotency-times sorted set: idempotency key scored by its record's time, to forget the old ones
 *   KEYS turn        string: token of the process whose refused change is served next, with an expiry
 *   KEYS turn-queue  list: tokens of the processes waiting for the turn, first in line first
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
 * Lua helpers for touched paths: the lists `encodePaths` writes
 * (`<byte length>:<pointer>` one after the other) and the overlap rule of
 * `src/document/touched-paths.ts`: one pointer equals the other or is a
 * prefix of it followed by `/`.
 */
const pathFunctions = `
local function decodePaths(text)
  local out, at = {}, 1
  while at <= #text do
    local colon = string.find(text, ':', at, true)
    if not colon then return nil end
    local length = tonumber(string.sub(text, at, colon - 1))
    if not length then return nil end
    out[#out + 1] = string.sub(text, colon + 1, colon + length)
    at = colon + length + 1
  end
  return out
end
local function overlap(a, b)
  if #a == #b then return a == b end
  if #a > #b then a, b = b, a end
  return string.sub(b, 1, #a + 1) == a .. '/'
end
-- Whether any entry wrote where ours writes or reads; an entry without paths (an older version's) touched everything.
local function conflicts(entries, ours)
  for _, entry in ipairs(entries) do
    local fields, written = entry[2], nil
    for i = 1, #fields, 2 do
      if fields[i] == 'paths' then written = decodePaths(fields[i + 1]) end
    end
    if not written then return true end
    for _, done in ipairs(written) do
      for _, path in ipairs(ours) do
        if overlap(done, path) then return true end
      end
    end
  end
  return false
end`;

/**
 * Lua helpers for the turn and the compaction claim, shared by the commit
 * scripts (which pass their own KEYS and ARGV; each script stays one atomic step).
 */
const turnFunctions = `
-- The turn held by another process: join the line if asked (only a caller joining touches
-- the line's expiry; turn ms may be 0 for one that does not) and return the reply to send.
-- Served without waiting (no holder, the turn expired): out of the line.
local function waitTurn(holder, turnKey, queueKey, token, claim, ms, current)
  if holder and holder ~= token then
    if claim == '1' and not redis.call('LPOS', queueKey, token) then
      redis.call('RPUSH', queueKey, token)
      redis.call('PEXPIRE', queueKey, tonumber(ms) * 20)
    end
    return {3, current, redis.call('PTTL', turnKey)}
  end
  if not holder and claim == '1' then redis.call('LREM', queueKey, 0, token) end
  return nil
end
-- After appending in its turn: the turn goes to the first in line, or is given up.
local function passTurn(holder, turnKey, queueKey, ms)
  if not holder then return end
  local waiting = redis.call('LPOP', queueKey)
  if waiting then redis.call('SET', turnKey, waiting, 'PX', ms) else redis.call('DEL', turnKey) end
end
-- 1 when the log has grown enough to compact and this caller took the compaction lock, else 0.
local function claimCompaction(snapshotKey, lockKey, logBytes, rev, snapshotRev, minBytes, ratio, maxChanges, token, lockMs)
  if minBytes == '' then return 0 end
  local changes = rev - tonumber(snapshotRev or '0')
  local snapshotBytes = redis.call('STRLEN', snapshotKey)
  local bigLog = logBytes >= tonumber(minBytes) and logBytes >= snapshotBytes * tonumber(ratio)
  if bigLog or changes >= tonumber(maxChanges) then
    if redis.call('SET', lockKey, token, 'NX', 'PX', lockMs) then return 1 end
  end
  return 0
end`;

/**
 * Appends one change at the next revision; or, made on an older revision,
 * after the changes since then when none of them overlaps it (a rebase).
 * KEYS: meta, log, snapshot, compaction, idempotency, idempotency-times, turn, turn-queue.
 * ARGV: revision, ops JSON, compaction min bytes ('' = never compact),
 *       compaction ratio, compaction max changes, lock token, lock ms,
 *       the most missed changes to return on a conflict,
 *       idempotency record JSON ('' = none), its key, its time (ms),
 *       the oldest time to keep, the most records to keep,
 *       the paths the change writes and reads, encoded ('' = never rebase),
 *       the paths it writes, encoded (kept in the entry as `paths`),
 *       the caller's token, '1' to take the turn when refused, turn ms.
 * A record goes into the log entry and the idempotency hash in the same
 * step as the change; each call forgets at most 100 expired or surplus
 * records, so the work per write stays bounded.
 *
 * The turn: a process whose change was refused (a real conflict) may take
 * the turn, so that its retry is served before anyone else's change instead
 * of racing again. While another process holds it, a change is neither
 * appended nor refused: the reply says how long the turn has left, and a
 * caller that would take the turn joins the line (`turn-queue`). The holder
 * passes the turn to the first in line when it has appended, or gives it up;
 * an unused turn expires after `turn ms`.
 *
 * Returns {1, claimed}: appended at the revision asked, and `claimed` = 1
 * when this caller now holds the compaction lock and should compact.
 * {2, claimed, revision, the changes it was appended after}: rebased.
 * {0, current revision, the changes the caller missed} (no changes when more
 * are missing than asked for): refused as stale; catching up then needs no
 * round trip of its own.
 * {3, current revision, ms the turn has left}: another process has the turn.
 * The check for a rebase costs O(changes since x paths), and never parses JSON.
 */
export const commitScript = luaScript(
  'commit',
  `${checkLayout}
${pathFunctions}
${turnFunctions}
local meta = redis.call('HMGET', KEYS[1], 'rev', 'snapshotRev', 'layout')
if meta[3] and meta[3] ~= '${LAYOUT}' then return wrongLayout(meta[3]) end
local current = meta[1] or '0'
local holder = redis.call('GET', KEYS[7])
-- Wait in line: the turn goes to the first waiting process when its holder has written.
local waiting = waitTurn(holder, KEYS[7], KEYS[8], ARGV[16], ARGV[17], ARGV[18], current)
if waiting then return waiting end
local rev = ARGV[1]
local missed = {}
if tonumber(ARGV[1]) ~= tonumber(current) + 1 then
  local behind = tonumber(current) - tonumber(ARGV[1]) + 1
  if behind < 1 or behind > tonumber(ARGV[8]) then return {0, current, {}} end
  missed = redis.call('XRANGE', KEYS[2], ARGV[1] .. '-0', '+', 'COUNT', ARGV[8])
  local first = missed[1]
  -- The log must still hold every change since the caller's revision (compaction trims it).
  local complete = #missed == behind and first ~= nil and first[1] == ARGV[1] .. '-0'
  local ours = ARGV[14] ~= '' and decodePaths(ARGV[14])
  if not (complete and ours and not conflicts(missed, ours)) then
    if ARGV[17] == '1' then redis.call('SET', KEYS[7], ARGV[16], 'PX', ARGV[18]) end
    return {0, current, missed}
  end
  rev = string.format('%d', tonumber(current) + 1)
end
if ARGV[9] == '' then
  redis.call('XADD', KEYS[2], rev .. '-0', 'ops', ARGV[2], 'paths', ARGV[15])
else
  redis.call('XADD', KEYS[2], rev .. '-0', 'ops', ARGV[2], 'paths', ARGV[15], 'idem', ARGV[9])
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
passTurn(holder, KEYS[7], KEYS[8], ARGV[18])
redis.call('HSET', KEYS[1], 'rev', rev, 'layout', '${LAYOUT}')
local logBytes = redis.call('HINCRBY', KEYS[1], 'logBytes', string.len(ARGV[2]))
local claimed = claimCompaction(KEYS[3], KEYS[4], logBytes, tonumber(rev), meta[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6], ARGV[7])
if #missed > 0 then return {2, claimed, rev, missed} end
return {1, claimed}`,
);

/**
 * Appends several changes of one process at once (group commit), all or
 * none: at the next revisions, or after the changes since the first one's
 * base when none of those overlaps any of them (a rebase, as in `commit`).
 * KEYS: meta, log, snapshot, compaction, turn, turn-queue.
 * ARGV: the first change's revision, compaction min bytes ('' = never),
 *       ratio, max changes, lock token, lock ms, the most missed changes to
 *       return, the caller's token, '1' to take the turn when refused, turn
 *       ms; then per change: ops JSON, the paths it writes and reads
 *       (encoded; '' = never rebase), the paths it writes.
 * Returns as `commit` does, with the revision of the first change in a
 * rebase: {1, claimed}, {2, claimed, first revision, missed},
 * {0, current, missed}, {3, current, ms the turn has left}.
 */
export const commitBatchScript = luaScript(
  'commit-batch',
  `${checkLayout}
${pathFunctions}
${turnFunctions}
local meta = redis.call('HMGET', KEYS[1], 'rev', 'snapshotRev', 'layout')
if meta[3] and meta[3] ~= '${LAYOUT}' then return wrongLayout(meta[3]) end
local current = meta[1] or '0'
local holder = redis.call('GET', KEYS[5])
local waiting = waitTurn(holder, KEYS[5], KEYS[6], ARGV[8], ARGV[9], ARGV[10], current)
if waiting then return waiting end
local first = ARGV[1]
local missed = {}
if tonumber(first) ~= tonumber(current) + 1 then
  local behind = tonumber(current) - tonumber(first) + 1
  if behind < 1 or behind > tonumber(ARGV[7]) then return {0, current, {}} end
  missed = redis.call('XRANGE', KEYS[2], first .. '-0', '+', 'COUNT', ARGV[7])
  local head = missed[1]
  local ok = #missed == behind and head ~= nil and head[1] == first .. '-0'
  for i = 12, #ARGV, 3 do
    if not ok then break end
    local ours = ARGV[i] ~= '' and decodePaths(ARGV[i])
    ok = ours and not conflicts(missed, ours)
  end
  if not ok then
    if ARGV[9] == '1' then redis.call('SET', KEYS[5], ARGV[8], 'PX', ARGV[10]) end
    return {0, current, missed}
  end
end
local rev = tonumber(current)
local bytes = 0
for i = 11, #ARGV, 3 do
  rev = rev + 1
  redis.call('XADD', KEYS[2], string.format('%d', rev) .. '-0', 'ops', ARGV[i], 'paths', ARGV[i + 2])
  bytes = bytes + string.len(ARGV[i])
end
passTurn(holder, KEYS[5], KEYS[6], ARGV[10])
redis.call('HSET', KEYS[1], 'rev', string.format('%d', rev), 'layout', '${LAYOUT}')
local logBytes = redis.call('HINCRBY', KEYS[1], 'logBytes', bytes)
local claimed = claimCompaction(KEYS[3], KEYS[4], logBytes, rev, meta[2], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6])
if #missed > 0 then return {2, claimed, string.format('%d', tonumber(current) + 1), missed} end
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
-- At snapshotRev 0 there is a snapshot only when the seed script stored one.
local snapshot = redis.call('GET', KEYS[3]) or ''
-- IDs are <revision>-0, so the first ID at or after <snapshotRev>-1 is the change after the snapshot.
local entries = redis.call('XRANGE', KEYS[2], snapshotRev .. '-1', '+')
return {meta[1], snapshotRev, snapshot, meta[3] or '0', entries, redis.call('HGETALL', KEYS[4])}`,
);

/**
 * Stores the starting document as the snapshot at revision 0, only when
 * nothing is stored yet (no `rev` in meta, or `rev` 0 without a snapshot,
 * which `load` also reads as empty): of processes starting together
 * on an empty key, the first to run this wins and the others load its
 * document, so all agree on one document and one revision numbering. The
 * first change is then appended as revision 1, carrying only itself.
 * KEYS: meta, snapshot. ARGV: the document as JSON.
 * Returns 1 when stored, 0 when something was stored already.
 */
export const seedScript = luaScript(
  'seed',
  `${checkLayout}
local meta = redis.call('HMGET', KEYS[1], 'rev', 'layout')
if meta[2] and meta[2] ~= '${LAYOUT}' then return wrongLayout(meta[2]) end
-- Empty as load sees it: revision 0 without a snapshot holds nothing (a lost snapshot key, or meta alone).
-- STRLEN, not EXISTS: the same test as load's, and no command beyond the ACL list in docs/redis.md.
if meta[1] and (meta[1] ~= '0' or redis.call('STRLEN', KEYS[2]) > 0) then return 0 end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], 'rev', '0', 'snapshotRev', '0', 'logBytes', '0', 'layout', '${LAYOUT}')
return 1`,
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
