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
  },
  {
    ...shared,
    // The command line tool: ESM only, run by node.
    entry: { cli: 'src/cli.ts' },
    format: ['esm'],
    clean: false,
  },
]);
