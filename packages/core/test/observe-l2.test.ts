/**
 * Observe mode on an L1+L2 cache: the ghost of L2 (`predictedL2HitRate`),
 * the L2 round trip measured by the tier's probe (or declared), the
 * hottest keys' share, and what the advisor concludes from them. Core's
 * clock is driven by the test, so TTLs expire exactly where the traces say.
 */
import { describe, expect, it, vi } from 'vitest'
import { type BoundSharedTier, type Invalidation, type LocalTier, type SharedTier, createCache } from '../src/index.js'
import { HotKeys } from '../src/hot-keys.js'
import { FakeBus, FakeLocal } from './fakes.js'
import { ReferenceTwoTier } from './reference-two-tier.js'
import { random, zipf } from './traces.js'

const time = vi.hoisted(() => ({ now: 1_000_000 }))
vi.mock('../src/clock.js', () => ({ clock: () => time.now }))

/** An L2 whose every call is recorded; `probe()` takes `roundTripMs` of core's clock. */
function recordingShared(roundTripMs: number, withProbe = true): SharedTier & { calls: string[] } {
  const calls: string[] = []
  const bound: BoundSharedTier = {
    get: async (key) => {
      calls.push(`get ${key}`)
      return undefined
    },
    set: async (key) => void calls.push(`set ${key}`),
    delete: async (key) => {
      time.now += roundTripMs
      calls.push(`delete ${key}`)
    },
    clear: async () => void calls.push('clear'),
    invalidateTags: async () => void calls.push('invalidateTags'),
    close: async () => {},
    ...(withProbe
      ? {
          probe: async () => {
            time.now += roundTripMs
            calls.push('probe')
          },
        }
      : {}),
  }
  return { kind: 'shared', name: 'recording', calls, bind: () => bound }
}

function observingTwoTier(capacity: number, options: { roundTripMs?: number; withProbe?: boolean; l2RoundTrip?: string } = {}) {
  const l1 = new FakeLocal()
  const l2 = recordingShared(options.roundTripMs ?? 0, options.withProbe ?? true)
  const bus = new FakeBus()
  const local: LocalTier = { kind: 'local', name: 'fake-local', capacity, bind: () => l1 }
  const cache = createCache<string>({
    name: 'obs2',
    tiers: [local, l2],
    bus,
    ttl: '1h',
    mode: 'observe',
    ...(options.l2RoundTrip === undefined ? {} : { observe: { l2RoundTrip: options.l2RoundTrip } }),
    invalidation: { ttlOnly: true },
  })
  return { cache, l1, l2, bus }
}

const HOUR = 3_600_000
/** Lets the background probe (a resolved promise chain) finish. */
const settle = () => new Promise((resolve) => setImmediate(resolve))

describe('observe mode, L1+L2: the ghost of L2 predicts the share of L1 misses L2 would answer', () => {
  const cases: Array<[string, { capacity: number; keys: number; ttlMs: number; stepMs: number; deleteEvery?: number; viaBus?: boolean }]> = [
    ['Zipf, an L1 smaller than the working set', { capacity: 50, keys: 2_000, ttlMs: HOUR, stepMs: 1 }],
    ['Zipf, with TTL expiry in both tiers', { capacity: 200, keys: 1_000, ttlMs: 2_000, stepMs: 1 }],
    ['Zipf, with deletes from another process every 7th read', { capacity: 100, keys: 500, ttlMs: HOUR, stepMs: 1, deleteEvery: 7, viaBus: true }],
    ['Zipf, with its own deletes every 5th read', { capacity: 100, keys: 500, ttlMs: HOUR, stepMs: 1, deleteEvery: 5 }],
  ]
  for (const [name, c] of cases) {
    it(`${name}: within 5 points of the two-tier reference`, async () => {
      const { cache, bus } = observingTwoTier(c.capacity)
      const reference = new ReferenceTwoTier(c.capacity, () => time.now)
      const next = zipf(c.keys, 1, random(c.capacity + c.keys))
      for (let i = 0; i < 6_000; i++) {
        if (c.deleteEvery !== undefined && i % c.deleteEvery === 0) {
          const victim = `k${next()}`
          if (c.viaBus === true) bus.deliver({ kind: 'key', cache: 'obs2', key: victim } satisfies Invalidation)
          else await cache.delete(victim)
          reference.drop(victim)
        }
        const key = `k${next()}`
        await cache.getOrSet(key, async () => 'v', { ttl: c.ttlMs })
        reference.read(key, c.ttlMs)
        time.now += c.stepMs
      }
      const stats = cache.stats()
      expect(reference.l2Hits).toBeGreaterThan(50) // the case exercises L2
      expect(Math.abs(stats.predictedHitRate! - reference.l1HitRate)).toBeLessThanOrEqual(0.05)
      expect(Math.abs(stats.predictedL2HitRate! - reference.l2HitRate)).toBeLessThanOrEqual(0.05)
      await cache.close()
    })
  }

  it('a gap on the bus clears the ghost of L1, not the ghost of L2 (Redis keeps its entries)', async () => {
    const { cache, bus } = observingTwoTier(100)
    for (let i = 0; i < 10; i++) await cache.getOrSet(`k${i}`, async () => 'v')
    bus.gap()
    for (let i = 0; i < 10; i++) await cache.getOrSet(`k${i}`, async () => 'v')
    // The second pass misses L1 (cleared) and finds every key in L2.
    expect(cache.stats().predictedHitRate).toBe(0)
    expect(cache.stats().predictedL2HitRate).toBe(0.5)
    await cache.close()
  })

  it("a set counts as the L2 write it would have been; a clear and a tag invalidation reach L2's ghost", async () => {
    const { cache } = observingTwoTier(1)
    await cache.set('a', 'v', { tags: ['t'] })
    await cache.set('b', 'v') // L1 of 1: pushes a out of L1, not out of L2
    await cache.getOrSet('a', async () => 'v') // L2 hit
    await cache.invalidateTags(['t'])
    await cache.getOrSet('b', async () => 'v') // L1 was refilled with a; b is in L2
    await cache.clear()
    await cache.getOrSet('b', async () => 'v') // gone everywhere
    expect(cache.stats().predictedL2HitRate).toBeCloseTo(2 / 3)
    await cache.close()
  })

  it('an L2-only cache has one ghost: predictedHitRate is L2’s, predictedL2HitRate undefined', async () => {
    const l2 = recordingShared(0)
    const cache = createCache<string>({ name: 'l2only', tiers: [l2], ttl: '1h', mode: 'observe', invalidation: { ttlOnly: true } })
    for (let i = 0; i < 4; i++) await cache.getOrSet(`k${i % 2}`, async () => 'v')
    expect(cache.stats().predictedHitRate).toBe(0.5)
    expect(cache.stats().predictedL2HitRate).toBeUndefined()
    await cache.close()
  })
})

