/**
 * The Python worker processes behind `pythonWsgi()`: a fixed number of
 * workers, each importing the app once and serving one request at a time
 * (gunicorn's sync workers), a bounded queue of requests waiting for a free
 * worker, recycling after `maxRequests`, replacement of workers that crash
 * (with backoff when they keep crashing) and a graceful drain on `close()`.
 * The request itself (frames in, response out) is `python-wsgi.ts`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GatewayError } from './errors.js';
import { LineLogStream } from './log-stream.js';
import { safeLog } from './options.js';
import { encodeFrame, frameHeader, FrameDecoder, FromWorker, type Frame } from './python-protocol.js';
import type { GatewayLogger } from './types.js';

export const runnerFileName = 'jsonstore_wsgi_runner.py';

/**
 * Where the runner is: next to this module in src/ (`python/`), or in dist/
 * (`python/`, copied there by the build). Works from the ESM and CommonJS
 * builds (tsup shims import.meta.url in the latter), whichever chunk this
 * code landed in, and from the sources.
 */
export function runnerPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, 'python', runnerFileName), join(here, '..', 'python', runnerFileName), join(here, 'gateway', 'python', runnerFileName)];
  return candidates.find((candidate) => existsSync(candidate)) ?? (candidates[0] as string);
}

export interface PoolSettings {
  python: string;
  runner: string;
  appSpec: string;
  cwd: string;
  env: Readonly<Record<string, string>>;
  workers: number;
  /** Requests a worker serves before it is replaced; 0: never. */
  maxRequests: number;
  /** Up to this many more, drawn per worker, so workers do not all restart at once. */
  maxRequestsJitter: number;
  /** Requests that may wait for a free worker; past it, 503. */
  maxQueue: number;
  /** Milliseconds a retiring worker gets to exit before SIGKILL. */
  killGrace: number;
  logger: GatewayLogger;
}

/** One request's side of a worker: frames of its response, and the worker's death. */
export interface WorkerSession {
  /** `next` is the frame after this one when it arrived in the same read. Return a promise to pause the worker's output. */
  onFrame(frame: Frame, next: Frame | undefined): Promise<void> | undefined;
  onExit(description: string): void;
}

/** A request waiting for (or given) a worker. */
export interface PoolJob {
  start(worker: PythonWorker): void;
  /** The pool cannot serve it after all (the app cannot be loaded). */
  reject(error: GatewayError): void;
}

type WorkerState = 'starting' | 'idle' | 'busy' | 'retiring' | 'exited';

const maxBackoffMs = 10_000;

export class PythonWorker {
  readonly child: ChildProcess;
  readonly #pool: PythonWorkerPool;
  state: WorkerState = 'starting';
  served = 0;
  /** Requests this worker serves before it is recycled: maxRequests plus its own jitter; 0 never. */
  readonly requestLimit: number;
  #session: WorkerSession | undefined;
  readonly #decoder = new FrameDecoder();
  readonly #frames: Frame[] = [];
  #frameIndex = 0;
  #waiting = false;
  /** Set when we stop the worker ourselves, so its exit is not a crash. */
  #exitExpected = false;
  #loadFailure: string | undefined;
  #killTimer: NodeJS.Timeout | undefined;
  readonly #errors: LineLogStream;
  readonly #stderr: LineLogStream;

