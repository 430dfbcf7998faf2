import { describe, expect, it, vi } from 'vitest'
import { clock } from '../src/adapter.js'
import { FactoryTimeoutError, InvalidOptionError, SerializationError, WriteFailedError, createCache, type TierCacheError } from '../src/index.js'
import { FakeBus, controlledSharedTier, deferred, fakeLocalTier } from './fakes.js'

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

function cache(options: Record<string, unknown> = {}) {
  const l1 = fakeLocalTier()
  const l2 = controlledSharedTier()
  const errors: TierCacheError[] = []
  const c = createCache<string>({
    name: 'policy',
    tiers: [l1, l2],
    bus: new FakeBus(),
    ttl: '1h',
    onError: (e) => errors.push(e),
    ...options,
  })
  return { cache: c, l1: l1.bound, l2: l2.bound, errors }
}

/** Puts `value` in both tiers, already past its TTL but within grace. */
function expire(l1: { map: Map<string, unknown> }, l2: { map: Map<string, unknown> }, key: string, value: string, graceMs = 60_000) {
  const now = clock()
  const entry = { value, createdAt: now - 10_000, expiresAt: now - 1, staleUntil: now + graceMs }
  l1.map.set(key, entry)
  l2.map.set(key, entry)
}

describe('grace: stale-while-revalidate', () => {
  it('past TTL within grace: answers the stale value at once and refreshes once in the background', async () => {
    const { cache: c, l1, l2 } = cache({ grace: '10m' })
    expire(l1, l2, 'k', 'stale')
    const gate = deferred<string>()
    const factory = vi.fn(() => gate.promise)
    expect(await c.getOrSet('k', factory)).toBe('stale')
    expect(await c.getOrSet('k', factory)).toBe('stale')
    gate.resolve('fresh')
    await vi.waitFor(() => expect(l1.get('k')?.value).toBe('fresh'), { timeout: 5_000 })
    expect(factory).toHaveBeenCalledTimes(1)
    expect(await c.getOrSet('k', factory)).toBe('fresh')
    expect(c.stats().staleServed).toBe(2)
  })

  it("refreshStale: 'wait' waits for the refresh instead", async () => {
    const { cache: c, l1, l2 } = cache({ grace: '10m', refreshStale: 'wait' })
    expire(l1, l2, 'k', 'stale')
    expect(await c.getOrSet('k', async () => 'fresh')).toBe('fresh')
  })

  it('a stale entry found only in L2 also answers at once', async () => {
    const { cache: c, l1, l2 } = cache({ grace: '10m' })
    expire(l1, l2, 'k', 'stale')
    l1.map.clear()
    const gate = deferred<string>()
    expect(await c.getOrSet('k', () => gate.promise)).toBe('stale')
    gate.resolve('fresh')
  })

  it('past grace, the stale value is gone: the caller waits for the factory', async () => {
    const { cache: c, l1, l2 } = cache({ grace: '10m' })
    expire(l1, l2, 'k', 'stale', -1)
    expect(await c.getOrSet('k', async () => 'fresh')).toBe('fresh')
  })

  it('without grace, values are stored with no stale window', async () => {
    const { cache: c, l1 } = cache()
    await c.getOrSet('k', () => 'v')
    expect(l1.get('k')!.staleUntil).toBe(l1.get('k')!.expiresAt)
  })
})

describe('fail-safe', () => {
  it('a throwing factory with a usable stale entry answers stale, reports it, and backs off before retrying', async () => {
    const { cache: c, l1, l2, errors } = cache({ grace: '10m', refreshStale: 'wait', failSafeBackoff: '200ms' })
    expire(l1, l2, 'k', 'stale')
    const factory = vi.fn(async () => {
      throw new Error('database down')
    })
    expect(await c.getOrSet('k', factory)).toBe('stale')
    expect(c.stats().failSafe).toBe(1)
    expect(errors.at(-1)?.message).toContain('database down')
    // Within the backoff the stale value is served from L1 without calling the factory.
    expect(await c.getOrSet('k', factory)).toBe('stale')
    expect(factory).toHaveBeenCalledTimes(1)
    await sleep(250)
    expect(await c.getOrSet('k', factory)).toBe('stale')
    expect(factory).toHaveBeenCalledTimes(2)
  })

  it('without a stale entry, the factory error reaches the caller unchanged', async () => {
    const { cache: c } = cache({ grace: '10m' })
    class DbError extends Error {}
    await expect(c.getOrSet('k', () => Promise.reject(new DbError('no')))).rejects.toBeInstanceOf(DbError)
  })
})