describe('observe mode: the L2 round trip, probed behind the requests or declared', () => {
  it("is measured with the tier's probe(), which reads no value; get, set and readForFill are never called", async () => {
    const { cache, l2 } = observingTwoTier(10, { roundTripMs: 3 })
    for (let i = 0; i < 40; i++) {
      await cache.getOrSet(`k${i}`, async () => 'v')
      await settle()
    }
    expect(l2.calls.filter((call) => call !== 'probe')).toEqual([])
    expect(l2.calls.length).toBeGreaterThan(0)
    expect(cache.stats().l2Latency.p50).toBe(3)
    await cache.close()
  })

  it('a declared l2RoundTrip is used, and nothing is probed', async () => {
    const { cache, l2 } = observingTwoTier(10, { l2RoundTrip: '3ms' })
    for (let i = 0; i < 150; i++) {
      await cache.getOrSet(`k${i}`, async () => {
        time.now += 5
        return 'v'
      })
      await settle()
    }
    expect(l2.calls).toEqual([])
    const advice = cache.advise()
    expect(advice.numbers.l2P50Ms).toBe(3)
    await cache.close()
  })

  it('a tier without probe() is not read to measure it', async () => {
    const { cache, l2 } = observingTwoTier(10, { withProbe: false })
    for (let i = 0; i < 20; i++) await cache.getOrSet(`k${i}`, async () => 'v')
    await settle()
    expect(l2.calls).toEqual([])
    await cache.close()
  })

  it('rejects observe options without observe mode, and unknown ones', () => {
    const l2 = recordingShared(0)
    expect(() => createCache({ name: 'x', tiers: [l2], observe: { l2RoundTrip: '3ms' } })).toThrow(/only with mode: 'observe'/)
    expect(() => createCache({ name: 'x', tiers: [l2], mode: 'observe', observe: { l2Roundtrip: '3ms' } as never })).toThrow(/l2Roundtrip/)
    expect(() => createCache({ name: 'x', tiers: [l2], mode: 'observe', observe: { l2RoundTrip: 'soon' } })).toThrow(/observe.l2RoundTrip/)
  })
})

