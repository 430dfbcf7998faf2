import type { Attributes, Meter, Observable, ObservableResult } from '@opentelemetry/api'
import type { Cache } from '@tiercache/core'
import { labelledBuses, type BusesOption } from '@tiercache/core/adapter'

export type { BusesOption } from '@tiercache/core/adapter'

export interface OtelOptions {
  /** Instrument name prefix. Default `'tiercache.'`. */
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
 * Reports tiercache's metrics through an OpenTelemetry `Meter` as observable
 * gauges, read from `cache.stats()` and `bus.status()` at collection time:
 * nothing is added to the cache's hot path. Running totals are gauges of the
 * totals (as in `@tiercache/prometheus`). Returns a function that stops
 * reporting.
 *
 * Instruments (default prefix): `tiercache.lookups{cache,tier,result}`,
 * `tiercache.factory.calls{cache,outcome}`, `tiercache.latency{cache,source,quantile}` (ms),
 * `tiercache.l1.entries{cache}`, `tiercache.l1.evictions{cache}`, `tiercache.l1.bytes{cache}`
 * (these two only for caches whose local tier counts them: `stats().l1Evictions`, `l1Bytes`),
 * `tiercache.circuit.open{cache}`,
 * `tiercache.bus.trusted{bus}`, `tiercache.bus.gaps{bus}`.
 */
export function registerTiercacheOtelMetrics(meter: Meter, caches: ReadonlyArray<Cache<unknown>>, options: OtelOptions = {}): () => void {
  const buses = labelledBuses(options.buses, 'registerTiercacheOtelMetrics')
  const prefix = options.prefix ?? 'tiercache.'
  const registered: Array<[Observable<Attributes>, (result: ObservableResult<Attributes>) => void]> = []
  const add = (instrument: Observable<Attributes>, callback: (result: ObservableResult<Attributes>) => void) => {
    instrument.addCallback(callback)
    registered.push([instrument, callback])
  }
  const gauge = (name: string, description: string, unit: string, callback: (result: ObservableResult<Attributes>) => void): void =>
    add(meter.createObservableGauge(`${prefix}${name}`, { description, unit }), callback)
  // Running totals are monotonic: observable counters.
  const counter = (name: string, description: string, unit: string, callback: (result: ObservableResult<Attributes>) => void): void =>
    add(meter.createObservableCounter(`${prefix}${name}`, { description, unit }), callback)
  counter('lookups', 'Lookups by tier and result', '{lookup}', (result) => {
    for (const cache of caches) {
      const s = cache.stats()
      result.observe(s.l1Hits, { cache: cache.name, tier: 'l1', result: 'hit' })
      result.observe(s.staleServed, { cache: cache.name, tier: 'l1', result: 'stale' })
      result.observe(s.outageReuses, { cache: cache.name, tier: 'l1', result: 'outage-reuse' })
      result.observe(s.l2Hits, { cache: cache.name, tier: 'l2', result: 'hit' })
      result.observe(s.misses, { cache: cache.name, tier: 'none', result: 'miss' })
    }
  })
  counter('factory.calls', 'Factory calls by outcome (running total)', '{call}', (result) => {
    for (const cache of caches) {
      const s = cache.stats()
      result.observe(s.factoryCalls, { cache: cache.name, outcome: 'called' })
      result.observe(s.factoryErrors, { cache: cache.name, outcome: 'error' })
      result.observe(s.failSafe, { cache: cache.name, outcome: 'fail_safe' })
    }
  })
  gauge('latency', 'Latency quantiles since start', 's', (result) => {
    for (const cache of caches) {
      const s = cache.stats()
      for (const [source, summary] of [
        ['l2', s.l2Latency],
        ['factory', s.factoryLatency],
      ] as const) {
        for (const [quantile, value] of [
          ['0.5', summary.p50],
          ['0.95', summary.p95],
          ['0.99', summary.p99],
        ] as const) {
          result.observe(value / 1000, { cache: cache.name, source, quantile })
        }
      }
    }
  })
  gauge('l1.entries', "Entries in this instance's L1", '{entry}', (result) => {
    for (const cache of caches) result.observe(cache.stats().l1Entries, { cache: cache.name })
  })
  counter('l1.evictions', 'L1 entries dropped for room (entry or byte bound); observe mode: predicted', '{entry}', (result) => {
    for (const cache of caches) {
      const evictions = cache.stats().l1Evictions
      if (evictions !== undefined) result.observe(evictions, { cache: cache.name })
    }
  })
  gauge('l1.bytes', "Bytes in this instance's L1, when its tier measures them", 'By', (result) => {
    for (const cache of caches) {
      const bytes = cache.stats().l1Bytes
      if (bytes !== undefined) result.observe(bytes, { cache: cache.name })
    }
  })
  gauge('circuit.open', '1 while the circuit breaker skips L2', '1', (result) => {
    for (const cache of caches) result.observe(cache.stats().circuit === 'open' ? 1 : 0, { cache: cache.name })
  })
  if (buses.length > 0) {
    gauge('bus.trusted', '1 while L1 may be trusted (liveness proven within maxStaleness)', '1', (result) => {
      for (const [name, bus] of buses) result.observe(bus.status().trusted ? 1 : 0, { bus: name })
    })
    counter('bus.gaps', 'Subscription gaps seen', '{gap}', (result) => {
      for (const [name, bus] of buses) result.observe(bus.status().gapsSeen, { bus: name })
    })
  }
  return () => {
    for (const [instrument, callback] of registered) instrument.removeCallback(callback)
  }
}
