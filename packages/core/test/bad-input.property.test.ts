/**
 * Bad input at the SDK's boundaries, property-based: every key and every
 * option either is accepted or fails with a typed error (stable `code`,
 * naming the cache and the key) before any tier is touched.
 */
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { createCache, InvalidKeyError, InvalidOptionError, MAX_DURATION_MS, MAX_KEY_LENGTH, MAX_TTL_MS } from '../src/index.js'
import { controlledSharedTier, fakeLocalTier } from './fakes.js'

const RUNS = 100_000

/**
 * Which keys the cache accepts, written out on its own (not by calling the
 * cache's check): a non-empty string of at most MAX_KEY_LENGTH UTF-16 units
 * that holds no U+001E, or exactly one U+001E between a namespace and a
 * non-empty key, as cache.namespace() builds it. The namespace is 1 to 16
 * levels joined by ':', each level non-empty and free of control characters
 * (U+0000 to U+001F).
 */
function keyIsValid(key: unknown): boolean {
  if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH) return false
  const parts = key.split('\u001e')
  if (parts.length === 1) return true
  if (parts.length > 2 || parts[1] === '') return false
  const levels = parts[0]!.split(':')
  return levels.length <= 16 && levels.every((level) => level.length > 0 && ![...level].some((char) => char.charCodeAt(0) < 0x20))
}

/** Namespaced keys, well-formed or nearly so: levels from a small alphabet with ':' and control characters, so both sides of each rule come up. */
const namespacedKey = fc
  .tuple(
    fc.array(fc.string({ unit: fc.constantFrom('n', 's', ':', '\u0000', '\u001f', '\u0020', 'é'), maxLength: 4 }), { minLength: 1, maxLength: 18 }),
    fc.string({ unit: fc.constantFrom('k', ':', '\u001e', '\u0000'), maxLength: 4 }),
  )
  .map(([levels, key]) => `${levels.join(':')}\u001e${key}`)

/** Keys as a caller might pass them: any string (unicode, control characters, the reserved U+001E, very long), or not a string at all. */
const anyKey = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.string({ unit: fc.constantFrom('a', ':', '\u001e', '\u0000', '{', '}'), maxLength: 12 }),
  namespacedKey,
  fc.integer({ min: MAX_KEY_LENGTH - 2, max: MAX_KEY_LENGTH + 2 }).map((n) => 'k'.repeat(n)),
  fc.integer({ min: MAX_KEY_LENGTH - 4, max: MAX_KEY_LENGTH + 2 }).map((n) => `ns\u001e${'k'.repeat(n - 3)}`),
  fc.anything(),
)

describe('keys', () => {
  it('the key rule, by example (both sides of each clause)', () => {
    const accepted = ['k', 'a:b', 'ns\u001ek', 'a:b:c\u001ek', 'ns\u001e:', `${Array(16).fill('l').join(':')}\u001ek`, 'k'.repeat(MAX_KEY_LENGTH)]
    const refused = [
      '',
      '\u001ek',
      'ns\u001e',
      'a\u001eb\u001ec',
      ':ns\u001ek',
      'a::b\u001ek',
      'n\u0000s\u001ek',
      `${Array(17).fill('l').join(':')}\u001ek`,
      'k'.repeat(MAX_KEY_LENGTH + 1),
      1,
      null,
      undefined,
      {},
    ]
    for (const key of accepted) expect([key, keyIsValid(key)]).toEqual([key, true])
    for (const key of refused) expect([key, keyIsValid(key)]).toEqual([key, false])
  })

  it(`any key: accepted exactly when the key rule says so, else InvalidKeyError naming the cache and the key, before any tier is called (${RUNS} cases)`, async () => {
    const l1 = fakeLocalTier()
    const l2 = controlledSharedTier()
    const cache = createCache<number>({ name: 'keys', tiers: [l1, l2], ttl: '1m', invalidation: { ttlOnly: true } })
    await fc.assert(
      fc.asyncProperty(anyKey, async (key) => {
        l2.bound.calls = []
        l1.bound.map.clear()
        let error: unknown
        try {
          await cache.set(key as string, 1)
        } catch (caught) {
          error = caught
        }
        if (keyIsValid(key)) {
          expect(error).toBeUndefined()
          // Accepted means written: to L2, then L1.
          expect(l2.bound.calls).toEqual([`set ${key as string}`])
          expect(l1.bound.map.get(key as string)?.value).toBe(1)
          return
        }
        expect(error).toBeInstanceOf(InvalidKeyError)
        const typed = error as InvalidKeyError
        expect(typed.code).toBe('ERR_INVALID_KEY')
        expect(typed.cache).toBe('keys')
        expect(typed.message).toContain('[cache "keys"')
        // The message names the key, truncated (the full key stays on `error.key`).
        expect(typed.message.length).toBeLessThan(400)
        if (typeof key === 'string') {
          expect(typed.key).toBe(key)
          expect(typed.message).toContain(`key "${key.slice(0, 120)}`)
        } else {
          expect(typed.key).toBeUndefined()
        }
        expect(l2.bound.calls).toEqual([]) // nothing reached L2
        expect(l1.bound.map.size).toBe(0) // nor L1
      }),
      { numRuns: RUNS },
    )
    await cache.close()
  }, 300_000) // a hang guard only: 100k cases take over a minute on a loaded 2-core machine
})

