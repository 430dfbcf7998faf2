import type { CacheCounters } from './cache/stats.js'
import { MIN_GROUP_SAMPLE } from './profiles.js'

/**
 * The caching advisor: profile first, cache second. A cache only pays off
 * when what it saves (the factory's cost, times the hits) is well above what
 * it costs (a tier's round trip on every lookup). The rule of thumb users
 * quote is a factor of about 2: a 5 ms query behind a 3 ms Redis hop is not
 * worth caching in Redis.
 */
export type Recommendation = 'keep' | 'l1-only' | 'do-not-cache' | 'raise-ttl' | 'not-enough-data'

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
    /** Observe mode: the hit rate the first tier would have (`stats().predictedHitRate`); the rules judge it in place of the measured 0. */
    predictedHitRate?: number
  }
}

/** Lookups below which the advisor says nothing but "not enough data". */
export const MIN_LOOKUPS = 100
/** Below this hit rate a cache mostly adds a lookup to every request. */
const LOW_HIT_RATE = 0.1
/** Caching in L2 pays off only when the factory costs more than this many L2 round trips. */
const PAYOFF_FACTOR = 2
/** When this share of misses are expirations, the TTL is what causes them. */
const EXPIRATION_SHARE = 0.4

const pct = (share: number) => `${Math.round(share * 100)} %`
const msText = (ms: number) => `${ms < 10 ? ms.toFixed(2) : ms.toFixed(0)} ms`

export function advise(cache: string, stats: CacheCounters, hasL2: boolean): Advice {
  // Every lookup, per key: answered by L1 (fresh or stale), or not (then by a
  // load in flight, L2, or the factory). A miss is a key no tier had.
  const lookups = stats.l1Hits + stats.staleServed + stats.refreshAheadHits + stats.outageReuses + stats.l1Misses
  const misses = stats.misses
  const numbers = {
    lookups,
    hitRate: lookups === 0 ? 0 : Math.max(0, 1 - misses / lookups),
    factoryP50Ms: stats.factoryLatency.p50,
    l2P50Ms: stats.l2Latency.p50,
    expiredMissShare: misses === 0 ? 0 : Math.min(1, stats.expiredMisses / misses),
    ...(stats.predictedHitRate === undefined ? {} : { predictedHitRate: stats.predictedHitRate }),
  }
  // Observe mode measures every lookup as a miss (no tier is read): judge what the cache would hit.
  const hitRate = numbers.predictedHitRate ?? numbers.hitRate
  const advice = (recommendation: Recommendation, reason: string): Advice => ({ cache, recommendation, reason, numbers })
  if (lookups < MIN_LOOKUPS) return advice('not-enough-data', `${lookups} lookups so far; advice needs ${MIN_LOOKUPS}`)
  if (hitRate < LOW_HIT_RATE) {
    return advice(
      'do-not-cache',
      `${numbers.predictedHitRate === undefined ? '' : 'predicted '}hit rate ${pct(hitRate)}: almost every request pays the lookup and the factory`,
    )
  }
  if (hasL2 && stats.factoryLatency.count > 0 && stats.l2Latency.count > 0 && numbers.factoryP50Ms < PAYOFF_FACTOR * numbers.l2P50Ms) {
    return advice(
      'l1-only',
      `factory ${msText(numbers.factoryP50Ms)} < ${PAYOFF_FACTOR}x L2 round trip ${msText(numbers.l2P50Ms)}: Redis costs about what it saves`,
    )
  }
  if (numbers.expiredMissShare >= EXPIRATION_SHARE) {
    return advice('raise-ttl', `${pct(numbers.expiredMissShare)} of misses are expirations: a longer TTL (or grace) would keep them`)
  }
  return advice(
    'keep',
    `${numbers.predictedHitRate === undefined ? '' : 'predicted '}hit rate ${pct(hitRate)}; factory ${msText(numbers.factoryP50Ms)}${hasL2 ? ` vs L2 ${msText(numbers.l2P50Ms)}` : ''}: the cache pays off`,
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
  hasL2: boolean,
): Advice[] {
  return groups.map(({ group, misses, factoryP50Ms }) => {
    if (misses < MIN_GROUP_SAMPLE) {
      return {
        cache: `${cache} ${group}`,
        group,
        recommendation: 'not-enough-data' as const,
        reason: `${misses} factory runs in this group so far; advice needs ${MIN_GROUP_SAMPLE}`,
        numbers: { lookups: misses, hitRate: 0, factoryP50Ms, l2P50Ms: stats.l2Latency.p50, expiredMissShare: 0 },
      }
    }
    const groupStats: CacheCounters = { ...stats, factoryLatency: { ...stats.factoryLatency, count: misses, p50: factoryP50Ms } }
    return { ...advise(`${cache} ${group}`, groupStats, hasL2), group }
  })
}
