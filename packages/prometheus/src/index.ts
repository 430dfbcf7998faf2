import type { Cache } from '@tiercache/core'
import { Counter, Gauge, register, type Registry } from 'prom-client'
import { labelledBuses, type BusesOption } from '@tiercache/core/adapter'

export type { BusesOption } from '@tiercache/core/adapter'

export interface PrometheusOptions {
  /** The registry to register in (prom-client's default registry if omitted). */
  registry?: Registry
  /** Metric name prefix. Default `'tiercache_'`. */
  prefix?: string
  /**
   * Buses whose health to export: an array (`[bus]`, each labelled by its
   * position: `bus="0"`, `"1"`, …) or an object naming each (`{ main: bus }`,
   * labelled `bus="main"`). Anything else throws InvalidOptionError at
   * registration, rather than leaving the bus series silently missing.
   * Default: none.
   */
  buses?: BusesOption
}

/**
 * Registers tiercache's metrics with prom-client. Values are read from
 * `cache.stats()` and `bus.status()` at scrape time (collect callbacks), so
 * nothing is added to the cache's hot path. Totals are Counters (set from the
 * running totals at each scrape); latency quantiles are gauges in seconds,
 * over the process's lifetime. Give caches distinct names: two with one name
 * would report under the same labels.
 *
 * Metric names (with the default prefix): `tiercache_lookups_total{cache,tier,result}`,
 * `tiercache_factory_calls_total{cache,outcome}`, `tiercache_latency_seconds{cache,source,quantile}`,
 * `tiercache_l1_entries{cache}`, `tiercache_l1_evictions_total{cache}`, `tiercache_l1_bytes{cache}`
 * (these two only for caches whose local tier counts them: `stats().l1Evictions`, `l1Bytes`),
 * `tiercache_circuit_open{cache}`,
 * `tiercache_bus_trusted{bus}`, `tiercache_bus_gaps_total{bus}`, `tiercache_bus_messages_total{bus,direction}`.
 */
export function registerTiercacheMetrics(caches: ReadonlyArray<Cache<unknown>>, options: PrometheusOptions = {}): () => void {
  const buses = labelledBuses(options.buses, 'registerTiercacheMetrics')
  const prefix = options.prefix ?? 'tiercache_'
  const registers = options.registry === undefined ? undefined : [options.registry]
  const metrics: Array<Gauge | Counter> = []
  type Set = (labels: Record<string, string>, value: number) => void
  /** One metric read at scrape time: reset, then written from the running values (Counters: inc by the total). */
  const define = <M extends Gauge | Counter>(metric: M, write: (metric: M) => Set, collect: (set: Set) => void): void => {
    ;(metric as unknown as { collect: () => void }).collect = () => {
      metric.reset()
      collect(write(metric))
    }
    metrics.push(metric)
  }
  const counter = (name: string, help: string, labelNames: string[], collect: (set: Set) => void): void =>
    define(new Counter({ name: `${prefix}${name}`, help, labelNames, registers }), (m) => (labels, value) => m.inc(labels, value), collect)
  const gauge = (name: string, help: string, labelNames: string[], collect: (set: Set) => void): void =>
    define(new Gauge({ name: `${prefix}${name}`, help, labelNames, registers }), (m) => (labels, value) => m.set(labels, value), collect)
  counter('lookups_total', 'Lookups by tier and result', ['cache', 'tier', 'result'], (set) => {
    for (const cache of caches) {
      const s = cache.stats()
      set({ cache: cache.name, tier: 'l1', result: 'hit' }, s.l1Hits)
      set({ cache: cache.name, tier: 'l1', result: 'stale' }, s.staleServed)
      set({ cache: cache.name, tier: 'l1', result: 'outage-reuse' }, s.outageReuses)
      set({ cache: cache.name, tier: 'l2', result: 'hit' }, s.l2Hits)
      set({ cache: cache.name, tier: 'none', result: 'miss' }, s.misses)
    }
  })
  counter('factory_calls_total', 'Factory calls by outcome', ['cache', 'outcome'], (set) => {
    for (const cache of caches) {
      const s = cache.stats()
      set({ cache: cache.name, outcome: 'called' }, s.factoryCalls)
      set({ cache: cache.name, outcome: 'error' }, s.factoryErrors)
      set({ cache: cache.name, outcome: 'fail_safe' }, s.failSafe)
    }
  })
  gauge('latency_seconds', 'Latency quantiles since start, in seconds', ['cache', 'source', 'quantile'], (set) => {
    for (const cache of caches) {
      const s = cache.stats()
      for (const [source, summary] of [
        ['l2', s.l2Latency],
        ['factory', s.factoryLatency],
      ] as const) {
        set({ cache: cache.name, source, quantile: '0.5' }, summary.p50 / 1000)
        set({ cache: cache.name, source, quantile: '0.95' }, summary.p95 / 1000)
        set({ cache: cache.name, source, quantile: '0.99' }, summary.p99 / 1000)
      }
    }
  })
  gauge('l1_entries', "Entries in this instance's L1", ['cache'], (set) => {
    for (const cache of caches) set({ cache: cache.name }, cache.stats().l1Entries)
  })
  counter('l1_evictions_total', 'L1 entries dropped for room (entry or byte bound); observe mode: predicted', ['cache'], (set) => {
    for (const cache of caches) {
      const evictions = cache.stats().l1Evictions
      if (evictions !== undefined) set({ cache: cache.name }, evictions)
    }
  })
  gauge('l1_bytes', "Bytes in this instance's L1, when its tier measures them", ['cache'], (set) => {
    for (const cache of caches) {
      const bytes = cache.stats().l1Bytes
      if (bytes !== undefined) set({ cache: cache.name }, bytes)
    }
  })
  gauge('circuit_open', '1 while the circuit breaker skips L2', ['cache'], (set) => {
    for (const cache of caches) set({ cache: cache.name }, cache.stats().circuit === 'open' ? 1 : 0)
  })
  if (buses.length > 0) {
    gauge('bus_trusted', '1 while L1 may be trusted (liveness proven within maxStaleness)', ['bus'], (set) => {
      for (const [name, bus] of buses) set({ bus: name }, bus.status().trusted ? 1 : 0)
    })
    counter('bus_gaps_total', 'Subscription gaps seen (each cleared every L1 on the bus)', ['bus'], (set) => {
      for (const [name, bus] of buses) set({ bus: name }, bus.status().gapsSeen)
    })
    counter('bus_messages_total', 'Bus messages by direction', ['bus', 'direction'], (set) => {
      for (const [name, bus] of buses) {
        const status = bus.status()
        set({ bus: name, direction: 'published' }, status.messagesPublished + status.messagesPublishedAtomically)
        set({ bus: name, direction: 'received' }, status.messagesReceived)
        set({ bus: name, direction: 'dropped' }, status.messagesDropped)
      }
    })
  }
  /** Unregisters every metric this call registered. */
  return () => {
    const target = options.registry ?? register
    for (const metric of metrics) target.removeSingleMetric((metric as unknown as { name: string }).name)
  }
}
