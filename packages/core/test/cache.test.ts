import { describe, expect, it, vi } from 'vitest'
import {
  CacheClosedError,
  InvalidArgumentError,
  InvalidKeyError,
  InvalidOptionError,
  PublishError,
  SerializationError,
  TierError,
  WriteFailedError,
  createCache,
  type TierCacheError,
} from '../src/index.js'
import { clock } from '../src/adapter.js'
import { ControlledShared, FakeBus, controlledSharedTier, deferred, entry, fakeLocalTier } from './fakes.js'

function twoTierCache(options: { bus?: FakeBus; onError?: (e: TierCacheError) => void } = {}) {
  const l1 = fakeLocalTier()
  const l2 = controlledSharedTier()
  const bus = options.bus ?? new FakeBus()
  const cache = createCache<unknown>({
    name: 'unit',
    tiers: [l1, l2],
    bus,
    ttl: '60s',
    onError: options.onError ?? (() => {}),
  })
  return { cache, l1: l1.bound, l2: l2.bound, bus }
}

describe('getOrSet read path', () => {
  it('L1 hit: returns the L1 value without touching L2 or the factory', async () => {
    const { cache, l1, l2 } = twoTierCache()
    l1.set('k', entry('from-l1'))
    const factory = vi.fn(() => 'from-factory')
    expect(await cache.getOrSet('k', factory)).toBe('from-l1')
    expect(factory).not.toHaveBeenCalled()
    expect(l2.calls).toEqual([])
  })

  it('an expired L1 entry is not served', async () => {
    const { cache, l1 } = twoTierCache()
    l1.set('k', { value: 'old', createdAt: 0, expiresAt: clock() - 1 })
    expect(await cache.getOrSet('k', () => 'fresh')).toBe('fresh')
  })

  it('L2 hit fills L1 with the remaining TTL, not a new one', async () => {
    const { cache, l1, l2 } = twoTierCache()
    const stored = entry('from-l2', 5_000)
    l2.map.set('k', stored)
    expect(await cache.getOrSet('k', () => 'from-factory')).toBe('from-l2')
    expect(l1.get('k')?.expiresAt).toBe(stored.expiresAt)
  })

  it('miss: runs the factory, writes L2 (only if absent) then L1 with the TTL', async () => {
    const { cache, l1, l2 } = twoTierCache()
    const before = clock()
    expect(await cache.getOrSet('k', () => 'made', { ttl: '5m' })).toBe('made')
    expect(l2.calls).toEqual(['get k', 'set k ifAbsent'])
    expect(l2.map.get('k')?.value).toBe('made')
    const expiresAt = l1.get('k')!.expiresAt
    expect(expiresAt).toBeGreaterThanOrEqual(before + 300_000)
    expect(expiresAt).toBeLessThanOrEqual(clock() + 300_000)
  })

  it('single-flight: concurrent calls for one key run the factory once', async () => {
    const { cache } = twoTierCache()
    const gate = deferred<string>()
    const factory = vi.fn(() => gate.promise)
    const calls = Array.from({ length: 50 }, () => cache.getOrSet('hot', factory))
    await new Promise((resolve) => setTimeout(resolve, 5))
    gate.resolve('once')
    expect(await Promise.all(calls)).toEqual(Array(50).fill('once'))
    expect(factory).toHaveBeenCalledTimes(1)
  })

  it('single-flight: a factory error reaches every joined caller, and the next call retries', async () => {
    const { cache } = twoTierCache()
    let attempt = 0
    const factory = async () => {
      attempt++
      await new Promise((resolve) => setTimeout(resolve, 5))
      if (attempt === 1) throw new Error('db down')
      return 'recovered'
    }
    const results = await Promise.allSettled([cache.getOrSet('k', factory), cache.getOrSet('k', factory)])
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected'])
    expect(await cache.getOrSet('k', factory)).toBe('recovered')
  })

  it('negative caching: null is cached with negativeTtl and returned without calling the factory again', async () => {
    const l1 = fakeLocalTier()
    const cache = createCache({ name: 'neg', tiers: [l1], ttl: '1h', negativeTtl: '2s' })
    const factory = vi.fn(() => null)
    expect(await cache.getOrSet('missing-row', factory)).toBeNull()
    expect(await cache.getOrSet('missing-row', factory)).toBeNull()
    expect(factory).toHaveBeenCalledTimes(1)
    expect(l1.bound.get('missing-row')!.expiresAt).toBeLessThanOrEqual(clock() + 2_000)
    // A cached null is a value, distinct from absent.
    expect(await cache.get('missing-row')).toBeNull()
    expect(await cache.get('never-seen')).toBeUndefined()
  })

  it('negativeTtl defaults to the smaller of ttl and 30s', async () => {
    const l1 = fakeLocalTier()
    const cache = createCache({ name: 'neg', tiers: [l1], ttl: '1h' })
    await cache.getOrSet('a', () => null)
    expect(l1.bound.get('a')!.expiresAt).toBeLessThanOrEqual(clock() + 30_000)
  })

  it('an L2 read failure degrades to the factory and is reported, never thrown', async () => {
    const errors: TierCacheError[] = []
    const { cache, l2 } = twoTierCache({ onError: (e) => errors.push(e) })
    l2.failWith = new Error('ECONNREFUSED')
    expect(await cache.getOrSet('k', () => 'made')).toBe('made')
    expect(errors[0]).toBeInstanceOf(TierError)
    expect(errors[0]!.message).toContain('cache "unit"')
    expect(errors[0]!.message).toContain('key "k"')
    expect(errors[0]!.message).toContain('fake-shared')
  })

  it('a value the L2 cannot encode rejects getOrSet with SerializationError and lands in no tier', async () => {
    const { cache, l1, l2 } = twoTierCache()
    l2.encodeError = new SerializationError('cannot encode', { cache: 'unit', key: 'k' })
    await expect(cache.getOrSet('k', () => ({ fn: () => 1 }))).rejects.toBeInstanceOf(SerializationError)
    expect(l1.get('k')).toBeUndefined()
    expect(l2.map.has('k')).toBe(false)
  })

  it('get never runs a factory and returns undefined on a miss', async () => {
    const { cache, l2 } = twoTierCache()
    expect(await cache.get('nothing')).toBeUndefined()
    l2.map.set('there', entry(42))
    expect(await cache.get('there')).toBe(42)
  })
})

