/**
 * The write path, read top to bottom: L2, with the invalidation published in
 * the same atomic step when the tier can (mechanism 1) → this instance's
 * local state → the invalidation on the bus if the tier did not carry it →
 * the writer's own L1 copy, guarded like any fill. A write resolves only when
 * other instances have been told, and rejects when that cannot be confirmed.
 */
import { clock } from '../clock.js'
import type { AtomicPublish, BusMembership, Invalidation, PublishRoute, TierEntry } from '../contracts.js'
import { InvalidArgumentError, InvalidOptionError, PublishError, type TierCacheError, WriteFailedError, errorMessageOf } from '../errors.js'
import { writeChannel, type WriteEvent } from '../events.js'
import { assertValidKey } from '../keys.js'
import { effectiveTtl, resolvePolicy, type ReadPolicy } from '../policy.js'
import { MAX_TAGS_PER_INVALIDATION, assertValidNamespace, assertValidTags, entryTags, namespaceTag } from '../tags.js'
import { assertCallOptions, READ_OPTIONS, SET_OPTIONS } from './call-options.js'
import type { SetOptions } from './config.js'
import { newEntry } from './entry.js'
import type { LocalState } from './local-state.js'
import type { Reporter } from './report.js'
import type { SharedTierAccess } from './shared-tier.js'
import { AS_IS, type L1Shape, l1Copy, shapeOf } from './refresh-ahead.js'
import { type TierSkipOptions, type TierSkips, tierSkipsOf } from './skips.js'
import type { Counters } from './stats.js'
import type { WriteRecovery } from './write-recovery.js'

export interface WriterParts<V> {
  readonly name: string
  readonly instanceId: string
  readonly local: LocalState<V>
  readonly shared: SharedTierAccess | undefined
  readonly membership: BusMembership | undefined
  /** Set when the L2 publishes each write's invalidation in the same atomic step (mechanism 1). */
  readonly atomicRoute: PublishRoute | undefined
  readonly policy: ReadPolicy
  readonly counters: Counters
  readonly reporter: Reporter
  /** Opt-in `writeRecovery`: failed invalidations queued and replayed. */
  readonly recovery: WriteRecovery | undefined
  /** Observe mode: a `set` stores its value in no tier (L2's copy is deleted, as with skipL2); L1 is the ghost. */
  readonly observe?: boolean
}

export class Writer<V> {
  readonly #p: WriterParts<V>

  constructor(parts: WriterParts<V>) {
    this.#p = parts
    const shared = parts.shared
    if (shared !== undefined)
      parts.recovery?.connect(
        (invalidation) => this.#replay(shared, invalidation),
        () => shared.tier.available?.() === false,
      )
  }

  /**
   * Stores `value` in every tier and tells every other instance to drop its
   * L1 copy. The entry is written whole: its tags are the ones given here
   * (none if none), never merged with the tags of the value it replaces.
   */
  async set(key: string, value: V, options?: SetOptions): Promise<void> {
    const write = this.#checkSet(key, value, options)
    await this.#set(write)
  }

