/**
 * What the CLI answers a request with, in order: the request log, CORS
 * (preflights answered here), files from `--static` (GET/HEAD of a file that
 * exists), then the store.
 */
import type { IncomingMessage, RequestListener, ServerResponse } from 'node:http';
import { applyCors, type CorsPolicy } from '../http/cors.js';
import { checkHost } from '../http/host.js';
import type { JsonStore } from '../json-store.js';
import { logRequest } from './request-log.js';
import type { StaticFiles } from './static-files.js';

export interface CliAppOptions {
  store: JsonStore;
  files?: StaticFiles | undefined;
  cors?: CorsPolicy | undefined;
  /** Where request log lines go; undefined: no log (--quiet). */
  log?: ((line: string) => void) | undefined;
  /** Names answered; the store refuses others with 421, and files are not served for them either. */
  allowedHosts?: ReadonlySet<string> | undefined;
}

export function cliApp(options: CliAppOptions): RequestListener {
  const { store, files, cors, log, allowedHosts } = options;
  const hostAllowed = (req: IncomingMessage): boolean => {
    if (allowedHosts === undefined) return true;
    try {
      checkHost(req, allowedHosts);
      return true;
    } catch {
      return false;
    }
  };
  return (req: IncomingMessage, res: ServerResponse) => {
    if (log !== undefined) logRequest(req, res, log);
    if (cors !== undefined && applyCors(cors, req, res)) return;
    if (files === undefined || !hostAllowed(req)) {
      store(req, res);
      return;
    }
    files.serve(req, res).then(
      (served) => {
        if (!served) store(req, res);
      },
      () => {
        if (!res.headersSent) store(req, res);
        else res.destroy();
      },
    );
  };
}
