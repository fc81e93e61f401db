// A JSONStore written as a WSGI-style callable: one in-memory JSON document,
// addressed by PATH_INFO (`/sniffles/0/name`), read with GET and written with
// PUT. It knows nothing of Express: mounted with wsgi(), it is just another
// gateway app, which is all the store ever was to the web server.

function json(startResponse, status, value, extraHeaders = []) {
  const body = JSON.stringify(value) + '\n';
  startResponse(status, [['Content-Type', 'application/json'], ['Content-Length', String(Buffer.byteLength(body))], ...extraHeaders]);
  return [body];
}

/** Segments of PATH_INFO (already percent-decoded by the gateway); `''` and `'/'` are the whole document. */
function segmentsOf(pathInfo) {
  return pathInfo.split('/').filter((segment) => segment !== '');
}

function lookup(document, segments) {
  let node = document;
  for (const segment of segments) {
    if (node === null || typeof node !== 'object' || !Object.hasOwn(node, segment)) return { found: false };
    node = node[segment];
  }
  return { found: true, value: node };
}

export function createJsonStoreApp(initial = {}) {
  let document = initial;

  return async function jsonStoreApp(environ, startResponse) {
    const segments = segmentsOf(environ.PATH_INFO);
    const method = environ.REQUEST_METHOD;

    if (method === 'GET' || method === 'HEAD') {
      const { found, value } = lookup(document, segments);
      return found ? json(startResponse, '200 OK', value) : json(startResponse, '404 Not Found', { error: 'no such path' });
    }

    if (method === 'PUT') {
      let value;
      try {
        value = JSON.parse((await environ['wsgi.input'].read()).toString('utf8'));
      } catch {
        return json(startResponse, '400 Bad Request', { error: 'the body must be JSON' });
      }
      if (segments.length === 0) {
        document = value;
        return json(startResponse, '200 OK', document);
      }
      const parent = lookup(document, segments.slice(0, -1));
      if (!parent.found || parent.value === null || typeof parent.value !== 'object') {
        return json(startResponse, '404 Not Found', { error: 'no such parent' });
      }
      const key = segments.at(-1);
      const created = !Object.hasOwn(parent.value, key);
      parent.value[key] = value;
      return json(startResponse, created ? '201 Created' : '200 OK', value);
    }

    return json(startResponse, '405 Method Not Allowed', { error: `${method} is not supported` }, [['Allow', 'GET, HEAD, PUT']]);
  };
}