describe('the advisor in observe mode, on workloads whose answer is known', () => {
  /** `keys` keys, each read `reads` times in turn; `factoryMs` per factory run. */
  async function workload(cache: { getOrSet(key: string, f: () => Promise<string>): Promise<string> }, keys: number, reads: number, factoryMs: number) {
    for (let round = 0; round < reads; round++) {
      for (let i = 0; i < keys; i++) {
        await cache.getOrSet(`k${i}`, async () => {
          // The probe sent with the lookup finishes first: durations on the shared test clock do not overlap.
          await settle()
          time.now += factoryMs
          return 'v'
        })
      }
    }
  }

  it('l1-only: a 5 ms factory behind a 3 ms hop (the founding story), predicted before any caching', async () => {
    const { cache } = observingTwoTier(1_000, { roundTripMs: 3 })
    await workload(cache, 50, 4, 5)
    const advice = cache.advise()
    expect(advice.recommendation).toBe('l1-only')
    expect(advice.reason).toBe('factory 5.00 ms < 2x L2 round trip 3.00 ms: Redis costs about what it saves')
  })

  it('keep: a 35 ms factory over a few hot keys, with the saving per lookup from both ghosts', async () => {
    const { cache } = observingTwoTier(1_000, { roundTripMs: 3 })
    await workload(cache, 10, 20, 35)
    const advice = cache.advise()
    expect(advice.recommendation).toBe('keep')
    expect(advice.numbers.predictedHitRate).toBeCloseTo(190 / 200)
    // 190 of 200 lookups hit L1 (saving 35 ms each); 10 misses pay the fill read and the write (2 x 3 ms).
    expect(advice.numbers.savedMsPerLookup).toBeCloseTo((190 * 35 - 10 * 6) / 200)
    expect(advice.reason).toContain('predicted hit rate 95 % (L1 95 %)')
  })

  it('do-not-cache: every key read once (a hit rate near zero)', async () => {
    const { cache } = observingTwoTier(1_000, { roundTripMs: 1 })
    await workload(cache, 200, 1, 35)
    expect(cache.advise()).toMatchObject({ recommendation: 'do-not-cache', numbers: { predictedHitRate: 0, predictedL2HitRate: 0 } })
  })

  it('do-not-cache: write-heavy, one delete per read', async () => {
    const { cache } = observingTwoTier(1_000, { roundTripMs: 1 })
    for (let i = 0; i < 150; i++) {
      await cache.getOrSet(`k${i % 3}`, async () => 'v')
      await cache.delete(`k${i % 3}`)
    }
    const advice = cache.advise()
    expect(advice.recommendation).toBe('do-not-cache')
    expect(advice.reason).toMatch(/^1\.00 writes and invalidations per read/)
  })

  it('raise-l1-size: a hot set of 100 keys through an L1 of 10 (L2 would answer the rest)', async () => {
    const { cache } = observingTwoTier(10, { roundTripMs: 1 })
    await workload(cache, 100, 3, 35)
    const advice = cache.advise()
    expect(advice.recommendation).toBe('raise-l1-size')
    expect(advice.numbers.predictedL2HitRate).toBeCloseTo(200 / 300)
  })
})

describe('hottest keys: the share of lookups on the hottest 1 %', () => {
  it('is 1 % of lookups for uniform keys and most of them for a skewed workload', () => {
    const uniform = new HotKeys()
    const skewed = new HotKeys()
    const rnd = random(9)
    const next = zipf(10_000, 1.2, random(10))
    for (let i = 0; i < 200_000; i++) {
      uniform.add(`u${Math.floor(rnd() * 10_000)}`)
      skewed.add(`z${next()}`)
    }
    expect(Math.abs(uniform.distinctKeys - 10_000) / 10_000).toBeLessThan(0.1)
    expect(uniform.hottestShare()).toBeGreaterThan(0.005)
    expect(uniform.hottestShare()).toBeLessThan(0.03)
    // Exact share of the top 100 of 10,000 Zipf(1.2) keys: sum 1/i^1.2 over 1..100 / over 1..10,000.
    let top = 0
    let all = 0
    for (let i = 1; i <= 10_000; i++) {
      all += 1 / i ** 1.2
      if (i <= 100) top += 1 / i ** 1.2
    }
    expect(skewed.hottestShare()).toBeGreaterThan(top / all - 0.05)
    expect(skewed.hottestShare()).toBeLessThanOrEqual(top / all + 0.02)
  })

  it('is 0 before any lookup; one key is all of it', () => {
    const hot = new HotKeys()
    expect(hot.hottestShare()).toBe(0)
    for (let i = 0; i < 10; i++) hot.add('only')
    expect(hot.hottestShare()).toBe(1)
  })

  it('reaches stats() and the advice in both modes; in normal mode the L1 hits are sampled', async () => {
    const l2 = recordingShared(0)
    const normal = createCache<string>({ name: 'hot', tiers: [{ kind: 'local', name: 'l', bind: () => new FakeLocal() }, l2], invalidation: { ttlOnly: true } })
    for (let i = 0; i < 6_400; i++) await normal.getOrSet(i % 2 === 0 ? 'hot' : `cold${i}`, async () => 'v')
    // 3,200 reads of one key (1 miss, 3,199 hits sampled 1 in 64), 3,200 keys read once: ~50 % of lookups on 1 key of 3,201.
    const share = normal.stats().hottestKeysShare
    expect(share).toBeGreaterThan(0.45)
    expect(share).toBeLessThan(0.55)
    expect(normal.advise().numbers.hottestKeysShare).toBe(share)
    const { cache } = observingTwoTier(10)
    for (let i = 0; i < 200; i++) await cache.getOrSet(i % 2 === 0 ? 'hot' : `cold${i}`, async () => 'v')
    expect(cache.stats().hottestKeysShare).toBeCloseTo(0.5, 1)
    await Promise.all([normal.close(), cache.close()])
  })
})
