/**
 * Observe mode's read path (`mode: 'observe'`): every read behaves as with no
 * cache — `getOrSet` and `getOrSetMany` run their factory or loader on every
 * call, `get` and `getMany` answer `undefined` — and no value is read from or
 * stored in any tier. Each lookup asks the ghost of the first tier whether
 * the cache would have answered it, and each produced value is recorded in
 * the ghost as the fill would have stored it (TTL, `l1Ttl`, tags, the
 * factory's own choices), through the local state's guarded fill, so an
 * invalidation that overtakes a load keeps it out of the ghost as it would
 * keep it out of L1. An L1+L2 cache also has a ghost of L2, asked on the
 * first ghost's misses (`predictedL2HitRate`). Writes need little here: the
 * first ghost is the local state's L1, and L2's ghost hears every
 * invalidation from the local state, so the write path (write.ts) and the
 * bus reach both as they reach the tiers.
 *
 * The L2 round trip the advisor weighs is measured behind the requests with
 * a probe that reads no value (or declared: `observe: { l2RoundTrip }`).
 * The prediction assumes a healthy bus: lookups during a gap count against
 * the ghost as though L1 were trusted.
 */
import { clock } from '../clock.js'
import { InvalidArgumentError } from '../errors.js'
import { FactoryCall, type Factory } from '../factory.js'
import type { LatencyHistogram } from '../histogram.js'
import type { HotKeys } from '../hot-keys.js'
import { assertValidKey } from '../keys.js'
import type { TierEntry } from '../contracts.js'
import { effectiveTtl, resolvePolicy, type ReadPolicy } from '../policy.js'
import { assertValidTags, entryTags } from '../tags.js'
import { assertCallOptions, GET_OR_SET_MANY_OPTIONS } from './call-options.js'
import type { BatchLoader } from './batch.js'
import { untilAborted } from './cancellation.js'
import { checkGetOrSetCall } from './get-or-set-call.js'
import type { GetOrSetManyOptions, GetOrSetOptions } from './config.js'
import { newEntry } from './entry.js'
import type { TierGhosts } from './ghost-index.js'
import type { LocalState } from './local-state.js'
import { produce, produceBatch } from './produce.js'
import { type L1Shape, shapeOf } from './refresh-ahead.js'
import type { SharedTierAccess } from './shared-tier.js'
import { type TierSkipOptions, type TierSkips, tierSkipsOf } from './skips.js'
import type { Counters } from './stats.js'

export interface ObserverParts<V> {
  readonly name: string
  /** Its `l1` is the ghost. */
  readonly local: LocalState<V>
  readonly ghosts: TierGhosts
  /** The configured L2, probed for its round trip (never read for a value); undefined without L2 or with a declared round trip. */
  readonly probed: SharedTierAccess | undefined
  readonly hotKeys: HotKeys
  readonly counters: Counters
  readonly policy: ReadPolicy
  readonly factoryLatency: LatencyHistogram
}

/** Probes of the L2 round trip sent back to back at first, so `l2Latency` has a median early. */
const WARM_PROBES = 16
/** Then at most one probe per this many ms per cache: a few per second, whatever the request rate. */
const PROBE_INTERVAL_MS = 250
const NO_SKIPS: TierSkips = { skipL1: false, skipL2: false }
/**
 * Where a lookup would have found its key: `IN_FIRST_TIER`; in L2 only
 * (L2's entry's expiry, a time: always positive); or nowhere (undefined).
 */
type Found = number | undefined
const IN_FIRST_TIER = -1

export class ObservedReads<V> {
  readonly #p: ObserverParts<V>
  #probing = false
  #nextProbeAt = 0
  #probes = 0

  constructor(parts: ObserverParts<V>) {
    this.#p = parts
  }

