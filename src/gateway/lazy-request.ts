/**
 * A WHATWG `Request` built only when the handler needs one. Most routers
 * read `method` and `url` and nothing else for a GET; building the real
 * Request (its Headers, its body stream, its AbortSignal) costs more than the
 * rest of the request. So the handler gets an object whose prototype chain
 * includes `Request.prototype` (`instanceof Request` holds) with `method` and
 * `url` of its own, and every other property builds the real Request once
 * and delegates to it — the trick @hono/node-server uses.
 */

const build = Symbol('build');
const built = Symbol('built');
const methodKey = Symbol('method');
const urlKey = Symbol('url');

interface LazyFields {
  [methodKey]: string;
  [urlKey]: string;
  [build]: () => Request;
  [built]: Request | undefined;
}

function real(self: LazyFields): Request {
  let request = self[built];
  if (request === undefined) {
    request = self[build]();
    self[built] = request;
  }
  return request;
}

const lazyPrototype: object = Object.create(Request.prototype);

Object.defineProperty(lazyPrototype, 'method', {
  get(this: LazyFields) {
    return this[methodKey];
  },
});
Object.defineProperty(lazyPrototype, 'url', {
  get(this: LazyFields) {
    return this[urlKey];
  },
});

// Everything else the Request interface has: getters and methods, delegated.
for (const name of Object.getOwnPropertyNames(Request.prototype)) {
  if (name === 'constructor' || name === 'method' || name === 'url') continue;
  const descriptor = Object.getOwnPropertyDescriptor(Request.prototype, name);
  if (descriptor === undefined) continue;
  if (typeof descriptor.get === 'function') {
    Object.defineProperty(lazyPrototype, name, {
      get(this: LazyFields) {
        return (real(this) as unknown as Record<string, unknown>)[name];
      },
    });
  } else if (typeof descriptor.value === 'function') {
    Object.defineProperty(lazyPrototype, name, {
      value: function (this: LazyFields, ...args: unknown[]) {
        const request = real(this) as unknown as Record<string, (...a: unknown[]) => unknown>;
        return (request[name] as (...a: unknown[]) => unknown).apply(request, args);
      },
      writable: true,
      configurable: true,
    });
  }
}

/**
 * A Request with `method` and `url` known now and the rest from `create()`,
 * called at most once, the first time anything else is read. `url` must be
 * what `new Request(url).url` would give (an absolute, serialized URL).
 */
export function lazyRequest(method: string, url: string, create: () => Request): Request {
  const fields = Object.create(lazyPrototype) as LazyFields;
  fields[methodKey] = method;
  fields[urlKey] = url;
  fields[build] = create;
  fields[built] = undefined;
  return fields as unknown as Request;
}
