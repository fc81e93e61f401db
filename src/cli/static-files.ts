/**
 * `--static DIR`: files served next to the store, like json-server's
 * `public/` folder. A GET or HEAD whose path names a file in the folder (or a
 * folder with an index.html) gets that file; every other request goes to the
 * store. Files never leave the folder: `..` segments, encoded slashes, NUL
 * and symbolic links that point outside it are not served.
 */
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, sep } from 'node:path';

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.htm': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.md': 'text/markdown; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.wasm': 'application/wasm',
};

export interface StaticFiles {
  /** Answers the request from the folder and resolves true, or resolves false (the store answers it). */
  serve(req: IncomingMessage, res: ServerResponse): Promise<boolean>;
}

/** `root` must be an existing folder; resolved once, with links followed. */
export async function staticFiles(root: string): Promise<StaticFiles> {
  const base = await realpath(root);
  if (!(await stat(base)).isDirectory()) throw new Error(`--static ${root} is not a folder`);

  /** The file to serve for a URL path, or undefined. */
  async function fileFor(urlPath: string): Promise<{ path: string; size: number; mtime: Date } | undefined> {
    let segments: string[];
    try {
      segments = urlPath.split('/').map((segment) => decodeURIComponent(segment));
    } catch {
      return undefined;
    }
    if (segments.some((s) => s === '..' || s === '.' || s.includes('/') || s.includes('\\') || s.includes('\0'))) return undefined;
    let candidate = join(base, ...segments);
    try {
      let info = await stat(candidate);
      if (info.isDirectory()) {
        candidate = join(candidate, 'index.html');
        info = await stat(candidate);
      }
      if (!info.isFile()) return undefined;
      // A link inside the folder may point outside it.
      const real = await realpath(candidate);
      if (real !== base && !real.startsWith(base + sep)) return undefined;
      return { path: real, size: info.size, mtime: info.mtime };
    } catch {
      return undefined;
    }
  }

  return {
    async serve(req, res) {
      if (req.method !== 'GET' && req.method !== 'HEAD') return false;
      const url = req.url ?? '/';
      const pathEnd = url.search(/[?#]/);
      const file = await fileFor(pathEnd === -1 ? url : url.slice(0, pathEnd));
      if (file === undefined) return false;
      const lastModified = file.mtime.toUTCString();
      const since = req.headers['if-modified-since'];
      res.setHeader('Content-Type', contentTypes[extname(file.path).toLowerCase()] ?? 'application/octet-stream');
      res.setHeader('Last-Modified', lastModified);
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.setHeader('Cache-Control', 'no-cache');
      if (since !== undefined && Date.parse(since) >= Math.floor(file.mtime.getTime() / 1000) * 1000) {
        res.statusCode = 304;
        res.end();
        return true;
      }
      res.setHeader('Content-Length', file.size);
      if (req.method === 'HEAD') {
        res.end();
        return true;
      }
      const stream = createReadStream(file.path);
      stream.on('error', () => res.destroy());
      stream.pipe(res);
      return true;
    },
  };
}
