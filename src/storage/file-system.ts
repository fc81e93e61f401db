/**
 * The file-system seam of `fileStorage()`: the file operations the adapter
 * uses, replaceable for tests (the `fs` option), and `nodeFileSystem`, the
 * default on `node:fs`. None of them follows a symbolic link where one of the
 * store's files should be.
 */
import { constants, writeSync } from 'node:fs';
import { lstat, mkdir, open, rename, unlink } from 'node:fs/promises';
import { StorageError } from '../errors.js';

/** An open file, as the adapter uses it. */
export interface FileStorageFile {
  /** Writes `data` at byte `position`; resolves with how many bytes were written. */
  write(data: Uint8Array, position: number): Promise<number>;
  /** Makes what was written durable (fdatasync). */
  sync(): Promise<void>;
  truncate(length: number): Promise<void>;
  close(): Promise<void>;
}

/** What is at a path, without following a symbolic link. */
export type FileStorageEntryKind = 'missing' | 'file' | 'symlink' | 'other';

/**
 * The file operations behind `fileStorage()`. The default is `node:fs`
 * (`nodeFileSystem`); pass your own as the `fs` option in tests, to see what
 * a store does when the disk fails. The lock file always uses `node:fs`.
 *
 * None of them may follow a symbolic link at `path`: the adapter refuses
 * links where its files should be, and relies on these operations for it.
 */
export interface FileStorageFileSystem {
  /** The whole file, or `undefined` when it does not exist. Fails on a symbolic link or anything but a regular file. */
  readFile(path: string): Promise<Uint8Array | undefined>;
  /**
   * `'r+'`: an existing regular file, for writing. `'wx'`: a new file,
   * created exclusively with `mode` (fails with `EEXIST` when anything is
   * at `path`, a symbolic link included).
   */
  open(path: string, flags: 'r+' | 'wx', mode?: number): Promise<FileStorageFile>;
  /** Atomically replaces `to` with `from` (a link at `to` is replaced, not followed). */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file (a link itself, never what it points to); no error when it does not exist. */
  removeFile(path: string): Promise<void>;
  /** Creates a folder and its parents with `mode`; no error when it exists. */
  makeDirectory(path: string, mode?: number): Promise<void>;
  /** Makes the folder's entries (new files, renames) durable: fsync on the folder. */
  syncDirectory(path: string): Promise<void>;
  /** What is at `path` (lstat): nothing, a regular file, a symbolic link, or something else. */
  entryKind(path: string): Promise<FileStorageEntryKind>;
}

/** The `code` of a failed `node:fs` call (`ENOENT`, ...), if it has one. */
export function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

// Not following a symbolic link where the platform can tell (not Windows); not blocking on a FIFO.
export const noFollow = constants.O_NOFOLLOW ?? 0;
export const nonBlocking = constants.O_NONBLOCK ?? 0;

/** A refusal to use something that is not a regular file, as `node:fs` would word it. */
function notAFile(path: string): NodeJS.ErrnoException {
  const error = new Error(`not a regular file: ${path}`) as NodeJS.ErrnoException;
  error.code = 'ENOTREG';
  return error;
}

export const nodeFileSystem: FileStorageFileSystem = {
  async readFile(path) {
    let handle;
    try {
      handle = await open(path, constants.O_RDONLY | noFollow | nonBlocking);
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return undefined;
      throw error;
    }
    try {
      if (!(await handle.stat()).isFile()) throw notAFile(path);
      return await handle.readFile();
    } finally {
      await handle.close();
    }
  },
  async open(path, flags, mode = 0o600) {
    const handle =
      flags === 'wx'
        ? await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | noFollow, mode)
        : await open(path, constants.O_RDWR | noFollow | nonBlocking);
    if (flags === 'r+' && !(await handle.stat()).isFile()) {
      await handle.close();
      throw notAFile(path);
    }
    return {
      write: async (data, position) => (await handle.write(data, 0, data.length, position)).bytesWritten,
      sync: () => handle.datasync(),
      truncate: (length) => handle.truncate(length),
      close: () => handle.close(),
    };
  },
  rename: (from, to) => rename(from, to),
  async removeFile(path) {
    try {
      await unlink(path);
    } catch (error) {
      if (errorCode(error) !== 'ENOENT') throw error;
    }
  },
  async makeDirectory(path, mode = 0o700) {
    await mkdir(path, { recursive: true, mode });
  },
  async syncDirectory(path) {
    // Windows cannot open a folder as a file; its renames are durable without this.
    if (process.platform === 'win32') return;
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
  async entryKind(path) {
    try {
      const stat = await lstat(path);
      if (stat.isSymbolicLink()) return 'symlink';
      return stat.isFile() ? 'file' : 'other';
    } catch (error) {
      if (errorCode(error) === 'ENOENT') return 'missing';
      throw error;
    }
  },
};

/** Why an operation failed, in a few words: a storage error's message, an errno code, or the error's message. */
export function reasonOf(error: unknown): string {
  if (error instanceof StorageError) return error.message;
  const code = errorCode(error);
  if (code !== undefined) return code;
  return error instanceof Error ? error.message : String(error);
}

/** `writeAll` for a descriptor opened synchronously (the lock, taken before anything async may run). */
export function writeAllSync(fd: number, data: Uint8Array): void {
  let offset = 0;
  while (offset < data.length) {
    const written = writeSync(fd, data, offset, data.length - offset, offset);
    if (!(written > 0)) throw new Error('the disk accepted no bytes');
    offset += written;
  }
}

/** Writes all of `data` at `position`, however many calls the file takes to accept it. */
export async function writeAll(file: FileStorageFile, data: Uint8Array, position: number): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    const written = await file.write(data.subarray(offset), position + offset);
    if (!(written > 0)) throw new Error('the disk accepted no bytes');
    offset += written;
  }
}
