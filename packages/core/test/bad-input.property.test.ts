/**
 * Bad input at the SDK's boundaries, property-based: every key and every
 * option either is accepted or fails with a typed error (stable `code`,
 * naming the cache and the key) before any tier is touched.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import {
  createCache,
  InvalidKeyError,
  InvalidOptionError,
  MAX_KEY_LENGTH,
  TierCacheError,
} from '../src/index.js'
import { controlledSharedTier, fakeLocalTier } from './fakes.js'

const RUNS = 100_000

/** Keys as a caller might pass them: any string (unicode, control characters, the reserved U+001E, very long), or not a string at all. */
const anyKey = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.constantFrom('a', ':', '\u001e', '\u0000', '{', '}'), maxLength: 12 }),
  fc.integer({ min: MAX_KEY_LENGTH - 2, max: MAX_KEY_LENGTH + 2 }).map((n) => 'k'.repeat(n)),
  fc.anything(),
)

describe('keys', () => {
  it(`any key: accepted, or InvalidKeyError naming the cache (and the key, truncated) before any tier is called (${RUNS} cases)`, async () => {
    const l1 = fakeLocalTier()
    const l2 = controlledSharedTier()
    const cache = createCache<number>({ name: 'keys', tiers: [l1, l2], ttl: '1m', invalidation: { ttlOnly: true } })
    await fc.assert(
      fc.asyncProperty(anyKey, async (key) => {
        l2.bound.calls = []
        let error: unknown
        try {
          await cache.set(key as string, 1)
        } catch (caught) {
          error = caught
        }
        const valid = typeof key === 'string' && key.length > 0 && key.length <= MAX_KEY_LENGTH && !key.includes('\u001e')
        if (valid) {
          expect(error).toBeUndefined()
          return
        }
        if (typeof key === 'string' && key.includes('\u001e') && key.length <= MAX_KEY_LENGTH && error === undefined) return // a well-formed `<namespace>U+001E<key>`
        expect(error).toBeInstanceOf(InvalidKeyError)
        const typed = error as InvalidKeyError
        expect(typed.code).toBe('ERR_INVALID_KEY')
        expect(typed.cache).toBe('keys')
        expect(typed.message).toContain('keys')
        // The message names the key, truncated (the full key stays on `error.key`).
        expect(typed.message.length).toBeLessThan(400)
        if (typeof key === 'string' && key.length > 0) expect(typed.key).toBe(key)
        expect(l2.bound.calls).toEqual([]) // nothing reached L2
        expect(typeof key === 'string' ? l1.bound.map.has(key) : false).toBe(false)
      }),
      { numRuns: RUNS },
    )
    await cache.close()
  }, 120_000)
})

describe('options', () => {
  /** Durations a caller might get wrong: '5 minutes', -1, NaN, Infinity, 0, objects, huge numbers. */
  const anyDuration = fc.oneof(
    fc.string({ maxLength: 12 }),
    fc.constantFrom('5 minutes', '1 h', '-1s', '1.5.2m', '', ' ', 'ms', '10x', '1e3ms'),
    fc.double(),
    fc.integer(),
    fc.constantFrom(Number.NaN, Number.POSITIVE_INFINITY, -1, 0, 2 ** 53),
    fc.anything(),
  )

  it(`any ttl: accepted as a positive duration, or InvalidOptionError at createCache (${RUNS} cases)`, { timeout: 60_000 }, () => {
    fc.assert(
      fc.property(anyDuration, (ttl) => {
        let error: unknown
        try {
          createCache({ name: 'durations', tiers: [fakeLocalTier()], ttl: ttl as number, invalidation: { ttlOnly: true } }).close()
        } catch (caught) {
          error = caught
        }
        const positiveNumber = typeof ttl === 'number' && Number.isFinite(ttl) && ttl > 0 && ttl <= 2 ** 31
        if (positiveNumber) expect(error).toBeUndefined()
        if (error !== undefined) {
          expect(error).toBeInstanceOf(InvalidOptionError)
          expect((error as TierCacheError).code).toBe('ERR_INVALID_OPTION')
        }
      }),
      { numRuns: RUNS },
    )
  })

  it('unknown option names and maxEntries: 0 are refused at construction, naming the option', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1, maxLength: 16 }).filter((name) => /^[a-z]/i.test(name)), (name) => {
        let error: unknown
        try {
          createCache({ name: 'opts', tiers: [fakeLocalTier()], ttl: '1m', invalidation: { ttlOnly: true }, [name]: 1 } as never).close()
        } catch (caught) {
          error = caught
        }
        // Known options exist; anything else is refused with its name in the message.
        if (error !== undefined) {
          expect(error).toBeInstanceOf(TierCacheError)
          if ((error as TierCacheError).code === 'ERR_INVALID_OPTION' && (error as Error).message.includes('unknown')) expect((error as Error).message).toContain(name)
        }
      }),
      { numRuns: 2_000 },
    )
    expect(() => createCache({ name: 'opts', tiers: [fakeLocalTier()], ttl: '1m', tlt: '1m' } as never)).toThrow(/tlt/)
  })
})
