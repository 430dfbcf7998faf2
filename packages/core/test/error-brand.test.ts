/**
 * Error checks across copies of @tiercache/core (issue 21). An app that
 * loads the ESM build and the CJS build side by side (a CJS dependency
 * requiring core, the app importing it) has two sets of error classes; the
 * `Symbol.for('tiercache.error')` brand makes `instanceof` and
 * `isTierCacheError` answer for an error of either copy exactly as they do
 * within one. Loaded for real: the built dist, ESM by import and CJS by
 * require, in this one process, plus the source as a third copy. Build
 * core first (`pnpm --filter @tiercache/core build`), as for entry-points.
 */
import { createRequire } from 'node:module'
import { describe, expect, it } from 'vitest'
import * as source from '../src/index.js'
import { type TierCacheError, isTierCacheError } from '../src/index.js'

type Copy = typeof source

const require = createRequire(import.meta.url)
/** Loaded by a computed URL so the type check does not depend on a build having run. */
const esm = (await import(new URL('../dist/index.js', import.meta.url).href)) as Copy
const cjs = require('../dist/index.cjs') as Copy
const copies: Record<string, Copy> = { 'dist ESM': esm, 'dist CJS': cjs, src: source }

/** Every error class both copies export, by name. */
const CLASS_NAMES = Object.keys(source).filter((name) => /^[A-Z]\w*Error$/.test(name))

type AnyErrorClass = new (...args: never[]) => TierCacheError

/** An instance of `copy[name]`, built with the arguments that class takes. */
function make(copy: Copy, name: string): TierCacheError {
  const context = { cache: 'c', key: 'k' }
  if (name === 'WriteFailedError') return new copy.WriteFailedError('write failed', true, context)
  if (name === 'TierCacheError') return new copy.TierCacheError('ERR_TIER', 'a tier failed', context)
  const ErrorClass = (copy as unknown as Record<string, new (message: string, context: object) => TierCacheError>)[name]!
  return new ErrorClass(`${name} happened`, context)
}

const classOf = (copy: Copy, name: string) => (copy as unknown as Record<string, AnyErrorClass>)[name]!

it("an error's name is its class's name in every copy (bundlers rename self-referencing classes: _WriteFailedError)", () => {
  for (const copy of Object.values(copies)) for (const name of CLASS_NAMES) expect(make(copy, name).name).toBe(name)
})

const pairs = Object.keys(copies).flatMap((from) =>
  Object.keys(copies)
    .filter((to) => to !== from)
    .map((to) => [from, to] as const),
)

it('the copies are distinct classes (what makes a plain instanceof fail), and every error class is checked', () => {
  expect(esm.TierCacheError).not.toBe(cjs.TierCacheError)
  expect(esm.TierCacheError).not.toBe(source.TierCacheError)
  expect(CLASS_NAMES.length).toBeGreaterThan(12)
  for (const copy of Object.values(copies)) expect(CLASS_NAMES.filter((name) => typeof classOf(copy, name) !== 'function')).toEqual([])
})

describe.each(pairs)('an error of %s, checked with %s', (from, to) => {
  const made = copies[from]!
  const checker = copies[to]!

  it.each(CLASS_NAMES)('%s: instanceof answers for every class as it does within one copy', (name) => {
    const error = make(made, name)
    expect(error).toBeInstanceOf(classOf(checker, name))
    expect(error).toBeInstanceOf(checker.TierCacheError)
    for (const other of CLASS_NAMES) {
      expect(error instanceof classOf(checker, other), `${name} instanceof ${other}`).toBe(error instanceof classOf(made, other))
    }
  })

  it.each(CLASS_NAMES)('%s: isTierCacheError, with and without its code', (name) => {
    const error = make(made, name)
    expect(checker.isTierCacheError(error)).toBe(true)
    expect(checker.isTierCacheError(error, error.code)).toBe(true)
    expect(checker.isTierCacheError(error, error.code === 'ERR_TIER' ? 'ERR_WRITE_FAILED' : 'ERR_TIER')).toBe(false)
    expect((error as unknown as Record<symbol, unknown>)[Symbol.for('tiercache.error')]).toContain('TierCacheError')
  })

  it('subclasses: a write failure is only a WriteFailedError; TierUnavailableError is a TierError, not the reverse', () => {
    const writeFailed = make(made, 'WriteFailedError')
    expect(writeFailed).toBeInstanceOf(checker.WriteFailedError)
    expect(writeFailed).not.toBeInstanceOf(checker.InvalidOptionError)
    expect(writeFailed).not.toBeInstanceOf(checker.TierError)
    expect(make(made, 'TierUnavailableError')).toBeInstanceOf(checker.TierError)
    expect(make(made, 'TierError')).not.toBeInstanceOf(checker.TierUnavailableError)
    expect(make(made, 'InvalidOptionError')).not.toBeInstanceOf(checker.WriteFailedError)
  })

  it('an error the other copy threw is caught by class and by code', () => {
    const thrown = (() => {
      try {
        made.parseDuration('30m1h', 'ttl', { cache: 'c' })
      } catch (error) {
        return error
      }
    })()
    expect(thrown).toBeInstanceOf(checker.InvalidOptionError)
    expect(thrown).not.toBeInstanceOf(checker.InvalidKeyError)
    expect(checker.isTierCacheError(thrown, 'ERR_INVALID_OPTION')).toBe(true)
    expect(() => made.assertValidKey('c', '')).toThrow(checker.InvalidKeyError)
  })

  it("a class the user derives answers instanceof the ordinary way; its instances are still the other copy's base classes", () => {
    class AppConfigError extends (made.InvalidOptionError as typeof source.InvalidOptionError) {}
    const derived = new AppConfigError('bad config', { cache: 'c' })
    expect(derived).toBeInstanceOf(AppConfigError)
    expect(derived).toBeInstanceOf(checker.InvalidOptionError)
    expect(derived).toBeInstanceOf(checker.TierCacheError)
    expect(checker.isTierCacheError(derived, 'ERR_INVALID_OPTION')).toBe(true)
    expect(make(checker, 'InvalidOptionError')).not.toBeInstanceOf(AppConfigError)
    expect(make(made, 'InvalidOptionError')).not.toBeInstanceOf(AppConfigError)
  })
})

describe.each(Object.entries(copies))('what is not a tiercache error (%s)', (_name, copy) => {
  it.each([
    ['a plain Error with a tiercache code', Object.assign(new Error('x'), { code: 'ERR_TIER' })],
    ['a TypeError', new TypeError('x')],
    ['null', null],
    ['undefined', undefined],
    ['a string', 'ERR_TIER'],
    ['a plain object', { code: 'ERR_TIER', name: 'TierError', message: 'x' }],
  ])('%s', (_what, value) => {
    expect(copy.isTierCacheError(value)).toBe(false)
    expect(copy.isTierCacheError(value, 'ERR_TIER')).toBe(false)
    for (const name of CLASS_NAMES) expect(value instanceof classOf(copy, name), name).toBe(false)
  })
})

it('isTierCacheError narrows the type, to the code when given one', () => {
  const caught: unknown = make(esm, 'WriteFailedError')
  if (!isTierCacheError(caught, 'ERR_WRITE_FAILED')) throw new Error('not recognized')
  const code: 'ERR_WRITE_FAILED' = caught.code
  expect([code, caught.cache, caught.key]).toEqual(['ERR_WRITE_FAILED', 'c', 'k'])
  if (caught instanceof source.WriteFailedError) expect(caught.queued).toBe(true)
  else throw new Error('instanceof across copies failed')
})
