/**
 * Helpers for the file adapter's tests: temp folders, a store served by a
 * real Express app on a real socket, crash images, and file systems that
 * fail on demand.
 */
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import request from 'supertest';
import { expect } from 'vitest';
import { expectProblemAnswer } from '../support/problem.js';
import { jsonStore, type JsonStore } from '../../src/index.js';
import type { JsonValue } from '../../src/document/json.js';
import { fileStorage, nodeFileSystem, type FileStorage, type FileStorageFile, type FileStorageFileSystem, type FileStorageOptions } from '../../src/storage/file.js';

export { PROBLEM_TYPE } from '../support/problem.js';
export { eventually } from '../support/wait.js';

const made: string[] = [];

/** A fresh folder under the OS temp dir; `removeTempDirs()` deletes them all. */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'jsonstore-file-'));
  made.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(made.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

export interface Served {
  store: JsonStore;
  storage: FileStorage;
  /** What the store reported on its `error` event: storage failures, with the adapter's own words. */
  errors: Error[];
  http: request.Agent;
  port: number;
  close(): Promise<void>;
}

/** A store on `fileStorage(file, options)`, mounted at /store in Express 5, listening on 127.0.0.1. */
export async function serve(file: string, options: FileStorageOptions = {}, initial: JsonValue = {}): Promise<Served> {
  const storage = fileStorage(file, options);
  const store = jsonStore({ initial, storage });
  // Storage failures are the subject of these tests: collected, and kept off the console.
  const errors: Error[] = [];
  store.on('error', (error) => errors.push(error as Error));
  const app = express();
  app.use('/store', store);
  const server = http.createServer(app);
  // Many concurrent clients in some tests: no keep-alive pool limits.
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  let closed = false;
  return {
    store,
    storage,
    errors,
    http: request.agent(server),
    port,
    async close() {
      if (closed) return;
      closed = true;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await store.close();
    },
  };
}

/** The three files of a store. */
export function filesOf(file: string): { snapshot: string; journal: string; lock: string } {
  return { snapshot: file, journal: `${file}.journal`, lock: `${file}.lock` };
}

export function readOrUndefined(path: string): Buffer | undefined {
  return existsSync(path) ? readFileSync(path) : undefined;
}

/**
 * What a crash would leave: copies of the snapshot and journal as they are
 * on disk right now (the lock is left out: its process is gone). Returns the
 * snapshot path in the new folder.
 */
export function crashImage(file: string, into: string): string {
  mkdirSync(into, { recursive: true });
  const target = join(into, 'store.json');
  const from = filesOf(file);
  const to = filesOf(target);
  if (existsSync(from.snapshot)) copyFileSync(from.snapshot, to.snapshot);
  if (existsSync(from.journal)) copyFileSync(from.journal, to.journal);
  return target;
}

/** The lines of a journal, each with its newline. */
export function journalLines(file: string): string[] {
  const text = readFileSync(filesOf(file).journal, 'utf8');
  return text.split(/(?<=\n)/);
}

/** Asserts an RFC 9457 problem with this status and a detail matching `detail` (a string: contained in it). */
export function expectProblem(response: request.Response, status: number, detail?: RegExp | string): string {
  const body = expectProblemAnswer({ status: response.status, contentType: response.headers['content-type'], text: response.text }, status);
  if (detail instanceof RegExp) expect(body.detail).toMatch(detail);
  else if (typeof detail === 'string') expect(body.detail).toContain(detail);
  return body.detail;
}

export function eio(syscall: string): NodeJS.ErrnoException {
  const error = new Error(`EIO: i/o error, ${syscall}`) as NodeJS.ErrnoException;
  error.code = 'EIO';
  error.syscall = syscall;
  return error;
}

/** Switches and counters for `faultyFileSystem`. A number means: fail that many more times. */
export interface Faults {
  /** Fail writes after writing half of the bytes (a torn write). */
  write: boolean | number;
  sync: boolean | number;
  truncate: boolean | number;
  rename: boolean | number;
  syncDirectory: boolean | number;
  removeFile: boolean | number;
  /** Milliseconds each file sync takes on top of the real one: a slow disk. */
  slowSync: number;
  /** Calls that went through, per operation. */
  calls: { write: number; sync: number; truncate: number; rename: number; syncDirectory: number; removeFile: number };
}

export function newFaults(): Faults {
  return {
    write: false,
    sync: false,
    truncate: false,
    rename: false,
    syncDirectory: false,
    removeFile: false,
    slowSync: 0,
    calls: { write: 0, sync: 0, truncate: 0, rename: 0, syncDirectory: 0, removeFile: 0 },
  };
}

function shouldFail(faults: Faults, name: keyof Faults['calls']): boolean {
  const setting = faults[name];
  if (typeof setting === 'number') {
    if (setting <= 0) return false;
    faults[name] = setting - 1;
    return true;
  }
  return setting;
}

/** `node:fs` with failures switched on and off by the test, and every call counted. */
export function faultyFileSystem(faults: Faults, base: FileStorageFileSystem = nodeFileSystem): FileStorageFileSystem {
  return {
    ...base,
    async open(path, flags, mode) {
      const file = await base.open(path, flags, mode);
      const wrapped: FileStorageFile = {
        async write(data, position) {
          if (shouldFail(faults, 'write')) {
            await file.write(data.subarray(0, Math.floor(data.length / 2)), position);
            throw eio('write');
          }
          faults.calls.write++;
          return file.write(data, position);
        },
        async sync() {
          if (faults.slowSync > 0) await new Promise((resolve) => setTimeout(resolve, faults.slowSync));
          if (shouldFail(faults, 'sync')) throw eio('fdatasync');
          faults.calls.sync++;
          return file.sync();
        },
        async truncate(length) {
          if (shouldFail(faults, 'truncate')) throw eio('ftruncate');
          faults.calls.truncate++;
          return file.truncate(length);
        },
        close: () => file.close(),
      };
      return wrapped;
    },
    async rename(from, to) {
      if (shouldFail(faults, 'rename')) throw eio('rename');
      faults.calls.rename++;
      return base.rename(from, to);
    },
    async syncDirectory(path) {
      if (shouldFail(faults, 'syncDirectory')) throw eio('fsync');
      faults.calls.syncDirectory++;
      return base.syncDirectory(path);
    },
    async removeFile(path) {
      if (shouldFail(faults, 'removeFile')) throw eio('unlink');
      faults.calls.removeFile++;
      return base.removeFile(path);
    },
  };
}

export { randomSource } from '../support/random.js';

/** Runs `task` (shown the warnings so far) and returns the warnings emitted meanwhile. */
export async function collectWarnings(task: (seen: readonly string[]) => Promise<void>): Promise<string[]> {
  const warnings: string[] = [];
  const emitWarning = process.emitWarning;
  process.emitWarning = ((warning: string | Error) => {
    warnings.push(String(warning));
  }) as typeof process.emitWarning;
  try {
    await task(warnings);
  } finally {
    process.emitWarning = emitWarning;
  }
  return warnings;
}