/** The built-in default TTL (`createCache` without `ttl`). */
const DEFAULT_TTL_MS = 60_000
/** The units, largest first: the order a compound duration must use. */
const UNIT_MS = new Map<string, bigint>([
  ['d', 86_400_000n],
  ['h', 3_600_000n],
  ['m', 60_000n],
  ['s', 1_000n],
  ['ms', 1n],
])
const UNIT_RANK = new Map([...UNIT_MS.keys()].map((unit, rank) => [unit, rank]))
const isAsciiDigit = (char: string | undefined) => char !== undefined && char >= '0' && char <= '9'

/**
 * The duration contract, written out on its own (not by calling the parser),
 * for exactly which `ttl` values createCache accepts and the milliseconds it
 * keeps:
 * - absent: the default;
 * - a number: finite, above 0 and at most MAX_TTL_MS; fractions round up;
 * - a string: one or more parts, each ASCII digits, optionally '.' and more
 *   digits, then one of d, h, m, s, ms, the units largest first and each at
 *   most once ('1h30m'), with surrounding whitespace ignored; the exact sum
 *   of its parts (decimal, no binary rounding) above 0 and at most
 *   MAX_TTL_MS; fractions of a millisecond round up;
 * - anything else: refused.
 */
function expectedTtlMs(input: unknown): number | 'refused' {
  if (input === undefined) return DEFAULT_TTL_MS
  if (typeof input === 'number') return Number.isFinite(input) && input > 0 && input <= MAX_TTL_MS ? Math.ceil(input) : 'refused'
  if (typeof input !== 'string') return 'refused'
  const text = input.trim()
  // Exact: the sum of (whole and fraction digits) * unit / 10^(fraction digits), over a common scale.
  let numerator = 0n
  let scaleDigits = 0
  let lastRank = -1
  let end = 0
  do {
    const start = end
    while (isAsciiDigit(text[end])) end++
    const whole = text.slice(start, end)
    if (whole === '') return 'refused'
    let fraction = ''
    if (text[end] === '.') {
      const fractionStart = end + 1
      end = fractionStart
      while (isAsciiDigit(text[end])) end++
      fraction = text.slice(fractionStart, end)
      if (fraction === '') return 'refused'
    }
    const unit = text.startsWith('ms', end) ? 'ms' : (text[end] ?? '')
    const rank = UNIT_RANK.get(unit)
    if (rank === undefined || rank <= lastRank) return 'refused'
    lastRank = rank
    end += unit.length
    const digitsAfter = Math.max(scaleDigits, fraction.length)
    numerator =
      numerator * 10n ** BigInt(digitsAfter - scaleDigits) + BigInt(whole + fraction) * UNIT_MS.get(unit)! * 10n ** BigInt(digitsAfter - fraction.length)
    scaleDigits = digitsAfter
  } while (end < text.length)
  const scale = 10n ** BigInt(scaleDigits)
  const ms = (numerator + scale - 1n) / scale // rounded up
  return numerator === 0n || ms > BigInt(MAX_TTL_MS) ? 'refused' : Number(ms)
}

