import { defineConfig } from 'tsup';

export default defineConfig({
  entry: {
    index: 'src/index.ts',
    testing: 'src/testing/index.ts',
    gateway: 'src/gateway/index.ts',
    cli: 'src/cli.ts',
  },
  format: ['esm', 'cjs'],
  dts: { entry: { index: 'src/index.ts', testing: 'src/testing/index.ts', gateway: 'src/gateway/index.ts' } },
  target: 'node20',
  platform: 'node',
  clean: true,
  sourcemap: false,
  splitting: true,
  shims: false,
});
