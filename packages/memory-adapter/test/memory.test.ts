import { createCache, InvalidOptionError, SerializationError, type BoundLocalTier, type TierEntry } from '@tiercache/core'
import { describe, expect, it } from 'vitest'
import { estimateBytes, memoryBus, memoryStore, memoryTier } from '../src/index.js'

/** Three caches sharing one store and one bus behave as three instances of a service. */
function threeInstances() {
  const store = memoryStore()
  const bus = memoryBus()
  const instances = [0, 1, 2].map(() => createCache<{ version: number }>({ name: 'users', tiers: [memoryTier(), store], bus, ttl: '1h' }))
  return { store, bus, instances }
}

describe('in-process instances over memoryStore + memoryBus', () => {
  it('a write on one instance evicts the L1 copy on every other instance before it resolves', async () => {
    const { instances } = threeInstances()
    const [a, b, c] = instances as [(typeof instances)[0], (typeof instances)[0], (typeof instances)[0]]
    await a.set('u1', { version: 1 })
    // b and c read through the shared store into their own L1.
    expect(await b.getOrSet('u1', () => ({ version: -1 }))).toEqual({ version: 1 })
    expect(await c.getOrSet('u1', () => ({ version: -1 }))).toEqual({ version: 1 })
    await a.set('u1', { version: 2 })
    expect(await b.get('u1')).toEqual({ version: 2 })
    expect(await c.get('u1')).toEqual({ version: 2 })
    await b.delete('u1')
    expect(await a.get('u1')).toBeUndefined()
    expect(await c.get('u1')).toBeUndefined()
  })

  it('clear on one instance empties that cache everywhere, and leaves other caches alone', async () => {
    const { store, bus, instances } = threeInstances()
    const other = createCache({ name: 'orders', tiers: [memoryTier(), store], bus })
    await other.set('o1', 'order')
    await instances[0]!.set('u1', { version: 1 })
    await instances[1]!.get('u1')
    await instances[2]!.clear()
    expect(await instances[0]!.get('u1')).toBeUndefined()
    expect(await instances[1]!.get('u1')).toBeUndefined()
    expect(await other.get('o1')).toBe('order')
  })

  it('getOrSet runs the factory once across instances when the value is already in the store', async () => {
    const { instances } = threeInstances()
    let calls = 0
    const factory = () => ({ version: ++calls })
    await instances[0]!.getOrSet('u1', factory)
    await instances[1]!.getOrSet('u1', factory)
    await instances[2]!.getOrSet('u1', factory)
    expect(calls).toBe(1)
  })

  it('without the bus, another instance keeps serving its stale L1 copy (why the bus exists)', async () => {
    const store = memoryStore()
    const a = createCache({ name: 'nobus', tiers: [memoryTier(), store], ttl: '1h' })
    const b = createCache({ name: 'nobus', tiers: [memoryTier(), store], ttl: '1h' })
    await a.set('k', 1)
    expect(await b.get('k')).toBe(1)
    await a.set('k', 2)
    expect(await b.get('k')).toBe(1)
  })

  it('a function value is rejected by the store with SerializationError naming cache and key; nothing lands', async () => {
    const { instances } = threeInstances()
    const error = await instances[0]!.set('bad', { version: 1, fn: () => 1 } as never).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SerializationError)
    expect((error as Error).message).toContain('cache "users"')
    expect((error as Error).message).toContain('key "bad"')
    expect(await instances[0]!.get('bad')).toBeUndefined()
  })

  it('bus status counts members and messages; a closed cache leaves the bus', async () => {
    const { bus, instances } = threeInstances()
    expect(bus.status().members).toBe(3)
    await instances[0]!.set('k', { version: 1 })
    expect(bus.status().messagesPublished).toBe(1)
    await instances[0]!.close()
    expect(bus.status().members).toBe(2)
  })
})