describe('factory timeouts', () => {
  it('hardTimeout: rejects with FactoryTimeoutError naming cache and key, and frees the key for the next call', async () => {
    const { cache: c } = cache({ hardTimeout: '50ms' })
    const error = await c.getOrSet('k', () => new Promise<string>(() => {})).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(FactoryTimeoutError)
    expect((error as FactoryTimeoutError).code).toBe('ERR_FACTORY_TIMEOUT')
    expect((error as Error).message).toContain('key "k"')
    expect(await c.getOrSet('k', async () => 'next')).toBe('next')
  })

  it('hardTimeout with a stale value: fail-safe answers stale', async () => {
    const { cache: c, l1, l2 } = cache({ grace: '10m', refreshStale: 'wait', hardTimeout: '50ms' })
    expire(l1, l2, 'k', 'stale')
    expect(await c.getOrSet('k', () => new Promise<string>(() => {}))).toBe('stale')
  })

  it('softTimeout: a slow factory is answered with the stale value and still updates the cache when it finishes', async () => {
    const { cache: c, l1, l2 } = cache({ grace: '10m', refreshStale: 'wait', softTimeout: '30ms' })
    expire(l1, l2, 'k', 'stale')
    const gate = deferred<string>()
    expect(await c.getOrSet('k', () => gate.promise)).toBe('stale')
    gate.resolve('fresh')
    await vi.waitFor(() => expect(l2.map.get('k')?.value).toBe('fresh'), { timeout: 5_000 })
    expect(await c.getOrSet('k', async () => 'unused')).toBe('fresh')
  })
})

describe('factory context', () => {
  it('setTtl stores the value with the factory-chosen TTL', async () => {
    const { cache: c, l1 } = cache()
    await c.getOrSet('k', (ctx) => {
      ctx.setTtl('2s')
      return 'v'
    })
    expect(l1.get('k')!.expiresAt).toBeLessThanOrEqual(clock() + 2_000)
  })

  it('skipCache returns the value without caching it anywhere', async () => {
    const { cache: c, l1, l2 } = cache()
    expect(
      await c.getOrSet('k', (ctx) => {
        ctx.skipCache()
        return 'uncached'
      }),
    ).toBe('uncached')
    expect(l1.get('k')).toBeUndefined()
    expect(l2.map.has('k')).toBe(false)
  })

  it('the factory sees the stale value it replaces', async () => {
    const { cache: c, l1, l2 } = cache({ grace: '10m', refreshStale: 'wait' })
    expire(l1, l2, 'k', 'old')
    let seen: unknown
    await c.getOrSet('k', (ctx) => {
      seen = { stale: ctx.stale, hasStale: ctx.hasStale, key: ctx.key }
      return `${ctx.stale}+1`
    })
    expect(seen).toEqual({ stale: 'old', hasStale: true, key: 'k' })
  })
})

describe('TTL jitter', () => {
  it('jitter: 0.1 spreads TTLs within ±10 %', async () => {
    const { cache: c, l1 } = cache({ ttl: '100s', jitter: 0.1 })
    const ttls: number[] = []
    for (let i = 0; i < 200; i++) {
      const before = clock()
      await c.getOrSet(`k${i}`, () => 'v')
      ttls.push(l1.get(`k${i}`)!.expiresAt - before)
    }
    expect(Math.min(...ttls)).toBeGreaterThanOrEqual(89_990)
    expect(Math.max(...ttls)).toBeLessThanOrEqual(110_010)
    expect(Math.max(...ttls) - Math.min(...ttls)).toBeGreaterThan(10_000)
  })

  it.each([[-0.1], [1], [Number.NaN], ['0.1']])('jitter %s is rejected', (jitter) => {
    expect(() => cache({ jitter })).toThrow(InvalidOptionError)
  })
})

