import type { CacheCounters } from './cache/stats.js'
import { MIN_GROUP_SAMPLE } from './profiles.js'

/**
 * The caching advisor: profile first, cache second. A cache only pays off
 * when what it saves (the factory's cost, times the hits) is well above what
 * it costs (a tier's round trip on every lookup). The rule of thumb users
 * quote is a factor of about 2: a 5 ms query behind a 3 ms Redis hop is not
 * worth caching in Redis.
 */
export type Recommendation = 'keep' | 'l1-only' | 'do-not-cache' | 'raise-ttl' | 'raise-l1-size' | 'not-enough-data'

export interface Advice {
  cache: string
  /** For per-group advice (`adviseGroups()`): the namespace or key-template scope. */
  group?: string
  recommendation: Recommendation
  /** One sentence with the numbers behind it. */
  reason: string
  numbers: {
    lookups: number
    hitRate: number
    factoryP50Ms: number
    l2P50Ms: number
    /** Share of misses where L1 held the key but it had expired. */
    expiredMissShare: number
    /** Observe mode: the hit rate the first tier would have (`stats().predictedHitRate`). */
    predictedHitRate?: number
    /** Observe mode, L1+L2: the share of L1 misses L2 would have answered (`stats().predictedL2HitRate`). The rules judge the two together, `p1 + (1 − p1) × p2`, in place of the measured 0. */
    predictedL2HitRate?: number
    /** "Is it hot?": the share of lookups on the hottest 1 % of keys (`stats().hottestKeysShare`). */
    hottestKeysShare: number
    /**
     * Writes per read: `(writes + invalidationsReceived) / lookups` — every
     * set, delete, clear and tag or namespace invalidation issued on this
     * instance, plus every invalidation from other instances applied here,
     * over this instance's lookups (per key, hits and misses); 0 before the
     * first lookup. Each one drops (or replaces) what a read could have hit.
     */
    writesPerRead: number
    /**
     * What the cache saves per lookup, in ms, against calling the factory
     * every time: `h × (F − C) − (1 − h) × 2R`, where h is the hit rate of
     * all tiers (predicted in observe mode), F the factory p50, R the L2 p50
     * round trip (0 without L2: a miss then costs nothing extra; with L2 a
     * miss pays the fill read and the write it waits for), and C the cost of
     * a hit: R times the share of hits L2 answered (L1 hits cost ~0).
     * Negative: the cache costs more than it saves.
     */
    savedMsPerLookup: number
    /** Share of misses matched by L1 evictions (`stats().l1Evictions / misses`; observe mode: over the predicted misses); 0 when the tier does not count them. */
    evictionMissShare: number
    /** The staleness the cache is configured to tolerate after a write elsewhere: `maxStaleness` (ms). */
    maxStalenessMs?: number
    /** TTL-only plans (`invalidation: { ttlOnly: true }`): nothing invalidates, so a value may be as old as the TTL (ms). */
    ttlMs?: number
  }
}

/** What the advisor knows of the cache's shape and configuration, beyond its counters. */
export interface AdvisorSetup {
  hasL2: boolean
  /** A local (L1) tier is configured; default true. */
  hasL1?: boolean
  maxStalenessMs?: number
  /** Set for TTL-only invalidation plans only. */
  ttlMs?: number | undefined
  /** Observe mode's declared L2 round trip (`observe: { l2RoundTrip }`), ms: used in place of the measured one. */
  l2RoundTripMs?: number | undefined
}

/** Lookups below which the advisor says nothing but "not enough data". */
export const MIN_LOOKUPS = 100
/** At this many writes (own and received) per read, entries are dropped about as often as they are read: caching mostly adds a lookup and a write. */
const WRITE_HEAVY = 0.5
/** Below this hit rate a cache mostly adds a lookup to every request. */
const LOW_HIT_RATE = 0.1
/** Caching in L2 pays off only when the factory costs more than this many L2 round trips. */
const PAYOFF_FACTOR = 2
/** When this share of misses are expirations, the TTL is what causes them. */
const EXPIRATION_SHARE = 0.4
/** When L1 evictions reach this share of misses, L1 pushes out keys that are read again: it is smaller than the hot set. */
const EVICTION_SHARE = 0.5

