/**
 * A request body of unknown length (chunked), read in full so a CGI script
 * (or PHP behind FastCGI) can be told its CONTENT_LENGTH — what nginx does
 * with `client_body_buffer_size` and `client_body_temp`: small bodies stay in
 * memory, larger ones go to a temporary file that is unlinked the moment it
 * is created (so it disappears with its last descriptor whatever happens,
 * a crash included) and handed to the script as its stdin.
 */
import { randomBytes } from 'node:crypto';
import { open, unlink, type FileHandle } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import { join } from 'node:path';

export interface SpoolLimits {
  /** Bytes kept in memory; past them the body goes to a temporary file. */
  memoryLimit: number;
  /** Bytes accepted in all; past them the rest is left unread (413). */
  maxSize: number;
  /** Where the temporary file is created. */
  directory: string;
  /** Takes each chunk's bytes from the bridge's budget; false when they do not fit (nothing taken), and the rest is left unread (503). */
  take?: (bytes: number) => boolean;
}

/**
 * The bytes of chunked request bodies one bridge holds at once, in memory
 * and in temporary files, whatever their number: `maxBodySize` bounds one
 * body, this bounds them all, so concurrent uploads cannot fill the disk.
 */
export class SpoolBudget {
  readonly limit: number;
  #used = 0;

  constructor(limit: number) {
    this.limit = limit;
  }

  /** One request's share: `take` as its body arrives, `release` (idempotent, and final) once it is answered. */
  share(): { take: (bytes: number) => boolean; release: () => void } {
    let held = 0;
    let released = false;
    return {
      take: (bytes) => {
        if (released || this.#used + bytes > this.limit) return false;
        this.#used += bytes;
        held += bytes;
        return true;
      },
      release: () => {
        released = true;
        this.#used -= held;
        held = 0;
      },
    };
  }
}

/** A complete body: in memory, or in an unlinked file read from its start. */
export type SpooledBody =
  | { kind: 'memory'; data: Buffer }
  | { kind: 'file'; size: number; file: SpoolFile };

export type SpoolResult =
  | SpooledBody
  | { kind: 'too-large' }
  | { kind: 'over-budget' }
  | { kind: 'gone' }
  | { kind: 'failed'; error: unknown };

/**
 * A temporary file, already unlinked: one descriptor to append with, one
 * opened separately (its own offset, at 0) to read from or hand to a child.
 */
export class SpoolFile {
  readonly #writer: FileHandle;
  readonly reader: FileHandle;
  #closed = false;

  private constructor(writer: FileHandle, reader: FileHandle) {
    this.#writer = writer;
    this.reader = reader;
  }

  static async create(directory: string): Promise<SpoolFile> {
    const path = join(directory, `express-jsonstore-body-${process.pid}-${randomBytes(8).toString('hex')}`);
    const writer = await open(path, 'wx', 0o600);
    let reader: FileHandle | undefined;
    try {
      reader = await open(path, 'r');
    } finally {
      // Unlinked at once: nothing to clean up later, even if this process dies.
      await unlink(path).catch(() => undefined);
      if (reader === undefined) await writer.close().catch(() => undefined);
    }
    return new SpoolFile(writer, reader);
  }

  async append(data: Buffer): Promise<void> {
    let offset = 0;
    while (offset < data.length) {
      const { bytesWritten } = await this.#writer.write(data, offset, data.length - offset);
      offset += bytesWritten;
    }
  }

  /** Done writing: only the reader stays open. */
  async finishWriting(): Promise<void> {
    await this.#writer.close();
  }

  /** Closes both descriptors (the file's space is freed with the last one). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.allSettled([this.#writer.close(), this.reader.close()]);
  }
}

/**
 * Reads `req`'s body to its end. Past `maxSize`, or past what `take` allows,
 * it stops reading and leaves the rest unread (the caller answers 413 or 503
 * and closes the connection);
 * `'gone'` when the client went away first. The caller owns a returned file.
 */
export async function spoolRequestBody(req: IncomingMessage, limits: SpoolLimits): Promise<SpoolResult> {
  const chunks: Buffer[] = [];
  let buffered = 0;
  let size = 0;
  let file: SpoolFile | undefined;
  // Not `for await`: leaving that loop would destroy the request (and the
  // socket the 413 must still be sent on).
  const source = (req as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  try {
    for (;;) {
      let step: IteratorResult<Buffer>;
      try {
        step = await source.next();
      } catch {
        await file?.close();
        return { kind: 'gone' };
      }
      if (step.done) break;
      const chunk = step.value;
      size += chunk.length;
      if (size > limits.maxSize) {
        await file?.close();
        return { kind: 'too-large' };
      }
      if (limits.take !== undefined && !limits.take(chunk.length)) {
        await file?.close();
        return { kind: 'over-budget' };
      }
      if (file !== undefined) {
        await file.append(chunk);
        continue;
      }
      chunks.push(chunk);
      buffered += chunk.length;
      if (buffered > limits.memoryLimit) {
        file = await SpoolFile.create(limits.directory);
        await file.append(Buffer.concat(chunks, buffered));
        chunks.length = 0;
        buffered = 0;
      }
    }
    if (file === undefined) return { kind: 'memory', data: Buffer.concat(chunks, buffered) };
    await file.finishWriting();
    return { kind: 'file', size, file };
  } catch (error) {
    await file?.close();
    return { kind: 'failed', error };
  }
}
