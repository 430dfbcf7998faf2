/**
 * Batch reads: `getMany` (L1, then one L2 round trip for the rest) and
 * `getOrSetMany` (L1, then L2 reads that take every key's lease in one round
 * trip, then one loader call for the keys this call may produce, then their
 * fills). Loads are shared per key with `getOrSet`; a key another process is
 * producing goes the single-key way (load.ts) and waits for it.
 */
import { clock } from '../clock.js'
import type { TierEntry, TierLease } from '../contracts.js'
import { InvalidArgumentError } from '../errors.js'
import type { Factory } from '../factory.js'
import type { LatencyHistogram } from '../histogram.js'
import { assertValidKey } from '../keys.js'
import { effectiveTtl, resolvePolicy, type ReadPolicy } from '../policy.js'
import { assertValidTags, entryTags } from '../tags.js'
import { assertCallOptions, GET_OR_SET_MANY_OPTIONS } from './call-options.js'
import type { GetOrSetManyOptions } from './config.js'
import { newEntry } from './entry.js'
import { NO_CALLERS } from './load-callers.js'
import type { Loader } from './load.js'
import type { LocalState } from './local-state.js'
import { shapeOf } from './refresh-ahead.js'
import { NO_SKIPS, type TierSkips } from './skips.js'
import { type Deferred, deferred, produceBatch } from './produce.js'
import { NO_ENTRY, type SharedTierAccess } from './shared-tier.js'
import type { Counters } from './stats.js'

/** A batch loader: the values for `keys`, as a Map or an array aligned with them. */
export type BatchLoader<V> = (keys: string[]) => Promise<Map<string, V> | V[]> | Map<string, V> | V[]

function valueIn<V>(loaded: Map<string, V> | V[], key: string, index: number, cache: string): V {
  if (loaded instanceof Map) return loaded.get(key) as V
  if (Array.isArray(loaded)) return loaded[index] as V
  throw new InvalidArgumentError('getOrSetMany: the loader must return a Map or an array aligned with the keys it was given', { cache, key })
}

export interface BatchParts<V> {
  readonly name: string
  readonly local: LocalState<V>
  readonly shared: SharedTierAccess | undefined
  readonly loader: Loader<V>
  readonly counters: Counters
  readonly policy: ReadPolicy
  readonly factoryLatency: LatencyHistogram
  /** L1 hits are the facade's own counter. */
  readonly countL1Hits: (hits: number) => void
}

export class BatchReader<V> {
  readonly #p: BatchParts<V>

  constructor(parts: BatchParts<V>) {
    this.#p = parts
  }