const pct = (share: number) => `${Math.round(share * 100)} %`
const msText = (ms: number) => `${Math.abs(ms) < 10 ? ms.toFixed(2) : ms.toFixed(0)} ms`
const ratio = (n: number) => (n < 10 ? n.toFixed(2) : n.toFixed(0))

export function advise(cache: string, stats: CacheCounters, setup: AdvisorSetup): Advice {
  const { hasL2, hasL1 = true, maxStalenessMs, ttlMs, l2RoundTripMs } = setup
  // Every lookup, per key: answered by L1 (fresh or stale), or not (then by a
  // load in flight, L2, or the factory). A miss is a key no tier had.
  const lookups = stats.l1Hits + stats.staleServed + stats.refreshAheadHits + stats.outageReuses + stats.l1Misses
  const misses = stats.misses
  const measuredHitRate = lookups === 0 ? 0 : Math.max(0, 1 - misses / lookups)
  const predicted = stats.predictedHitRate
  const predictedL2 = stats.predictedL2HitRate
  // Observe mode measures every lookup as a miss (no tier is read): judge what the cache would hit, in any tier.
  const predictedInL2 = predicted === undefined ? 0 : hasL1 ? (1 - predicted) * (predictedL2 ?? 0) : predicted
  const hitRate = predicted === undefined ? measuredHitRate : hasL1 ? predicted + predictedInL2 : predicted
  const l2P50Ms = l2RoundTripMs ?? stats.l2Latency.p50
  const roundTripMs = hasL2 ? l2P50Ms : 0
  const hits = lookups - misses
  const l2ShareOfHits = predicted !== undefined ? (hitRate > 0 ? predictedInL2 / hitRate : 0) : hits > 0 ? Math.min(1, stats.l2Hits / hits) : 0
  const hitCostMs = l2ShareOfHits * roundTripMs
  // L1 misses, for the eviction share: evictions are L1's.
  const judgedMisses = predicted === undefined ? misses : (1 - predicted) * lookups
  const numbers: Advice['numbers'] = {
    lookups,
    hitRate: measuredHitRate,
    factoryP50Ms: stats.factoryLatency.p50,
    l2P50Ms,
    expiredMissShare: misses === 0 ? 0 : Math.min(1, stats.expiredMisses / misses),
    ...(predicted === undefined ? {} : { predictedHitRate: predicted }),
    ...(predictedL2 === undefined ? {} : { predictedL2HitRate: predictedL2 }),
    hottestKeysShare: stats.hottestKeysShare,
    writesPerRead: lookups === 0 ? 0 : (stats.writes + stats.invalidationsReceived) / lookups,
    savedMsPerLookup: hitRate * (stats.factoryLatency.p50 - hitCostMs) - (1 - hitRate) * 2 * roundTripMs,
    evictionMissShare: judgedMisses <= 0 || stats.l1Evictions === undefined ? 0 : Math.min(1, stats.l1Evictions / judgedMisses),
    ...(maxStalenessMs === undefined ? {} : { maxStalenessMs }),
    ...(ttlMs === undefined ? {} : { ttlMs }),
  }
  const hitText =
    predicted === undefined
      ? `hit rate ${pct(hitRate)}`
      : `predicted hit rate ${pct(hitRate)}${hasL1 && predictedL2 !== undefined ? ` (L1 ${pct(predicted)})` : ''}`
  const advice = (recommendation: Recommendation, reason: string): Advice => ({ cache, recommendation, reason, numbers })
  if (lookups < MIN_LOOKUPS) return advice('not-enough-data', `${lookups} lookups so far; advice needs ${MIN_LOOKUPS}`)
  const writesPerRead = numbers.writesPerRead
  if (writesPerRead >= WRITE_HEAVY) {
    return advice(
      'do-not-cache',
      `${ratio(writesPerRead)} writes and invalidations per read (>= ${WRITE_HEAVY}): entries are dropped about as often as they are read`,
    )
  }
  if (hitRate < LOW_HIT_RATE) return advice('do-not-cache', `${hitText}: almost every request pays the lookup and the factory`)
  const l2Known = stats.l2Latency.count > 0 || l2RoundTripMs !== undefined
  if (hasL2 && stats.factoryLatency.count > 0 && l2Known && numbers.factoryP50Ms < PAYOFF_FACTOR * numbers.l2P50Ms) {
    return advice(
      'l1-only',
      `factory ${msText(numbers.factoryP50Ms)} < ${PAYOFF_FACTOR}x L2 round trip ${msText(numbers.l2P50Ms)}: Redis costs about what it saves`,
    )
  }
  if (numbers.expiredMissShare >= EXPIRATION_SHARE) {
    const ttlOnly = ttlMs === undefined ? '' : `; with a TTL-only plan, readers then see values up to the new TTL old (now ${msText(ttlMs)})`
    return advice('raise-ttl', `${pct(numbers.expiredMissShare)} of misses are expirations: a longer TTL (or grace) would keep them${ttlOnly}`)
  }
  if (hasL1 && numbers.evictionMissShare >= EVICTION_SHARE) {
    return advice(
      'raise-l1-size',
      `${hitText}, and L1 evictions are ${pct(numbers.evictionMissShare)} of ${predicted === undefined ? '' : 'predicted '}misses (${stats.l1Evictions} evictions): L1 is smaller than the hot set; a larger maxEntries (or maxBytes) would keep it`,
    )
  }
  return advice(
    'keep',
    `${hitText}; factory ${msText(numbers.factoryP50Ms)}${hasL2 ? ` vs L2 ${msText(numbers.l2P50Ms)}` : ''}: the cache saves ${msText(numbers.savedMsPerLookup)} per lookup`,
  )
}

