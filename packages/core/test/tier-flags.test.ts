/**
 * Per-call tier flags (`skipL1`, `skipL2`) choose where one call reads and
 * stores a value, never which invalidations happen; and the factory can set
 * its result's grace (`ctx.setGrace`).
 */
import { describe, expect, it, vi } from 'vitest'
import { clock } from '../src/adapter.js'
import { InvalidOptionError, createCache } from '../src/index.js'
import { FakeBus, controlledSharedTier, entry, fakeLocalTier } from './fakes.js'

function caches() {
  const l2 = controlledSharedTier()
  const bus = new FakeBus()
  const make = (name: string) => {
    const l1 = fakeLocalTier()
    const cache = createCache<string>({ name: 'flags', tiers: [l1, l2], bus, ttl: '1h', onError: () => {}, invalidation: { notes: name } })
    return { cache, l1: l1.bound }
  }
  return { a: make('a'), b: make('b'), l2: l2.bound, bus }
}

describe('skipL1 / skipL2 on reads', () => {
  it('getOrSet with skipL1 reads past L1 and does not fill it', async () => {
    const { a, l2 } = caches()
    a.l1.set('k', entry('in-l1'))
    l2.map.set('k', entry('in-l2'))
    expect(await a.cache.getOrSet('k', async () => 'db', { skipL1: true })).toBe('in-l2')
    expect(a.l1.get('k')?.value).toBe('in-l1')
    expect(await a.cache.getOrSet('new', async () => 'db', { skipL1: true })).toBe('db')
    expect(a.l1.get('new')).toBeUndefined()
    expect(l2.map.get('new')?.value).toBe('db') // stored in L2
  })

  it('getOrSet with skipL2 neither reads nor writes L2, and fills L1', async () => {
    const { a, l2 } = caches()
    l2.map.set('k', entry('in-l2'))
    expect(await a.cache.getOrSet('k', async () => 'db', { skipL2: true })).toBe('db')
    expect(l2.calls).toEqual([])
    expect(a.l1.get('k')?.value).toBe('db')
    expect(l2.map.get('k')?.value).toBe('in-l2')
  })

  it('get and getMany honour both flags', async () => {
    const { a, l2 } = caches()
    a.l1.set('k', entry('in-l1'))
    l2.map.set('k', entry('in-l2'))
    l2.map.set('only-l2', entry('l2-value'))
    expect(await a.cache.get('k', { skipL1: true })).toBe('in-l2')
    expect(await a.cache.get('only-l2', { skipL2: true })).toBeUndefined()
    expect(await a.cache.get('only-l2', { skipL1: true })).toBe('l2-value')
    expect(a.l1.get('only-l2')).toBeUndefined() // skipL1: not filled
    expect(await a.cache.getMany(['k', 'only-l2'], { skipL1: true })).toEqual(['in-l2', 'l2-value'])
    expect(await a.cache.getMany(['k', 'only-l2'], { skipL2: true })).toEqual(['in-l1', undefined])
    expect(a.l1.get('only-l2')).toBeUndefined()
  })
})

describe('skipL1 / skipL2 on writes: where the value goes, never which invalidations happen', () => {
  it('set with skipL2 keeps the value in L1 only, deletes the L2 copy and publishes: no instance reads the old L2 value back', async () => {
    const { a, b, l2, bus } = caches()
    await a.cache.set('k', 'old')
    expect(await b.cache.get('k')).toBe('old') // b holds it in L1 too
    await a.cache.set('k', 'new', { skipL2: true })
    expect(a.l1.get('k')?.value).toBe('new')
    expect(l2.map.has('k')).toBe(false)
    expect(l2.calls).toContain('delete k')
    expect(bus.published.at(-1)?.invalidations).toEqual([{ kind: 'key', cache: 'flags', key: 'k' }])
    bus.deliver({ kind: 'key', cache: 'flags', key: 'k' }) // what the bus does for b
    expect(await b.cache.get('k')).toBeUndefined() // not the old value
  })

  it('set with skipL1 writes L2 and publishes, and drops the writer’s own L1 copy', async () => {
    const { a, l2, bus } = caches()
    await a.cache.set('k', 'old')
    await a.cache.set('k', 'new', { skipL1: true })
    expect(a.l1.get('k')).toBeUndefined()
    expect(l2.map.get('k')?.value).toBe('new')
    expect(bus.published.at(-1)?.invalidations).toEqual([{ kind: 'key', cache: 'flags', key: 'k' }])
  })

  it('delete with flags still removes the key from every tier and publishes', async () => {
    const { a, l2, bus } = caches()
    await a.cache.set('k', 'v')
    await a.cache.delete('k', { skipL2: true, skipL1: true })
    expect(a.l1.get('k')).toBeUndefined()
    expect(l2.map.has('k')).toBe(false)
    expect(bus.published.at(-1)?.invalidations).toEqual([{ kind: 'key', cache: 'flags', key: 'k' }])
  })

  it('flags are validated before any I/O, naming the cache and key', async () => {
    const { a, l2 } = caches()
    const bad = { skipL2: 'yes' as unknown as boolean }
    await expect(a.cache.getOrSet('k', async () => 'v', bad)).rejects.toThrow(InvalidOptionError)
    await expect(a.cache.set('k', 'v', bad)).rejects.toThrow(/skipL2: must be true or false.*cache "flags", key "k"/)
    await expect(a.cache.delete('k', bad)).rejects.toThrow(InvalidOptionError)
    await expect(a.cache.get('k', bad)).rejects.toThrow(InvalidOptionError)
    await expect(a.cache.getMany(['k'], bad)).rejects.toThrow(InvalidOptionError)
    expect(l2.calls).toEqual([])
  })
})