describe('negative caching and per-call TTLs', () => {
  it('a per-call ttl shorter than negativeTtl also bounds the cached miss', async () => {
    const { cache: c, l1 } = cache()
    await c.getOrSet('k', () => null as unknown as string, { ttl: '1s' })
    expect(l1.get('k')!.expiresAt).toBeLessThanOrEqual(clock() + 1_000)
  })
})

describe('circuit breaker', () => {
  it('opens after consecutive L2 failures: reads skip L2 for the factory, writes reject at once; a background probe closes it, never a request', async () => {
    const { cache: c, l2 } = cache({ circuitBreaker: { failureThreshold: 3, openFor: '100ms' } })
    l2.failWith = new Error('ECONNREFUSED')
    for (let i = 0; i < 3; i++) expect(await c.getOrSet(`k${i}`, async () => 'from-factory')).toBe('from-factory')
    expect(c.stats().circuit).toBe('open')
    const requestCalls = () => l2.calls.filter((call) => !call.includes('tiercache-probe')).length
    const callsWhenOpened = requestCalls()
    expect(await c.getOrSet('other', async () => 'from-factory')).toBe('from-factory')
    const rejected = await c.set('k', 'v').catch((error: unknown) => error)
    expect(rejected).toBeInstanceOf(WriteFailedError)
    expect(rejected).toMatchObject({ code: 'ERR_WRITE_FAILED', queued: false, key: 'k', cause: { code: 'ERR_CIRCUIT_OPEN' } })
    expect((rejected as Error).message).toMatch(/did not reach the shared tier .*other instances may serve the previous value/)
    // The background probe runs (and fails) while the tier is down; requests keep skipping L2 through every cool-down.
    await vi.waitFor(() => expect(l2.calls.filter((call) => call.includes('tiercache-probe')).length).toBeGreaterThanOrEqual(2), { timeout: 30_000 })
    expect(await c.getOrSet('during', async () => 'from-factory')).toBe('from-factory')
    expect(requestCalls()).toBe(callsWhenOpened) // no request reached L2 while open, none was the probe
    l2.failWith = undefined
    await vi.waitFor(() => expect(c.stats().circuit).toBe('closed'), { timeout: 30_000 })
    expect(requestCalls()).toBe(callsWhenOpened) // closed by the background probe alone
    expect(await c.getOrSet('after', async () => 'v')).toBe('v')
    expect(requestCalls()).toBeGreaterThan(callsWhenOpened)
    expect(c.stats().circuitOpenings).toBe(1)
    expect(c.stats().l2CallsSkipped).toBeGreaterThanOrEqual(3)
    await c.close()
  })

  it('circuitBreaker: false never skips L2', async () => {
    const { cache: c, l2 } = cache({ circuitBreaker: false })
    l2.failWith = new Error('down')
    for (let i = 0; i < 10; i++) await c.getOrSet(`k${i}`, async () => 'v')
    expect(l2.calls.filter((call) => call.startsWith('get'))).toHaveLength(10)
    expect(c.stats().circuit).toBe('off')
  })
})

describe('onBusDown', () => {
  it("'serve-stale-l1' keeps serving L1 while the bus cannot prove delivery; the default bypasses it", async () => {
    const bus = new FakeBus()
    const l1 = fakeLocalTier()
    const served = createCache<string>({ name: 'a', tiers: [l1, controlledSharedTier()], bus, onBusDown: 'serve-stale-l1' })
    l1.bound.set('k', { value: 'l1', createdAt: 0, expiresAt: clock() + 60_000 })
    bus.trust.verifiedAt = Number.NEGATIVE_INFINITY
    expect(await served.get('k')).toBe('l1')
    const l1b = fakeLocalTier()
    const bypassed = createCache<string>({ name: 'b', tiers: [l1b, controlledSharedTier()], bus })
    l1b.bound.set('k', { value: 'l1', createdAt: 0, expiresAt: clock() + 60_000 })
    expect(await bypassed.get('k')).toBeUndefined()
    expect(() => createCache({ name: 'c', tiers: [fakeLocalTier()], onBusDown: 'maybe' as never })).toThrow(InvalidOptionError)
  })
})

