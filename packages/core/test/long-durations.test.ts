/**
 * Compound durations ('1h30m', '2d12h', '1s500ms') and TTLs past the
 * 24.8-day timer bound (issue 21). A TTL sets no timer — expiry is compared
 * with core's clock on each read — so `ttl`, `negativeTtl`, `grace`, `l1Ttl`
 * and a factory's `setTtl`/`setGrace` go up to MAX_TTL_MS (3650 days), while
 * options that do arm a timer (timeouts, retry and probe intervals) keep
 * MAX_DURATION_MS. The expiry of a 400-day value is checked by moving core's
 * clock (performance.now) rather than by waiting.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { InvalidOptionError, MAX_DURATION_MS, MAX_TTL_MS, createCache, parseDuration, type TierCacheError, type TierEntry } from '../src/index.js'
import { clock } from '../src/adapter.js'
import { controlledSharedTier, fakeLocalTier } from './fakes.js'

const SECOND = 1_000
const MINUTE = 60 * SECOND
const HOUR = 60 * MINUTE
const DAY = 24 * HOUR

function thrown(run: () => unknown): TierCacheError {
  try {
    run()
  } catch (error) {
    return error as TierCacheError
  }
  throw new Error('did not throw')
}

describe('compound durations', () => {
  it.each([
    ['1h30m', HOUR + 30 * MINUTE],
    ['2d12h', 2 * DAY + 12 * HOUR],
    ['1m30s', MINUTE + 30 * SECOND],
    ['1s500ms', 1_500],
    ['1d1h1m1s1ms', DAY + HOUR + MINUTE + SECOND + 1],
    ['5m5ms', 5 * MINUTE + 5],
    ['1h0m', HOUR],
    ['0h90m', 90 * MINUTE],
    ['1.5h30m', 2 * HOUR],
    ['1m0.5s', MINUTE + 500],
    // Summed exactly, then rounded up once: 0.0005 s + 0.0005 ms = 0.5005 ms -> 1 ms.
    ['0.0005s0.0005ms', 1],
    ['  1h30m\n', HOUR + 30 * MINUTE],
    // Every single-unit form keeps working.
    ['250ms', 250],
    ['60s', 60 * SECOND],
    ['5m', 5 * MINUTE],
    ['1h', HOUR],
    ['1d', DAY],
    ['2.2h', 7_920_000],
    ['0.5ms', 1],
    [1500, 1500],
  ])('%j is %i ms', (input, ms) => {
    expect(parseDuration(input, 'ttl')).toBe(ms)
  })

  it.each([
    ['30m1h', 'units out of order'],
    ['1s1m', 'units out of order'],
    ['500ms1s', 'units out of order'],
    ['1h1h', 'a unit twice'],
    ['1m1m30s', 'a unit twice'],
    ['1h 30m', 'whitespace inside'],
    ['1 h', 'whitespace inside'],
    ['1h30', 'an amount without a unit'],
    ['h30m', 'a unit without an amount'],
    ['1h.5m', 'a fraction without digits before it'],
    ['1w', 'an unknown unit'],
    ['1H30M', 'upper case'],
    ['0h0m', 'zero'],
    ['', 'nothing'],
  ])('%j is refused (%s) with InvalidOptionError naming the option, the cache and the accepted forms', (input) => {
    const error = thrown(() => parseDuration(input, 'ttl', { cache: 'c' }))
    expect(error).toBeInstanceOf(InvalidOptionError)
    expect(error.code).toBe('ERR_INVALID_OPTION')
    expect(error.message).toMatch(/^ttl: /)
    expect(error.message).toContain('cache "c"')
    if (input !== '0h0m') expect(error.message).toContain("largest first, each at most once, e.g. '250ms', '60s', '1h30m', '2d12h', '1s500ms'")
  })

  it('a string of many digits is refused quickly, not backtracked over', () => {
    const error = thrown(() => parseDuration(`${'9'.repeat(100_000)}x`, 'ttl'))
    expect(error).toBeInstanceOf(InvalidOptionError)
  })
})

describe('bounds', () => {
  it('an option that arms a timer keeps the 24.8-day bound, and says why', () => {
    expect(parseDuration(`${MAX_DURATION_MS}ms`, 'hardTimeout')).toBe(MAX_DURATION_MS)
    const error = thrown(() => parseDuration('25d', 'hardTimeout', { cache: 'c' }))
    expect(error).toBeInstanceOf(InvalidOptionError)
    expect(error.message).toBe('hardTimeout: 25d exceeds the maximum of 2147483647 ms (about 24.8 days, the longest timer Node can set) [cache "c"]')
    expect(() => createCache({ name: 'timers', tiers: [fakeLocalTier()], hardTimeout: '30d' })).toThrow(InvalidOptionError)
  })

  it.each(['ttl', 'negativeTtl', 'grace', 'l1Ttl'])(
    '%s accepts up to MAX_TTL_MS (3650d), and past it names the cache, the option and the maximum',
    (option) => {
      const cache = createCache({ name: 'long', tiers: [fakeLocalTier()], [option]: '3650d' })
      const described = cache.describe() as unknown as Record<string, number>
      expect(described[`${option}Ms`]).toBe(MAX_TTL_MS)
      void cache.close()
      const error = thrown(() => createCache({ name: 'too-long', tiers: [fakeLocalTier()], [option]: '3651d' }))
      expect(error).toBeInstanceOf(InvalidOptionError)
      expect(error.cache).toBe('too-long')
      expect(error.message).toBe(`${option}: 3651d exceeds the maximum of 3650d (315360000000 ms) [cache "too-long"]`)
    },
  )

  it('the bound holds per call as well', async () => {
    const cache = createCache<number>({ name: 'per-call', tiers: [fakeLocalTier()] })
    await expect(cache.set('k', 1, { ttl: '3651d' })).rejects.toMatchObject({ code: 'ERR_INVALID_OPTION', cache: 'per-call', key: 'k' })
    await expect(cache.getOrSet('k', async () => 1, { ttl: 3651 * DAY })).rejects.toThrow(/^ttl: .*exceeds the maximum of 3650d/)
    await cache.close()
  })
})

describe('a 400-day TTL, end to end through core (L1 and L2)', () => {
  afterEach(() => {
    vi.restoreAllMocks()
  })

  /** Moves core's clock (performance.now) `ms` ahead of real time from here on. */
  function advanceClock(ms: number): void {
    const real = performance.now.bind(performance)
    vi.spyOn(performance, 'now').mockImplementation(() => real() + ms)
  }

  /**
   * Runs `write` and checks that each entry it stored (in core's clock, as
   * tiers hold them) expires `ttlMs` after a moment within the write, and
   * stays usable `graceMs` longer.
   */
  async function expectStoredFor(write: () => Promise<unknown>, stored: () => Array<TierEntry | undefined>, ttlMs: number, graceMs = 0) {
    const before = clock()
    await write()
    const after = clock()
    for (const entry of stored()) {
      expect(entry?.expiresAt).toBeGreaterThanOrEqual(before + ttlMs)
      expect(entry?.expiresAt).toBeLessThanOrEqual(after + ttlMs)
      expect((entry?.staleUntil ?? entry?.expiresAt ?? 0) - (entry?.expiresAt ?? 0)).toBe(graceMs)
    }
  }

  function twoTier(options: { ttl?: string; grace?: string; l1Ttl?: string } = {}) {
    const l1 = fakeLocalTier()
    const l2 = controlledSharedTier()
    const cache = createCache<string>({ name: 'year', tiers: [l1, l2], invalidation: { ttlOnly: true }, onError: () => {}, ...options })
    return { cache, l1: l1.bound, l2: l2.bound }
  }

  it('a value set with ttl 400d is stored with that expiry in both tiers, read back for 400 days, and gone after', async () => {
    const { cache, l1, l2 } = twoTier({ grace: '30d' })
    await expectStoredFor(
      () => cache.set('k', 'v', { ttl: '400d' }),
      () => [l1.map.get('k'), l2.map.get('k')],
      400 * DAY,
      30 * DAY,
    )
    const entry = await cache.getOrSetEntry('k', async () => 'factory')
    expect(entry.value).toBe('v')
    // Wall clock now, within the test's own run time: createdAt + 400 days.
    expect(entry.expiresAt - entry.createdAt).toBeGreaterThan(400 * DAY - HOUR)
    expect(entry.expiresAt - entry.createdAt).toBeLessThanOrEqual(400 * DAY + 1)

    advanceClock(399 * DAY)
    expect(await cache.get('k')).toBe('v')
    l1.map.clear() // L2 alone answers too
    expect(await cache.get('k')).toBe('v')

    vi.restoreAllMocks()
    advanceClock(401 * DAY)
    expect(await cache.get('k')).toBeUndefined()
    // Within its 30-day grace it is still there to serve stale when the factory fails.
    const stale = await cache.getOrSet('k', async () => Promise.reject(new Error('down'))).catch((error: unknown) => error)
    expect(stale).toBe('v')
    await cache.close()
  })

  it('the cache default ttl, a compound one, and a factory setTtl/setGrace past 24.8 days', async () => {
    const { cache, l2 } = twoTier({ ttl: '1d12h' })
    await expectStoredFor(
      () => cache.getOrSet('default', async () => 'v'),
      () => [l2.map.get('default')],
      DAY + 12 * HOUR,
    )
    await expectStoredFor(
      () =>
        cache.getOrSet('chosen', async (ctx) => {
          ctx.setTtl('365d')
          ctx.setGrace('2d12h')
          return 'v'
        }),
      () => [l2.map.get('chosen')],
      365 * DAY,
      2 * DAY + 12 * HOUR,
    )
    await cache.close()
  })

  it('l1Ttl past 24.8 days bounds L1 only', async () => {
    const { cache, l1, l2 } = twoTier({ ttl: '400d', l1Ttl: '40d' })
    await expectStoredFor(
      () => cache.set('k', 'v'),
      () => [l1.map.get('k')],
      40 * DAY,
    )
    await expectStoredFor(
      () => cache.set('k', 'v'),
      () => [l2.map.get('k')],
      400 * DAY,
    )
    advanceClock(41 * DAY)
    expect(await cache.get('k')).toBe('v')
    expect(cache.stats().l2Hits).toBe(1)
    await cache.close()
  })
})