describe('memoryTier', () => {
  it('evicts the least recently used entry beyond maxEntries', async () => {
    const cache = createCache({ name: 'lru', tiers: [memoryTier({ maxEntries: 2 })] })
    await cache.set('a', 1)
    await cache.set('b', 2)
    await cache.get('a')
    await cache.set('c', 3)
    expect(await cache.get('b')).toBeUndefined()
    expect(await cache.get('a')).toBe(1)
    expect(await cache.get('c')).toBe(3)
  })

  it('deleting the only entry (kept as an O(1) marker inside lru-cache) reads as absent and is not counted', async () => {
    const tier = memoryTier({ maxEntries: 200_000 }).bind({ cacheName: 'one-key' })
    const entry = (value: number) => ({ value, createdAt: Date.now(), expiresAt: Date.now() + 60_000 })
    tier.set('flag', entry(1))
    tier.delete('flag')
    expect(tier.get('flag')).toBeUndefined()
    expect(tier.size).toBe(0)
    tier.delete('flag') // deleting it again changes nothing
    expect(tier.size).toBe(0)
    tier.set('other', entry(2))
    expect(tier.size).toBe(1)
    expect(tier.get('flag')).toBeUndefined()
    tier.set('flag', entry(3))
    expect(tier.get('flag')?.value).toBe(3)
    expect(tier.size).toBe(2)
    tier.delete('other')
    tier.delete('flag')
    expect(tier.size).toBe(0)
    expect(tier.get('other')).toBeUndefined()
    expect(tier.get('flag')).toBeUndefined()
  })

  it('a one-key cache sees every remote write: the deleted-entry marker never answers a read', async () => {
    const store = memoryStore()
    const bus = memoryBus()
    const writer = createCache<number>({ name: 'flags', tiers: [memoryTier(), store], bus, ttl: '1h' })
    const reader = createCache<number>({ name: 'flags', tiers: [memoryTier(), store], bus, ttl: '1h' })
    for (let version = 1; version <= 5; version++) {
      await writer.set('flag', version)
      expect(await reader.get('flag')).toBe(version)
      expect(await reader.getOrSet('flag', () => -1)).toBe(version)
    }
    await writer.delete('flag')
    expect(await reader.get('flag')).toBeUndefined()
    expect(reader.stats().l1Entries).toBe(0)
  })

  it('one memoryTier serves one cache: binding it twice is an error', () => {
    const tier = memoryTier()
    createCache({ name: 'first', tiers: [tier] })
    expect(() => createCache({ name: 'second', tiers: [tier] })).toThrow(/already serves cache "first"/)
  })

  it.each([[0], [-1], [1.5], [Number.NaN]])('maxEntries %s is rejected', (maxEntries) => {
    expect(() => memoryTier({ maxEntries })).toThrow(InvalidOptionError)
  })

  it('counts evictions for room only: not expiries, deletes, overwrites or clears; stats() shows them', async () => {
    const cache = createCache<number>({ name: 'evict', tiers: [memoryTier({ maxEntries: 10 })], ttl: '1h', invalidation: { ttlOnly: true } })
    for (let i = 0; i < 100; i++) await cache.set(`k${i}`, i)
    expect(cache.stats()).toMatchObject({ l1Entries: 10, l1Evictions: 90, l1Bytes: undefined })
    await cache.set('k99', -1) // an overwrite
    await cache.delete('k98')
    await cache.set('new', 1) // takes the room the delete made
    expect(cache.stats()).toMatchObject({ l1Entries: 10, l1Evictions: 90 })
    await cache.clear()
    for (let i = 0; i < 10; i++) await cache.set(`again${i}`, i)
    expect(cache.stats()).toMatchObject({ l1Entries: 10, l1Evictions: 90 })
    await cache.set('one-more', 1)
    expect(cache.stats().l1Evictions).toBe(91)
  })

  it('counts 100 hot keys cycling through a 10-entry L1 as evictions on every fill', async () => {
    const cache = createCache<number>({ name: 'small', tiers: [memoryTier({ maxEntries: 10 })], ttl: '1h', invalidation: { ttlOnly: true } })
    for (let round = 0; round < 3; round++) for (let i = 0; i < 100; i++) await cache.getOrSet(`k${i}`, async () => i)
    expect(cache.stats()).toMatchObject({ l1Hits: 0, misses: 300, l1Evictions: 290 })
  })

  it('L1 holds values by reference (documented): the same object comes back', async () => {
    const cache = createCache<{ n: number }>({ name: 'ref', tiers: [memoryTier()] })
    const value = { n: 1 }
    await cache.set('k', value)
    expect(await cache.get('k')).toBe(value)
  })
})

