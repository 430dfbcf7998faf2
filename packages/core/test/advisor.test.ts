import { describe, expect, it, vi } from 'vitest'
import { adviseAll, createCache, type BoundSharedTier, type SharedTier, type TierEntry } from '../src/index.js'
import { fakeLocalTier } from './fakes.js'

/**
 * Core's clock, driven by the test: the advisor compares measured factory
 * and L2 durations, and on a loaded machine a real sleep(1) can outlast a
 * real sleep(10). Here time moves only when a fake tier or factory says it
 * took so long, so every measured duration is exact and the advice cannot
 * depend on the machine.
 */
const time = vi.hoisted(() => ({ now: 1_000_000 }))
vi.mock('../src/clock.js', () => ({ clock: () => time.now }))

/** `ms` of core's clock pass (synchronously: nothing else can run in between). */
function elapse(ms: number): void {
  time.now += ms
}

/** A factory that takes exactly `ms` on core's clock. */
const takes =
  <T>(ms: number, value: T) =>
  async (): Promise<T> => {
    elapse(ms)
    return value
  }

/** A shared tier with a fixed round trip, to stand for a Redis of known latency. */
function slowShared(roundTripMs: number): SharedTier {
  const map = new Map<string, TierEntry>()
  const bound: BoundSharedTier = {
    get: async (key) => {
      elapse(roundTripMs)
      return map.get(key)
    },
    set: async (key, entry) => {
      elapse(roundTripMs)
      map.set(key, entry)
    },
    delete: async (key) => {
      map.delete(key)
    },
    clear: async () => map.clear(),
    invalidateTags: async () => {},
    close: async () => {},
  }
  return { kind: 'shared', name: 'slow', bind: () => bound }
}

const plan = { invalidation: { ttlOnly: true } }

describe('the caching advisor', () => {
  it('says nothing before it has enough lookups', () => {
    const c = createCache({ name: 'new', tiers: [fakeLocalTier()], ...plan })
    expect(c.advise().recommendation).toBe('not-enough-data')
  })

  it('do-not-cache: a hit rate near zero', async () => {
    const c = createCache({ name: 'unique', tiers: [fakeLocalTier()], ...plan })
    for (let i = 0; i < 120; i++) await c.getOrSet(`k${i}`, async () => i)
    const advice = c.advise()
    expect(advice.recommendation).toBe('do-not-cache')
    expect(advice.reason).toContain('hit rate 0 %')
  })

  it('l1-only: a factory cheaper than two L2 round trips', async () => {
    const c = createCache({ name: 'cheap', tiers: [fakeLocalTier(), slowShared(4)], ...plan })
    for (let i = 0; i < 30; i++) await c.getOrSet(`k${i}`, async () => i) // a 0 ms factory, 4 ms L2
    for (let round = 0; round < 5; round++) for (let i = 0; i < 30; i++) await c.getOrSet(`k${i}`, async () => i)
    expect(c.advise()).toMatchObject({
      recommendation: 'l1-only',
      reason: 'factory 0.00 ms < 2x L2 round trip 4.00 ms: Redis costs about what it saves',
      numbers: { factoryP50Ms: 0, l2P50Ms: 4 },
    })
  })

  it('raise-ttl: most misses are expirations', async () => {
    const c = createCache({ name: 'short', tiers: [fakeLocalTier()], ttl: '30ms', ...plan })
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 20; i++) for (let hit = 0; hit < 3; hit++) await c.getOrSet(`k${i}`, async () => i)
      elapse(40) // every entry is now past its TTL
    }
    // Round 1's 20 misses are cold; rounds 2-4 find each key expired in L1.
    expect(c.stats()).toMatchObject({ misses: 80, expiredMisses: 60, l1Hits: 160 })
    expect(c.advise().recommendation).toBe('raise-ttl')
  })

  it('keep: a slow factory and a good hit rate; adviseAll tables several caches', async () => {
    const c = createCache({ name: 'worth-it', tiers: [fakeLocalTier(), slowShared(1)], ...plan })
    for (let i = 0; i < 5; i++) await c.getOrSet(`k${i}`, takes(10, i)) // a 10 ms factory behind a 1 ms L2
    for (let round = 0; round < 30; round++) for (let i = 0; i < 5; i++) await c.getOrSet(`k${i}`, async () => i)
    expect(c.advise()).toMatchObject({ recommendation: 'keep', numbers: { factoryP50Ms: 10, l2P50Ms: 1 } })
    const other = createCache({ name: 'idle', tiers: [fakeLocalTier()], ...plan })
    const { advice, table } = adviseAll([c, other])
    expect(advice.map((a) => a.recommendation)).toEqual(['keep', 'not-enough-data'])
    expect(table).toContain('| worth-it | keep |')
  })
})

