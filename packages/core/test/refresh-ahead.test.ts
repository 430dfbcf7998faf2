/**
 * Refresh-ahead in core: a hit past a value's refresh point answers at once
 * and starts one background refresh; a failed refresh keeps the current
 * value. Time is moved by rewriting the L1 copy's refresh point (what the
 * clock would do); the one-per-cluster lease is tested on real Redis
 * (tests/refresh-ahead.test.ts) and in the tier conformance suite.
 */
import { describe, expect, it, vi } from 'vitest'
import { clock } from '../src/adapter.js'
import { InvalidOptionError, createCache } from '../src/index.js'
import { controlledSharedTier, deferred, fakeLocalTier } from './fakes.js'

function cache(options: Record<string, unknown> = {}) {
  const l1 = fakeLocalTier()
  const c = createCache<string>({ name: 'ahead', tiers: [l1], ttl: '1h', refreshAhead: 0.8, invalidation: { ttlOnly: true }, onError: () => {}, ...options })
  /** Moves `key` past its refresh point (still fresh), as 48 minutes of an hour's TTL would. */
  const pastRefreshPoint = (key: string) => {
    const copy = l1.bound.map.get(key)!
    l1.bound.map.set(key, { ...copy, expiresAt: clock() - 1 })
  }
  return { cache: c, l1: l1.bound, pastRefreshPoint }
}

describe('refreshAhead', () => {
  it('the L1 copy is due at 80 % of the TTL and fresh until the TTL', async () => {
    const { cache: c, l1 } = cache()
    const before = clock()
    await c.getOrSet('k', async () => 'v1')
    const copy = l1.map.get('k') as unknown as { expiresAt: number; freshUntil: number }
    expect(copy.freshUntil - copy.expiresAt).toBe(720_000) // 20 % of an hour
    expect(copy.freshUntil).toBeGreaterThanOrEqual(before + 3_600_000)
    expect(c.describe()).toMatchObject({ refreshAhead: 0.8 })
    expect(c.describe().markdown).toContain('3600s, refresh at 80 %')
    await c.close()
  })

  it('a hit past the refresh point answers at once and starts one refresh; the refreshed value follows', async () => {
    const { cache: c, l1, pastRefreshPoint } = cache()
    await c.getOrSet('k', async () => 'v1')
    pastRefreshPoint('k')
    const gate = deferred<string>()
    const factory = vi.fn(() => gate.promise)
    expect(await c.getOrSet('k', factory)).toBe('v1') // did not wait for the factory
    expect(await c.getOrSet('k', factory)).toBe('v1')
    expect(factory).toHaveBeenCalledTimes(1) // one refresh, however many hits
    gate.resolve('v2')
    await vi.waitFor(() => expect(l1.map.get('k')?.value).toBe('v2'))
    expect(await c.getOrSet('k', factory)).toBe('v2')
    expect(c.stats()).toMatchObject({ refreshAheadHits: 2, refreshesStarted: 1, refreshesSucceeded: 1, refreshesFailed: 0, staleServed: 0 })
    expect(c.stats()).toMatchObject({ misses: 1, expiredMisses: 0, factoryCalls: 2 }) // the refresh is no miss
    await c.close()
  })

  it("answers at once even with refreshStale: 'wait' (the value is still fresh)", async () => {
    const { cache: c, pastRefreshPoint } = cache({ refreshStale: 'wait' })
    await c.getOrSet('k', async () => 'v1')
    pastRefreshPoint('k')
    expect(await c.getOrSet('k', () => new Promise<string>(() => {}))).toBe('v1')
    await c.close()
  })

  it('a failed refresh keeps serving the current value, and is counted', async () => {
    const { cache: c, pastRefreshPoint } = cache()
    await c.getOrSet('k', async () => 'v1')
    pastRefreshPoint('k')
    const failing = vi.fn(async (): Promise<string> => {
      throw new Error('database down')
    })
    expect(await c.getOrSet('k', failing)).toBe('v1')
    await vi.waitFor(() => expect(c.stats().refreshesFailed).toBe(1))
    expect(await c.getOrSet('k', failing)).toBe('v1') // until its TTL (fail-safe backoff meanwhile)
    expect(failing).toHaveBeenCalledTimes(1)
    await c.close()
  })

  it('with L2, the copy is shaped the same on an L2 read', async () => {
    const l1 = fakeLocalTier()
    const l2 = controlledSharedTier()
    const c = createCache<string>({ name: 'ahead2', tiers: [l1, l2], ttl: '1h', refreshAhead: 0.5, onError: () => {}, invalidation: { ttlOnly: true } })
    await c.getOrSet('k', async () => 'v')
    const copy = l1.bound.map.get('k') as unknown as { expiresAt: number; freshUntil: number }
    expect(copy.freshUntil - copy.expiresAt).toBe(1_800_000)
    expect(l2.bound.map.get('k')!.expiresAt).toBe(copy.freshUntil) // L2 keeps the true expiry
    await c.close()
  })

  it('is validated: a fraction between 0 and 1', () => {
    for (const bad of [0, 1, 1.5, -0.2, '0.8']) {
      expect(() => createCache({ name: 'x', tiers: [fakeLocalTier()], refreshAhead: bad as never })).toThrow(InvalidOptionError)
    }
  })
})