describe('ctx.skipL2', () => {
  it('keeps the result in L1 only, and deletes the L2 copy and publishes, as a set with skipL2 does', async () => {
    const { a, l2, bus } = caches()
    const now = clock()
    l2.map.set('k', { value: 'old', createdAt: 0, expiresAt: now - 1, staleUntil: now - 1 }) // expired in L2
    expect(
      await a.cache.getOrSet('k', async (ctx) => {
        ctx.skipL2()
        return 'huge'
      }),
    ).toBe('huge')
    expect(a.l1.get('k')?.value).toBe('huge')
    expect(l2.map.has('k')).toBe(false)
    expect(l2.calls).toContain('delete k')
    expect(l2.calls.filter((call) => call.startsWith('set'))).toEqual([])
    expect(bus.published.at(-1)?.invalidations).toEqual([{ kind: 'key', cache: 'flags', key: 'k' }])
  })
})

describe('ctx.setGrace', () => {
  it('the factory chooses its result’s grace', async () => {
    const { a, l2 } = caches()
    await a.cache.getOrSet('k', async (ctx) => {
      ctx.setTtl('1m')
      ctx.setGrace('10m')
      return 'v'
    })
    const stored = l2.map.get('k')!
    expect(stored.staleUntil! - stored.expiresAt).toBe(600_000)
    await a.cache.getOrSet('z', async (ctx) => {
      ctx.setGrace(0)
      return 'v'
    })
    expect(l2.map.get('z')!.staleUntil).toBe(l2.map.get('z')!.expiresAt)
    await expect(
      a.cache.getOrSet('bad', async (ctx) => {
        ctx.setGrace('soon')
        return 'v'
      }),
    ).rejects.toThrow(InvalidOptionError)
  })
})

describe('l1Ttl', () => {
  it('L1 keeps a value at most l1Ttl from its fill, never past its L2 TTL; grace stays with the L2 entry', async () => {
    const l1 = fakeLocalTier()
    const l2 = controlledSharedTier()
    const c = createCache<string>({ name: 'l1ttl', tiers: [l1, l2], ttl: '1h', grace: '1h', l1Ttl: '1m', onError: () => {}, invalidation: { ttlOnly: true } })
    const before = clock()
    await c.set('k', 'v')
    const inL1 = l1.bound.get('k')!
    const inL2 = l2.bound.map.get('k')!
    expect(inL1.expiresAt).toBeLessThanOrEqual(clock() + 60_000)
    expect(inL1.expiresAt).toBeGreaterThanOrEqual(before + 60_000)
    expect(inL1.staleUntil).toBeUndefined()
    expect(inL2.expiresAt).toBeGreaterThanOrEqual(before + 3_600_000)
    expect(c.describe()).toMatchObject({ l1TtlMs: 60_000, onBusDown: 'reuse', writeRecovery: false })
    expect(c.describe().markdown).toContain('3600s (L1 60s)')
    // A value whose L2 TTL is shorter than l1Ttl keeps its own expiry.
    expect(await c.getOrSet('short', async () => 'v', { ttl: '10s' })).toBe('v')
    expect(l1.bound.get('short')!.expiresAt).toBe(l2.bound.map.get('short')!.expiresAt)
    // Per call, and on the L2 read path.
    l2.bound.map.set('fromL2', entry('x', 3_600_000))
    expect(await c.getOrSet('fromL2', async () => 'db', { l1Ttl: '5s' })).toBe('x')
    expect(l1.bound.get('fromL2')!.expiresAt).toBeLessThanOrEqual(clock() + 5_000)
    await c.close()
  })

  it('an L1 copy past l1Ttl is read again from L2', async () => {
    const l1 = fakeLocalTier()
    const l2 = controlledSharedTier()
    const c = createCache<string>({ name: 'l1ttl', tiers: [l1, l2], ttl: '1h', l1Ttl: 10, onError: () => {}, invalidation: { ttlOnly: true } })
    await c.set('k', 'v')
    await vi.waitFor(() => expect(l1.bound.get('k')!.expiresAt).toBeLessThan(clock()), { timeout: 10_000, interval: 5 })
    expect(await c.get('k')).toBe('v')
    expect(l2.bound.calls).toContain('get k')
    await c.close()
  })

  it('on an L1-only cache it is min(ttl, l1Ttl), grace counted from there', async () => {
    const l1 = fakeLocalTier()
    const c = createCache<string>({ name: 'l1only', tiers: [l1], ttl: '1h', grace: '10s', l1Ttl: '1m', invalidation: { ttlOnly: true } })
    await c.getOrSet('k', async () => 'v')
    const held = l1.bound.get('k')!
    expect(held.expiresAt).toBeLessThanOrEqual(clock() + 60_000)
    expect(held.staleUntil! - held.expiresAt).toBe(10_000)
    expect(() => createCache({ name: 'bad', tiers: [fakeLocalTier()], l1Ttl: 'soon' })).toThrow(InvalidOptionError)
    await c.close()
  })
})