describe("policy: 'auto' and per-group advice", () => {
  it('stops using L2 for a group whose factory is cheaper than two L2 round trips, keeps it for the others, and logs it', async () => {
    const calls: string[] = []
    const tier = slowShared(3)
    const spied: SharedTier = {
      ...tier,
      bind: (scope) => {
        const bound = tier.bind(scope)
        return {
          ...bound,
          get: (key) => {
            calls.push(key)
            return bound.get(key)
          },
        }
      },
    }
    const logger = { warn: vi.fn() }
    const c = createCache({ name: 'auto', tiers: [fakeLocalTier(), spied], policy: 'auto', logger, ...plan })
    const cheap = c.namespace('cheap')
    const costly = c.namespace('costly')
    for (let i = 0; i < 25; i++) {
      await cheap.getOrSet(`k${i}`, async () => i)
      await costly.getOrSet(`k${i}`, takes(15, i))
    }
    calls.length = 0
    for (let i = 25; i < 35; i++) {
      await cheap.getOrSet(`k${i}`, async () => i)
      await costly.getOrSet(`k${i}`, takes(15, i))
    }
    expect(calls.filter((key) => key.startsWith('cheap'))).toEqual([])
    expect(calls.filter((key) => key.startsWith('costly'))).toHaveLength(10)
    expect(logger.warn).toHaveBeenCalledWith(expect.objectContaining({ group: 'cheap', decision: 'l1-only' }), expect.stringContaining('skips L2'))
    for (let i = 0; i < 35; i++) await cheap.getOrSet(`k${i}`, async () => i) // hits, so the advisor has its sample
    const groups = Object.fromEntries(c.adviseGroups().map((a) => [a.group, a.recommendation]))
    expect(groups).toMatchObject({ cheap: 'l1-only', costly: 'keep' })
  })
})

describe('advisor counting: what the advisor counts as a lookup, a hit and a miss', () => {
  it('batch lookups count per key: a getOrSetMany workload with 90 % hits is seen as 90 % hits', async () => {
    const c = createCache({ name: 'batch', tiers: [fakeLocalTier()], ...plan })
    const keys = Array.from({ length: 10 }, (_, i) => `k${i}`)
    for (let round = 0; round < 10; round++) await c.getOrSetMany(keys, async (missing) => missing.map((k) => k))
    const stats = c.stats()
    expect(stats).toMatchObject({ l1Hits: 90, l1Misses: 10, misses: 10 })
    expect(c.advise().numbers.hitRate).toBeCloseTo(0.9)
  })

  it("policy 'auto' goes back to L2 when the factory becomes slow", async () => {
    const logger = { warn: vi.fn() }
    const c = createCache({ name: 'reversal', tiers: [fakeLocalTier(), slowShared(2)], policy: 'auto', logger, ...plan })
    const group = c.namespace('g')
    let i = 0
    for (; i < 25; i++) await group.getOrSet(`k${i}`, async () => i)
    expect(logger.warn).toHaveBeenCalledWith(expect.objectContaining({ decision: 'l1-only' }), expect.any(String))
    for (; i < 90; i++) await group.getOrSet(`k${i}`, takes(12, i)) // 12 ms > 3x the 2 ms round trip
    expect(logger.warn).toHaveBeenLastCalledWith(expect.objectContaining({ decision: 'keep' }), expect.stringContaining('uses L2 again'))
  })
})
