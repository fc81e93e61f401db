/** `explorer: true`: the explorer page in front of the store's request handler. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DocumentStore } from '../document-store.js';
import type { RequestHandler } from '../http/handler.js';
import type { ResolvedOptions } from '../options.js';
import { serveExplorer, varyOnAccept } from './index.js';

export function withExplorer(store: DocumentStore, options: ResolvedOptions, handler: RequestHandler): (req: IncomingMessage, res: ServerResponse) => void {
  const settings = { readOnly: options.readOnly, allowedHosts: options.allowedHosts };
  return (req, res) => {
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      handler(req, res);
      return;
    }
    serveExplorer(store, settings, req, res).then(
      (served) => {
        if (served) return;
        // JSON at a URL that also answers HTML: caches must keep them apart.
        varyOnAccept(res);
        handler(req, res);
      },
      () => handler(req, res),
    );
  };
}