describe('in-flight guard', () => {
  it('in-flight guard: an invalidation during an L2 read keeps the stale value out of L1', async () => {
    const { cache, l1, l2, bus } = twoTierCache()
    l2.map.set('k', entry('old'))
    const gate = deferred()
    l2.gate = gate
    const read = cache.get('k')
    await vi.waitFor(() => expect(l2.calls).toContain('get k'), { timeout: 5_000 })
    // Another instance writes: L2 changes, its invalidation arrives while our read is held.
    l2.map.set('k', entry('new'))
    bus.deliver({ kind: 'key', cache: 'unit', key: 'k' })
    gate.resolve()
    // The read may answer its own caller with what it got…
    expect(await read).toBe('old')
    // …but must not have put it in L1, so the next read sees the new value.
    expect(l1.get('k')).toBeUndefined()
    expect(await cache.get('k')).toBe('new')
  })

  it('in-flight guard: a clear during a factory run keeps its value out of L1 and L2', async () => {
    const { cache, l1, l2, bus } = twoTierCache()
    const gate = deferred<string>()
    const pending = cache.getOrSet('k', () => gate.promise)
    await vi.waitFor(() => expect(l2.calls).toContain('get k'), { timeout: 5_000 })
    bus.deliver({ kind: 'clear', cache: 'unit' })
    gate.resolve('computed-before-clear')
    expect(await pending).toBe('computed-before-clear')
    expect(l1.get('k')).toBeUndefined()
    expect(l2.map.has('k')).toBe(false)
  })

  it('in-flight guard: an invalidation of another key does not stop the fill', async () => {
    const { cache, l1, l2, bus } = twoTierCache()
    l2.map.set('k', entry('v'))
    const gate = deferred()
    l2.gate = gate
    const read = cache.get('k')
    await vi.waitFor(() => expect(l2.calls).toContain('get k'), { timeout: 5_000 })
    bus.deliver({ kind: 'key', cache: 'unit', key: 'other' })
    gate.resolve()
    await read
    expect(l1.get('k')?.value).toBe('v')
  })

  it('a local set during an in-flight load: later callers get the new value, not the load', async () => {
    const { cache, l1 } = twoTierCache()
    const gate = deferred<string>()
    const slow = cache.getOrSet('k', () => gate.promise)
    await new Promise((resolve) => setTimeout(resolve, 1))
    await cache.set('k', 'written')
    expect(await cache.getOrSet('k', () => 'unused')).toBe('written')
    gate.resolve('stale')
    expect(await slow).toBe('stale')
    expect(l1.get('k')?.value).toBe('written')
  })
})

