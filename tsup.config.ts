import { defineConfig } from 'tsup';

export default defineConfig({
  // Each subpath is its own entry; subpaths use the core through types only, so no class is
  // bundled twice and the core never imports a subpath.
  entry: {
    index: 'src/index.ts',
    health: 'src/health/index.ts',
    prometheus: 'src/prometheus/index.ts',
    otel: 'src/otel/index.ts',
    chaos: 'src/chaos/index.ts',
    fetch: 'src/fetch/index.ts',
    redis: 'src/redis/index.ts',
  },
  // bulwark/chaos extends LayerPolicy, a class of the core (bulwark/fetch too, and composes the
  // core's policies): it imports it by the package's own
  // name, left as is, so dist/chaos.js imports 'bulwark' and dist/chaos.cjs requires it (a
  // package may name itself), and a process holds one engine whichever entry loaded first.
  // A copy would be another PolicyBase, which compose() would take for a foreign policy.
  external: ['bulwark'],
  format: ['esm', 'cjs'],
  // Internals are kept out of the types by construction (private fields, module-level
  // accessors), not stripped by comment: a stripped member's type left dangling once broke every
  // consumer compiling with skipLibCheck: false.
  dts: true,
  clean: true,
  // No source maps: dist is readable ES2022 with its names, and maps carrying the sources more
  // than doubled the tarball for every user.
  sourcemap: false,
  target: 'es2022',
  platform: 'neutral',
  treeshake: true,
});