  /**
   * `set` for each entry (`[key, value]` or `{ key, value, ttl?, grace?, tags? }`,
   * an entry's own options over `options`). Every key, value and option is
   * checked before anything is written, so bad input writes nothing. Then
   * at most WRITE_CONCURRENCY writes run at a time; it resolves once all
   * have, or rejects with the first failure after the others settled
   * (those landed; a failed one was invalidated everywhere, as `set` does).
   */
  async setMany(entries: Iterable<SetManyEntry<V>>, options?: SetOptions): Promise<void> {
    const { name } = this.#p
    if (entries === null || typeof (entries as Iterable<unknown>)?.[Symbol.iterator] !== 'function') {
      throw new InvalidArgumentError('setMany: expected an iterable of [key, value] or { key, value, ttl?, grace?, tags? }', { cache: name })
    }
    assertCallOptions('setMany', options, SET_OPTIONS, { cache: name })
    const writes = [...entries].map((item) => {
      if (item === null || typeof item !== 'object') {
        throw new InvalidArgumentError('setMany: each entry is [key, value] or { key, value, ttl?, grace?, tags? }', { cache: name })
      }
      if (Array.isArray(item)) return this.#checkSet(item[0] as string, item[1] as V, options)
      const { key, value, ...own } = item as Exclude<SetManyEntry<V>, readonly [string, V]>
      return this.#checkSet(key, value, { ...options, ...own })
    })
    await settleAll(writes, (write) => this.#set(write))
  }

  /** Checks one `set` completely (nothing is written when anything is wrong) and builds its entry. */
  #checkSet(key: string, value: V, options: SetOptions | undefined): CheckedSet {
    const { name, local } = this.#p
    local.assertOpen(key)
    assertValidKey(name, key)
    if (value === undefined) {
      throw new InvalidArgumentError('set: the value is undefined; use delete() to remove a key (null is a value, and is cached)', { cache: name, key })
    }
    assertCallOptions('set', options, SET_OPTIONS, { cache: name, key })
    const policy = resolvePolicy(options, this.#p.policy, { cache: name, key })
    if (options?.tags !== undefined) assertValidTags(name, options.tags, key)
    const ttlMs = effectiveTtl(policy, undefined, policy.ttlMs)
    const expiresAt = clock() + ttlMs
    const skips = tierSkipsOf(options, { cache: name, key })
    const entry = newEntry(value, expiresAt, policy.graceMs, entryTags(key, options?.tags))
    if (options?.keepTags !== undefined && typeof options.keepTags !== 'boolean') {
      throw new InvalidOptionError(`keepTags: must be true or false, got ${JSON.stringify(options.keepTags)}`, { cache: name, key })
    }
    return { key, entry, skips, shape: shapeOf(policy, ttlMs), keepTags: options?.keepTags === true }
  }

  async #set(checked: CheckedSet): Promise<void> {
    const { key, skips, shape } = checked
    const entry = checked.keepTags ? await this.#withKeptTags(checked.entry, key) : checked.entry
    const { name, local } = this.#p
    const invalidation: Invalidation = { kind: 'key', cache: name, key }
    // skipL2: the value stays out of L2, but the L2 copy is deleted and the
    // invalidation published all the same, or every other instance would
    // read the old value back from L2. skipL1: not kept in this L1.
    const writeL2 =
      skips.skipL2 || this.#p.observe === true
        ? writeL2Of(invalidation)
        : async (shared: SharedTierAccess, publish: AtomicPublish | undefined) => void (await shared.tier.set(key, entry, { publish }))
    await this.#write(key, invalidation, writeL2, skips.skipL1 ? undefined : entry, true, shape)
    // Observe mode: the value L2 would now hold, for L2's ghost (L1's got the writer's copy above).
    if (this.#p.observe === true && !skips.skipL2) local.sharedGhost?.set(key, entry)
  }

  /** `keepTags`: the entry joined with the tags of the one it replaces (L1's copy, else L2's; none if neither holds it). */
  async #withKeptTags(entry: TierEntry, key: string): Promise<TierEntry> {
    const { local, shared } = this.#p
    // Observe mode stores nothing to keep, and reads no tier.
    const held = this.#p.observe === true ? undefined : (local.l1?.get(key) ?? (await shared?.read(key)))
    const kept = held?.tags
    if (kept === undefined || kept.length === 0) return entry
    const tags = [...new Set([...(entry.tags ?? []), ...kept])]
    return { ...entry, tags }
  }

