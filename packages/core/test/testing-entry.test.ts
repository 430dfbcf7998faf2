/**
 * `@tiercache/core/testing` is a user-facing entry, and vitest only an
 * optional peer dependency: the built module must import (ESM) and require
 * (CJS) where vitest cannot be resolved, and a suite called there must
 * either use the harness it is given or say, with a typed error, what to do.
 *
 * Proven on a copy of the built dist in a temporary directory with no
 * node_modules above it, in child `node` processes (this process has vitest
 * loaded, so it cannot show its absence). `pnpm build` before this test, as
 * for the rest of the suite.
 */
import { execFile } from 'node:child_process'
import { cpSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const run = promisify(execFile)
const dist = fileURLToPath(new URL('../dist/', import.meta.url))

/**
 * The probe each child runs: whether vitest resolves there, the entry's
 * exports, what calling each suite without a harness throws, and how many
 * cases each registers with a harness passed explicitly and with globals.
 * `load` is the module system's own way to load the entry.
 */
const PROBE = `
const calls = () => {
  const registered = { describe: 0, it: 0 }
  const harness = {
    describe: (name, body) => { registered.describe++; body() },
    it: () => { registered.it++ },
    expect: () => { throw new Error('no test runs in this probe') },
  }
  return { registered, harness }
}
const tierOptions = { name: 'probe', kind: 'shared', createTier: () => ({ kind: 'shared', name: 'probe', bind() {} }) }
const busOptions = { name: 'probe', open: async () => ({ buses: [], close: async () => {} }) }
function probe(testing, core, vitestResolvable) {
  const result = { vitestResolvable, exports: Object.keys(testing).sort(), errors: {}, explicit: {}, option: {}, globals: {} }
  for (const [name, options] of [['runTierConformance', tierOptions], ['runBusConformance', busOptions]]) {
    try {
      testing[name](options)
      result.errors[name] = 'no error'
    } catch (error) {
      result.errors[name] = {
        name: error.name,
        code: error.code,
        harnessError: error instanceof testing.ConformanceHarnessError,
        tierCacheError: error instanceof core.TierCacheError,
        message: error.message,
      }
    }
    const explicit = calls()
    testing[name](options, explicit.harness)
    result.explicit[name] = explicit.registered
    const option = calls()
    testing[name]({ ...options, harness: option.harness })
    result.option[name] = option.registered
    const globals = calls()
    Object.assign(globalThis, globals.harness)
    try {
      testing[name](options)
    } finally {
      for (const key of Object.keys(globals.harness)) delete globalThis[key]
    }
    result.globals[name] = globals.registered
  }
  return result
}
`

const ESM_PROBE = `${PROBE}
import { createRequire } from 'node:module'
let vitestResolvable = true
try { createRequire(import.meta.url).resolve('vitest') } catch { vitestResolvable = false }
const testing = await import('./dist/testing.js')
const core = await import('./dist/index.js')
console.log(JSON.stringify(probe(testing, core, vitestResolvable)))
`

const CJS_PROBE = `${PROBE}
let vitestResolvable = true
try { require.resolve('vitest') } catch { vitestResolvable = false }
const testing = require('./dist/testing.cjs')
const core = require('./dist/index.cjs')
console.log(JSON.stringify(probe(testing, core, vitestResolvable)))
`

interface ProbeResult {
  vitestResolvable: boolean
  exports: string[]
  errors: Record<string, { name: string; code: string; harnessError: boolean; tierCacheError: boolean; message: string } | string>
  explicit: Record<string, { describe: number; it: number }>
  option: Record<string, { describe: number; it: number }>
  globals: Record<string, { describe: number; it: number }>
}

describe('@tiercache/core/testing without vitest', () => {
  let directory: string

  beforeAll(() => {
    if (!existsSync(join(dist, 'testing.js')) || !existsSync(join(dist, 'testing.cjs'))) {
      throw new Error(`no built dist at ${dist}: run \`pnpm build\` first`)
    }
    directory = mkdtempSync(join(tmpdir(), 'tiercache-testing-entry-'))
    cpSync(dist, join(directory, 'dist'), { recursive: true })
    // A package of its own, with no dependencies and no node_modules: nothing can resolve vitest from here.
    writeFileSync(join(directory, 'package.json'), JSON.stringify({ name: 'testing-entry-probe', private: true, type: 'module' }))
    writeFileSync(join(directory, 'probe.mjs'), ESM_PROBE)
    writeFileSync(join(directory, 'probe.cjs'), CJS_PROBE)
  })

  afterAll(() => {
    if (directory !== undefined) rmSync(directory, { recursive: true, force: true })
  })

  /** Runs a probe in a child node whose environment cannot point it at this repository's modules. */
  async function probe(file: string): Promise<ProbeResult> {
    const env = { ...process.env }
    delete env.NODE_PATH
    delete env.NODE_OPTIONS
    const { stdout } = await run(process.execPath, [file], { cwd: directory, env })
    return JSON.parse(stdout) as ProbeResult
  }

  it.each([
    ['imports as ESM (dist/testing.js)', 'probe.mjs'],
    ['requires as CJS (dist/testing.cjs)', 'probe.cjs'],
  ])('%s; a suite registers with the harness it is given, or throws a typed error naming the fix', async (_, file) => {
    const result = await probe(file)
    expect(result.vitestResolvable).toBe(false)
    expect(result.exports).toEqual(expect.arrayContaining(['ConformanceHarnessError', 'runBusConformance', 'runTierConformance']))
    for (const name of ['runTierConformance', 'runBusConformance']) {
      expect(result.errors[name]).toMatchObject({ name: 'ConformanceHarnessError', code: 'ERR_INVALID_ARGUMENT', harnessError: true, tierCacheError: true })
      const { message } = result.errors[name] as { message: string }
      expect(message).toContain(name)
      expect(message).toContain('{ describe, it, expect }')
      expect(message).toContain('install vitest')
      // The same cases whichever way the harness is found.
      for (const registered of [result.explicit[name], result.option[name], result.globals[name]]) {
        expect(registered!.describe).toBeGreaterThan(0)
        expect(registered!.it).toBeGreaterThan(5)
        expect(registered).toEqual(result.explicit[name])
      }
    }
  })
})
