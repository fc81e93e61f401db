/**
 * The request side shared by wsgi, jsgi and cgi: where the mount point ends
 * (SCRIPT_NAME / PATH_INFO / QUERY_STRING) and how headers become HTTP_*
 * variables, checked over real HTTP in Express 5 and Express 4.
 */
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import type { AddressInfo } from 'node:net';
import connect from 'connect';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cgi, jsgi, wsgi, type GatewayMiddleware } from '../../src/gateway/index.js';
import { captureLogger, expressVersions, fixture, listen, rawRequest, type Listening } from './helpers.js';

type Variables = Record<string, string>;

function stringEntries(object: object): Variables {
  return Object.fromEntries(Object.entries(object).filter((entry): entry is [string, string] => typeof entry[1] === 'string'));
}

/** One probe per bridge: an app that answers with its request variables, and how to read them back. */
interface Bridge {
  name: string;
  make(): GatewayMiddleware;
  parse(body: string): Variables;
}

const { logger } = captureLogger();

const bridges: Bridge[] = [
  {
    name: 'wsgi',
    make: () =>
      wsgi(
        (environ, startResponse) => {
          startResponse('200 OK', [['Content-Type', 'application/json']]);
          return [JSON.stringify(stringEntries(environ))];
        },
        { logger },
      ),
    parse: (body) => JSON.parse(body) as Variables,
  },
  {
    name: 'jsgi',
    make: () =>
      jsgi(
        (req) => ({
          status: 200,
          headers: { 'content-type': 'application/json' },
          body: [JSON.stringify({ env: stringEntries(req.env), scriptName: req.scriptName, pathInfo: req.pathInfo, queryString: req.queryString })],
        }),
        { logger },
      ),
    parse: (body) => {
      const parsed = JSON.parse(body) as { env: Variables; scriptName: string; pathInfo: string; queryString: string };
      // The JSGI request fields must agree with the CGI variables in env.
      expect(parsed.scriptName).toBe(parsed.env.SCRIPT_NAME);
      expect(parsed.pathInfo).toBe(parsed.env.PATH_INFO);
      expect(parsed.queryString).toBe(parsed.env.QUERY_STRING);
      return parsed.env;
    },
  },
  {
    name: 'cgi',
    make: () => cgi(fixture('env.sh'), { logger }),
    parse: (body) => {
      const variables: Variables = {};
      for (const line of body.split('\n')) {
        const equals = line.indexOf('=');
        if (equals > 0) variables[line.slice(0, equals)] = line.slice(equals + 1);
      }
      return variables;
    },
  },
];

it('runs each rule against two different Express majors', () => {
  const require = createRequire(import.meta.url);
  expect((require('express/package.json') as { version: string }).version).toMatch(/^5\./);
  expect((require('express4/package.json') as { version: string }).version).toMatch(/^4\./);
  expect(expressVersions.map(([name]) => name)).toEqual(['Express 5', 'Express 4']);
  expect(expressVersions[0]?.[1]).not.toBe(expressVersions[1]?.[1]);
});