const digits = (minLength: number, maxLength: number) => fc.string({ unit: fc.constantFrom(...'0123456789'), minLength, maxLength })
/** One `<amount><unit>` part: digits, maybe a fraction. */
const part = (unit: string) =>
  fc
    .tuple(digits(1, 11), fc.option(digits(1, 7), { nil: undefined }))
    .map(([whole, fraction]) => `${whole}${fraction === undefined ? '' : `.${fraction}`}${unit}`)
/** Well-formed duration strings: one to five parts, units largest first, maybe padded with whitespace. */
const wellFormedDuration = fc
  .tuple(
    fc.constantFrom('', ' ', '\t', '\n '),
    fc.subarray([...UNIT_MS.keys()], { minLength: 1 }).chain((units) => fc.tuple(...units.map(part))),
    fc.constantFrom('', ' ', '\r\n'),
  )
  .map(([before, parts, after]) => `${before}${parts.join('')}${after}`)
/** One character of a well-formed string inserted, replaced or removed: most break it, a few do not, and the contract must tell which. */
const nearlyWellFormedDuration = fc
  .tuple(
    wellFormedDuration,
    fc.nat(),
    fc.constantFrom('insert', 'replace', 'remove'),
    fc.constantFrom(' ', '+', '-', '.', 'e', 'E', '_', ',', 'x', 'S', 'M', '５', '٣', '\u00a0', '\u0000', '0', '9'),
  )
  .map(([text, at, edit, char]) => {
    const i = at % (text.length + 1)
    if (edit === 'insert') return text.slice(0, i) + char + text.slice(i)
    if (edit === 'replace') return text.slice(0, i) + char + text.slice(i + 1)
    return text.slice(0, i) + text.slice(i + 1)
  })

