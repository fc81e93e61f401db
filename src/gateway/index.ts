/**
 * Gateway bridges: mount apps written to CGI, WSGI, JSGI/Rack or fetch-style
 * interfaces as Express (or connect, or node:http) middleware.
 *
 *     app.use('/legacy', wsgi(legacyApp));
 */
export { wsgi } from './wsgi.js';
export type { StartResponse, WsgiApplication, WsgiBody, WsgiEnviron, WsgiHeaders, WsgiOptions, WsgiWrite } from './wsgi.js';
export { jsgi } from './jsgi.js';
export type {
  JsgiApplication,
  JsgiBody,
  JsgiHeaders,
  JsgiInfo,
  JsgiOptions,
  JsgiRequest,
  JsgiResponse,
  JsgiResponseObject,
  JsgiResponseTuple,
} from './jsgi.js';
export { fetchHandler } from './fetch.js';
export type { FetchContext, FetchHandler, FetchHandlerOptions } from './fetch.js';
export { cgi } from './cgi.js';
export type { CgiOptions } from './cgi.js';
export { pythonWsgi } from './python-wsgi.js';
export type { PythonWsgiMiddleware, PythonWsgiOptions } from './python-wsgi.js';
export { fastcgi } from './fastcgi.js';
export type { FastCgiMiddleware, FastCgiOptions } from './fastcgi.js';
export { GatewayError, GatewayProtocolError } from './errors.js';
export type { GatewayErrorCode } from './errors.js';
export type {
  BodyChunk,
  CgiVariables,
  Closable,
  ErrorStream,
  GatewayLogger,
  GatewayMiddleware,
  GatewayOptions,
  NextFunction,
  RequestInput,
} from './types.js';