  /** L1, then one L2 round trip for what L1 did not have; entries in key order. */
  async getMany(keys: readonly string[], skips: TierSkips = NO_SKIPS): Promise<Array<TierEntry | undefined>> {
    const { local, shared, counters } = this.#p
    local.assertOpen()
    this.#assertKeys(keys)
    const entries: Array<TierEntry | undefined> = keys.map((key) => (skips.skipL1 ? undefined : local.hit(key)))
    const missing = keys.filter((key, i) => entries[i] === undefined && !skips.skipL2 && !this.#p.loader.skipsL2(key))
    const skipped = keys.filter((_, i) => entries[i] === undefined).length - missing.length
    counters.l1Misses += skipped
    counters.misses += skipped
    this.#p.countL1Hits(keys.length - missing.length - skipped)
    counters.l1Misses += missing.length
    if (missing.length === 0 || shared === undefined) {
      counters.misses += missing.length
      return entries
    }
    const tickets = missing.map((key) => local.guard.begin(key))
    try {
      const readIssuedAt = clock()
      const found = await shared.readMany(missing)
      if (found === undefined) return entries
      const now = clock()
      let j = 0
      entries.forEach((entry, i) => {
        if (entry !== undefined || keys[i] !== missing[j]) return
        const candidate = found[j]
        const key = missing[j]!
        const ticket = tickets[j]!
        j++
        if (candidate !== undefined && candidate.expiresAt > now) {
          entries[i] = candidate
          counters.l2Hits++
          if (!skips.skipL1) local.fill(key, candidate, ticket, readIssuedAt, shapeOf(this.#p.policy, this.#p.policy.ttlMs))
        } else {
          counters.misses++
        }
      })
      return entries
    } finally {
      for (const ticket of tickets) local.guard.end(ticket)
    }
  }

  /**
   * Values for `keys`, in order, calling `loader` once with the keys no tier
   * holds (and no load already in flight covers).
   */
  async getOrSetMany(keys: readonly string[], loader: BatchLoader<V>, options?: GetOrSetManyOptions): Promise<V[]> {
    const { local, counters, name } = this.#p
    if (typeof loader !== 'function') throw new InvalidArgumentError('getOrSetMany needs a loader function', { cache: name })
    assertCallOptions('getOrSetMany', options, GET_OR_SET_MANY_OPTIONS, { cache: name })
    const policy = resolvePolicy(options, this.#p.policy, { cache: name })
    if (options?.tags !== undefined) assertValidTags(name, options.tags)
    local.assertOpen()
    this.#assertKeys(keys)
    // L1 here; L2 in #loadMany, whose reads take the leases in the same round trip.
    const entries = keys.map((key) => local.hit(key))
    const inL1 = entries.filter((entry) => entry !== undefined).length
    this.#p.countL1Hits(inL1)
    counters.l1Misses += entries.length - inL1
    const results: Array<V | Promise<V>> = []
    const toLoad = new Map<string, Deferred<V>>()
    entries.forEach((entry, i) => {
      const key = keys[i]!
      if (entry !== undefined) {
        results.push(entry.value as V)
        return
      }
      const joined = local.joinable(key)
      if (joined !== undefined) {
        results.push(joined)
        return
      }
      const pending = deferred<V>()
      // A batch load is never aborted for its callers (they cannot pass a signal).
      local.inFlight.set(key, { promise: pending.promise, staleUntil: Number.POSITIVE_INFINITY, t0: clock(), callers: 1, abandoned: 0, keep: true })
      toLoad.set(key, pending)
      results.push(pending.promise)
    })
    if (toLoad.size > 0) void this.#loadMany(toLoad, loader, policy, options?.tags)
    return Promise.all(results)
  }

  #assertKeys(keys: readonly string[]): void {
    if (!Array.isArray(keys)) throw new InvalidArgumentError('expected an array of keys', { cache: this.#p.name })
    for (const key of keys) assertValidKey(this.#p.name, key)
  }

  /**
   * The batch miss path: L2 reads that take leases for every key (pipelined:
   * one round trip), then one loader call for the keys this call may
   * produce, then their fills (one batched write). Each key settles on its own.
   */
  async #loadMany(pending: Map<string, Deferred<V>>, loader: BatchLoader<V>, policy: ReadPolicy, tagsOption: readonly string[] | undefined): Promise<void> {
    const { local, shared, counters, name } = this.#p
    const keys = [...pending.keys()]
    const tickets = new Map(keys.map((key) => [key, local.guard.begin(key)]))
    const settle = (key: string, outcome: Promise<V>): Promise<void> => outcome.then(pending.get(key)!.resolve, pending.get(key)!.reject)
    try {
      const readIssuedAt = clock()
      const reads = await Promise.all(
        keys.map((key) => (shared === undefined || this.#p.loader.skipsL2(key) ? NO_ENTRY : shared.readForFill(key, policy.lockTimeoutMs))),
      )
      const batch: Array<{ key: string; lease: TierLease | undefined }> = []
      const waits: Array<Promise<void>> = []
      reads.forEach((read, i) => {
        const key = keys[i]!
        const entry = read.entry
        if (entry !== undefined && entry.expiresAt > clock()) {
          counters.l2Hits++
          local.fill(key, entry, tickets.get(key)!, readIssuedAt, shapeOf(policy, policy.ttlMs))
          pending.get(key)!.resolve(entry.value as V)
        } else if (read.leasedElsewhere === true) {
          const one: Factory<V> = async () => valueIn(await loader([key]), key, 0, name)
          waits.push(settle(key, this.#p.loader.load(key, one, policy, undefined, NO_CALLERS, tagsOption)))
        } else {
          batch.push({ key, lease: read.lease })
        }
      })
      if (batch.length > 0) {
        const batchKeys = batch.map(({ key }) => key)
        const loaderIssuedAt = clock()
        const produced = await produceBatch<V>(this.#p, batchKeys, loader, policy.hardTimeoutMs)
        let loaded: Map<string, V> | V[] = []
        if (produced.ok) loaded = produced.value
        else {
          await Promise.all(batch.map(({ key, lease }) => (lease === undefined ? undefined : shared?.releaseLease(key, lease))))
          for (const { key } of batch) pending.get(key)!.reject(produced.error)
          batch.length = 0
        }
        const now = clock()
        await Promise.all(
          batch.map(({ key, lease }, i) => {
            const value = valueIn(loaded, key, i, name)
            const ttlMs = effectiveTtl(policy, value, undefined)
            const expiresAt = now + ttlMs
            const entry = newEntry(value, expiresAt, policy.graceMs, entryTags(key, tagsOption))
            return settle(
              key,
              this.#p.loader.store(key, entry, lease, tickets.get(key)!, loaderIssuedAt, NO_SKIPS, shapeOf(policy, ttlMs)).then(() => value),
            )
          }),
        )
      }
      await Promise.all(waits)
    } catch (error) {
      for (const deferredValue of pending.values()) deferredValue.reject(error)
    } finally {
      for (const [key, { promise }] of pending) {
        local.guard.end(tickets.get(key)!)
        if (local.inFlight.get(key)?.promise === promise) local.inFlight.delete(key)
      }
    }
  }
}