describe.each(expressVersions)('%s', (_version, express) => {
  describe.each(bridges)('$name mounting', (bridge) => {
    const app = express();
    app.use('/app', bridge.make());
    const root = express();
    root.use(bridge.make());

    async function variables(target: string, server = app): Promise<Variables> {
      const response = await request(server).get(target).expect(200);
      return bridge.parse(response.text);
    }

    it("maps /app to SCRIPT_NAME '/app' and PATH_INFO ''", async () => {
      const vars = await variables('/app');
      expect(vars.SCRIPT_NAME).toBe('/app');
      expect(vars.PATH_INFO).toBe('');
      expect(vars.QUERY_STRING).toBe('');
    });

    it("maps /app/ to SCRIPT_NAME '/app' and PATH_INFO '/'", async () => {
      const vars = await variables('/app/');
      expect(vars.SCRIPT_NAME).toBe('/app');
      expect(vars.PATH_INFO).toBe('/');
    });

    it("maps /app/x?y=1 to '/app', '/x' and QUERY_STRING 'y=1'", async () => {
      const vars = await variables('/app/x?y=1');
      expect(vars.SCRIPT_NAME).toBe('/app');
      expect(vars.PATH_INFO).toBe('/x');
      expect(vars.QUERY_STRING).toBe('y=1');
    });

    it("gives SCRIPT_NAME '' at the root", async () => {
      const vars = await variables('/x/y?z', root);
      expect(vars.SCRIPT_NAME).toBe('');
      expect(vars.PATH_INFO).toBe('/x/y');
      expect(vars.QUERY_STRING).toBe('z');
    });

    it('percent-decodes PATH_INFO and leaves QUERY_STRING raw', async () => {
      const vars = await variables('/app/a%20b/caf%C3%A9/%2F?q=a%20b&r=%C3%A9');
      expect(vars.PATH_INFO).toBe('/a b/café//');
      expect(vars.QUERY_STRING).toBe('q=a%20b&r=%C3%A9');
    });

    it('keeps the mount path as the client spelled it (Express matches it case-insensitively)', async () => {
      const vars = await variables('/APP/x');
      expect(vars.SCRIPT_NAME).toBe('/APP');
      expect(vars.PATH_INFO).toBe('/x');
    });

    it('sets the server variables', async () => {
      const vars = await variables('/app/x');
      expect(vars.REQUEST_METHOD).toBe('GET');
      expect(vars.SERVER_PROTOCOL).toBe('HTTP/1.1');
      expect(vars.SERVER_NAME).toBe('127.0.0.1');
      expect(vars.SERVER_PORT).toMatch(/^\d+$/);
      expect(vars.REMOTE_ADDR).toMatch(/127\.0\.0\.1$/);
    });
  });

  describe.each(bridges)('$name headers in', (bridge) => {
    let server: Listening;
    beforeAll(async () => {
      const app = express();
      app.use('/app', bridge.make());
      server = await listen(app);
    });
    afterAll(() => server.close());

    async function variables(headerLines: string[], method = 'GET', body = ''): Promise<Variables> {
      const response = await rawRequest(server.port, [`${method} /app/probe HTTP/1.1`, 'Host: example.test:8080', ...headerLines].join('\n'), body);
      expect(response.status).toBe(200);
      return bridge.parse(response.body.toString('utf8'));
    }

    it('joins repeated headers with ", " and cookies with "; "', async () => {
      const vars = await variables(['X-Multi: a', 'X-Multi: b', 'Accept: text/plain', 'Accept: application/json', 'Cookie: a=1', 'Cookie: b=2']);
      expect(vars.HTTP_X_MULTI).toBe('a, b');
      expect(vars.HTTP_ACCEPT).toBe('text/plain, application/json');
      expect(vars.HTTP_COOKIE).toBe('a=1; b=2');
    });

    it('gives Content-Type and Content-Length only as CONTENT_TYPE and CONTENT_LENGTH', async () => {
      const vars = await variables(['Content-Type: text/plain', 'Content-Length: 5'], 'POST', 'hello');
      expect(vars.CONTENT_TYPE).toBe('text/plain');
      expect(vars.CONTENT_LENGTH).toBe('5');
      expect(vars).not.toHaveProperty('HTTP_CONTENT_TYPE');
      expect(vars).not.toHaveProperty('HTTP_CONTENT_LENGTH');
    });

    it('drops header names containing "_", so they cannot pose as their "-" twin', async () => {
      const vars = await variables(['X-Forwarded-For: 10.0.0.1', 'X_Forwarded_For: 6.6.6.6', 'X_Only: spoof']);
      expect(vars.HTTP_X_FORWARDED_FOR).toBe('10.0.0.1');
      expect(vars).not.toHaveProperty('HTTP_X_ONLY');
    });

    it('never turns a Proxy header into HTTP_PROXY (httpoxy)', async () => {
      const vars = await variables(['Proxy: http://attacker.test:3128']);
      expect(vars).not.toHaveProperty('HTTP_PROXY');
      expect(Object.values(vars)).not.toContain('http://attacker.test:3128');
    });

    it('takes SERVER_NAME and SERVER_PORT from the Host header', async () => {
      const vars = await variables([]);
      expect(vars.HTTP_HOST).toBe('example.test:8080');
      expect(vars.SERVER_NAME).toBe('example.test');
      expect(vars.SERVER_PORT).toBe('8080');
    });
  });
});

describe.each(bridges)('$name outside Express', (bridge) => {
  it("gives SCRIPT_NAME '' and the whole path on a bare node:http server", async () => {
    const middleware = bridge.make();
    const server = await listen((req, res) => middleware(req, res));
    try {
      const response = await request(server.url).get('/a/b%20c?d=1').expect(200);
      const vars = bridge.parse(response.text);
      expect(vars.SCRIPT_NAME).toBe('');
      expect(vars.PATH_INFO).toBe('/a/b c');
      expect(vars.QUERY_STRING).toBe('d=1');
    } finally {
      await server.close();
    }
  });

  it('finds the mount point under connect, which keeps only originalUrl', async () => {
    const app = connect();
    app.use('/app', bridge.make());
    const server = createServer(app);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      for (const [target, scriptName, pathInfo] of [
        ['/app', '/app', ''],
        ['/app/', '/app', '/'],
        ['/app/x?y=1', '/app', '/x'],
      ] as const) {
        const vars = bridge.parse((await request(`http://127.0.0.1:${port}`).get(target).expect(200)).text);
        expect([vars.SCRIPT_NAME, vars.PATH_INFO]).toEqual([scriptName, pathInfo]);
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
