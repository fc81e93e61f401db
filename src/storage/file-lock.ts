/**
 * One process owns a store file at a time. The owner holds a lock file next
 * to it that names its pid and host, plus a random token that makes every
 * lock file's bytes unique.
 *
 * Taking the lock: the content is written to a uniquely named temp file,
 * which is then hard-linked to the lock file's name. `link` fails when the
 * name exists, so exactly one process gets a free lock, and a lock file is
 * never seen empty or half written.
 *
 * A lock whose process is gone (killed, crashed, machine restarted) is stale
 * and taken over, atomically:
 *   1. read the stale lock file; its bytes are its identity;
 *   2. take the takeover lock `store.json.lock.takeover-<identity>` (the
 *      same way, with `link`): of all processes that saw that stale lock,
 *      exactly one gets it;
 *   3. read the lock file again: if it is still those bytes, rename a fresh
 *      lock file over it (nobody else may replace it: they would need the
 *      same takeover lock), and read it back to check it is ours;
 *   4. remove the takeover lock.
 * A takeover lock left by a process that died in between is stale itself,
 * and taken over the same way.
 *
 * An empty or unreadable lock file (written by an older version, by hand,
 * or cut short by a power loss) may belong to a process writing it right
 * now: it is respected until it is `unreadableGraceMs` old.
 *
 * Synchronous on purpose: the lock is taken once at startup and released at
 * close or from an `exit` handler, where only synchronous calls run.
 */
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  linkSync,
  lstatSync,
  openSync,
  readdirSync,
  readSync,
  renameSync,
  unlinkSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { StorageError } from '../errors.js';
import { startupError } from './file-journal.js';
import { errorCode, noFollow, nonBlocking, reasonOf, writeAllSync } from './file-system.js';

/** A lock problem: the log gets the paths and pids, a client a summary without them. */
/** Lock failures stop the store from starting, like damaged files do. */
const lockError = startupError;

export interface FileLock {
  readonly path: string;
  /** Removes the lock file if it is still this process's. Safe to call more than once. */
  release(): void;
}

/** How long an empty or unreadable lock file counts as one a live process is still writing. */
export const unreadableGraceMs = 10_000;
/** Takeover locks of takeover locks, each left by a process that died at that very moment: give up beyond this. */
const maxTakeoverDepth = 4;
/** Lock files are a line of JSON; anything longer is not one of ours. */
const maxLockBytes = 4096;

interface Owner {
  pid: number;
  host: string;
}

/** What is at a lock file's name. */
type Seen =
  | { kind: 'missing' }
  | { kind: 'symlink' }
  | { kind: 'other' }
  | { kind: 'lock'; bytes: Buffer; mtimeMs: number; owner: Owner | undefined };

type LockSeen = Extract<Seen, { kind: 'lock' }>;

/** Lock files this process holds, with their content; released by one shared `exit` handler if nobody closed them. */
const held = new Map<string, Buffer>();

function releaseAllOnExit(): void {
  for (const [lockPath, content] of held) removeIfContent(lockPath, content);
  held.clear();
}

function track(lockPath: string, content: Buffer): void {
  if (held.size === 0) process.on('exit', releaseAllOnExit);
  held.set(lockPath, content);
}

function untrack(lockPath: string): void {
  if (held.delete(lockPath) && held.size === 0) process.off('exit', releaseAllOnExit);
}

function parseOwner(bytes: Buffer): Owner | undefined {
  try {
    const value = JSON.parse(bytes.toString('utf8')) as Partial<Owner>;
    if (typeof value.pid === 'number' && Number.isSafeInteger(value.pid) && value.pid > 0 && typeof value.host === 'string') {
      return { pid: value.pid, host: value.host };
    }
  } catch {
    // Empty, cut short or not ours.
  }
  return undefined;
}

/** Reads what is at `path` without following a symbolic link. */
function look(path: string): Seen {
  try {
    const stat = lstatSync(path);
    if (stat.isSymbolicLink()) return { kind: 'symlink' };
    if (!stat.isFile()) return { kind: 'other' };
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return { kind: 'missing' };
    throw error;
  }
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | noFollow | nonBlocking);
  } catch (error) {
    const code = errorCode(error);
    if (code === 'ENOENT') return { kind: 'missing' };
    // Replaced by a link since the lstat (ELOOP on Linux, EMLINK on FreeBSD).
    if (code === 'ELOOP' || code === 'EMLINK') return { kind: 'symlink' };
    throw error;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return { kind: 'other' };
    const buffer = Buffer.alloc(maxLockBytes + 1);
    let length = 0;
    while (length < buffer.length) {
      const read = readSync(fd, buffer, length, buffer.length - length, length);
      if (read === 0) break;
      length += read;
    }
    const bytes = buffer.subarray(0, length);
    return { kind: 'lock', bytes, mtimeMs: stat.mtimeMs, owner: length > maxLockBytes ? undefined : parseOwner(bytes) };
  } finally {
    closeSync(fd);
  }
}

