/**
 * `buses` as users write it: an array (`[bus]`) as well as an object naming
 * each bus; anything else is refused at registration with InvalidOptionError,
 * instead of a scrape that silently lacks the bus series.
 */
import { createCache, InvalidOptionError } from '@tiercache/core'
import { memoryBus, memoryStore, memoryTier } from '@tiercache/memory-adapter'
import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { registerTiercacheMetrics } from '../src/index.js'

function cacheOn(bus: ReturnType<typeof memoryBus>, name: string) {
  return createCache<string>({ name, tiers: [memoryTier(), memoryStore()], bus, invalidation: { ttlOnly: true } })
}

describe('registerTiercacheMetrics buses', () => {
  it('an array: each bus is exported, labelled by its position', async () => {
    const registry = new Registry()
    const [first, second] = [memoryBus(), memoryBus()]
    const users = cacheOn(first, 'users')
    const orders = cacheOn(second, 'orders')
    registerTiercacheMetrics([users, orders], { registry, buses: [first, second] })
    await users.set('a', 'A')
    const text = await registry.metrics()
    expect(text).toContain('tiercache_bus_trusted{bus="0"} 1')
    expect(text).toContain('tiercache_bus_trusted{bus="1"} 1')
    expect(text).toContain('tiercache_bus_gaps_total{bus="1"} 0')
    expect(text).toMatch(/tiercache_bus_messages_total\{bus="0",direction="published"\} \d+/)
  })

  it('the object form still labels by name', async () => {
    const registry = new Registry()
    const bus = memoryBus()
    registerTiercacheMetrics([cacheOn(bus, 'users')], { registry, buses: { main: bus } })
    expect(await registry.metrics()).toContain('tiercache_bus_trusted{bus="main"} 1')
  })

  it('anything else throws InvalidOptionError naming the function and what is accepted, before registering a metric', async () => {
    const registry = new Registry()
    const bus = memoryBus()
    const cache = cacheOn(bus, 'users')
    const wrong: Array<[unknown, RegExp]> = [
      [bus, /buses must be an array of buses \(\[bus\]\) or an object naming each bus \(\{ main: bus \}\), got a single bus: pass \[bus\]/],
      ['main', /buses must be an array of buses .* got string/],
      [null, /buses must be an array of buses .* got null/],
      [new Map([['main', bus]]), /buses must be an array of buses .* got object/],
      [[bus, 'x'], /buses\[1\] is not a bus \(a tiercache Bus has join\(\) and status\(\)\)/],
      [{ main: bus, other: {} }, /buses\.other is not a bus/],
    ]
    for (const [buses, message] of wrong) {
      const call = () => registerTiercacheMetrics([cache], { registry, buses: buses as never })
      expect(call).toThrow(InvalidOptionError)
      expect(call).toThrow(message)
      expect(call).toThrow(/^registerTiercacheMetrics: /)
    }
    expect(await registry.getMetricsAsJSON()).toEqual([])
  })
})
