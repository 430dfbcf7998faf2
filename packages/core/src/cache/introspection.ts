/**
 * What a cache says about itself: `describe()` (its shape and plan, as
 * documentation), `stats()` (its counters), and `advise()` /
 * `adviseGroups()` (the advisor over them). The facade builds one at
 * construction and answers these calls through it; nothing here is on the
 * read or write path.
 */
import { advise, adviseGroups, type Advice, type AdvisorSetup } from '../advisor.js'
import type { CircuitBreaker } from '../circuit-breaker.js'
import { describeMarkdown, type CacheDescription } from '../describe.js'
import type { LatencyHistogram } from '../histogram.js'
import type { HotKeys } from '../hot-keys.js'
import type { GroupProfiles } from '../profiles.js'
import type { CacheConfig } from './config.js'
import type { TierGhosts } from './ghost-index.js'
import { type CacheCounters, type Counters, type StatsSources, statsSnapshot } from './stats.js'

export interface IntrospectionParts {
  readonly config: CacheConfig
  readonly bus: boolean
  readonly maxStalenessMs: number
  readonly keyTemplates: ReadonlyArray<{ template: string; scope: string | undefined }>
  /** The facade's own L1 hit counter (a plain field on the hit path). */
  readonly l1Hits: () => number
  readonly counters: Counters
  /** The bound L1 (none in observe mode, where the ghosts stand in). */
  readonly l1: (StatsSources['l1'] & { readonly size: number }) | undefined
  readonly shared: StatsSources['shared']
  readonly recovery: StatsSources['recovery']
  readonly breaker: CircuitBreaker | undefined
  readonly l2Latency: LatencyHistogram
  readonly factoryLatency: LatencyHistogram
  readonly ghosts: TierGhosts | undefined
  readonly hotKeys: HotKeys
  readonly profiles: GroupProfiles
}

export class Introspection {
  readonly #p: IntrospectionParts

  constructor(parts: IntrospectionParts) {
    this.#p = parts
  }

  describe(): CacheDescription & { markdown: string } {
    const { config, maxStalenessMs } = this.#p
    const policy = config.policy
    const description: CacheDescription = {
      name: config.name,
      tiers: [...config.tierNames],
      bus: this.#p.bus,
      ttlMs: policy.ttlMs,
      negativeTtlMs: policy.negativeTtlMs,
      graceMs: policy.graceMs,
      l1TtlMs: policy.l1TtlMs,
      refreshAhead: policy.refreshAhead,
      maxStalenessMs,
      onBusDown: !config.outageReuse ? 'bypass-l1' : config.serveStaleMs === undefined ? 'reuse' : `serve-stale ${config.serveStaleMs}ms`,
      writeRecovery: this.#p.recovery !== undefined,
      keyTemplates: this.#p.keyTemplates.map((k) => ({ ...k })),
      invalidation: config.invalidation,
    }
    return { ...description, markdown: describeMarkdown([description]) }
  }

  stats(): CacheCounters {
    const p = this.#p
    return statsSnapshot({
      l1Hits: p.l1Hits(),
      counters: p.counters,
      l1Entries: p.l1?.size ?? 0,
      shared: p.shared,
      recovery: p.recovery,
      breaker: p.breaker,
      l2Latency: p.l2Latency,
      factoryLatency: p.factoryLatency,
      ghosts: p.ghosts,
      hotKeys: p.hotKeys,
      l1: p.l1,
    })
  }

  advise(): Advice {
    return advise(this.#p.config.name, this.stats(), this.#advisorSetup())
  }

  adviseGroups(): Advice[] {
    return adviseGroups(this.#p.config.name, this.stats(), this.#p.profiles.groups(), this.#advisorSetup())
  }

  /** The cache's shape and tolerated staleness, for the advisor. */
  #advisorSetup(): AdvisorSetup {
    const { config } = this.#p
    const hasL2 = config.shared !== undefined
    const ttlMs = config.invalidation?.ttlOnly === true ? config.policy.ttlMs : undefined
    return { hasL2, hasL1: config.local !== undefined, maxStalenessMs: this.#p.maxStalenessMs, ttlMs, l2RoundTripMs: config.declaredL2RoundTripMs }
  }
}