/** Whether the process a lock names may still be running. Another host's process cannot be checked, so it counts as running. */
function isRunning(owner: Owner): boolean {
  if (owner.host !== hostname()) return true;
  // Our own pid on a lock we do not hold: left behind by a process that had our pid.
  if (owner.pid === process.pid) return false;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    // EPERM: it exists but belongs to another user.
    return errorCode(error) !== 'ESRCH';
  }
}

function isStale(seen: LockSeen): boolean {
  if (seen.owner !== undefined) return !isRunning(seen.owner);
  // Possibly being written right now (by a version that writes in place), or by hand: respected until it is old.
  return Date.now() - seen.mtimeMs > unreadableGraceMs;
}

/** A short name for a lock file's exact bytes. */
function identity(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex').slice(0, 16);
}

function removeQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Already gone: nothing to remove.
  }
}

/** Removes `path` if it holds exactly `content` (a lock this process wrote). */
function removeIfContent(path: string, content: Buffer): void {
  try {
    const seen = look(path);
    if (seen.kind === 'lock' && seen.bytes.equals(content)) unlinkSync(path);
  } catch {
    // Already gone, or the folder is gone: nothing left to release.
  }
}

/** Writes `content` to a new, uniquely named file beside `path`; returns its name. */
function writeTemp(path: string, content: Buffer, mode: number): string {
  const temp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | noFollow, mode);
  try {
    writeAllSync(fd, content);
  } catch (error) {
    closeSync(fd);
    removeQuietly(temp);
    throw error;
  }
  closeSync(fd);
  return temp;
}

/** File systems without hard links (some FUSE and FAT mounts). */
const noHardLinks = new Set(['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS', 'EXDEV']);

/** Creates `path` holding `content` if nothing is there; false when something is. */
function createExclusive(path: string, content: Buffer, mode: number): boolean {
  const temp = writeTemp(path, content, mode);
  try {
    linkSync(temp, path);
    return true;
  } catch (error) {
    const code = errorCode(error);
    if (code === 'EEXIST') return false;
    if (code === undefined || !noHardLinks.has(code)) throw error;
  } finally {
    removeQuietly(temp);
  }
  // Without hard links: create in place. The file is briefly empty, which others respect as "being written".
  let fd: number;
  try {
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | noFollow, mode);
  } catch (error) {
    if (errorCode(error) === 'EEXIST') return false;
    throw error;
  }
  try {
    writeAllSync(fd, content);
  } finally {
    closeSync(fd);
  }
  return true;
}

type Claim = { won: true } | { won: false; holder: LockSeen; takingOver: boolean };

class LockProblem extends Error {
  constructor(
    readonly path: string,
    readonly problem: 'symlink' | 'other' | 'changed' | 'busy' | 'abandoned',
  ) {
    super(problem);
  }
}

/**
 * Makes `path` hold `content` if it is free or stale. Lock files of the
 * same store share `lockPath` as the prefix of their takeover locks.
 */
function claim(lockPath: string, path: string, content: Buffer, mode: number, depth: number): Claim {
  for (let round = 0; round < 10; round++) {
    if (createExclusive(path, content, mode)) return { won: true };
    const seen = look(path);
    if (seen.kind === 'missing') continue;
    if (seen.kind !== 'lock') throw new LockProblem(path, seen.kind);
    if (!isStale(seen)) return { won: false, holder: seen, takingOver: depth > 0 };
    if (depth >= maxTakeoverDepth) throw new LockProblem(path, 'abandoned');

    const takeoverPath = `${lockPath}.takeover-${identity(seen.bytes)}`;
    const takeoverContent = Buffer.from(JSON.stringify({ ...(JSON.parse(content.toString('utf8')) as object), takeover: identity(seen.bytes) }) + '\n');
    const takeover = claim(lockPath, takeoverPath, takeoverContent, mode, depth + 1);
    if (!takeover.won) {
      // Another live process is taking this stale lock over. Unless it has already, it is the owner to name.
      const now = look(path);
      if (now.kind === 'lock' && now.bytes.equals(seen.bytes)) return { won: false, holder: takeover.holder, takingOver: true };
      continue;
    }
    try {
      const now = look(path);
      // Replaced meanwhile (by a takeover that finished first): look at the new one.
      if (now.kind !== 'lock' || !now.bytes.equals(seen.bytes)) continue;
      const temp = writeTemp(path, content, mode);
      try {
        renameSync(temp, path);
      } catch (error) {
        removeQuietly(temp);
        throw error;
      }
      const after = look(path);
      if (after.kind === 'lock' && after.bytes.equals(content)) return { won: true };
      throw new LockProblem(path, 'changed');
    } finally {
      removeIfContent(takeoverPath, takeoverContent);
    }
  }
  throw new LockProblem(path, 'busy');
}

