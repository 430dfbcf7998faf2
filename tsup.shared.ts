import { defineConfig } from 'tsup'

/** The build every published package shares: ESM + CJS + .d.ts for Node 20, peers left external. */
export function packageBuild(entry: string[], external: string[] = []) {
  return defineConfig({
    entry,
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: true,
    target: 'node20',
    external: ['vitest', ...external],
  })
}
