import { cp } from 'node:fs/promises';
import { defineConfig } from 'tsup';

// Source maps (with the sources inside) so stack traces point at src/ lines; src/ itself is not shipped.
const shared = { target: 'node20', platform: 'node', sourcemap: true, shims: false } as const;

export default defineConfig([
  {
    ...shared,
    // The library: ESM and CommonJS, with declarations for both.
    entry: {
      index: 'src/index.ts',
      testing: 'src/testing/index.ts',
      gateway: 'src/gateway/index.ts',
    },
    format: ['esm', 'cjs'],
    dts: true,
    clean: true,
    splitting: true,
    // import.meta.url in the CommonJS build (pythonWsgi() finds its runner with it).
    shims: true,
    // pythonWsgi()'s worker runner ships next to the bundles, where
    // src/gateway/python-pool.ts looks for it (dist/python/).
    onSuccess: async () => {
      await cp('src/gateway/python', 'dist/python', { recursive: true, filter: (path) => !path.includes('__pycache__') });
    },
  },
  {
    ...shared,
    // The command line tool: ESM only, run by node.
    entry: { cli: 'src/cli.ts' },
    format: ['esm'],
    clean: false,
  },
]);
