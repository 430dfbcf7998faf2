import { createCache } from '@tiercache/core'
import { memoryBus, memoryStore, memoryTier } from '@tiercache/memory-adapter'
import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { registerTiercacheMetrics } from '../src/index.js'

describe('registerTiercacheMetrics', () => {
  it('exports hits, misses, latencies and bus health with cache/tier/result labels, read at scrape time', async () => {
    const registry = new Registry()
    const bus = memoryBus()
    const users = createCache<string>({ name: 'users', tiers: [memoryTier(), memoryStore()], bus, invalidation: { ttlOnly: true } })
    registerTiercacheMetrics([users], { registry, buses: { main: bus } })
    await users.getOrSet('a', async () => 'A')
    await users.getOrSet('a', async () => 'A')
    await users.getOrSet('a', async () => 'A')
    const text = await registry.metrics()
    expect(text).toContain('tiercache_lookups_total{cache="users",tier="l1",result="hit"} 2')
    expect(text).toContain('tiercache_lookups_total{cache="users",tier="none",result="miss"} 1')
    expect(text).toContain('# TYPE tiercache_lookups_total counter')
    expect(text).toContain('tiercache_factory_calls_total{cache="users",outcome="called"} 1')
    expect(text).toMatch(/tiercache_latency_seconds\{cache="users",source="factory",quantile="0.5"\} [\d.e-]+/)
    expect(text).toContain('tiercache_l1_entries{cache="users"} 1')
    expect(text).toContain('tiercache_bus_trusted{bus="main"} 1')
    await users.getOrSet('a', async () => 'A')
    expect(await registry.metrics()).toContain('tiercache_lookups_total{cache="users",tier="l1",result="hit"} 3')
  })

  it('exports L1 evictions and bytes for caches whose local tier counts them, and no series for the others', async () => {
    const registry = new Registry()
    const small = createCache<string>({
      name: 'small',
      tiers: [memoryTier({ maxEntries: 2, sizeOf: (value) => (value as string).length })],
      invalidation: { ttlOnly: true },
    })
    const plain = createCache<string>({ name: 'plain', tiers: [memoryStore()], invalidation: { ttlOnly: true } })
    registerTiercacheMetrics([small, plain], { registry })
    for (const key of ['a', 'b', 'c', 'd']) await small.set(key, 'xyz')
    await plain.set('a', 'xyz')
    const text = await registry.metrics()
    expect(text).toContain('# TYPE tiercache_l1_evictions_total counter')
    expect(text).toContain('tiercache_l1_evictions_total{cache="small"} 2')
    expect(text).toContain('tiercache_l1_bytes{cache="small"} 6')
    expect(text).not.toContain('tiercache_l1_evictions_total{cache="plain"}')
    expect(text).not.toContain('tiercache_l1_bytes{cache="plain"}')
  })
})
