/**
 * `buses` as users write it: an array (`[bus]`) as well as an object naming
 * each bus; anything else is refused at registration with InvalidOptionError.
 */
import { createCache, InvalidOptionError } from '@tiercache/core'
import { memoryBus, memoryStore, memoryTier } from '@tiercache/memory-adapter'
import { MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics'
import { describe, expect, it } from 'vitest'
import { registerTiercacheOtelMetrics } from '../src/index.js'

class OnDemandReader extends MetricReader {
  protected override async onForceFlush(): Promise<void> {}
  protected override async onShutdown(): Promise<void> {}
}

/** The data points of `name` at the next collection. */
async function pointsOf(reader: OnDemandReader, name: string): Promise<Array<{ attributes: unknown; value: unknown }>> {
  const { resourceMetrics } = await reader.collect()
  const metric = resourceMetrics.scopeMetrics.flatMap((scope) => scope.metrics).find((m) => m.descriptor.name === name)
  return (metric?.dataPoints ?? []).map((point) => ({ attributes: point.attributes, value: point.value }))
}

function cacheOn(bus: ReturnType<typeof memoryBus>, name: string) {
  return createCache<string>({ name, tiers: [memoryTier(), memoryStore()], bus, invalidation: { ttlOnly: true } })
}

describe('registerTiercacheOtelMetrics buses', () => {
  it('an array: each bus is reported, labelled by its position; the object form by name', async () => {
    const reader = new OnDemandReader()
    const provider = new MeterProvider({ readers: [reader] })
    const [first, second] = [memoryBus(), memoryBus()]
    const users = cacheOn(first, 'users')
    const orders = cacheOn(second, 'orders')
    const stop = registerTiercacheOtelMetrics(provider.getMeter('array'), [users, orders], { buses: [first, second] })
    expect(await pointsOf(reader, 'tiercache.bus.trusted')).toEqual([
      { attributes: { bus: '0' }, value: 1 },
      { attributes: { bus: '1' }, value: 1 },
    ])
    expect(await pointsOf(reader, 'tiercache.bus.gaps')).toContainEqual({ attributes: { bus: '1' }, value: 0 })
    stop()
    await provider.shutdown()
    const namedReader = new OnDemandReader()
    const named = new MeterProvider({ readers: [namedReader] })
    const stopNamed = registerTiercacheOtelMetrics(named.getMeter('named'), [users], { buses: { main: first } })
    expect(await pointsOf(namedReader, 'tiercache.bus.trusted')).toEqual([{ attributes: { bus: 'main' }, value: 1 }])
    stopNamed()
    await named.shutdown()
  })

  it('anything else throws InvalidOptionError naming the function and what is accepted', () => {
    const provider = new MeterProvider()
    const bus = memoryBus()
    const cache = cacheOn(bus, 'users')
    const wrong: Array<[unknown, RegExp]> = [
      [bus, /got a single bus: pass \[bus\]/],
      [42, /buses must be an array of buses \(\[bus\]\) or an object naming each bus \(\{ main: bus \}\), got number/],
      [[{}], /buses\[0\] is not a bus/],
      [{ main: 'redis://x' }, /buses\.main is not a bus/],
    ]
    for (const [buses, message] of wrong) {
      const call = () => registerTiercacheOtelMetrics(provider.getMeter('x'), [cache], { buses: buses as never })
      expect(call).toThrow(InvalidOptionError)
      expect(call).toThrow(message)
      expect(call).toThrow(/^registerTiercacheOtelMetrics: /)
    }
  })
})
