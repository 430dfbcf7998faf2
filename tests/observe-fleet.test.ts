import { createCache } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier } from '@tiercache/redis-adapter'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ReferenceTwoTier } from '../packages/core/test/reference-two-tier.js'
import { random, zipf } from '../packages/core/test/traces.js'
import { InstanceProcess } from './support/instance.js'
import { RedisServer } from './support/redis-server.js'

/**
 * Observe mode on real Redis, next to a normally caching instance in
 * another process: the observing instance stores nothing, its writes still
 * reach Redis and the other instance through the bus, and the invalidations
 * the other process sends reach its ghosts, so its predictions match a
 * reference replay of the same trace within 5 points.
 */
const NAME = 'obs-fleet'
const L1_SIZE = 40

let server: RedisServer
let writer: InstanceProcess

beforeAll(async () => {
  server = await RedisServer.start()
  writer = await InstanceProcess.start({ REDIS_URL: server.url, CACHE_NAME: NAME })
})

afterAll(async () => {
  writer?.kill()
  await server?.stop()
})

function observer() {
  const bus = redisBus({ redis: server.url })
  const cache = createCache<string>({
    name: NAME,
    tiers: [memoryTier({ maxEntries: L1_SIZE }), redisTier({ redis: server.url })],
    bus,
    ttl: '1h',
    mode: 'observe',
    invalidation: { on: ['test.write'] },
  })
  return { cache, bus }
}

describe("mode: 'observe' in a fleet, on real Redis", () => {
  it('stores nothing, and its own writes still reach Redis and the caching instance in another process', async () => {
    const { cache, bus } = observer()
    await bus.ready()
    expect(await writer.call('getOrSet', { key: 'shared', value: 'v1' })).toBe('v1')
    expect(await cache.getOrSet('shared', async () => 'from-db')).toBe('from-db')
    expect(await cache.getOrSet('mine', async () => 'from-db')).toBe('from-db')
    // Nothing was stored for the observer's reads: only the writer's entry is in Redis.
    expect(server.cli('EXISTS', `tiercache:${NAME}:mine`)).toBe('0')
    expect(server.cli('GET', `tiercache:${NAME}:shared`)).not.toBe('')
    await cache.delete('shared')
    expect(server.cli('EXISTS', `tiercache:${NAME}:shared`)).toBe('0')
    // The writer drops its L1 copy when the bus brings the observer's delete (one pub/sub hop).
    await vi.waitFor(async () => expect(await writer.call('get', { key: 'shared' })).toBeUndefined(), { timeout: 5_000 })
    await cache.close()
    await bus.close()
  })

  it("predicts the L1 and L2 hit rates of a Zipf trace with another process's deletes and tag invalidations, within 5 points", async () => {
    const { cache, bus } = observer()
    await bus.ready()
    const reference = new ReferenceTwoTier(L1_SIZE, () => Date.now())
    const rnd = random(7)
    const keys = 400
    const next = zipf(keys, 1, rnd)
    const tagsOf = (k: number) => [`group:${k % 5}`]
    let sent = 0
    for (let phase = 0; phase < 12; phase++) {
      for (let i = 0; i < 250; i++) {
        const k = next()
        await cache.getOrSet(`k${k}`, async () => 'v', { tags: tagsOf(k) })
        reference.read(`k${k}`, 3_600_000, tagsOf(k))
      }
      // The other process writes: 15 deletes, and every third phase a tag invalidation.
      for (let d = 0; d < 15; d++) {
        const victim = `k${next()}`
        await writer.call('delete', { key: victim })
        reference.drop(victim)
        sent++
      }
      if (phase % 3 === 2) {
        const tag = `group:${phase % 5}`
        await writer.call('invalidateTags', { tags: [tag] })
        reference.dropTagged([tag])
        sent++
      }
      // Wait until every one of them has reached the observer before its next reads.
      await vi.waitFor(() => expect(cache.stats().invalidationsReceived).toBe(sent), { timeout: 10_000 })
    }
    const stats = cache.stats()
    expect(stats.factoryCalls).toBe(3_000)
    expect(reference.l2Hits).toBeGreaterThan(100)
    expect(Math.abs(stats.predictedHitRate! - reference.l1HitRate)).toBeLessThanOrEqual(0.05)
    expect(Math.abs(stats.predictedL2HitRate! - reference.l2HitRate)).toBeLessThanOrEqual(0.05)
    expect(stats.l2Latency.count).toBeGreaterThan(0) // the probe measured the round trip
    await cache.close()
    await bus.close()
  })
})