  constructor(pool: PythonWorkerPool, settings: PoolSettings) {
    this.#pool = pool;
    const { maxRequests, maxRequestsJitter } = settings;
    this.requestLimit = maxRequests === 0 ? 0 : maxRequests + Math.floor(Math.random() * (maxRequestsJitter + 1));
    this.#errors = new LineLogStream(settings.logger, 'wsgi.errors: ');
    this.child = spawn(settings.python, [settings.runner, settings.appSpec], {
      cwd: settings.cwd,
      env: { ...process.env, ...settings.env, JSONSTORE_WSGI_PARENT: String(process.pid), PYTHONUNBUFFERED: '1' },
      stdio: ['pipe', 'pipe', 'pipe'],
      // A process group of its own: a kill reaches what the app started, and
      // a Ctrl-C meant for Node does not interrupt requests (Node closing the
      // pipes ends the workers).
      detached: true,
    });
    this.#stderr = new LineLogStream(settings.logger, `python[${this.child.pid ?? '?'}]: `, { perRequest: false });
    const { child } = this;
    child.stdin?.on('error', () => undefined); // EPIPE once the worker is gone; its exit says why.
    child.stdout?.on('data', (chunk: Buffer) => this.#onData(chunk));
    child.stderr?.on('data', (chunk: Buffer) => this.#stderr.write(chunk));
    child.once('error', (error) => {
      this.#loadFailure ??= `could not start ${settings.python}: ${error.message}`;
      this.#exited(`could not be started (${error.message})`);
    });
    child.once('exit', (code, signal) => {
      // Frames already read are handled first; what is still in the pipe is lost with the worker.
      setImmediate(() => this.#exited(signal !== null ? `was killed by ${signal}` : `exited with status ${code}`));
    });
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** Starts a request on this worker. */
  attach(session: WorkerSession): void {
    this.state = 'busy';
    this.#session = session;
    this.#errors.nextRequest();
  }

  /** The request is over (its E or X frame arrived); the pool decides what the worker does next. */
  detach(): void {
    this.#session = undefined;
    this.#errors.flush();
    this.#pool.release(this);
  }

  /** Sends a frame; false when the pipe is full (wait for `onDrain`). */
  send(type: number, payload?: Buffer | string): boolean {
    const stdin = this.child.stdin;
    if (!stdin || stdin.destroyed || stdin.writableEnded) return true;
    if (payload === undefined || typeof payload === 'string' || payload.length < 16 * 1024) return stdin.write(encodeFrame(type, payload));
    // Large chunks: header and payload as two writes, without copying the payload.
    stdin.cork();
    stdin.write(frameHeader(type, payload.length));
    const flowing = stdin.write(payload);
    stdin.uncork();
    return flowing;
  }

  /** Sends raw, already framed bytes (a request head and its body end in one write). */
  sendRaw(bytes: Buffer): boolean {
    const stdin = this.child.stdin;
    if (!stdin || stdin.destroyed || stdin.writableEnded) return true;
    return stdin.write(bytes);
  }

  onDrain(listener: () => void): () => void {
    const stdin = this.child.stdin;
    if (!stdin) return () => undefined;
    stdin.once('drain', listener);
    return () => stdin.off('drain', listener);
  }

  /** Stops the worker now (timeout, broken protocol): SIGKILL to its process group. */
  kill(): void {
    if (this.state === 'exited') return;
    this.#exitExpected = true;
    const pid = this.child.pid;
    if (pid === undefined) return;
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      try {
        this.child.kill('SIGKILL');
      } catch {
        // Already gone.
      }
    }
  }

  /** Lets the worker finish: its stdin closes, it exits when it reads the end; killed if it lingers. */
  retire(graceMs: number): void {
    if (this.state === 'exited' || this.state === 'retiring') return;
    this.state = 'retiring';
    this.#exitExpected = true;
    this.child.stdin?.end();
    this.#killTimer = setTimeout(() => this.kill(), graceMs);
  }

  #onData(chunk: Buffer): void {
    try {
      this.#decoder.push(chunk, this.#frames);
    } catch (error) {
      this.#pool.log(`worker ${this.pid} broke the protocol (${(error as Error).message}); killed`);
      this.kill();
      return;
    }
    this.#pump();
  }

  /** Hands frames on in order, stopping while the current response waits for the client to drain. */
  #pump(): void {
    const frames = this.#frames;
    while (!this.#waiting && this.#frameIndex < frames.length) {
      const frame = frames[this.#frameIndex++] as Frame;
      const wait = this.#handle(frame, frames[this.#frameIndex]);
      if (wait !== undefined) {
        this.#waiting = true;
        this.child.stdout?.pause();
        void wait.then(() => {
          this.#waiting = false;
          this.child.stdout?.resume();
          this.#pump();
        });
        return;
      }
    }
    if (this.#frameIndex >= frames.length) {
      frames.length = 0;
      this.#frameIndex = 0;
    }
  }

  #handle(frame: Frame, next: Frame | undefined): Promise<void> | undefined {
    switch (frame.type) {
      case FromWorker.ready:
        if (this.state === 'starting') this.state = 'idle';
        this.#pool.onReady(this);
        return undefined;
      case FromWorker.loadFailed:
        this.#loadFailure = frame.payload.toString('utf8');
        return undefined;
      case FromWorker.log:
        this.#errors.write(frame.payload);
        return undefined;
      default:
        return this.#session?.onFrame(frame, next);
    }
  }

  #exited(description: string): void {
    if (this.state === 'exited') return;
    const previous = this.state;
    this.state = 'exited';
    if (this.#killTimer !== undefined) clearTimeout(this.#killTimer);
    this.#errors.flush();
    this.#stderr.flush();
    const session = this.#session;
    this.#session = undefined;
    session?.onExit(description);
    this.#pool.onExit(this, { description, neverReady: previous === 'starting', expected: this.#exitExpected, loadFailure: this.#loadFailure });
  }
}

interface ExitInfo {
  description: string;
  neverReady: boolean;
  expected: boolean;
  loadFailure: string | undefined;
}

export type SubmitResult = 'started' | 'queued' | 'queue-full' | 'closed' | 'cannot-start';

export class PythonWorkerPool {
  readonly #settings: PoolSettings;
  readonly #workers = new Set<PythonWorker>();
  readonly #queue: PoolJob[] = [];
  /** Crashes and load failures since a request last succeeded: the restart backoff. */
  #failures = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  /** The last worker start failed and none is running: requests are refused until one starts. */
  #cannotStart = false;
  #closed: (() => void) | undefined;
  #readyWaiters: Array<{ resolve: () => void; reject: (error: Error) => void }> = [];

