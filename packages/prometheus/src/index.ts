import type { Bus, Cache } from '@tiercache/core'
import { Gauge, register, type Registry } from 'prom-client'

export interface PrometheusOptions {
  /** The registry to register in (prom-client's default registry if omitted). */
  registry?: Registry
  /** Metric name prefix. Default `'tiercache_'`. */
  prefix?: string
  /** Buses whose health to export, labelled by name. */
  buses?: Record<string, Bus>
}

/**
 * Registers tiercache's metrics with prom-client. Values are read from
 * `cache.stats()` and `bus.status()` at scrape time (collect callbacks), so
 * nothing is added to the cache's hot path. Counters are exported as gauges
 * of their running totals (prom-client's `Counter` cannot be set from a
 * snapshot); use `rate()` on them as on counters.
 *
 * Metric names (with the default prefix): `tiercache_lookups_total{cache,tier,result}`,
 * `tiercache_factory_calls_total{cache,outcome}`, `tiercache_latency_ms{cache,source,quantile}`,
 * `tiercache_l1_entries{cache}`, `tiercache_circuit_open{cache}`,
 * `tiercache_bus_trusted{bus}`, `tiercache_bus_gaps_total{bus}`, `tiercache_bus_messages_total{bus,direction}`.
 */
export function registerTiercacheMetrics(caches: ReadonlyArray<Cache<unknown>>, options: PrometheusOptions = {}): () => void {
  const prefix = options.prefix ?? 'tiercache_'
  const registers = options.registry === undefined ? undefined : [options.registry]
  const metrics: Gauge[] = []
  const gauge = (name: string, help: string, labelNames: string[], collect: (g: Gauge) => void): void => {
    const metric: Gauge = new Gauge({
      name: `${prefix}${name}`,
      help,
      labelNames,
      registers,
      collect() {
        metric.reset()
        collect(metric)
      },
    })
    metrics.push(metric)
  }
  gauge('lookups_total', 'Lookups by tier and result', ['cache', 'tier', 'result'], (g) => {
    for (const cache of caches) {
      const s = cache.stats()
      g.set({ cache: cache.name, tier: 'l1', result: 'hit' }, s.l1Hits)
      g.set({ cache: cache.name, tier: 'l2', result: 'hit' }, s.l2Hits)
      g.set({ cache: cache.name, tier: 'any', result: 'stale' }, s.staleServed)
      g.set({ cache: cache.name, tier: 'any', result: 'miss' }, s.factoryCalls)
    }
  })
  gauge('factory_calls_total', 'Factory calls by outcome', ['cache', 'outcome'], (g) => {
    for (const cache of caches) {
      const s = cache.stats()
      g.set({ cache: cache.name, outcome: 'called' }, s.factoryCalls)
      g.set({ cache: cache.name, outcome: 'error' }, s.factoryErrors)
      g.set({ cache: cache.name, outcome: 'fail_safe' }, s.failSafe)
    }
  })
  gauge('latency_ms', 'Latency quantiles in milliseconds', ['cache', 'source', 'quantile'], (g) => {
    for (const cache of caches) {
      const s = cache.stats()
      for (const [source, summary] of [['l2', s.l2Latency], ['factory', s.factoryLatency]] as const) {
        g.set({ cache: cache.name, source, quantile: '0.5' }, summary.p50)
        g.set({ cache: cache.name, source, quantile: '0.95' }, summary.p95)
        g.set({ cache: cache.name, source, quantile: '0.99' }, summary.p99)
      }
    }
  })
  gauge('l1_entries', 'Entries in this instance\'s L1', ['cache'], (g) => {
    for (const cache of caches) g.set({ cache: cache.name }, cache.stats().l1Entries)
  })
  gauge('circuit_open', '1 while the circuit breaker skips L2', ['cache'], (g) => {
    for (const cache of caches) g.set({ cache: cache.name }, cache.stats().circuit === 'open' ? 1 : 0)
  })
  const buses = Object.entries(options.buses ?? {})
  if (buses.length > 0) {
    gauge('bus_trusted', '1 while L1 may be trusted (liveness proven within maxStaleness)', ['bus'], (g) => {
      for (const [name, bus] of buses) g.set({ bus: name }, bus.status().trusted ? 1 : 0)
    })
    gauge('bus_gaps_total', 'Subscription gaps seen (each cleared every L1 on the bus)', ['bus'], (g) => {
      for (const [name, bus] of buses) g.set({ bus: name }, bus.status().gapsSeen)
    })
    gauge('bus_messages_total', 'Bus messages by direction', ['bus', 'direction'], (g) => {
      for (const [name, bus] of buses) {
        const status = bus.status()
        g.set({ bus: name, direction: 'published' }, status.messagesPublished + status.messagesPublishedAtomically)
        g.set({ bus: name, direction: 'received' }, status.messagesReceived)
        g.set({ bus: name, direction: 'dropped' }, status.messagesDropped)
      }
    })
  }
  /** Unregisters every metric this call registered. */
  return () => {
    const target = options.registry ?? register
    for (const metric of metrics) target.removeSingleMetric((metric as unknown as { name: string }).name)
  }
}
