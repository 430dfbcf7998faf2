import { createCache } from '@tiercache/core'
import { memoryBus, memoryStore, memoryTier } from '@tiercache/memory-adapter'
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics'
import { describe, expect, it } from 'vitest'
import { registerTiercacheOtelMetrics } from '../src/index.js'

/** A reader the test collects from on demand. */
class OnDemandReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

async function points(reader: OnDemandReader): Promise<Map<string, Array<{ attributes: Record<string, unknown>; value: unknown }>>> {
  const { resourceMetrics } = await reader.collect()
  const out = new Map<string, Array<{ attributes: Record<string, unknown>; value: unknown }>>()
  for (const scope of resourceMetrics.scopeMetrics) {
    for (const metric of scope.metrics) {
      out.set(
        metric.descriptor.name,
        metric.dataPoints.map((p) => ({ attributes: p.attributes as Record<string, unknown>, value: p.value })),
      )
    }
  }
  return out
}

describe('registerTiercacheOtelMetrics', () => {
  it('reports hits, misses, latencies and bus health as observable gauges, read at collection time', async () => {
    const reader = new OnDemandReader()
    const provider = new MeterProvider({ readers: [reader] })
    const bus = memoryBus()
    const users = createCache<string>({ name: 'users', tiers: [memoryTier(), memoryStore()], bus, invalidation: { ttlOnly: true } })
    const stop = registerTiercacheOtelMetrics(provider.getMeter('test'), [users], { buses: { main: bus } })
    await users.getOrSet('a', async () => 'A')
    await users.getOrSet('a', async () => 'A')
    const collected = await points(reader)
    expect(collected.get('tiercache.lookups')).toContainEqual({ attributes: { cache: 'users', tier: 'l1', result: 'hit' }, value: 1 })
    expect(collected.get('tiercache.lookups')).toContainEqual({ attributes: { cache: 'users', tier: 'none', result: 'miss' }, value: 1 })
    expect(collected.get('tiercache.l1.entries')).toContainEqual({ attributes: { cache: 'users' }, value: 1 })
    expect(collected.get('tiercache.bus.trusted')).toContainEqual({ attributes: { bus: 'main' }, value: 1 })
    expect(collected.get('tiercache.latency')?.length).toBe(6)
    stop()
    await provider.shutdown()
  })

  it('reports L1 evictions and bytes for caches whose local tier counts them, and nothing for the others', async () => {
    const reader = new OnDemandReader()
    const provider = new MeterProvider({ readers: [reader] })
    const small = createCache<string>({
      name: 'small',
      tiers: [memoryTier({ maxEntries: 2, sizeOf: (value) => (value as string).length })],
      invalidation: { ttlOnly: true },
    })
    const plain = createCache<string>({ name: 'plain', tiers: [memoryStore()], invalidation: { ttlOnly: true } })
    const stop = registerTiercacheOtelMetrics(provider.getMeter('test'), [small, plain])
    for (const key of ['a', 'b', 'c', 'd']) await small.set(key, 'xyz')
    await plain.set('a', 'xyz')
    const collected = await points(reader)
    expect(collected.get('tiercache.l1.evictions')).toEqual([{ attributes: { cache: 'small' }, value: 2 }])
    expect(collected.get('tiercache.l1.bytes')).toEqual([{ attributes: { cache: 'small' }, value: 6 }])
    stop()
    await provider.shutdown()
  })
})
