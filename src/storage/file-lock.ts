/**
 * One process owns a store file at a time. The owner holds a lock file next
 * to it, created exclusively (`O_CREAT | O_EXCL`), that names its pid and
 * host. A lock whose process is gone (killed, crashed, machine restarted) is
 * stale and taken over; a live owner makes opening fail with a clear message.
 *
 * Synchronous on purpose: the lock is taken once at startup and released at
 * close or from an `exit` handler, where only synchronous calls run.
 */
import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { basename } from 'node:path';
import { StorageError } from '../errors.js';

/** A lock problem: the log gets the paths, a client the file name. */
function lockError(message: string, summary: string, cause?: unknown): StorageError {
  return new StorageError(message, { cause, publicDetail: `${summary}; the store did not start (the server's log says what to do)` });
}

export interface FileLock {
  readonly path: string;
  /** Removes the lock file if it is still this process's. Safe to call more than once. */
  release(): void;
}

interface Owner {
  pid: number;
  host: string;
}

/** Lock files this process holds; released by one shared `exit` handler if nobody closed them. */
const held = new Set<string>();

function releaseAllOnExit(): void {
  for (const lockPath of held) removeIfOurs(lockPath);
  held.clear();
}

function track(lockPath: string): void {
  if (held.size === 0) process.on('exit', releaseAllOnExit);
  held.add(lockPath);
}

function untrack(lockPath: string): void {
  if (held.delete(lockPath) && held.size === 0) process.off('exit', releaseAllOnExit);
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function readOwner(lockPath: string): Owner | 'missing' | 'unreadable' {
  let text: string;
  try {
    text = readFileSync(lockPath, 'utf8');
  } catch (error) {
    return errorCode(error) === 'ENOENT' ? 'missing' : 'unreadable';
  }
  try {
    const value = JSON.parse(text) as Partial<Owner>;
    if (typeof value.pid === 'number' && Number.isSafeInteger(value.pid) && value.pid > 0 && typeof value.host === 'string') {
      return { pid: value.pid, host: value.host };
    }
  } catch {
    // Garbage: a process died between creating the file and writing it.
  }
  return 'unreadable';
}

/** Whether the owner may still be running. Another host's process cannot be checked, so it counts as running. */
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

function removeIfOurs(lockPath: string): void {
  const owner = readOwner(lockPath);
  if (typeof owner === 'object' && owner.pid === process.pid && owner.host === hostname()) {
    try {
      unlinkSync(lockPath);
    } catch {
      // Already gone, or the folder is gone: nothing left to release.
    }
  }
}

/**
 * Takes the lock at `lockPath` for the store file `subject` (named in
 * messages). Throws a `StorageError` when a running process holds it.
 */
export function acquireLock(lockPath: string, subject: string): FileLock {
  if (held.has(lockPath)) {
    throw lockError(`${subject} is already open in this process (another store uses it); close that store first`, `${basename(subject)} is already open in this process`);
  }
  const content = JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }) + '\n';
  // A few rounds: between seeing a stale lock and removing it, another
  // starting process may have removed it and taken the lock itself.
  for (let round = 0; round < 5; round++) {
    let fd: number;
    try {
      fd = openSync(lockPath, 'wx');
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') {
        const reason = error instanceof Error ? error.message : String(error);
        throw lockError(`Could not create the lock file ${lockPath} for ${subject} (${reason})`, `Could not create the lock file ${basename(lockPath)}`, error);
      }
      const owner = readOwner(lockPath);
      if (owner === 'missing') continue;
      if (owner !== 'unreadable' && isRunning(owner)) {
        const where = owner.host === hostname() ? `process ${owner.pid}` : `process ${owner.pid} on host ${owner.host}`;
        throw lockError(
          `${subject} is in use by ${where} (lock file ${lockPath}). Only one process may open it at a time: stop that process first. ` +
            `If it is not running any more, delete the lock file`,
          `${basename(subject)} is in use by ${where}`,
        );
      }
      // Stale: its owner is gone.
      try {
        unlinkSync(lockPath);
      } catch (unlinkError) {
        if (errorCode(unlinkError) !== 'ENOENT') {
          throw lockError(`Could not remove the stale lock file ${lockPath} for ${subject}`, `Could not remove the stale lock file ${basename(lockPath)}`, unlinkError);
        }
      }
      continue;
    }
    try {
      writeSync(fd, content);
    } catch (error) {
      closeSync(fd);
      unlinkSync(lockPath);
      throw lockError(`Could not write the lock file ${lockPath} for ${subject}`, `Could not write the lock file ${basename(lockPath)}`, error);
    }
    closeSync(fd);
    track(lockPath);
    let released = false;
    return {
      path: lockPath,
      release() {
        if (released) return;
        released = true;
        removeIfOurs(lockPath);
        untrack(lockPath);
      },
    };
  }
  throw lockError(`Could not take the lock file ${lockPath} for ${subject}: other processes kept taking it`, `Could not take the lock file ${basename(lockPath)}`);
}
