/**
 * The test framework the conformance suites register their cases with.
 *
 * `@tiercache/core/testing` is a user-facing entry: importing it must work
 * where vitest is not installed (a jest project, a type-only import, a tool
 * listing exports). So nothing here loads a framework at import time; a
 * suite finds one when it is called, in this order:
 *   1. the harness passed to it (`{ describe, it, expect }` from any
 *      framework with vitest/jest-style functions);
 *   2. vitest/jest-style globals (`describe`, `it`, `expect` on globalThis);
 *   3. vitest, loaded synchronously then (a suite registers its cases while
 *      the test file is being collected, so it cannot wait for `import()`).
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { errorMessageOf, InvalidArgumentError } from './errors.js'

/** The matchers the suites use: a subset that vitest's and jest's `expect` both provide. */
export interface ConformanceAssertion {
  readonly not: ConformanceAssertion
  toBe(expected: unknown): void
  toEqual(expected: unknown): void
  toBeUndefined(): void
  toBeDefined(): void
  toBeNull(): void
  toBeGreaterThan(expected: number): void
  toBeGreaterThanOrEqual(expected: number): void
  toBeLessThanOrEqual(expected: number): void
  toBeInstanceOf(expected: unknown): void
}

/**
 * What a suite needs from a test framework. Pass vitest's or jest's own
 * functions: `runTierConformance(options, { describe, it, expect })`.
 * The hooks are optional: when `afterEach` is given the suites clean up in
 * it (it still runs after a test that timed out); otherwise each test
 * cleans up after itself. The other hooks are accepted for symmetry and
 * not needed.
 */
export interface ConformanceHarness {
  describe(name: string, body: () => void): unknown
  it(name: string, body: () => Promise<void>): unknown
  expect(actual: unknown): ConformanceAssertion
  beforeAll?(hook: () => unknown): unknown
  afterAll?(hook: () => unknown): unknown
  beforeEach?(hook: () => unknown): unknown
  afterEach?(hook: () => unknown): unknown
}

/**
 * A suite was called with no test framework to register with: none passed,
 * no globals, vitest not installed. Code `ERR_INVALID_ARGUMENT`: the fix is
 * an argument (the harness) or a dev dependency (vitest).
 */
export class ConformanceHarnessError extends InvalidArgumentError {}

const HOOKS = ['beforeAll', 'afterAll', 'beforeEach', 'afterEach'] as const

function isFunction(value: unknown): value is (...args: never[]) => unknown {
  return typeof value === 'function'
}

/** The framework's functions, detached from the object they came on (they are called as plain functions, as after `import { it }`). */
function harnessFrom(source: object): ConformanceHarness | undefined {
  const record = source as Record<string, unknown>
  if (!isFunction(record.describe) || !isFunction(record.it) || !isFunction(record.expect)) return undefined
  const harness: Record<string, unknown> = { describe: record.describe, it: record.it, expect: record.expect }
  for (const hook of HOOKS) if (isFunction(record[hook])) harness[hook] = record[hook]
  return harness as unknown as ConformanceHarness
}

/** Where this module is: `import.meta.url` in the ESM build; tsup's shim (from `__filename`) in the CJS build. */
function moduleLocation(): string | undefined {
  return import.meta.url || undefined
}

/**
 * The file of vitest's ESM entry, as `import 'vitest'` resolves it. vitest
 * answers `require('vitest')` with a stub that throws, so its package
 * manifest is read for the `import` target, which Node (20.19+) can
 * `require` (require(esm)): the same file, hence the same module instance,
 * as the test file's own `import { describe } from 'vitest'`.
 */
function vitestEntry(require: NodeJS.Require): string {
  const manifestPath = require.resolve('vitest/package.json')
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as { exports?: unknown; module?: unknown; main?: unknown }
  const exported = typeof manifest.exports === 'object' && manifest.exports !== null && '.' in manifest.exports ? manifest.exports['.'] : manifest.exports
  const target = importTarget(exported) ?? (typeof manifest.module === 'string' ? manifest.module : undefined)
  if (target === undefined) return require.resolve('vitest')
  return join(dirname(manifestPath), target)
}

/** Node's conditional-exports walk for an `import` from Node: the first matching condition, in the map's order. */
function importTarget(exported: unknown): string | undefined {
  if (typeof exported === 'string') return exported
  if (Array.isArray(exported)) {
    for (const candidate of exported) {
      const target = importTarget(candidate)
      if (target !== undefined) return target
    }
    return undefined
  }
  if (typeof exported !== 'object' || exported === null) return undefined
  for (const [condition, value] of Object.entries(exported)) {
    if (condition !== 'node' && condition !== 'import' && condition !== 'module-sync' && condition !== 'default') continue
    const target = importTarget(value)
    if (target !== undefined) return target
  }
  return undefined
}

let vitest: { harness: ConformanceHarness } | { failure: unknown } | undefined

/**
 * vitest as the calling test file sees it: resolved from this package first
 * (an optional peer dependency resolves there), then from the working
 * directory. Loaded once per process.
 */
function loadVitest(): { harness: ConformanceHarness } | { failure: unknown } {
  if (vitest !== undefined) return vitest
  const failures: string[] = []
  const bases = [moduleLocation(), join(process.cwd(), 'package.json')]
  for (const base of bases) {
    if (base === undefined) continue
    try {
      const require = createRequire(base)
      const loaded = harnessFrom(require(vitestEntry(require)) as object)
      if (loaded !== undefined) return (vitest = { harness: loaded })
      failures.push(`from ${base}: the module has no describe/it/expect`)
    } catch (error) {
      failures.push(`from ${base}: ${errorMessageOf(error).split('\n')[0]}`) // the first line: not Node's require stack
    }
  }
  return (vitest = { failure: failures.join('; ') })
}

/**
 * The harness a suite registers with, resolved when the suite is called
 * (see the top of this file for the order). Throws `ConformanceHarnessError`
 * when there is none.
 */
export function resolveHarness(suite: string, given: ConformanceHarness | undefined): ConformanceHarness {
  if (given !== undefined) {
    const harness = typeof given === 'object' && given !== null ? harnessFrom(given) : undefined
    if (harness === undefined) {
      throw new ConformanceHarnessError(`${suite}: the harness must have describe, it and expect functions (e.g. { describe, it, expect } from vitest or jest)`)
    }
    return harness
  }
  const globals = harnessFrom(globalThis)
  if (globals !== undefined) return globals
  const loaded = loadVitest()
  if ('harness' in loaded) return loaded.harness
  throw new ConformanceHarnessError(
    `${suite}: no test framework to register with. Pass one as the harness, e.g. ${suite}(options, { describe, it, expect }) ` +
      `with your framework's functions, or install vitest (an optional peer dependency of @tiercache/core). vitest could not be loaded: ${String(loaded.failure)}`,
  )
}
