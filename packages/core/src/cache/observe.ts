/**
 * Observe mode's read path (`mode: 'observe'`): every read behaves as with no
 * cache — `getOrSet` and `getOrSetMany` run their factory or loader on every
 * call, `get` and `getMany` answer `undefined` — and no value is read from or
 * stored in any tier. Each lookup asks the ghost of the first tier whether
 * the cache would have answered it, and each produced value is recorded in
 * the ghost as the fill would have stored it (TTL, `l1Ttl`, tags, the
 * factory's own choices), through the local state's guarded fill, so an
 * invalidation that overtakes a load keeps it out of the ghost as it would
 * keep it out of L1. Writes need nothing here: the ghost is the local
 * state's L1, so the write path (write.ts) and the bus reach it as they reach L1.
 *
 * The prediction assumes a healthy bus: lookups during a gap count against
 * the ghost as though L1 were trusted.
 */
import { clock } from '../clock.js'
import { InvalidArgumentError } from '../errors.js'
import { FactoryCall, type Factory } from '../factory.js'
import type { LatencyHistogram } from '../histogram.js'
import { assertValidKey } from '../keys.js'
import { effectiveTtl, resolvePolicy, type ReadPolicy } from '../policy.js'
import { assertValidTags, entryTags } from '../tags.js'
import type { BatchLoader } from './batch.js'
import { untilAborted } from './cancellation.js'
import { checkGetOrSetCall } from './get-or-set-call.js'
import type { GetOrSetOptions } from './config.js'
import { newEntry } from './entry.js'
import type { GhostIndex } from './ghost-index.js'
import type { LocalState } from './local-state.js'
import { produce, produceBatch } from './produce.js'
import { shapeOf } from './refresh-ahead.js'
import { type TierSkipOptions, type TierSkips, tierSkipsOf } from './skips.js'
import type { Counters } from './stats.js'

export interface ObserverParts<V> {
  readonly name: string
  /** Its `l1` is the ghost. */
  readonly local: LocalState<V>
  readonly ghost: GhostIndex
  readonly counters: Counters
  readonly policy: ReadPolicy
  readonly factoryLatency: LatencyHistogram
}

export class ObservedReads<V> {
  readonly #p: ObserverParts<V>

  constructor(parts: ObserverParts<V>) {
    this.#p = parts
  }

  /** Runs `factory` (no single-flight: every call runs its own, as without a cache) and records what the fill would have stored. */
  async getOrSet(key: string, factory: Factory<V>, options: GetOrSetOptions | undefined): Promise<V> {
    const { local, name } = this.#p
    const { policy, tags: tagsOption, skips, signal } = checkGetOrSetCall(name, local, this.#p.policy, key, factory, options)
    this.#lookup(key, skips)
    const call = new FactoryCall<V>(name, key, undefined)
    if (signal === undefined) return this.#produceOne(key, factory, call, policy, tagsOption, skips)
    // The caller is the factory's only caller: its abort is the factory's.
    return untilAborted(this.#produceOne(key, factory, call, policy, tagsOption, skips), signal, () => call.abort(signal.reason))
  }

  async #produceOne(
    key: string,
    factory: Factory<V>,
    call: FactoryCall<V>,
    policy: ReadPolicy,
    tagsOption: readonly string[] | undefined,
    skips: TierSkips,
  ): Promise<V> {
    const { local } = this.#p
    const ticket = local.guard.begin(key)
    try {
      const produced = await produce(this.#p, 1, factory, call, { softTimeoutMs: undefined, hardTimeoutMs: policy.hardTimeoutMs, onSoftTimeout: undefined })
      if (!produced.ok) throw produced.error
      const value = produced.value
      if (!call.skipped && !skips.skipL1) {
        const ttlMs = effectiveTtl(policy, value, call.ttlMs)
        const entry = newEntry(value, clock() + ttlMs, call.graceMs ?? policy.graceMs, entryTags(key, call.tags ?? tagsOption))
        local.fill(key, entry, ticket, undefined, shapeOf(policy, ttlMs))
      }
      return value
    } finally {
      local.guard.end(key)
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
  async getOrSetMany(keys: readonly string[], loader: BatchLoader<V>, options?: GetOrSetOptions): Promise<V[]> {
    const { local, name } = this.#p
    if (typeof loader !== 'function') throw new InvalidArgumentError('getOrSetMany needs a loader function', { cache: name })
    const policy = resolvePolicy(options, this.#p.policy, { cache: name })
    if (options?.tags !== undefined) assertValidTags(name, options.tags)
    local.assertOpen()
    this.#assertKeys(keys)
    for (const key of keys) this.#lookup(key, { skipL1: false, skipL2: false })
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
        local.fill(key, newEntry(value, clock() + ttlMs, policy.graceMs, entryTags(key, options?.tags)), tickets[i]!, undefined, shapeOf(policy, ttlMs))
      })
      return keys.map((key) => values.get(key) as V)
    } finally {
      for (const key of unique) local.guard.end(key)
    }
  }

  /** One lookup: the cache would have read L1 (the ghost) unless told to skip it. Every lookup misses the absent cache. */
  #lookup(key: string, skips: TierSkips): void {
    this.#p.counters.l1Misses++
    if (!skips.skipL1) this.#p.ghost.lookup(key)
  }

  #assertKeys(keys: readonly string[]): void {
    if (!Array.isArray(keys)) throw new InvalidArgumentError('expected an array of keys', { cache: this.#p.name })
    for (const key of keys) assertValidKey(this.#p.name, key)
  }
}