  /** Runs `factory` (no single-flight: every call runs its own, as without a cache) and records what the fill would have stored. */
  async getOrSet(key: string, factory: Factory<V>, options: GetOrSetOptions | undefined): Promise<V> {
    const { local, name } = this.#p
    const { policy, tags: tagsOption, skips, signal } = checkGetOrSetCall(name, local, this.#p.policy, key, factory, options)
    const found = this.#lookup(key, skips)
    const call = new FactoryCall<V>(name, key, undefined)
    const produced = this.#produceOne(key, factory, call, policy, tagsOption, skips, found)
    if (signal === undefined) return produced
    // The caller is the factory's only caller: its abort is the factory's.
    return untilAborted(produced, signal, () => call.abort(signal.reason))
  }

  async #produceOne(
    key: string,
    factory: Factory<V>,
    call: FactoryCall<V>,
    policy: ReadPolicy,
    tagsOption: readonly string[] | undefined,
    skips: TierSkips,
    found: Found,
  ): Promise<V> {
    const { local } = this.#p
    const ticket = local.guard.begin(key)
    try {
      const produced = await produce(this.#p, 1, factory, call, { softTimeoutMs: undefined, hardTimeoutMs: policy.hardTimeoutMs, onSoftTimeout: undefined })
      if (!produced.ok) throw produced.error
      const value = produced.value
      if (!call.skipped) {
        const ttlMs = effectiveTtl(policy, value, call.ttlMs)
        const entry = newEntry(value, clock() + ttlMs, call.graceMs ?? policy.graceMs, entryTags(key, call.tags ?? tagsOption))
        this.#record(key, entry, ticket, skips, shapeOf(policy, ttlMs), found)
      }
      return value
    } finally {
      local.guard.end(ticket)
    }
  }

  /** Always `undefined`, read from no tier: an observing cache holds nothing to answer with. The lookup counts in the ghost. */
  async get(key: string, options: TierSkipOptions | undefined): Promise<V | undefined> {
    const { local, name } = this.#p
    local.assertOpen(key)
    assertValidKey(name, key)
    this.#lookup(key, tierSkipsOf(options, { cache: name, key }))
    this.#p.counters.misses++
    return undefined
  }

  /** `undefined` for every key, as `get`. */
  async getMany(keys: readonly string[], skips: TierSkips): Promise<undefined[]> {
    this.#p.local.assertOpen()
    this.#assertKeys(keys)
    for (const key of keys) this.#lookup(key, skips)
    this.#p.counters.misses += keys.length
    return keys.map(() => undefined)
  }

  /** Calls `loader` with every key (once each), and records what the fills would have stored. */
  async getOrSetMany(keys: readonly string[], loader: BatchLoader<V>, options?: GetOrSetManyOptions): Promise<V[]> {
    const { local, name } = this.#p
    if (typeof loader !== 'function') throw new InvalidArgumentError('getOrSetMany needs a loader function', { cache: name })
    assertCallOptions('getOrSetMany', options, GET_OR_SET_MANY_OPTIONS, { cache: name })
    const policy = resolvePolicy(options, this.#p.policy, { cache: name })
    if (options?.tags !== undefined) assertValidTags(name, options.tags)
    local.assertOpen()
    this.#assertKeys(keys)
    const found = new Map<string, number>()
    for (const key of keys) {
      const where = this.#lookup(key, NO_SKIPS)
      if (where !== undefined) found.set(key, where)
    }
    const unique = [...new Set(keys)]
    const tickets = unique.map((key) => local.guard.begin(key))
    try {
      const produced = await produceBatch<V>(this.#p, unique, loader, policy.hardTimeoutMs)
      if (!produced.ok) throw produced.error
      const loaded = produced.value
      const values = new Map<string, V>()
      unique.forEach((key, i) => {
        const value = (loaded instanceof Map ? loaded.get(key) : loaded[i]) as V
        values.set(key, value)
        const ttlMs = effectiveTtl(policy, value, undefined)
        const entry = newEntry(value, clock() + ttlMs, policy.graceMs, entryTags(key, options?.tags))
        this.#record(key, entry, tickets[i]!, NO_SKIPS, shapeOf(policy, ttlMs), found.get(key))
      })
      return keys.map((key) => values.get(key) as V)
    } finally {
      for (const ticket of tickets) local.guard.end(ticket)
    }
  }

  /**
   * One lookup, as the cache would have made it: the first tier's ghost
   * unless the call skips that tier, then, on its miss, L2's. Every lookup
   * misses the absent cache. Request-path cost: two Map operations per
   * ghost asked and one sketch update (bench/observe-cost.mjs measures it);
   * the L2 probe runs behind, never awaited. Answers where the cache
   * would have found the key (see `Found`).
   */
  #lookup(key: string, skips: TierSkips): Found {
    const { ghosts, counters } = this.#p
    counters.l1Misses++
    this.#p.hotKeys.add(key)
    if (!ghosts.firstIsLocal) {
      // L2 is the first tier: every lookup would have been a round trip.
      if (skips.skipL2) return undefined
      this.#probe()
      return ghosts.first.lookup(key) ? IN_FIRST_TIER : undefined
    }
    if (!skips.skipL1 && ghosts.first.lookup(key)) return IN_FIRST_TIER
    if (ghosts.shared === undefined || skips.skipL2) return undefined
    this.#probe()
    return ghosts.shared.lookupExpiry(key)
  }

  /**
   * What the fill would have stored, where it would have stored it: the
   * first tier's ghost through the local state's guarded fill (an
   * invalidation that overtook the load keeps it out, as from L1), and L2's
   * ghost under the same guard (the lease would have refused that fill).
   * A hit stores nothing (a hit does not refill: the entry keeps its
   * expiry). A key only L2's ghost held would have been an L2 hit: L1 takes
   * L2's entry, expiry included, and L2 is not written.
   */
  #record(key: string, produced: TierEntry, ticket: number, skips: TierSkips, shape: L1Shape, found: Found): void {
    if (found === IN_FIRST_TIER) return
    const { local, ghosts } = this.#p
    const entry = found === undefined ? produced : { ...produced, expiresAt: Math.min(produced.expiresAt, found) }
    if (ghosts.firstIsLocal ? !skips.skipL1 : !skips.skipL2) local.fill(key, entry, ticket, undefined, shape)
    if (ghosts.shared !== undefined && !skips.skipL2 && found === undefined && local.guard.mayFill(key, ticket)) ghosts.shared.set(key, entry)
  }

  /**
   * The L2 round trip, measured behind the request on the configured tier
   * with a call that reads no value (shared-tier.ts `roundTrip`): one at a
   * time, back to back for the first WARM_PROBES, then one per
   * PROBE_INTERVAL_MS at most. A failure is the tier's to report; the
   * prediction just gets no sample.
   */
  #probe(): void {
    const shared = this.#p.probed
    if (shared === undefined || this.#probing || clock() < this.#nextProbeAt) return
    this.#probing = true
    shared
      .roundTrip()
      .catch(() => {})
      .finally(() => {
        this.#probing = false
        this.#probes++
        this.#nextProbeAt = this.#probes < WARM_PROBES ? 0 : clock() + PROBE_INTERVAL_MS
      })
  }

  #assertKeys(keys: readonly string[]): void {
    if (!Array.isArray(keys)) throw new InvalidArgumentError('expected an array of keys', { cache: this.#p.name })
    for (const key of keys) assertValidKey(this.#p.name, key)
  }
}