describe('options', () => {
  /** Durations a caller might pass, right and wrong: '5 minutes', -1, NaN, Infinity, 0, objects, huge numbers, the bounds. */
  const anyDuration = fc.oneof(
    wellFormedDuration,
    nearlyWellFormedDuration,
    fc.string({ maxLength: 12 }),
    fc.constantFrom(
      '5 minutes',
      '1 h',
      '-1s',
      '+1s',
      '1.5.2m',
      '',
      ' ',
      'ms',
      '10x',
      '1e3ms',
      '.5s',
      '5.s',
      '0x10ms',
      '1_000ms',
      '５s',
      '5MS',
      '0ms',
      '0.0s',
      '0.0001ms',
      '1h30m',
      '30m1h',
      '1h1h',
      '1h 30m',
      '1h30',
      '1m500',
      '1s500ms',
      '1ms500s',
    ),
    fc.constantFrom(
      `${MAX_DURATION_MS}ms`,
      `${MAX_DURATION_MS + 1}ms`,
      '24d',
      '25d',
      `${MAX_TTL_MS}ms`,
      `${MAX_TTL_MS + 1}ms`,
      '3650d',
      '3649d23h59m59s999.9ms',
      '3650d0.0001ms',
      '3651d',
      `${'9'.repeat(400)}ms`,
    ),
    fc.double(),
    fc.integer(),
    fc.constantFrom(
      Number.NaN,
      Number.POSITIVE_INFINITY,
      -1,
      0,
      -0,
      0.25,
      Number.MIN_VALUE,
      MAX_DURATION_MS,
      MAX_DURATION_MS + 0.5,
      MAX_DURATION_MS + 1,
      MAX_TTL_MS,
      MAX_TTL_MS + 0.5,
      2 ** 53,
      undefined,
      null,
      5n,
    ),
    fc.anything(),
  )

  /** createCache's answer for `ttl`: the milliseconds it keeps, or what it threw. */
  function ttlOutcome(ttl: unknown): { ttlMs: number } | { error: unknown } {
    try {
      const cache = createCache({ name: 'durations', tiers: [fakeLocalTier()], ttl: ttl as number, invalidation: { ttlOnly: true } })
      const { ttlMs } = cache.describe()
      void cache.close()
      return { ttlMs }
    } catch (error) {
      return { error }
    }
  }

  it.each([
    [' 5m ', 300_000],
    ['250ms', 250],
    ['1.5s', 1_500],
    ['0.5ms', 1],
    ['1.1m', 66_000],
    ['2.2h', 7_920_000],
    ['4.03s', 4_030],
    ['8.05s', 8_050],
    [`${MAX_DURATION_MS}ms`, MAX_DURATION_MS],
    ['25d', 2_160_000_000],
    ['1h30m', 5_400_000],
    ['2d12h', 216_000_000],
    ['1s500ms', 1_500],
    ['1.5h30m', 7_200_000],
    [`${MAX_TTL_MS}ms`, MAX_TTL_MS],
    [0.25, 1],
    [MAX_DURATION_MS + 1, MAX_DURATION_MS + 1],
    [MAX_TTL_MS, MAX_TTL_MS],
    [undefined, DEFAULT_TTL_MS],
  ])('ttl %j is kept as exactly %i ms', (ttl, ms) => {
    expect(expectedTtlMs(ttl)).toBe(ms)
    expect(ttlOutcome(ttl)).toEqual({ ttlMs: ms })
  })

  it(`any ttl: accepted with exactly the value the duration contract gives, or InvalidOptionError naming the option and the cache (${RUNS} cases)`, {
    timeout: 300_000,
  }, () => {
    fc.assert(
      fc.property(anyDuration, (ttl) => {
        const expected = expectedTtlMs(ttl)
        const outcome = ttlOutcome(ttl)
        if (expected !== 'refused') {
          expect(outcome).toEqual({ ttlMs: expected })
          return
        }
        expect(outcome).toHaveProperty('error')
        const { error } = outcome as { error: unknown }
        expect(error).toBeInstanceOf(InvalidOptionError)
        expect(error).toMatchObject({ code: 'ERR_INVALID_OPTION', cache: 'durations' })
        expect((error as Error).message).toMatch(/^ttl: /)
        expect((error as Error).message).toContain('[cache "durations"]')
      }),
      { numRuns: RUNS },
    )
  })

  /** Every option name createCache documents (CacheOptions and the read-policy options). */
  const KNOWN = new Set([
    'name',
    'tiers',
    'bus',
    'maxStaleness',
    'onError',
    'circuitBreaker',
    'onBusDown',
    'invalidation',
    'logger',
    'policy',
    'ttl',
    'negativeTtl',
    'grace',
    'jitter',
    'softTimeout',
    'hardTimeout',
    'failSafeBackoff',
    'lockTimeout',
    'refreshStale',
  ])

  /** What createCache throws (or undefined) for the base options plus `extra`. */
  function creationError(extra: Record<string, unknown>): unknown {
    try {
      void createCache({ name: 'opts', tiers: [fakeLocalTier()], ttl: '1m', invalidation: { ttlOnly: true }, ...extra } as never).close()
      return undefined
    } catch (error) {
      return error
    }
  }

  it("any unknown option name is refused at construction with InvalidOptionError naming it (memoryTier's maxEntries: 0 is checked in memory-adapter)", () => {
    fc.assert(
      fc.property(
        fc.string({ minLength: 1, maxLength: 16 }).filter((name) => /^[a-z]/i.test(name) && !KNOWN.has(name)),
        (name) => {
          const error = creationError({ [name]: 1 })
          expect(error).toBeInstanceOf(InvalidOptionError)
          expect(error).toMatchObject({ code: 'ERR_INVALID_OPTION', cache: 'opts' })
          expect((error as Error).message).toContain(`createCache: unknown option "${name}"`)
        },
      ),
      { numRuns: 2_000 },
    )
    expect(() => createCache({ name: 'opts', tiers: [fakeLocalTier()], ttl: '1m', tlt: '1m' } as never)).toThrow(/unknown option "tlt"/)
  })

  it('every known option name is accepted as a name (its value may still be refused, never as unknown)', () => {
    for (const name of KNOWN) {
      const error = creationError({ [name]: Symbol('not a valid value for any option') })
      expect([name, String((error as Error | undefined)?.message)]).not.toEqual([name, expect.stringContaining('unknown option')])
    }
    // A valid value for a read-policy option is taken as is.
    expect(creationError({ grace: '10m', lockTimeout: '3s' })).toBeUndefined()
  })
})