/** Removes temp and takeover files of the lock that processes which died left behind. */
function removeLeftovers(lockPath: string): void {
  const prefix = `${basename(lockPath)}.`;
  let names: string[];
  try {
    names = readdirSync(dirname(lockPath));
  } catch {
    return;
  }
  for (const name of names) {
    if (!name.startsWith(prefix) || !(name.endsWith('.tmp') || name.includes('.takeover-'))) continue;
    const path = join(dirname(lockPath), name);
    try {
      const seen = look(path);
      if (seen.kind === 'lock' && isStale(seen)) unlinkSync(path);
    } catch {
      // Tidying only: whatever cannot be looked at or removed stays.
    }
  }
}

/**
 * Takes the lock at `lockPath` for the store file `subject` (named in the
 * server's messages), creating files with `mode`. Throws a `StorageError`
 * when a running process holds it.
 */
export function acquireLock(lockPath: string, subject: string, mode: number): FileLock {
  if (held.has(lockPath)) {
    throw lockError(`${subject} is already open in this process (another store uses it); close that store first`, 'The store is already open in this process');
  }
  const content = Buffer.from(
    JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString(), token: randomBytes(8).toString('hex') }) + '\n',
  );
  let outcome: Claim;
  try {
    outcome = claim(lockPath, lockPath, content, mode, 0);
  } catch (error) {
    throw describeFailure(error, lockPath, subject);
  }
  if (!outcome.won) throw heldError(outcome, lockPath, subject);
  track(lockPath, content);
  removeLeftovers(lockPath);
  let released = false;
  return {
    path: lockPath,
    release() {
      if (released) return;
      released = true;
      removeIfContent(lockPath, content);
      untrack(lockPath);
    },
  };
}

function heldError(outcome: Extract<Claim, { won: false }>, lockPath: string, subject: string): StorageError {
  const summary = 'The store is in use by another process';
  const owner = outcome.holder.owner;
  if (owner === undefined) {
    return lockError(
      `${subject} is locked: its lock file ${lockPath} is empty or unreadable and was changed less than ${unreadableGraceMs / 1000} seconds ago, ` +
        `so a process may be opening the store right now. If no process is using it, delete the lock file`,
      summary,
    );
  }
  const where = owner.host === hostname() ? `process ${owner.pid}` : `process ${owner.pid} on host ${owner.host}`;
  const how = outcome.takingOver ? `${where}, which is taking over a stale lock` : where;
  return lockError(
    `${subject} is in use by ${how} (lock file ${lockPath}). Only one process may open it at a time: stop that process first. ` +
      `If it is not running any more, delete the lock file`,
    summary,
  );
}

function describeFailure(error: unknown, lockPath: string, subject: string): StorageError {
  if (error instanceof LockProblem) {
    switch (error.problem) {
      case 'symlink':
        return lockError(
          `${error.path} is a symbolic link. The store does not follow links where its files should be (a link there could make it write ` +
            `outside its folder): remove the link, and make sure no other user can write to the folder`,
          "The store's lock file is a symbolic link",
        );
      case 'other':
        return lockError(`${error.path} is not a regular file (a folder?): remove it, it is where the lock of ${subject} goes`, "The store's lock file is not a regular file");
      case 'changed':
        return lockError(
          `${lockPath} changed while this process was taking it over, so ${subject} was not opened: something other than a store is changing the lock file`,
          "The store's lock file changed while it was taken over",
        );
      case 'abandoned':
        return lockError(
          `Could not take over the stale lock ${lockPath} for ${subject}: processes that tried before died in the middle of it. ` +
            `If no process is using the store, delete ${lockPath} and the files beside it whose names begin with ${basename(lockPath)}.`,
          "The store's lock could not be taken over",
        );
      case 'busy':
        return lockError(`Could not take the lock file ${lockPath} for ${subject}: other processes kept taking it`, "The store's lock could not be taken");
    }
  }
  const reason = reasonOf(error);
  return lockError(`Could not take the lock file ${lockPath} for ${subject} (${reason})`, `The store's lock could not be taken (${errorCode(error) ?? 'error'})`, error);
}
