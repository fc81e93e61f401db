/**
 * What a write answers in its body, as `Prefer` (RFC 7240) asks. A POST to an
 * object answers the new member's key, `{"name":"<key>"}`, as Firebase's REST
 * API does: the client needs the key, and has the value it sent.
 * `Prefer: return=representation` answers the stored value instead (what
 * every write answered before), `return=minimal` no body at all.
 */
import type { IncomingMessage } from 'node:http';
import { valueAt } from '../document/apply.js';
import { isObject, type JsonValue } from '../document/json.js';

export type ReturnPreference = 'minimal' | 'representation' | undefined;

export function returnPreference(req: IncomingMessage): ReturnPreference {
  const header = req.headers['prefer'];
  const prefer = Array.isArray(header) ? header.join(', ') : header;
  if (prefer === undefined) return undefined;
  const match = /(?:^|[,;\s])return\s*=\s*"?(minimal|representation)"?/i.exec(prefer);
  return match === null ? undefined : ((match[1] as string).toLowerCase() as ReturnPreference);
}

/**
 * `{"name":"<key>"}` when a POST at `path` added the member at `resultPath`
 * to an object; undefined for an append to an array.
 */
export function postedNameBody(root: JsonValue, path: readonly string[], resultPath: readonly string[]): string | undefined {
  if (resultPath.length !== path.length + 1 || !isObject(valueAt(root, path))) return undefined;
  return JSON.stringify({ name: resultPath[resultPath.length - 1] });
}