describe('memoryTier maxBytes', () => {
  type Sized = BoundLocalTier & { bytes: number }
  const entryOf = (value: unknown): TierEntry => ({ value, createdAt: 0, expiresAt: Number.POSITIVE_INFINITY })

  it('holds at most maxBytes by the default estimate, evicting the least recently used', () => {
    const tier = memoryTier({ maxBytes: 100_000 }).bind({ cacheName: 'bytes' }) as Sized
    for (let i = 0; i < 1_000; i++) tier.set(`k${i}`, entryOf({ id: i, text: 'x'.repeat(1_000) }))
    expect(tier.bytes).toBeLessThanOrEqual(100_000)
    expect(tier.size).toBeGreaterThan(10)
    expect(tier.size).toBeLessThan(100) // ~2 KB each by the estimate
    expect(tier.get('k999')).toBeDefined() // the newest stay
    expect(tier.get('k0')).toBeUndefined()
    tier.close()
  })

  it('uses sizeOf when given; an entry bigger than the budget is not kept; a throwing sizeOf does not fail the write', () => {
    const sizes: string[] = []
    const tier = memoryTier({
      maxBytes: 1_000,
      sizeOf: (value, key) => {
        sizes.push(key)
        if (key === 'throws') throw new Error('x')
        return key === 'bad' ? Number.NaN : (value as number)
      },
    }).bind({ cacheName: 'sized' }) as Sized
    tier.set('a', entryOf(400))
    tier.set('b', entryOf(400))
    expect(tier.bytes).toBe(800)
    tier.set('huge', entryOf(5_000))
    expect(tier.get('huge')).toBeUndefined()
    expect(() => tier.set('throws', entryOf(1))).not.toThrow()
    expect(() => tier.set('bad', entryOf(1))).not.toThrow()
    expect(tier.bytes).toBeLessThanOrEqual(1_000)
    expect(sizes).toContain('a')
    tier.close()
  })

  it('reports its bytes and byte evictions through counters(); the deleted-entry marker counts for nothing', () => {
    const tier = memoryTier({ maxBytes: 1_000, sizeOf: (value) => value as number }).bind({ cacheName: 'counted' })
    expect(tier.counters?.()).toEqual({ evictions: 0, bytes: 0 })
    tier.set('a', entryOf(400))
    tier.set('b', entryOf(400))
    expect(tier.counters?.()).toEqual({ evictions: 0, bytes: 800 })
    tier.set('c', entryOf(400)) // 1 200 > 1 000: 'a' goes
    expect(tier.counters?.()).toEqual({ evictions: 1, bytes: 800 })
    tier.delete('b')
    tier.delete('c') // the last entry: kept as the marker
    expect(tier.counters?.()).toEqual({ evictions: 1, bytes: 0 })
    tier.close()
  })

  it('sizeOf alone measures bytes without bounding them; neither set, bytes are unknown', async () => {
    const measured = memoryTier({ sizeOf: () => 1_000_000 }).bind({ cacheName: 'measured' })
    for (let i = 0; i < 50; i++) measured.set(`k${i}`, entryOf(i))
    expect(measured.size).toBe(50)
    expect(measured.counters?.()).toEqual({ evictions: 0, bytes: 50_000_000 })
    measured.close()
    expect(memoryTier().bind({ cacheName: 'plain' }).counters?.()).toEqual({ evictions: 0 })
    const cache = createCache<string>({
      name: 'bytes-stats',
      tiers: [memoryTier({ maxBytes: 10_000, sizeOf: (value) => (value as string).length })],
      invalidation: { ttlOnly: true },
    })
    await cache.set('a', 'x'.repeat(6_000))
    await cache.set('b', 'x'.repeat(3_000))
    await cache.set('c', 'x'.repeat(3_000))
    expect(cache.stats()).toMatchObject({ l1Bytes: 6_000, l1Evictions: 1, l1Entries: 2 })
  })

  it('refuses a bad maxBytes, sizeOf or unknown option at construction', () => {
    expect(() => memoryTier({ maxBytes: 0 })).toThrow(InvalidOptionError)
    expect(() => memoryTier({ maxBytes: Number.NaN })).toThrow(/maxBytes/)
    expect(() => memoryTier({ maxBytes: 10, sizeOf: 5 as never })).toThrow(/sizeOf/)
    expect(() => memoryTier({ maxEntriez: 5 } as never)).toThrow(/maxEntriez/)
  })

  it('estimateBytes grows with the value, counts shared references once, and stops at a bounded walk', () => {
    expect(estimateBytes('x'.repeat(1_000))).toBeGreaterThan(estimateBytes('x'))
    const shared = { big: 'y'.repeat(10_000) }
    expect(estimateBytes([shared, shared])).toBeLessThan(2 * estimateBytes(shared))
    const wide = Array.from({ length: 100_000 }, (_, i) => i)
    expect(estimateBytes(wide)).toBeGreaterThan(100_000)
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(estimateBytes(cyclic)).toBeGreaterThan(0)
  })
})