describe('write path', () => {
  it('set writes L2, then L1, then publishes a key invalidation carrying this instance id', async () => {
    const { cache, l1, l2, bus } = twoTierCache()
    await cache.set('k', { n: 1 })
    expect(l2.map.get('k')?.value).toEqual({ n: 1 })
    expect(l1.get('k')?.value).toEqual({ n: 1 })
    expect(bus.published).toEqual([{ origin: cache.instanceId, invalidations: [{ kind: 'key', cache: 'unit', key: 'k' }] }])
  })

  it('delete removes the key from both tiers and publishes', async () => {
    const { cache, l1, l2, bus } = twoTierCache()
    await cache.set('k', 1)
    await cache.delete('k')
    expect(l1.get('k')).toBeUndefined()
    expect(l2.map.has('k')).toBe(false)
    expect(bus.published.at(-1)?.invalidations).toEqual([{ kind: 'key', cache: 'unit', key: 'k' }])
  })

  it('clear empties both tiers and publishes a clear', async () => {
    const { cache, l1, l2, bus } = twoTierCache()
    await cache.set('a', 1)
    await cache.set('b', 2)
    await cache.clear()
    expect(l1.size).toBe(0)
    expect(l2.map.size).toBe(0)
    expect(bus.published.at(-1)?.invalidations).toEqual([{ kind: 'clear', cache: 'unit' }])
  })

  it('a remote invalidation evicts the key from L1; a remote clear empties it', async () => {
    const { cache, l1, bus } = twoTierCache()
    await cache.set('a', 1)
    await cache.set('b', 2)
    bus.deliver({ kind: 'key', cache: 'unit', key: 'a' })
    expect(l1.get('a')).toBeUndefined()
    expect(l1.get('b')).toBeDefined()
    bus.deliver({ kind: 'clear', cache: 'unit' })
    expect(l1.size).toBe(0)
  })

  it('an L2 write failure rejects with WriteFailedError (its cause the TierError), drops the local copy and still publishes', async () => {
    const { cache, l1, l2, bus } = twoTierCache()
    await cache.set('k', 'old')
    l2.failWith = new Error('READONLY')
    const error = await cache.set('k', 'new').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(WriteFailedError)
    expect(error).toMatchObject({ code: 'ERR_WRITE_FAILED', queued: false, cache: 'unit', key: 'k' })
    expect((error as Error).message).toMatch(/may not have reached the shared tier \(write failed: READONLY/)
    expect((error as Error).cause).toBeInstanceOf(TierError)
    expect(((error as Error).cause as TierError).code).toBe('ERR_TIER')
    expect(l1.get('k')).toBeUndefined()
    expect(bus.published.at(-1)?.invalidations).toEqual([{ kind: 'key', cache: 'unit', key: 'k' }])
  })

  it('a value the L2 cannot encode rejects set with SerializationError; nothing is written or published', async () => {
    const { cache, l1, l2, bus } = twoTierCache()
    await cache.set('k', 'old')
    const published = bus.published.length
    l2.encodeError = new SerializationError('cannot encode', { cache: 'unit', key: 'k' })
    await expect(cache.set('k', { f: () => 1 })).rejects.toBeInstanceOf(SerializationError)
    expect(l1.get('k')?.value).toBe('old')
    expect(l2.map.get('k')?.value).toBe('old')
    expect(bus.published.length).toBe(published)
  })

  it('a publish failure rejects the write with PublishError', async () => {
    const { cache, bus } = twoTierCache()
    bus.failWith = new Error('connection lost')
    const error = await cache.set('k', 1).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(PublishError)
    expect((error as PublishError).message).toContain('key "k"')
  })
})

describe('bad input', () => {
  it.each([
    ['an empty key', ''],
    ['a non-string key', 42],
    ['a key over 1024 characters', 'x'.repeat(1025)],
  ])('%s is rejected with InvalidKeyError before any I/O', async (_label, key) => {
    const { cache, l2, bus } = twoTierCache()
    for (const call of [
      () => cache.getOrSet(key as string, () => 1),
      () => cache.get(key as string),
      () => cache.set(key as string, 1),
      () => cache.delete(key as string),
    ]) {
      const error = await call().catch((e: unknown) => e)
      expect(error).toBeInstanceOf(InvalidKeyError)
      expect((error as InvalidKeyError).code).toBe('ERR_INVALID_KEY')
      expect((error as InvalidKeyError).message).toContain('cache "unit"')
    }
    expect(l2.calls).toEqual([])
    expect(bus.published).toEqual([])
  })

  it('a bad per-call ttl is rejected before any I/O', async () => {
    const { cache, l2 } = twoTierCache()
    await expect(cache.set('k', 1, { ttl: '5 minutes' })).rejects.toBeInstanceOf(InvalidOptionError)
    await expect(cache.getOrSet('k', () => 1, { ttl: -1 })).rejects.toBeInstanceOf(InvalidOptionError)
    expect(l2.calls).toEqual([])
  })

  it('a factory that is not a function is rejected', async () => {
    const { cache } = twoTierCache()
    await expect(cache.getOrSet('k', 'nope' as never)).rejects.toBeInstanceOf(InvalidArgumentError)
  })

  it('createCache rejects bad names, unknown options, bad durations and bad tier lists', () => {
    const l1 = () => fakeLocalTier()
    expect(() => createCache({ name: 'a:b', tiers: [l1()] })).toThrow(InvalidOptionError)
    expect(() => createCache({ name: '', tiers: [l1()] })).toThrow(InvalidOptionError)
    expect(() => createCache({ name: 'ok', tiers: [l1()], ttll: '1m' } as never)).toThrow(/unknown option "ttll"/)
    expect(() => createCache({ name: 'ok', tiers: [l1()], ttl: '5 minutes' })).toThrow(/ttl/)
    expect(() => createCache({ name: 'ok', tiers: [] })).toThrow(/tiers/)
    expect(() => createCache({ name: 'ok', tiers: [controlledSharedTier(), l1()] })).toThrow(/local tier/)
    expect(() => createCache({ name: 'ok', tiers: [controlledSharedTier(), controlledSharedTier(new ControlledShared())] })).toThrow(/shared/)
  })
})

describe('lifecycle', () => {
  it('after close, calls reject with CacheClosedError and the bus membership is left', async () => {
    const { cache, bus } = twoTierCache()
    expect(bus.members).toHaveLength(1)
    await cache.close()
    await cache.close()
    expect(bus.members).toHaveLength(0)
    await expect(cache.getOrSet('k', () => 1)).rejects.toBeInstanceOf(CacheClosedError)
    await expect(cache.set('k', 1)).rejects.toBeInstanceOf(CacheClosedError)
  })

  it('L1-only and L2-only caches work', async () => {
    const l1Only = createCache({ name: 'l1', tiers: [fakeLocalTier()] })
    expect(await l1Only.getOrSet('k', () => 1)).toBe(1)
    const l2 = controlledSharedTier()
    const l2Only = createCache({ name: 'l2', tiers: [l2] })
    expect(await l2Only.getOrSet('k', () => 2)).toBe(2)
    expect(await l2Only.getOrSet('k', () => 3)).toBe(2)
    expect(l2.bound.calls.filter((c) => c.startsWith('get'))).toHaveLength(2)
  })
})

describe('liveness (unit)', () => {
  it('liveness: L1 is bypassed once the last answered probe is older than maxStaleness', async () => {
    const bus = new FakeBus()
    const { cache, l1, l2 } = twoTierCache({ bus })
    l1.set('k', entry('l1-copy'))
    l2.map.set('k', entry('l2-value'))
    bus.trust.verifiedAt = clock() - 100
    expect(await cache.get('k')).toBe('l1-copy')
    bus.trust.verifiedAt = clock() - 1_500
    expect(await cache.get('k')).toBe('l2-value')
  })

  it('a cache may set a tighter maxStaleness than its bus', async () => {
    const bus = new FakeBus()
    const l1 = fakeLocalTier()
    const cache = createCache({ name: 'tight', tiers: [l1, controlledSharedTier()], bus, maxStaleness: '50ms' })
    l1.bound.set('k', entry('l1-copy'))
    bus.trust.verifiedAt = clock() - 100
    expect(await cache.get('k')).toBeUndefined()
  })

  it('a gap clears L1 and keeps in-flight reads from filling it', async () => {
    const bus = new FakeBus()
    const { cache, l1, l2 } = twoTierCache({ bus })
    l1.set('a', entry(1))
    l2.map.set('k', entry('from-before-the-gap'))
    const gate = deferred()
    l2.gate = gate
    const read = cache.get('k')
    await vi.waitFor(() => expect(l2.calls).toContain('get k'), { timeout: 5_000 })
    bus.gap()
    gate.resolve()
    expect(await read).toBe('from-before-the-gap')
    expect(l1.size).toBe(0)
  })
})

describe('atomic write+publish (unit)', () => {
  it('with a route the L2 accepts, the invalidation rides the L2 write and is not published separately', async () => {
    const bus = new FakeBus()
    const shared = new ControlledShared()
    bus.route = { connection: {}, channel: 'c', encode: () => '', notePublished: () => {} }
    shared.acceptsRoute = bus.route
    const cache = createCache({ name: 'atomic', tiers: [fakeLocalTier(), controlledSharedTier(shared)], bus })
    await cache.set('k', 1)
    await cache.delete('k')
    await cache.clear()
    expect(bus.published).toEqual([])
    expect(shared.atomicallyPublished).toEqual([
      [{ kind: 'key', cache: 'atomic', key: 'k' }],
      [{ kind: 'key', cache: 'atomic', key: 'k' }],
      [{ kind: 'clear', cache: 'atomic' }],
    ])
  })

  it('without a matching route, the write path publishes through the bus', async () => {
    const bus = new FakeBus()
    bus.route = { connection: {}, channel: 'c', encode: () => '', notePublished: () => {} }
    const { cache } = twoTierCache({ bus })
    await cache.set('k', 1)
    expect(bus.published).toHaveLength(1)
  })

  it('the writer keeps its value out of its own L1 when another instance invalidated the key during the write', async () => {
    const bus = new FakeBus()
    const { cache, l1, l2 } = twoTierCache({ bus })
    const gate = deferred()
    const originalSet = l2.set.bind(l2)
    l2.set = async (key, value, options) => {
      await originalSet(key, value, options)
      await gate.promise
    }
    const writing = cache.set('k', 'mine')
    await new Promise((resolve) => setTimeout(resolve, 1))
    bus.deliver({ kind: 'key', cache: 'unit', key: 'k' }) // a newer write elsewhere
    gate.resolve()
    await writing
    expect(l1.get('k')).toBeUndefined()
  })
})