  constructor(settings: PoolSettings) {
    this.#settings = settings;
    this.#fill();
  }

  log(line: string): void {
    safeLog(this.#settings.logger, `pythonWsgi: ${line}`);
  }

  /** Process ids of the workers that are running (starting, serving or idle). */
  get pids(): number[] {
    const pids: number[] = [];
    for (const worker of this.#workers) if (worker.state !== 'exited' && worker.pid !== undefined) pids.push(worker.pid);
    return pids;
  }

  /** Workers serving a request, and requests waiting for one. */
  get load(): { busy: number; queued: number } {
    let busy = 0;
    for (const worker of this.#workers) if (worker.state === 'busy') busy++;
    return { busy, queued: this.#queue.length };
  }

  get closing(): boolean {
    return this.#closing !== undefined;
  }

  #readyCount(): number {
    let count = 0;
    for (const worker of this.#workers) if (worker.state === 'idle' || worker.state === 'busy') count++;
    return count;
  }

  /** Resolves once all workers have imported the app; rejects if the app cannot be loaded. */
  ready(): Promise<void> {
    if (this.#readyCount() >= this.#settings.workers) return Promise.resolve();
    return new Promise((resolve, reject) => this.#readyWaiters.push({ resolve, reject }));
  }

  /** Runs `job` on a free worker, or queues it. */
  submit(job: PoolJob): SubmitResult {
    if (this.#closing !== undefined) return 'closed';
    if (this.#cannotStart) return 'cannot-start';
    for (const worker of this.#workers) {
      if (worker.state === 'idle') {
        job.start(worker);
        return 'started';
      }
    }
    if (this.#queue.length >= this.#settings.maxQueue) return 'queue-full';
    this.#queue.push(job);
    return 'queued';
  }

  /** Takes a job out of the queue (it timed out, or its client left). False if it was not queued. */
  withdraw(job: PoolJob): boolean {
    const index = this.#queue.indexOf(job);
    if (index === -1) return false;
    this.#queue.splice(index, 1);
    return true;
  }

  onReady(worker: PythonWorker): void {
    this.#cannotStart = false;
    if (this.#readyCount() >= this.#settings.workers) {
      const waiters = this.#readyWaiters;
      this.#readyWaiters = [];
      for (const waiter of waiters) waiter.resolve();
    }
    this.#next(worker);
  }

  /** A request finished on `worker`. */
  release(worker: PythonWorker): void {
    worker.served++;
    this.#failures = 0;
    if (worker.requestLimit > 0 && worker.served >= worker.requestLimit) {
      worker.retire(this.#settings.killGrace);
      this.#fill();
      return;
    }
    worker.state = 'idle';
    this.#next(worker);
  }

  /** Gives an idle worker the next queued request, or retires it when the pool is closing. */
  #next(worker: PythonWorker): void {
    if (worker.state !== 'idle') return;
    const job = this.#queue.shift();
    if (job !== undefined) job.start(worker);
    else if (this.#closing !== undefined) worker.retire(this.#settings.killGrace);
  }

  onExit(worker: PythonWorker, exit: ExitInfo): void {
    this.#workers.delete(worker);
    if (exit.loadFailure !== undefined) {
      this.log(`could not load '${this.#settings.appSpec}' (worker ${worker.pid ?? '?'} ${exit.description}):\n${exit.loadFailure.trimEnd()}`);
    } else if (!exit.expected) {
      this.log(`worker ${worker.pid ?? '?'} ${exit.description}${exit.neverReady ? ' before the app was loaded' : ''}; replacing it`);
    }
    if (!exit.expected) this.#failures++;
    if (exit.neverReady && !exit.expected && this.#readyCount() === 0) {
      // Nothing can serve: say so now rather than let requests wait for their timeout.
      this.#cannotStart = true;
      const error = new GatewayError('bad-gateway', 'The Python application could not be started; the server log says why.');
      for (const job of this.#queue.splice(0)) job.reject(error);
      const waiters = this.#readyWaiters;
      this.#readyWaiters = [];
      for (const waiter of waiters) waiter.reject(new Error(`pythonWsgi(): '${this.#settings.appSpec}' could not be started: ${exit.loadFailure ?? exit.description}`));
    }
    this.#fill();
    if (this.#workers.size === 0 && this.#closing !== undefined) this.#closed?.();
  }

  /** Starts workers until the pool has its number (after a backoff when they keep failing). */
  #fill(): void {
    if (this.#restartTimer !== undefined) return;
    if (this.#closing !== undefined && this.#queue.length === 0) return;
    let live = 0;
    for (const worker of this.#workers) if (worker.state !== 'retiring' && worker.state !== 'exited') live++;
    if (live >= this.#settings.workers) return;
    const delay = this.#failures <= 1 ? 0 : Math.min(100 * 2 ** (this.#failures - 2), maxBackoffMs);
    if (delay > 0) {
      this.#restartTimer = setTimeout(() => {
        this.#restartTimer = undefined;
        this.#fill();
      }, delay);
      return;
    }
    for (; live < this.#settings.workers; live++) this.#workers.add(new PythonWorker(this, this.#settings));
  }

  /**
   * Stops taking requests, lets queued and running ones finish, then closes
   * every worker's stdin so it exits; resolves when all have exited.
   */
  close(): Promise<void> {
    if (this.#closing !== undefined) return this.#closing;
    this.#closing = new Promise((resolve) => {
      this.#closed = resolve;
    });
    if (this.#restartTimer !== undefined) {
      clearTimeout(this.#restartTimer);
      this.#restartTimer = undefined;
    }
    for (const waiter of this.#readyWaiters.splice(0)) waiter.reject(new Error('pythonWsgi(): closed before the workers were ready'));
    for (const worker of this.#workers) {
      if (worker.state === 'idle' || worker.state === 'starting') {
        if (this.#queue.length === 0) worker.retire(this.#settings.killGrace);
      }
    }
    if (this.#workers.size === 0) this.#closed?.();
    return this.#closing;
  }
}

