import type { LatencySummary } from '../histogram.js'

/** A snapshot of the cache's counters and latencies (the L1 hit path pays one increment). */
export interface CacheCounters {
  l1Hits: number
  /** Fresh values read from L2 on an L1 miss. */
  l2Hits: number
  /** Entries in this instance's L1 now. */
  l1Entries: number
  /** set, delete, clear and tag/namespace invalidations issued here. */
  writes: number
  /** Invalidations from other instances applied here. */
  invalidationsReceived: number
  /** Every L2 call (reads, writes, lease operations), ms. */
  l2Latency: LatencySummary
  /** Every factory and batch-loader call, ms. */
  factoryLatency: LatencySummary
  /** Factory runs where L1 held the key but its TTL had run out (the advisor's "raise TTL"). */
  expiredMisses: number
  /** Lookups (per key) L1 could not answer fresh. Lookups in all: `l1Hits + staleServed + refreshAheadHits + outageReuses + l1Misses`. */
  l1Misses: number
  /** Keys no tier had (a factory or loader produced them, or get returned absent). Hit rate: `1 - misses / lookups`. */
  misses: number
  factoryCalls: number
  factoryErrors: number
  /** Factory failures or hard timeouts answered with a stale value. */
  failSafe: number
  /** Stale values served within grace while a refresh ran (or a soft timeout passed). */
  staleServed: number
  /** Misses that waited for another process's lease holder. */
  leaseWaits: number
  /**
   * Entries the shared tier found in an unreadable shape (corrupt, truncated,
   * written by another program or format version): each was a miss, and the
   * next fill overwrote it.
   */
  l2CorruptEntries: number
  /**
   * Fills the shared tier refused at store time because their lease, or a
   * bookkeeping key they were read under, no longer held (a write won, or
   * Redis evicted the key): the value answered its caller but was not
   * cached. The cost of failing closed.
   */
  l2FillsRefused: number
  /** Fills that got no lease (Redis refused the write, e.g. under noeviction): produced, not stored. */
  l2FillsWithoutLease: number
  /**
   * Reads answered while L1 was not trusted (the bus down) by a value this
   * instance loaded itself less than `maxStaleness` before: outage reuse,
   * within the bound. Lookups in all: `l1Hits + staleServed + refreshAheadHits + outageReuses + l1Misses`.
   */
  outageReuses: number
  /** Refresh-ahead: hits past a value's refresh point (answered at once, one refresh behind). Count as lookups. */
  refreshAheadHits: number
  /** Refresh-ahead: refreshes this instance ran under the key's lease; succeeded or failed (a failure keeps the current value). */
  refreshesStarted: number
  refreshesSucceeded: number
  refreshesFailed: number
  /** Factory calls whose `ctx.signal` was aborted: hard timeout, `close()`, or every caller's own `signal`. */
  factoriesAborted: number
  /** Shared-tier calls failed at once with nothing sent: its connection was known down, or the circuit open. */
  l2CallsSkipped: number
  /** `writeRecovery`: invalidations waiting for their replay now (L1 is not trusted meanwhile). */
  writesQueued: number
  /** `writeRecovery`: queued invalidations replayed to the shared tier. */
  writesReplayed: number
  /** `writeRecovery`: times the queue failed closed (overflow, or a replay failing too often) into one clear(). */
  writeQueueCollapses: number
  /** Times the shared tier's circuit breaker opened. */
  circuitOpenings: number
  circuit: 'closed' | 'open' | 'half-open' | 'off'
  /** `'observe'`: reads touch no tier (every lookup is measured as a miss), and `predictedHitRate` says what the cache would hit. */
  mode: 'normal' | 'observe'
  /**
   * Observe mode: the share of lookups the first tier would have answered
   * fresh (its ghost's hits over lookups; 0 before the first lookup, never
   * NaN). `undefined` in normal mode, which measures instead of predicting.
   */
  predictedHitRate: number | undefined
  /**
   * Observe mode, L1+L2 caches: the share of the first tier's (predicted)
   * misses L2 would have answered, from this instance's own fills (in a
   * fleet, other instances' fills would answer more: it errs low).
   * `undefined` otherwise.
   */
  predictedL2HitRate: number | undefined
  /**
   * "Is it hot?": the share of lookups on the hottest 1 % of keys (at least
   * one key), from a bounded sketch (hot-keys.ts): every lookup in observe
   * mode; in normal mode every lookup past L1 plus one L1 hit in 64 (batch
   * reads are not counted). Errs low. 0 before the first lookup.
   */
  hottestKeysShare: number
  /**
   * Entries the first tier dropped for room (its entry or byte bound), not
   * expiries, deletes or clears: an L1 too small for the hot set shows here
   * (the advisor's "raise-l1-size"). Observe mode: the ghost's evictions.
   * `undefined` when the local tier does not count them, or there is none.
   */
  l1Evictions: number | undefined
  /** Bytes the local tier holds now, when it measures them (`memoryTier` with `maxBytes` or `sizeOf`); else `undefined`. */
  l1Bytes: number | undefined
}