  /**
   * Removes `key` from every tier, on every instance. Tier flags are
   * accepted (and checked) but change nothing: a delete is an invalidation,
   * and flags never choose which invalidations happen.
   */
  async delete(key: string, options?: TierSkipOptions): Promise<void> {
    this.#checkDelete(key, options)
    const invalidation: Invalidation = { kind: 'key', cache: this.#p.name, key }
    await this.#write(key, invalidation, writeL2Of(invalidation))
  }

  /** `delete` for each key: every key checked first (bad input deletes nothing), then as `setMany` runs its writes. */
  async deleteMany(keys: readonly string[], options?: TierSkipOptions): Promise<void> {
    if (!Array.isArray(keys)) throw new InvalidArgumentError('deleteMany: expected an array of keys', { cache: this.#p.name })
    for (const key of keys) this.#checkDelete(key, options)
    await settleAll([...new Set(keys)], (key) => this.delete(key, options))
  }

  #checkDelete(key: string, options: TierSkipOptions | undefined): void {
    const { name, local } = this.#p
    local.assertOpen(key)
    assertValidKey(name, key)
    assertCallOptions('delete', options, READ_OPTIONS, { cache: name, key })
    tierSkipsOf(options, { cache: name, key })
  }

  /**
   * Makes every entry written under any of `tags` a miss, on every instance:
   * O(1) per tag in Redis (version counters, no scan), L1 copies dropped
   * through the bus with the coherence contract's guarantees.
   */
  async invalidateTags(tags: readonly string[]): Promise<void> {
    this.#p.local.assertOpen()
    assertValidTags(this.#p.name, tags, undefined, MAX_TAGS_PER_INVALIDATION)
    if (tags.length > 0) await this.#invalidateTagged([...new Set(tags)])
  }

  /** Makes every entry under `namespace` (and its sub-namespaces: all pages, all filters) a miss, on every instance. */
  async invalidateNamespace(namespace: string): Promise<void> {
    this.#p.local.assertOpen()
    assertValidNamespace(this.#p.name, namespace)
    await this.#invalidateTagged([namespaceTag(namespace)])
  }

  /** Removes every entry of this cache (no other cache's) from every tier, on every instance. */
  async clear(): Promise<void> {
    this.#p.local.assertOpen()
    const invalidation: Invalidation = { kind: 'clear', cache: this.#p.name }
    await this.#write(undefined, invalidation, writeL2Of(invalidation))
  }

  async #invalidateTagged(tags: readonly string[]): Promise<void> {
    const invalidation: Invalidation = { kind: 'tags', cache: this.#p.name, tags }
    await this.#write(undefined, invalidation, writeL2Of(invalidation))
  }

  /**
   * L2 (with the invalidation published in the same atomic step when the
   * tier can), then this instance's L1 and in-flight state, then the
   * invalidation on the bus if the tier did not carry it, then the writer's
   * own L1 copy.
   */
  async #write(
    key: string | undefined,
    invalidation: Invalidation,
    writeL2: (shared: SharedTierAccess, publish: AtomicPublish | undefined) => Promise<void>,
    l1Entry?: TierEntry,
    isSet = l1Entry !== undefined,
    shape: L1Shape = AS_IS,
  ): Promise<void> {
    const { local, shared, counters } = this.#p
    counters.writes++
    if (writeChannel.hasSubscribers) {
      writeChannel.publish({
        cache: this.#p.name,
        kind: invalidation.kind === 'key' ? (isSet ? 'set' : 'delete') : invalidation.kind,
        key,
      } satisfies WriteEvent)
    }
    const atomic = this.#atomicPublishOf(invalidation)
    // The writer's own L1 copy is guarded like any fill: if another
    // instance's invalidation for this key arrives while this write is in
    // flight, that write may be newer than ours, so ours stays out of L1.
    const fillKey = l1Entry !== undefined && local.l1 !== undefined ? key : undefined
    if (shared === undefined && this.#p.membership === undefined) {
      // A cache with no shared tier and no bus awaits nothing between its
      // invalidation and its copy, so nothing can overtake it: no guard
      // ticket, no awaited publish. Measured with `BENCH_CONTESTANTS=tiercache
      // node bench/scenarios/memory.mjs` (100k sets of an L1-only cache;
      // lru-cache 44.4 MiB): RSS grew 57.3 MiB this way, 73–78 MiB through
      // the guarded path below, 14–20 MiB of it old space committed but free
      // (holes V8 left after pretenuring the set path's objects). Taking out
      // only the guard's per-read Map churn, or only the awaited publish,
      // did not close them; skipping the whole path did.
      local.invalidate(invalidation)
      if (fillKey !== undefined && !local.closed) local.l1!.set(fillKey, l1Copy(l1Entry!, shape, local.hasL2))
      return
    }
    const ticket = fillKey === undefined ? 0 : local.guard.begin(fillKey)
    try {
      if (shared !== undefined) {
        try {
          await shared.call(key, () => writeL2(shared, atomic))
        } catch (error) {
          await this.#onFailedWrite(key, invalidation, error)
        }
      }
      let mayFill = fillKey !== undefined && local.guard.mayFill(fillKey, ticket)
      local.invalidate(invalidation)
      const afterOwnInvalidation = local.guard.current
      if (shared === undefined || atomic === undefined) await this.#publish(invalidation, key)
      mayFill &&= local.guard.mayFill(fillKey!, afterOwnInvalidation)
      if (mayFill && !local.closed) local.l1!.set(fillKey!, l1Copy(l1Entry!, shape, local.hasL2))
    } finally {
      if (fillKey !== undefined) local.guard.end(ticket)
    }
  }

  /**
   * An L2 write that failed may or may not have landed (a timeout is not a
   * "no"), so the local copy is dropped and other instances are told to drop
   * theirs before the caller gets the error: an uncertain write must not
   * leave any L1 serving the old value. A write never sent (circuit open,
   * connection known down) changed nothing; with `writeRecovery` it is
   * queued, and the local copy goes now since the replay will remove it.
   * An encoding error happened before any I/O: nothing to undo, the caller's bug.
   */
  async #onFailedWrite(key: string | undefined, invalidation: Invalidation, error: unknown): Promise<never> {
    const { reporter, local, recovery, shared } = this.#p
    const wrapped = reporter.tierError('write', key, error)
    if (wrapped.code === 'ERR_SERIALIZATION') throw wrapped
    const sent = wrapped.code !== 'ERR_CIRCUIT_OPEN' && wrapped.code !== 'ERR_TIER_UNAVAILABLE'
    if (sent || recovery !== undefined) local.invalidate(invalidation)
    if (sent) await this.#publish(invalidation, key).catch((publishError: unknown) => reporter.report(publishError as TierCacheError))
    recovery?.enqueue(invalidation)
    const what =
      invalidation.kind === 'key'
        ? 'the write of this key'
        : invalidation.kind === 'tags'
          ? `the invalidation of tags ${JSON.stringify(invalidation.tags)}`
          : 'the clear'
    const tier = shared?.name ?? 'L2'
    const reached = sent ? 'may not have reached' : 'did not reach'
    const next =
      recovery === undefined
        ? 'until it is retried or its TTL ends; retry it, or enable writeRecovery to have it replayed'
        : 'until it is replayed (queued: it is written again, as a delete, when the tier is back) or its TTL ends'
    throw new WriteFailedError(
      `${what} ${reached} the shared tier (${errorMessageOf(wrapped)}); other instances may serve the previous value from ${tier} ${next}`,
      recovery !== undefined,
      { cache: this.#p.name, key, tier, cause: wrapped },
    )
  }

  /**
   * A produced value kept out of L2 (`ctx.skipL2()`): the key's L2 copy is
   * deleted and the invalidation published, like a `set` with skipL2, but
   * this instance's own state is left alone (the load fills L1 itself). A
   * failure is reported, not thrown: the caller still gets the value.
   */
  async dropSharedCopy(key: string): Promise<void> {
    const { shared, reporter, name } = this.#p
    if (shared === undefined) return
    const invalidation: Invalidation = { kind: 'key', cache: name, key }
    const atomic = this.#atomicPublishOf(invalidation)
    try {
      await shared.call(key, () => writeL2Of(invalidation)(shared, atomic))
      if (atomic === undefined) await this.#publish(invalidation, key)
    } catch (error) {
      reporter.report(reporter.tierError('delete of the L2 copy (ctx.skipL2)', key, error))
    }
  }

  /** Mechanism 1: the invalidation handed to the L2 write, to publish in the same atomic step, where the tier can. */
  #atomicPublishOf(invalidation: Invalidation): AtomicPublish | undefined {
    const route = this.#p.atomicRoute
    return route === undefined ? undefined : { route, origin: this.#p.instanceId, invalidations: [invalidation] }
  }

  /** Write recovery's replay of one queued invalidation: L2 (a queued set as a delete), then the bus. */
  async #replay(shared: SharedTierAccess, invalidation: Invalidation): Promise<void> {
    const key = invalidation.kind === 'key' ? invalidation.key : undefined
    const atomic = this.#atomicPublishOf(invalidation)
    await shared.call(key, () => writeL2Of(invalidation)(shared, atomic))
    if (atomic === undefined) await this.#publish(invalidation, key)
  }

  async #publish(invalidation: Invalidation, key: string | undefined): Promise<void> {
    const membership = this.#p.membership
    if (membership === undefined) return
    try {
      await membership.publish([invalidation])
    } catch (error) {
      throw new PublishError(`invalidation could not be published: ${errorMessageOf(error)}`, { cache: this.#p.name, key, cause: error })
    }
  }
}

/** The L2 write that carries an invalidation: a delete, a tag invalidation, or a clear. */
function writeL2Of(invalidation: Invalidation): (shared: SharedTierAccess, publish: AtomicPublish | undefined) => Promise<void> {
  if (invalidation.kind === 'key') return (shared, publish) => shared.tier.delete(invalidation.key, { publish })
  if (invalidation.kind === 'tags') return (shared, publish) => shared.tier.invalidateTags(invalidation.tags, { publish })
  return (shared, publish) => shared.tier.clear({ publish })
}

/** One entry of `setMany`: `[key, value]`, or the key and value with that entry's own `set` options. */
export type SetManyEntry<V> = readonly [string, V] | ({ key: string; value: V } & Pick<SetOptions, 'ttl' | 'grace' | 'tags'>)

interface CheckedSet {
  readonly key: string
  readonly entry: TierEntry
  readonly skips: TierSkips
  readonly shape: L1Shape
  readonly keepTags: boolean
}

/**
 * Writes at a time in `setMany` and `deleteMany`: enough to fill a
 * pipeline (ioredis sends them together), few enough that a call over a
 * million keys does not hold a million writes in flight.
 */
const WRITE_CONCURRENCY = 64

/** Runs `run` over `items`, WRITE_CONCURRENCY at a time; rejects with the first failure once every started write has settled. */
async function settleAll<T>(items: readonly T[], run: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  let failure: { error: unknown } | undefined
  const worker = async () => {
    while (next < items.length && failure === undefined) {
      const item = items[next++]!
      try {
        await run(item)
      } catch (error) {
        failure ??= { error }
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(WRITE_CONCURRENCY, items.length) }, worker))
  if (failure !== undefined) throw failure.error
}
