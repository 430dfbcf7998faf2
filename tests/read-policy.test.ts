/**
 * The read-path policies on a real redis-server: grace and fail-safe,
 * factory timeouts, jitter, the factory context, warm-up, and the
 * onBusDown choice.
 */
import { createCache, FactoryTimeoutError, type CacheOptions } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier } from '@tiercache/redis-adapter'
import { describe, expect, it, vi } from 'vitest'
import { sleep, useRedisSuite } from './support/redis-suite.js'
import { TcpProxy } from './support/tcp-proxy.js'

const suite = useRedisSuite()

async function instance(options: Partial<CacheOptions> = {}, busUrl = suite.server.url) {
  const bus = redisBus({ redis: busUrl })
  const cache = createCache<string>({
    name: 'policy',
    tiers: [memoryTier(), redisTier({ redis: suite.server.url })],
    bus,
    ttl: '1h',
    onError: () => {},
    ...options,
  })
  suite.cleanup(
    () => bus.close(),
    () => cache.close(),
  )
  await bus.ready()
  return Object.assign(cache, { bus })
}

describe('grace and fail-safe on Redis', () => {
  it('fail-safe: with Redis holding a stale entry, a failing factory answers stale and backs off', async () => {
    const writer = await instance({ grace: '10m' })
    await writer.set('k', 'last good', { ttl: '100ms' })
    await sleep(200)
    expect(await suite.raw.pttl('tiercache:policy:k')).toBeGreaterThan(500_000) // kept for the grace period
    const reader = await instance({ grace: '10m', refreshStale: 'wait', failSafeBackoff: '1s' })
    const failing = vi.fn(async (): Promise<string> => {
      throw new Error('database down')
    })
    expect(await reader.getOrSet('k', failing)).toBe('last good')
    expect(await reader.getOrSet('k', failing)).toBe('last good') // within the backoff: no new attempt
    expect(failing).toHaveBeenCalledTimes(1)
    expect(reader.stats().failSafe).toBe(1)
  })

  it('softTimeout answers stale and the slow factory still lands in Redis; hardTimeout rejects with FactoryTimeoutError', async () => {
    const cache = await instance({ grace: '10m', refreshStale: 'wait', softTimeout: '50ms', hardTimeout: '2s' })
    await cache.set('k', 'stale', { ttl: '50ms' })
    await sleep(100)
    expect(await cache.getOrSet('k', () => sleep(300).then(() => 'fresh'))).toBe('stale')
    const other = await instance()
    await vi.waitFor(async () => expect(await other.get('k')).toBe('fresh'), { timeout: 5_000 })

    const strict = await instance({ hardTimeout: '100ms' })
    await expect(strict.getOrSet('never', () => new Promise<string>(() => {}))).rejects.toBeInstanceOf(FactoryTimeoutError)
    expect(await suite.raw.exists('tiercache:policy:never')).toBe(0)
  })
})

describe('TTLs in Redis', () => {
  it('jitter: 0.1 spreads the expiries Redis holds by ±10 %', async () => {
    const cache = await instance({ ttl: '100s', jitter: 0.1 })
    await Promise.all(Array.from({ length: 100 }, (_, i) => cache.getOrSet(`j${i}`, async () => 'v')))
    const ttls = await Promise.all(Array.from({ length: 100 }, (_, i) => suite.raw.pttl(`tiercache:policy:j${i}`)))
    expect(Math.min(...ttls)).toBeGreaterThanOrEqual(89_000)
    expect(Math.max(...ttls)).toBeLessThanOrEqual(110_000)
    expect(Math.max(...ttls) - Math.min(...ttls)).toBeGreaterThan(5_000)
  })

  it("the factory context sets this value's TTL, or keeps it out of every tier", async () => {
    const cache = await instance()
    const before = performance.now()
    await cache.getOrSet('short', (ctx) => {
      ctx.setTtl('5s')
      return 'v'
    })
    // PTTL is -2 for a missing key: check it is there, then that Redis keeps it
    // 5 s from the write (the cache's ttl is 1h), less only the time this took.
    expect(await suite.raw.exists('tiercache:policy:short')).toBe(1)
    const pttl = await suite.raw.pttl('tiercache:policy:short')
    const elapsed = performance.now() - before
    expect(pttl).toBeLessThanOrEqual(5_000)
    expect(pttl).toBeGreaterThanOrEqual(Math.floor(5_000 - elapsed) - 1) // -1: PTTL counts whole milliseconds
    await cache.getOrSet('secret', (ctx) => {
      ctx.skipCache()
      return 'not cached'
    })
    expect(await suite.raw.exists('tiercache:policy:secret')).toBe(0)
  })
})

describe('warm-up', () => {
  it('warm fills Redis for every instance, in batches', async () => {
    const cache = await instance()
    const written = await cache.warm(
      async function* () {
        for (let i = 0; i < 500; i++) yield [`w${i}`, `value ${i}`] as const
      },
      { concurrency: 50 },
    )
    expect(written).toBe(500)
    expect(await suite.raw.dbsize()).toBeGreaterThanOrEqual(500)
    const other = await instance()
    expect(await other.getMany(['w0', 'w499'])).toEqual(['value 0', 'value 499'])
  })
})

describe('onBusDown', () => {
  it("while the bus is partitioned, the default bypasses L1; 'serve-stale-l1' keeps serving it", async () => {
    const link = await TcpProxy.start(suite.server.port)
    suite.cleanup(() => link.stop())
    const strict = await instance({ maxStaleness: '300ms' }, link.url)
    const lenient = await instance({ maxStaleness: '300ms', onBusDown: 'serve-stale-l1' }, link.url)
    const writer = await instance()
    await writer.set('k', 'v1')
    // Let v1's own invalidation arrive first, or it would (rightly) keep the reads below out of L1.
    await vi.waitFor(() => expect(strict.bus.status().messagesReceived + lenient.bus.status().messagesReceived).toBe(2), { timeout: 5_000 })
    expect(await strict.getOrSet('k', async () => 'unused')).toBe('v1')
    expect(await lenient.getOrSet('k', async () => 'unused')).toBe('v1')
    link.partition()
    await writer.set('k', 'v2')
    await sleep(500)
    expect(await strict.get('k')).toBe('v2')
    expect(await lenient.get('k')).toBe('v1') // the user chose availability over the bound
    link.heal()
  })
})
