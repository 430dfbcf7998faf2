import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const run = promisify(execFile)
const here = fileURLToPath(new URL('.', import.meta.url))
const require = createRequire(import.meta.url)

describe('published packages', () => {
  it('load from CommonJS and work there', async () => {
    const script = `
      const { createCache, TierCacheError } = require('@tiercache/core')
      const { memoryTier, memoryStore, memoryBus } = require('@tiercache/memory-adapter')
      const { redisTier, redisBus } = require('@tiercache/redis-adapter')
      const cache = createCache({ name: 'cjs', tiers: [memoryTier(), memoryStore()], bus: memoryBus() })
      cache.getOrSet('k', () => 41 + 1).then((v) => {
        if (v !== 42 || typeof redisTier !== 'function' || typeof redisBus !== 'function') process.exit(2)
        cache.set('', 1).catch((e) => { console.log(e instanceof TierCacheError ? e.code : 'wrong error') })
      })`
    const { stdout } = await run(process.execPath, ['-e', script], { cwd: here })
    expect(stdout.trim()).toBe('ERR_INVALID_KEY')
  })

  it.each(['@tiercache/core', '@tiercache/memory-adapter', '@tiercache/redis-adapter'])(
    '%s ships ESM, CJS and type declarations through its exports map',
    (name) => {
      const manifestPath = require.resolve(`${name}/package.json`)
      const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as {
        exports: Record<string, { import: { types: string; default: string }; require: { types: string; default: string } }>
      }
      const root = manifest.exports['.']!
      for (const file of [root.import.types, root.import.default, root.require.types, root.require.default]) {
        expect(() => readFileSync(new URL(file, `file://${manifestPath}`))).not.toThrow()
      }
    },
  )

  it('@tiercache/core has no runtime dependencies', () => {
    const manifest = JSON.parse(readFileSync(require.resolve('@tiercache/core/package.json'), 'utf8')) as {
      dependencies?: Record<string, string>
    }
    expect(manifest.dependencies ?? {}).toEqual({})
  })
})