describe('batch reads', () => {
  it('getMany reads L1 first and the rest from L2 in one call, in order', async () => {
    const { cache: c, l1, l2 } = cache()
    await c.set('a', 'A')
    l2.map.set('b', { value: 'B', createdAt: 0, expiresAt: clock() + 60_000 })
    l1.map.delete('b')
    expect(await c.getMany(['a', 'b', 'missing'])).toEqual(['A', 'B', undefined])
    expect(l1.get('b')?.value).toBe('B')
  })

  it('getOrSetMany calls the loader once with only the missing keys, and caches what it returns', async () => {
    const { cache: c } = cache()
    await c.set('a', 'A')
    const loader = vi.fn(async (missing: string[]) => new Map(missing.map((key) => [key, key.toUpperCase()])))
    expect(await c.getOrSetMany(['a', 'b', 'c', 'b'], loader)).toEqual(['A', 'B', 'C', 'B'])
    expect(loader).toHaveBeenCalledTimes(1)
    expect(loader.mock.calls[0]![0]).toEqual(['b', 'c'])
    expect(await c.getOrSetMany(['b', 'c'], loader)).toEqual(['B', 'C'])
    expect(loader).toHaveBeenCalledTimes(1)
  })

  it('getOrSetMany shares loads with concurrent getOrSet calls, and a loader error reaches every caller', async () => {
    const { cache: c } = cache()
    const gate = deferred<string>()
    const single = c.getOrSet('x', () => gate.promise)
    const loader = vi.fn(async (missing: string[]) => missing.map(() => 'from-loader'))
    const many = c.getOrSetMany(['x', 'y'], loader)
    gate.resolve('from-getOrSet')
    expect(await many).toEqual(['from-getOrSet', 'from-loader'])
    expect(loader.mock.calls[0]![0]).toEqual(['y'])
    await single
    await expect(c.getOrSetMany(['z'], async () => Promise.reject(new Error('db down')))).rejects.toThrow('db down')
  })
})

describe('warm', () => {
  it('fills the cache from entries, an async iterable or a loader, with bounded concurrency', async () => {
    const { cache: c, l2 } = cache()
    expect(await c.warm([['a', '1'], { key: 'b', value: '2', ttl: '5m' }])).toBe(2)
    async function* rows() {
      for (let i = 0; i < 100; i++) yield [`row:${i}`, String(i)] as const
    }
    expect(await c.warm(rows, { concurrency: 8 })).toBe(100)
    expect(l2.map.get('row:99')?.value).toBe('99')
    expect(await c.get('b')).toBe('2')
  })

  it('rejects on the first failing write, with a typed error', async () => {
    const { cache: c } = cache()
    await expect(c.warm([['', 'bad key']])).rejects.toMatchObject({ code: 'ERR_INVALID_KEY' })
  })
})

