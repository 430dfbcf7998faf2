import { defineConfig } from 'tsup'

/** The build every published package shares: ESM + CJS + .d.ts for Node 20, peers left external. */
export function packageBuild(entry: string[], external: string[] = []) {
  return defineConfig({
    entry,
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    // One copy of each module across entries, in CJS too: an error class thrown
    // through one entry must be `instanceof` the class exported by another.
    splitting: true,
    target: 'node20',
    external: ['vitest', ...external],
  })
}