/** The advice as a Markdown table. */
export function formatAdvice(advice: readonly Advice[]): string {
  const lines = ['| cache | advice | why | lookups | hit rate | factory p50 | L2 p50 |', '| --- | --- | --- | ---: | ---: | ---: | ---: |']
  for (const a of advice) {
    const n = a.numbers
    lines.push(`| ${a.cache} | ${a.recommendation} | ${a.reason} | ${n.lookups} | ${pct(n.hitRate)} | ${msText(n.factoryP50Ms)} | ${msText(n.l2P50Ms)} |`)
  }
  return lines.join('\n')
}

/** Advice for several caches (e.g. every cache on a bus), as objects and one table. */
export function adviseAll(caches: ReadonlyArray<{ advise(): Advice }>): { advice: Advice[]; table: string } {
  const advice = caches.map((cache) => cache.advise())
  return { advice, table: formatAdvice(advice) }
}

/**
 * The advisor per group of keys (namespace or key-template scope): each
 * group's own factory cost against the cache's L2 round trip and hit rate.
 * Hits are counted per cache, not per group (the hit path stays free of
 * it): a group's own number is its factory cost.
 */
export function adviseGroups(
  cache: string,
  stats: CacheCounters,
  groups: ReadonlyArray<{ group: string; misses: number; factoryP50Ms: number }>,
  setup: AdvisorSetup,
): Advice[] {
  return groups.map(({ group, misses, factoryP50Ms }) => {
    if (misses < MIN_GROUP_SAMPLE) {
      return {
        cache: `${cache} ${group}`,
        group,
        recommendation: 'not-enough-data' as const,
        reason: `${misses} factory runs in this group so far; advice needs ${MIN_GROUP_SAMPLE}`,
        numbers: {
          lookups: misses,
          hitRate: 0,
          factoryP50Ms,
          l2P50Ms: stats.l2Latency.p50,
          expiredMissShare: 0,
          writesPerRead: 0,
          savedMsPerLookup: 0,
          evictionMissShare: 0,
          hottestKeysShare: stats.hottestKeysShare,
        },
      }
    }
    const groupStats: CacheCounters = { ...stats, factoryLatency: { ...stats.factoryLatency, count: misses, p50: factoryP50Ms } }
    return { ...advise(`${cache} ${group}`, groupStats, setup), group }
  })
}
