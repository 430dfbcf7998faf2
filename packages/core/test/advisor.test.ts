import { describe, expect, it, vi } from 'vitest'
import { adviseAll, createCache, type BoundSharedTier, type LocalTier, type SharedTier, type TierEntry } from '../src/index.js'
import { FakeBus, FakeLocal, fakeLocalTier } from './fakes.js'

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

/** The fake L1 with an entry bound (least recently used out first), counting its evictions as memoryTier does. */
class BoundedLocal extends FakeLocal {
  evictions = 0
  constructor(readonly capacity: number) {
    super()
  }
  override get(key: string) {
    const entry = this.map.get(key)
    if (entry !== undefined) {
      this.map.delete(key)
      this.map.set(key, entry)
    }
    return entry
  }
  override set(key: string, entry: TierEntry, options?: { ifAbsent?: boolean }) {
    if (options?.ifAbsent !== true) this.map.delete(key)
    super.set(key, entry, options)
    while (this.map.size > this.capacity) {
      this.map.delete(this.map.keys().next().value!)
      this.evictions++
    }
  }
  counters() {
    return { evictions: this.evictions }
  }
}

function boundedTier(capacity: number): LocalTier {
  const bound = new BoundedLocal(capacity)
  return { kind: 'local', name: 'bounded', capacity, bind: () => bound }
}

