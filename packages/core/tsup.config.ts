import type { Options } from 'tsup'
import { packageBuild } from '../../tsup.shared.js'

export default {
  ...(packageBuild(['src/index.ts', 'src/adapter.ts', 'src/testing.ts']) as Options),
  // The testing entry resolves vitest from its own location (import.meta.url):
  // the shim gives the CJS build that URL from __filename.
  shims: true,
} satisfies Options