/**
 * The read and write paths' counters, one object shared by the parts that
 * count. L1 hits are not here: the facade counts them in a field of its own,
 * so the hit path pays one increment and nothing else.
 */
export function newCounters() {
  return {
    l2Hits: 0,
    factoryCalls: 0,
    factoryErrors: 0,
    failSafe: 0,
    staleServed: 0,
    leaseWaits: 0,
    writes: 0,
    invalidationsReceived: 0,
    expiredMisses: 0,
    /** Lookups (per key) that L1 could not answer fresh: they went to the in-flight load, L2 or the factory. */
    l1Misses: 0,
    /** Keys no tier had: produced by a factory or loader (once per load), or returned absent by get/getMany. */
    misses: 0,
    /** Refresh-ahead: hits past a value's refresh point, answered at once while one refresh runs behind. */
    refreshAheadHits: 0,
    /** Refresh-ahead: refreshes this instance ran (it held the key's lease), and how they ended. */
    refreshesStarted: 0,
    refreshesSucceeded: 0,
    refreshesFailed: 0,
    /** Factory calls whose `ctx.signal` was aborted (hard timeout, close, every caller gone). */
    factoriesAborted: 0,
    /** Reads answered, while L1 was not trusted, by a value this instance loaded itself within maxStaleness (outage reuse). */
    outageReuses: 0,
  }
}

export type Counters = ReturnType<typeof newCounters>

interface GhostCounts {
  readonly hitRate: number
  readonly evictions: number
}

/** What `stats()` reads, each from the part that counts it (typed by shape: the parts sit in layers above). */
export interface StatsSources {
  readonly l1Hits: number
  readonly counters: Counters
  readonly l1Entries: number
  readonly shared: { counters(): { corruptEntries: number; fillsRefused: number; fillsWithoutLease: number }; readonly skipped: number } | undefined
  readonly recovery: { readonly queued: number; readonly replayed: number; readonly collapses: number } | undefined
  readonly breaker: { readonly openings: number; readonly state: 'closed' | 'open' | 'half-open' } | undefined
  readonly l2Latency: { summary(): LatencySummary }
  readonly factoryLatency: { summary(): LatencySummary }
  /** Observe mode's ghosts of the tiers. */
  readonly ghosts: { readonly first: GhostCounts; readonly shared: GhostCounts | undefined } | undefined
  readonly hotKeys: { hottestShare(fraction?: number): number }
  /** The bound L1 (none in observe mode: the ghost stands in), for its eviction and byte counters. */
  readonly l1: { counters?(): { evictions: number; bytes?: number } } | undefined
}

/** One `stats()` snapshot. */
export function statsSnapshot(sources: StatsSources): CacheCounters {
  const { shared, recovery, breaker } = sources
  const tier = shared?.counters()
  const l1 = sources.l1?.counters?.()
  return {
    l1Hits: sources.l1Hits,
    ...sources.counters,
    l1Entries: sources.l1Entries,
    l2CorruptEntries: tier?.corruptEntries ?? 0,
    l2FillsRefused: tier?.fillsRefused ?? 0,
    l2FillsWithoutLease: tier?.fillsWithoutLease ?? 0,
    l2CallsSkipped: shared?.skipped ?? 0,
    writesQueued: recovery?.queued ?? 0,
    writesReplayed: recovery?.replayed ?? 0,
    writeQueueCollapses: recovery?.collapses ?? 0,
    circuitOpenings: breaker?.openings ?? 0,
    circuit: breaker?.state ?? 'off',
    l2Latency: sources.l2Latency.summary(),
    factoryLatency: sources.factoryLatency.summary(),
    mode: sources.ghosts === undefined ? 'normal' : 'observe',
    predictedHitRate: sources.ghosts?.first.hitRate,
    predictedL2HitRate: sources.ghosts?.shared?.hitRate,
    hottestKeysShare: sources.hotKeys.hottestShare(0.01),
    l1Evictions: sources.ghosts?.first.evictions ?? l1?.evictions,
    l1Bytes: l1?.bytes,
  }
}