/** 100 hot keys in turn, each read twice in a row: an L1 of 10 entries hits only the second read; one of 200 keeps them all. */
async function hotSet(cache: { getOrSet(key: string, factory: () => Promise<unknown>): Promise<unknown> }, factoryMs = 0): Promise<void> {
  for (let round = 0; round < 3; round++) {
    for (let i = 0; i < 100; i++) for (let read = 0; read < 2; read++) await cache.getOrSet(`k${i}`, takes(factoryMs, i))
  }
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
    expect(advice.numbers).toMatchObject({ lookups: 120, hitRate: 0, writesPerRead: 0, savedMsPerLookup: 0 })
  })

  it('do-not-cache: write-heavy, though every read hits (each set is read once)', async () => {
    const c = createCache({ name: 'churn', tiers: [fakeLocalTier()], ...plan })
    for (let i = 0; i < 120; i++) {
      await c.set(`k${i}`, i)
      await c.getOrSet(`k${i}`, takes(10, i))
    }
    const advice = c.advise()
    expect(advice.numbers).toMatchObject({ lookups: 120, hitRate: 1, writesPerRead: 1 })
    expect(advice).toMatchObject({
      recommendation: 'do-not-cache',
      reason: '1.00 writes and invalidations per read (>= 0.5): entries are dropped about as often as they are read',
    })
  })

  it("do-not-cache: write-heavy counts this instance's writes and the invalidations it receives; below the threshold it keeps", async () => {
    const run = async (name: string, ownPer10: number, receivedPer10: number) => {
      const bus = new FakeBus()
      const c = createCache({ name, tiers: [fakeLocalTier(), slowShared(1)], bus, ...plan })
      for (let i = 0; i < 200; i++) {
        const key = `k${i % 10}`
        await c.getOrSet(key, takes(10, i))
        if (i % 10 < ownPer10) await c.set(key, i)
        else if (i % 10 < ownPer10 + receivedPer10) bus.deliver({ kind: 'key', cache: name, key })
      }
      return c
    }
    const heavy = await run('heavy', 3, 3) // 60 writes + 60 received over 200 lookups
    expect(heavy.stats()).toMatchObject({ writes: 60, invalidationsReceived: 60 })
    expect(heavy.advise()).toMatchObject({ recommendation: 'do-not-cache', numbers: { lookups: 200, writesPerRead: 0.6, maxStalenessMs: 1_000 } })
    expect(heavy.advise().reason).toContain('0.60 writes and invalidations per read (>= 0.5)')
    const light = await run('light', 2, 2) // 0.4 per read: entries live long enough to be read
    expect(light.advise()).toMatchObject({ recommendation: 'keep', numbers: { writesPerRead: 0.4 } })
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
    // 150 L1 hits save nothing (a 0 ms factory); each of the 30 misses pays two 4 ms L2 round trips (the fill read, the write).
    expect(c.advise().numbers.savedMsPerLookup).toBeCloseTo(-(30 / 180) * 8)
  })

  it('raise-ttl: most misses are expirations', async () => {
    const c = createCache({ name: 'short', tiers: [fakeLocalTier()], ttl: '30ms', ...plan })
    for (let round = 0; round < 4; round++) {
      for (let i = 0; i < 20; i++) for (let hit = 0; hit < 3; hit++) await c.getOrSet(`k${i}`, async () => i)
      elapse(40) // every entry is now past its TTL
    }
    // Round 1's 20 misses are cold; rounds 2-4 find each key expired in L1.
    expect(c.stats()).toMatchObject({ misses: 80, expiredMisses: 60, l1Hits: 160 })
    expect(c.advise()).toMatchObject({
      recommendation: 'raise-ttl',
      reason:
        '75 % of misses are expirations: a longer TTL (or grace) would keep them; with a TTL-only plan, readers then see values up to the new TTL old (now 30 ms)',
      numbers: { ttlMs: 30, expiredMissShare: 0.75 },
    })
  })

  it('raise-l1-size: 100 hot keys through an L1 of 10 entries; an L1 of 200 keeps them', async () => {
    const small = createCache({ name: 'small-l1', tiers: [boundedTier(10)], ...plan })
    await hotSet(small)
    // Each key's first read misses (its entry was pushed out 10 fills ago); its second hits.
    expect(small.stats()).toMatchObject({ l1Hits: 300, misses: 300, l1Evictions: 290 })
    expect(small.advise()).toMatchObject({
      recommendation: 'raise-l1-size',
      reason:
        'hit rate 50 %, and L1 evictions are 97 % of misses (290 evictions): L1 is smaller than the hot set; a larger maxEntries (or maxBytes) would keep it',
    })
    const large = createCache({ name: 'large-l1', tiers: [boundedTier(200)], ...plan })
    await hotSet(large)
    expect(large.stats()).toMatchObject({ misses: 100, l1Evictions: 0 })
    expect(large.advise().recommendation).toBe('keep')
  })

  it('raise-l1-size, predicted in observe mode from the ghost, with what the cache would save per lookup', async () => {
    const c = createCache({ name: 'observed-l1', tiers: [boundedTier(10)], mode: 'observe', ...plan })
    await hotSet(c, 4)
    const advice = c.advise()
    expect(advice.recommendation).toBe('raise-l1-size')
    expect(advice.reason).toContain('predicted hit rate 50 %, and L1 evictions are 97 % of predicted misses (290 evictions)')
    expect(advice.numbers).toMatchObject({ lookups: 600, hitRate: 0, predictedHitRate: 0.5, factoryP50Ms: 4 })
    // Half the lookups would hit L1 and save the 4 ms factory; no L2, so a miss costs nothing extra.
    expect(advice.numbers.savedMsPerLookup).toBeCloseTo(2)
  })

  it('keep: a slow factory and a good hit rate; adviseAll tables several caches', async () => {
    const c = createCache({ name: 'worth-it', tiers: [fakeLocalTier(), slowShared(1)], ...plan })
    for (let i = 0; i < 5; i++) await c.getOrSet(`k${i}`, takes(10, i)) // a 10 ms factory behind a 1 ms L2
    for (let round = 0; round < 30; round++) for (let i = 0; i < 5; i++) await c.getOrSet(`k${i}`, async () => i)
    expect(c.advise()).toMatchObject({ recommendation: 'keep', numbers: { factoryP50Ms: 10, l2P50Ms: 1, writesPerRead: 0 } })
    // 150 L1 hits of 155 lookups save the 10 ms factory; 5 misses pay two 1 ms round trips: (150 x 10 - 5 x 2) / 155.
    expect(c.advise().numbers.savedMsPerLookup).toBeCloseTo(1_490 / 155)
    expect(c.advise().reason).toBe('hit rate 97 %; factory 10 ms vs L2 1.00 ms: the cache saves 9.61 ms per lookup')
    const other = createCache({ name: 'idle', tiers: [fakeLocalTier()], ...plan })
    const { advice, table } = adviseAll([c, other])
    expect(advice.map((a) => a.recommendation)).toEqual(['keep', 'not-enough-data'])
    expect(table).toContain('| worth-it | keep |')
    expect(table).toContain('| idle | not-enough-data |')
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