describe('edge cases: hanging refreshes, L2-only fail-safe, encoding errors, batch loads and counters', () => {
  it('a refresh that hangs past grace is not joined: callers stop getting the stale value when grace ends', async () => {
    const { cache: c, l1, l2 } = cache({ grace: '10m' })
    expire(l1, l2, 'k', 'stale', 150)
    expect(await c.getOrSet('k', () => new Promise<string>(() => {}))).toBe('stale') // background refresh hangs
    await sleep(200) // past grace
    await expect(c.getOrSet('k', () => new Promise<string>(() => {}), { hardTimeout: '50ms' })).rejects.toBeInstanceOf(FactoryTimeoutError)
  })

  it('fail-safe backoff works without L1 (L2-only cache)', async () => {
    const l2 = controlledSharedTier()
    const c = createCache<string>({ name: 'l2only', tiers: [l2], grace: '10m', refreshStale: 'wait', failSafeBackoff: '1s', onError: () => {} })
    const now = clock()
    l2.bound.map.set('k', { value: 'stale', createdAt: 0, expiresAt: now - 1, staleUntil: now + 60_000 })
    const failing = vi.fn(async (): Promise<string> => {
      throw new Error('down')
    })
    for (let i = 0; i < 5; i++) expect(await c.getOrSet('k', failing)).toBe('stale')
    expect(failing).toHaveBeenCalledTimes(1)
    expect(await c.get('k')).toBeUndefined() // the backoff never passes the stale value off as fresh
  })

  it('an encoding error neither opens nor closes the circuit', async () => {
    const { cache: c, l2 } = cache({ circuitBreaker: { failureThreshold: 3, openFor: '1h' } })
    l2.failWith = new Error('down')
    await c.getOrSet('a', async () => 'v') // two failures (the read, the fill): one short of opening
    l2.failWith = undefined
    // What a real shared tier's encoder throws (redisTier: SerializationError naming the cache, key and tier).
    const encodeError = new SerializationError('value cannot be encoded', { cache: 'policy', key: 'x', tier: 'fake-shared' })
    l2.encodeError = encodeError
    const rejection = await c.set('x', 'v').then(
      () => expect.fail('set resolved although the tier could not encode the value'),
      (error: unknown) => error,
    )
    // The caller gets the tier's typed error itself, not a generic tier failure.
    expect(rejection).toBe(encodeError)
    expect(rejection).toBeInstanceOf(SerializationError)
    expect(rejection).toMatchObject({ code: 'ERR_SERIALIZATION', cache: 'policy', key: 'x' })
    expect((rejection as Error).message).toBe('value cannot be encoded [cache "policy", key "x", tier fake-shared]')
    expect(c.stats().circuit).toBe('closed') // it did not open it...
    l2.encodeError = undefined
    l2.failWith = new Error('down')
    await c.getOrSet('b', async () => 'v')
    expect(c.stats().circuit).toBe('open') // ...nor reset the count of failures as a success would have
    await c.close()
  })

  it('a batch load does not remove a newer load of the same key from single-flight', async () => {
    const l1 = fakeLocalTier()
    const c = createCache<string>({ name: 'sf', tiers: [l1] })
    const gate = deferred<string[]>()
    const batch = c.getOrSetMany(['x'], () => gate.promise)
    await c.delete('x') // drops the batch's load for new callers
    const factory = vi.fn(() => new Promise<string>((resolve) => setTimeout(() => resolve('single'), 30)))
    const first = c.getOrSet('x', factory)
    gate.resolve(['batch'])
    await batch
    const second = c.getOrSet('x', factory)
    expect(await Promise.all([first, second])).toEqual(['single', 'single'])
    expect(factory).toHaveBeenCalledTimes(1)
  })

  it('a loader that returns neither a Map nor an array is a typed error, and nothing is cached', async () => {
    const { cache: c } = cache()
    await expect(c.getOrSetMany(['a', 'b'], (() => undefined) as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT' })
    expect(await c.getOrSetMany(['a'], async () => ['A'])).toEqual(['A'])
  })

  it('hardTimeout applies to a batch loader, and to getOrSet calls that joined it', async () => {
    const { cache: c } = cache({ hardTimeout: '50ms' })
    const batch = c.getOrSetMany(['k'], () => new Promise<string[]>(() => {}))
    const joined = c.getOrSet('k', async () => 'unused')
    await expect(batch).rejects.toBeInstanceOf(FactoryTimeoutError)
    await expect(joined).rejects.toBeInstanceOf(FactoryTimeoutError)
  })
})

describe('stats', () => {
  it('counts hits per tier, factory calls, writes and received invalidations, with latencies', async () => {
    const { cache: c, l2 } = cache()
    await c.getOrSet('a', async () => 'A') // miss: factory
    await c.getOrSet('a', async () => 'unused') // L1 hit
    await c.get('a') // L1 hit
    l2.map.set('b', { value: 'B', createdAt: 0, expiresAt: clock() + 60_000 })
    await c.get('b') // L2 hit
    await c.set('c', 'C')
    const stats = c.stats()
    expect(stats).toMatchObject({ l1Hits: 2, l2Hits: 1, factoryCalls: 1, writes: 1, l1Entries: 3 })
    expect(stats.factoryLatency.count).toBe(1)
    expect(stats.l2Latency.count).toBeGreaterThanOrEqual(3)
  })
})
