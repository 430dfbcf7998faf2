import { defineConfig } from 'tsup'

/** The build every published package shares: ESM + CJS + .d.ts for Node 20, peers left external. */
export function packageBuild(entry: string[], external: string[] = []) {
  return defineConfig({
    entry,
    format: ['esm', 'cjs'],
    dts: true,
    // No source maps: the output is unminified ESM/CJS that reads like the
    // source, and maps (with the src they point at) were over half of what a
    // user downloaded (core: 893 kB of maps + 359 kB of src in a 1.8 MB package).
    sourcemap: false,
    clean: true,
    // One copy of each module across entries, in CJS too: an error class thrown
    // through one entry must be `instanceof` the class exported by another.
    splitting: true,
    target: 'node20',
    external: ['vitest', ...external],
  })
}
