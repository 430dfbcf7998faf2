import { advise, type Advice } from './advisor.js'
import { CircuitBreaker } from './circuit-breaker.js'
import { clock } from './clock.js'
import type {
  AtomicPublish,
  BoundLocalTier,
  BoundSharedTier,
  Bus,
  BusMembership,
  BusTrust,
  FillRead,
  Invalidation,
  LocalTier,
  PublishRoute,
  SharedTier,
  Tier,
  TierEntry,
  TierLease,
} from './contracts.js'
import { parseDuration, type Duration } from './duration.js'
import {
  CacheClosedError,
  CircuitOpenError,
  FactoryError,
  InvalidArgumentError,
  InvalidKeyError,
  InvalidOptionError,
  PublishError,
  TierCacheError,
  TierError,
  errorMessageOf,
} from './errors.js'
import { FactoryCall, runFactory, type Factory } from './factory.js'
import { describeMarkdown, type CacheDescription, type InvalidationPlan } from './describe.js'
import {
  hitChannel,
  invalidationChannel,
  missChannel,
  writeChannel,
  type HitEvent,
  type InvalidationEvent,
  type Logger,
  type MissEvent,
  type WriteEvent,
} from './events.js'
import { LatencyHistogram, type LatencySummary } from './histogram.js'
import { InFlightGuard } from './in-flight-guard.js'
import { GroupProfiles, MIN_GROUP_SAMPLE } from './profiles.js'
import { fillTemplate, parseTemplate, type KeyParams } from './key-template.js'
import {
  assertValidNamespace,
  assertValidTags,
  entryTags,
  MAX_TAGS_PER_INVALIDATION,
  NAMESPACE_SEPARATOR,
  namespacedKey,
  namespaceTag,
} from './tags.js'
import { effectiveTtl, READ_POLICY_OPTIONS, resolvePolicy, type ReadPolicy, type ReadPolicyOptions } from './policy.js'
import { newInstanceId } from './instance-id.js'
import { assertKnownOptions } from './options.js'
import { assertValidCacheName, assertValidKey } from './keys.js'
import { servable, UNKNOWN_T0 } from './serve-rule.js'

export interface CacheOptions extends ReadPolicyOptions {
  /**
   * Names the cache: prefixes its keys in shared tiers and its traffic on the
   * bus, and labels its errors. 1-100 characters from `A-Z a-z 0-9 _ . - /`.
   */
  name: string
  /**
   * The tiers, nearest first: `[memoryTier()]` (L1 only), `[redisTier()]`
   * (L2 only) or `[memoryTier(), redisTier()]`. At most one local and one
   * shared tier; the local one comes first.
   */
  tiers: readonly Tier[]
  /**
   * Carries invalidations between instances. Without a bus, writes on other
   * instances do not evict this instance's L1: only give an L1 to a cache
   * without a bus when a single instance writes and reads it.
   */
  bus?: Bus
  /**
   * The coherence bound: after a write resolves on any instance, this
   * instance stops returning the old value from L1 within this time, even
   * when connections drop, Redis restarts or pauses, or messages are lost.
   * L1 is read only while the bus has proven, within this window, that its
   * subscription delivers. Default: the bus's `maxStaleness` (1 s).
   */
  maxStaleness?: Duration
  /**
   * Receives errors the cache recovered from without failing the caller (an
   * L2 read that fell back to the factory, a fill that could not be written,
   * a factory failure answered with a stale value). Default: one process
   * warning per error code and cache.
   */
  onError?: (error: TierCacheError) => void
  /**
   * `'auto'`: once a group of keys (a namespace, a key template's scope) has
   * been sampled, stop using L2 for it while its factory costs less than two
   * L2 round trips (the advisor's "l1-only"), and go back when that changes.
   * Each decision is logged. Writes still go to L2 and the bus, so coherence
   * is unchanged. Default `'fixed'`.
   */
  policy?: 'fixed' | 'auto'
  /**
   * A pino-compatible logger (`warn(object, message)`) for recovered errors
   * when no `onError` is given; each error is logged with its cache, key,
   * tier and code.
   */
  logger?: Logger
  /**
   * Skips the shared tier after `failureThreshold` consecutive failures, for
   * `openFor`, then lets one call probe it (half-open). While open, reads go
   * to the factory (single-flight still applies) and writes reject with
   * `CircuitOpenError` at once. Default `{ failureThreshold: 5, openFor: '2s' }`;
   * `false` turns it off.
   */
  circuitBreaker?: { failureThreshold?: number; openFor?: Duration } | false
  /**
   * While the bus cannot prove its subscription delivers (a gap, a lost
   * connection), L1 is bypassed and reads go to L2: `'bypass-l1'` (default),
   * the coherence contract. `'serve-stale-l1'` keeps serving L1 instead,
   * giving up the staleness bound for availability during bus outages.
   */
  onBusDown?: 'bypass-l1' | 'serve-stale-l1'
  /**
   * How this cache's data becomes invalid, declared like an API: the events
   * that invalidate it, its tags and namespaces, or `ttlOnly: true`. Shown by
   * `describe()`. A cache without one gets a process warning at creation.
   */
  invalidation?: InvalidationPlan
}

export interface SetOptions {
  /** Overrides the cache's `ttl` for this value. */
  ttl?: Duration
  /** Overrides the cache's `grace` for this value. */
  grace?: Duration
  /** Tags to write the value under; `invalidateTags` on any of them drops it everywhere. */
  tags?: readonly string[]
}

/** Per-call overrides of the cache's read-path options, and the tags to store a produced value under. */
export interface GetOrSetOptions extends ReadPolicyOptions {
  tags?: readonly string[]
}

/** A cache scoped to a namespace; see `Cache.namespace`. */
export interface CacheNamespace<V> {
  readonly name: string
  get(key: string): Promise<V | undefined>
  getOrSet(key: string, factory: Factory<V>, options?: GetOrSetOptions): Promise<V>
  getMany(keys: readonly string[]): Promise<Array<V | undefined>>
  getOrSetMany(keys: readonly string[], loader: BatchLoader<V>, options?: GetOrSetOptions): Promise<V[]>
  set(key: string, value: V, options?: SetOptions): Promise<void>
  delete(key: string): Promise<void>
  /** Drops every entry under this namespace (and deeper ones), on every instance. */
  invalidate(): Promise<void>
  namespace(sub: string): CacheNamespace<V>
}

/** A key builder; see `Cache.key`. */
export interface KeyTemplate<T extends string, S extends string> {
  (params: KeyParams<T>): string
  readonly template: T
  readonly scope: S | undefined
  /** Drops every key of the scope these parameters name (all pages, all filters), on every instance. */
  invalidate(params: KeyParams<S>): Promise<void>
}

/** One entry for `warm`: a `[key, value]` pair, or an object with its own TTL. */
export type WarmEntry<V> = readonly [string, V] | { key: string; value: V; ttl?: Duration }
export type WarmSource<V> = Iterable<WarmEntry<V>> | AsyncIterable<WarmEntry<V>>

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
  /** Lookups (per key) L1 could not answer fresh. Lookups in all: `l1Hits + staleServed + l1Misses`. */
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
  /** Times the shared tier's circuit breaker opened. */
  circuitOpenings: number
  circuit: 'closed' | 'open' | 'half-open' | 'off'
}

const KNOWN_OPTIONS = new Set<string>([
  'name',
  'tiers',
  'bus',
  'maxStaleness',
  'onError',
  'circuitBreaker',
  'onBusDown',
  'invalidation',
  'logger',
  'policy',
  ...READ_POLICY_OPTIONS,
])
const NO_ENTRY: FillRead = { entry: undefined }
const MAX_FAIL_SAFE_KEYS = 10_000

/** A load in flight; callers may join it until `staleUntil` (set when it answered with a stale value). */
interface Load<V> {
  readonly promise: Promise<V>
  staleUntil: number
  /**
   * Rule 7's `t0` for what a joiner would get: the load's start until it
   * answers (every read it issues comes later), then the stale answer's own.
   */
  t0: number
}

/** The callers of one load: `answer` gives them a value once; `answered` says whether they have one. */
interface LoadCallers<V> {
  answer(value: V, stale?: { until: number; t0: number }): boolean
  readonly answered: boolean
}

const NO_CALLERS: LoadCallers<never> = { answer: () => false, answered: false }

interface Deferred<T> {
  readonly promise: Promise<T>
  resolve(value: T): void
  reject(error: unknown): void
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  promise.catch(() => {}) // observed by whoever awaits it; never an unhandled rejection on its own
  return { promise, resolve, reject }
}

/** Loads the values of several keys at once: a Map, or an array aligned with `keys`. */
export type BatchLoader<V> = (keys: string[]) => Promise<Map<string, V> | V[]> | Map<string, V> | V[]

function valueIn<V>(loaded: Map<string, V> | V[], key: string, index: number, cache: string): V {
  if (loaded instanceof Map) return loaded.get(key) as V
  if (Array.isArray(loaded)) return loaded[index] as V
  throw new InvalidArgumentError('getOrSetMany: the loader must return a Map or an array aligned with the keys it was given', { cache, key })
}
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
const usableUntil = (entry: TierEntry): number => entry.staleUntil ?? entry.expiresAt

/** A cache with no bus has nothing to lose: its L1 is always trusted. */
const ALWAYS_TRUSTED: BusTrust = { verifiedAt: Number.POSITIVE_INFINITY }

/**
 * A named cache over one or two tiers. Create it with `createCache`.
 *
 * Reading order: L1 (synchronous) → a load already in flight for the key →
 * L2 → the factory. Writing order: L2, then L1, then the invalidation on the
 * bus, then the call resolves — so once a write resolves, every other instance
 * has been told.
 */
export class Cache<V = unknown> {
  readonly name: string
  /** Identifies this instance on the bus; invalidations it publishes are not delivered back to it. */
  readonly instanceId: string

  #l1: BoundLocalTier | undefined
  #l2: BoundSharedTier | undefined
  #l2Name: string
  #membership: BusMembership | undefined
  /** Liveness: L1 is served only while `clock() - #trust.verifiedAt < #maxStalenessMs`. */
  #trust: BusTrust = ALWAYS_TRUSTED
  #maxStalenessMs = 1_000
  /** Set when the L2 publishes each write's invalidation in the same atomic step (mechanism 1). */
  #atomicRoute: PublishRoute | undefined
  #policy: ReadPolicy
  #counters = {
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
  }
  /** A plain field, not in #counters: the L1 hit path pays one increment and nothing else. */
  #l1Hits = 0
  #l2Latency = new LatencyHistogram()
  #profiles = new GroupProfiles()
  #autoPolicy = false
  #factoryLatency = new LatencyHistogram()
  #breaker: CircuitBreaker | undefined
  #invalidation: InvalidationPlan | undefined
  #keyTemplates: Array<{ template: string; scope: string | undefined }> = []
  #tierNames: string[]
  #onError: ((error: TierCacheError) => void) | undefined
  #logger: Logger | undefined
  #warned = new Set<string>()
  #closed = false
  /** Single-flight: one load per key at a time in this instance; later callers join it. */
  #inFlight = new Map<string, Load<V>>()
  /** Fail-safe backoff per key: the stale value that answers until `until` (rule 7 still applies, with its `t0`). */
  #failSafe = new Map<string, { until: number; entry: TierEntry; t0: number }>()
  #guard = new InFlightGuard()

  constructor(options: CacheOptions) {
    assertKnownOptions(options, KNOWN_OPTIONS, 'createCache', {
      cache: typeof (options as { name?: unknown } | null)?.name === 'string' ? options.name : undefined,
    })
    assertValidCacheName(options.name)
    const name = options.name
    const { local, shared } = pickTiers(name, options.tiers)
    this.#policy = resolvePolicy(options, undefined, { cache: name })
    this.#breaker = makeBreaker(options.circuitBreaker, name)
    this.#invalidation = checkPlan(options.invalidation, name)
    this.#tierNames = options.tiers.map((tier) => tier.name)
    if (options.onBusDown !== undefined && options.onBusDown !== 'bypass-l1' && options.onBusDown !== 'serve-stale-l1') {
      throw new InvalidOptionError(`onBusDown: must be 'bypass-l1' or 'serve-stale-l1', got ${JSON.stringify(options.onBusDown)}`, {
        cache: name,
      })
    }
    if (options.onError !== undefined && typeof options.onError !== 'function') {
      throw new InvalidOptionError('onError must be a function', { cache: name })
    }
    const bus = options.bus
    if (bus !== undefined && (bus === null || typeof bus.join !== 'function')) {
      throw new InvalidOptionError('bus must be a Bus (memoryBus(), redisBus(), …)', { cache: name })
    }
    const maxStalenessMs =
      options.maxStaleness === undefined ? undefined : parseDuration(options.maxStaleness, 'maxStaleness', { cache: name })

    this.name = name
    this.instanceId = newInstanceId()
    this.#onError = options.onError
    if (options.logger !== undefined && typeof options.logger?.warn !== 'function') {
      throw new InvalidOptionError('logger must have a warn(object, message) method (pino, console, …)', { cache: name })
    }
    this.#logger = options.logger
    if (options.policy !== undefined && options.policy !== 'fixed' && options.policy !== 'auto') {
      throw new InvalidOptionError(`policy: must be 'fixed' or 'auto', got ${JSON.stringify(options.policy)}`, { cache: name })
    }
    this.#autoPolicy = options.policy === 'auto'
    // Bind and join only after every option is valid, and undo the bindings
    // if joining fails: a rejected createCache holds nothing open.
    this.#l1 = local?.bind({ cacheName: name })
    this.#l2 = shared?.bind({ cacheName: name })
    this.#l2Name = shared?.name ?? 'none'
    try {
      this.#membership = bus?.join({
        instanceId: this.instanceId,
        cacheName: name,
        onInvalidation: (invalidation) => this.#onRemoteInvalidation(invalidation),
        onGap: () => {
          if (invalidationChannel.hasSubscribers) invalidationChannel.publish({ cache: name, kind: 'gap', key: undefined } satisfies InvalidationEvent)
          this.#clearLocally()
        },
      })
      const membership = this.#membership
      if (membership !== undefined) {
        if (shared?.deployment !== undefined && membership.deployment !== undefined && shared.deployment !== membership.deployment) {
          throw new InvalidOptionError(
            `the shared tier writes under prefix "${shared.deployment}" but the bus carries prefix "${membership.deployment}": ` +
              'instances would never hear each other\'s invalidations; give both the same prefix',
            { cache: name },
          )
        }
        // serve-stale-l1: the user chose availability over the staleness bound during bus outages.
        this.#trust = options.onBusDown === 'serve-stale-l1' ? ALWAYS_TRUSTED : membership.trust
        this.#maxStalenessMs = maxStalenessMs ?? membership.maxStalenessMs
        const route = membership.route
        if (route !== undefined && this.#l2?.canPublishVia?.(route) === true) this.#atomicRoute = route
      }
      if (this.#invalidation === undefined) warnNoPlan(name)
    } catch (error) {
      this.#closed = true
      this.#membership?.leave()
      this.#l1?.close()
      this.#l2?.close().catch(() => {})
      throw error
    }
  }

  // ---------------------------------------------------------------- read path

  /**
   * The value for `key`, producing it with `factory` on a miss and caching it.
   * Concurrent calls for one key in this instance run the factory once.
   */
  getOrSet(key: string, factory: Factory<V>, options?: GetOrSetOptions): Promise<V> {
    // L1 hit path: no async function, no allocation but the resolved promise,
    // one clock read serving both the TTL and the liveness check. Keys are
    // validated on the miss path only: an invalid key can never have been
    // written, so it can never hit.
    const entry = this.#l1Hit(key)
    if (entry !== undefined) {
      this.#l1Hits++
      if (hitChannel.hasSubscribers) hitChannel.publish({ cache: this.name, key, tier: 'l1', stale: false } satisfies HitEvent)
      return Promise.resolve(entry.value as V)
    }
    return this.#getOrSetMiss(key, factory, options)
  }

  /** The cached value, or `undefined` when no tier holds a fresh one. Never runs a factory. */
  get(key: string): Promise<V | undefined> {
    const entry = this.#l1Hit(key)
    if (entry !== undefined) {
      this.#l1Hits++
      if (hitChannel.hasSubscribers) hitChannel.publish({ cache: this.name, key, tier: 'l1', stale: false } satisfies HitEvent)
      return Promise.resolve(entry.value as V)
    }
    return this.#getMiss(key)
  }

  /**
   * Values for `keys`, in order (`undefined` where no tier holds a fresh
   * one): L1 first, then one L2 round trip for the rest. Never runs a factory.
   */
  async getMany(keys: readonly string[]): Promise<Array<V | undefined>> {
    const entries = await this.#lookupMany(keys)
    return entries.map((entry) => entry?.value as V | undefined)
  }

  /**
   * Values for `keys`, in order, calling `loader` once with the keys no tier
   * holds (and no load already in flight covers). `loader` returns a Map, or
   * an array aligned with the keys it was given; a key it leaves out is
   * cached as a miss (negative caching). Loads are shared per key with
   * `getOrSet`, take the same leases, and obey `hardTimeout`; stale values
   * (grace) are not served by this call.
   */
  async getOrSetMany(keys: readonly string[], loader: BatchLoader<V>, options?: GetOrSetOptions): Promise<V[]> {
    if (typeof loader !== 'function') throw new InvalidArgumentError('getOrSetMany needs a loader function', { cache: this.name })
    const policy = resolvePolicy(options, this.#policy, { cache: this.name })
    if (options?.tags !== undefined) assertValidTags(this.name, options.tags)
    this.#assertOpen()
    if (!Array.isArray(keys)) throw new InvalidArgumentError('expected an array of keys', { cache: this.name })
    for (const key of keys) assertValidKey(this.name, key)
    // L1 here; L2 in #loadMany, whose reads take the leases in the same round trip.
    const entries = keys.map((key) => this.#l1Hit(key))
    const inL1 = entries.filter((entry) => entry !== undefined).length
    this.#l1Hits += inL1
    this.#counters.l1Misses += entries.length - inL1
    const results: Array<V | Promise<V>> = []
    const toLoad = new Map<string, Deferred<V>>()
    entries.forEach((entry, i) => {
      const key = keys[i]!
      if (entry !== undefined) {
        results.push(entry.value as V)
        return
      }
      const joined = this.#joinable(key)
      if (joined !== undefined) {
        results.push(joined)
        return
      }
      const pending = deferred<V>()
      this.#inFlight.set(key, { promise: pending.promise, staleUntil: Number.POSITIVE_INFINITY, t0: clock() })
      toLoad.set(key, pending)
      results.push(pending.promise)
    })
    if (toLoad.size > 0) void this.#loadMany(toLoad, loader, policy, options?.tags)
    return Promise.all(results)
  }

  /**
   * The batch miss path: L2 reads that take leases for every key (pipelined:
   * one round trip),
   * then one loader call for the keys this call may produce, then their fills
   * (one batched write). A key another process is producing goes the
   * single-key way and waits for it. Each key settles on its own.
   */
  async #loadMany(pending: Map<string, Deferred<V>>, loader: BatchLoader<V>, policy: ReadPolicy, tagsOption: readonly string[] | undefined): Promise<void> {
    const keys = [...pending.keys()]
    const tickets = new Map(keys.map((key) => [key, this.#guard.begin(key)]))
    const settle = (key: string, outcome: Promise<V>): Promise<void> =>
      outcome.then(pending.get(key)!.resolve, pending.get(key)!.reject)
    try {
      const reads = await Promise.all(keys.map((key) => this.#readForFill(key, policy.lockTimeoutMs)))
      const batch: Array<{ key: string; lease: TierLease | undefined }> = []
      const waits: Array<Promise<void>> = []
      reads.forEach((read, i) => {
        const key = keys[i]!
        const entry = read.entry
        if (entry !== undefined && entry.expiresAt > clock()) {
          this.#counters.l2Hits++
          this.#fillL1(key, entry, tickets.get(key)!)
          pending.get(key)!.resolve(entry.value as V)
        } else if (read.leasedElsewhere === true) {
          const one: Factory<V> = async () => valueIn(await loader([key]), key, 0, this.name)
          waits.push(settle(key, this.#load(key, one, policy, undefined, NO_CALLERS, tagsOption)))
        } else {
          batch.push({ key, lease: read.lease })
        }
      })
      if (batch.length > 0) {
        const batchKeys = batch.map(({ key }) => key)
        let loaded: Map<string, V> | V[]
        const loaderStarted = clock()
        try {
          this.#counters.factoryCalls++
          this.#counters.misses += batch.length
          loaded = await runFactory<Map<string, V> | V[]>(
            () => loader(batchKeys),
            new FactoryCall(this.name, batchKeys.join(','), undefined),
            this.name,
            { softTimeoutMs: undefined, hardTimeoutMs: policy.hardTimeoutMs, onSoftTimeout: undefined },
          )
          if (!(loaded instanceof Map) && !Array.isArray(loaded)) {
            throw new InvalidArgumentError('getOrSetMany: the loader must return a Map or an array aligned with the keys it was given', {
              cache: this.name,
            })
          }
        } catch (error) {
          this.#factoryLatency.record(clock() - loaderStarted)
          this.#counters.factoryErrors++
          await Promise.all(batch.map(({ key, lease }) => (lease === undefined ? undefined : this.#releaseLease(key, lease))))
          for (const { key } of batch) pending.get(key)!.reject(error)
          batch.length = 0
          loaded = []
        }
        if (batch.length > 0) this.#factoryLatency.record(clock() - loaderStarted)
        const now = clock()
        await Promise.all(
          batch.map(({ key, lease }, i) => {
            const value = valueIn(loaded, key, i, this.name)
            const expiresAt = now + effectiveTtl(policy, value, undefined)
            const tags = entryTags(key, tagsOption)
            const entry = newEntry(value, expiresAt, policy.graceMs, tags)
            return settle(key, this.#store(key, entry, lease, tickets.get(key)!).then(() => value))
          }),
        )
      }
      await Promise.all(waits)
    } catch (error) {
      for (const deferredValue of pending.values()) deferredValue.reject(error)
    } finally {
      for (const [key, { promise }] of pending) {
        this.#guard.end(key)
        if (this.#inFlight.get(key)?.promise === promise) this.#inFlight.delete(key)
      }
    }
  }

  /** L1, then one L2 round trip for what L1 did not have; entries in key order. */
  async #lookupMany(keys: readonly string[]): Promise<Array<TierEntry | undefined>> {
    this.#assertOpen()
    if (!Array.isArray(keys)) throw new InvalidArgumentError('expected an array of keys', { cache: this.name })
    for (const key of keys) assertValidKey(this.name, key)
    const entries: Array<TierEntry | undefined> = keys.map((key) => this.#l1Hit(key))
    const missing = keys.filter((_, i) => entries[i] === undefined)
    this.#l1Hits += keys.length - missing.length
    this.#counters.l1Misses += missing.length
    const l2 = this.#l2
    if (missing.length === 0 || l2 === undefined) {
      this.#counters.misses += missing.length
      return entries
    }
    const tickets = missing.map((key) => this.#guard.begin(key))
    try {
      let found: Array<TierEntry | undefined>
      try {
        found = await this.#l2Call(undefined, () => (l2.getMany !== undefined ? l2.getMany(missing) : Promise.all(missing.map((key) => l2.get(key)))))
      } catch (error) {
        this.#report(this.#tierError('read', missing.length === 1 ? missing[0] : undefined, error))
        return entries
      }
      const now = clock()
      let j = 0
      entries.forEach((entry, i) => {
        if (entry !== undefined) return
        const candidate = found[j]
        const key = missing[j]!
        const ticket = tickets[j]!
        j++
        if (candidate !== undefined && candidate.expiresAt > now) {
          entries[i] = candidate
          this.#counters.l2Hits++
          this.#fillL1(key, candidate, ticket)
        } else {
          this.#counters.misses++
        }
      })
      return entries
    } finally {
      for (const key of missing) this.#guard.end(key)
    }
  }

  /**
   * Fills the cache after a deploy: `set` for each entry, at most
   * `concurrency` (default 32) at a time, so that writes go out in batches.
   * Accepts entries (`[key, value]` or `{ key, value, ttl? }`), an iterable
   * or async iterable of them, or a function returning one. Resolves with the
   * number written; rejects on the first failure, after the writes under way
   * have settled.
   */
  async warm(
    source: WarmSource<V> | (() => WarmSource<V> | Promise<WarmSource<V>>),
    options: { concurrency?: number } = {},
  ): Promise<number> {
    this.#assertOpen()
    const concurrency = options.concurrency ?? 32
    if (!Number.isSafeInteger(concurrency) || concurrency < 1) {
      throw new InvalidOptionError(`warm: concurrency must be a positive integer, got ${String(options.concurrency)}`, { cache: this.name })
    }
    const entries = typeof source === 'function' ? await source() : source
    if (entries === null || typeof entries !== 'object' || !(Symbol.iterator in entries || Symbol.asyncIterator in entries)) {
      throw new InvalidArgumentError('warm: expected entries, an (async) iterable of them, or a function returning one', { cache: this.name })
    }
    const running = new Set<Promise<void>>()
    let written = 0
    let failure: { error: unknown } | undefined
    for await (const item of entries as AsyncIterable<WarmEntry<V>>) {
      if (failure !== undefined) break
      if (item === null || typeof item !== 'object') {
        failure = { error: new InvalidArgumentError('warm: each entry is [key, value] or { key, value, ttl? }', { cache: this.name }) }
        break
      }
      const { key, value, ttl } = isPair(item) ? { key: item[0], value: item[1], ttl: undefined } : item
      const write: Promise<void> = this.set(key, value, ttl === undefined ? undefined : { ttl }).then(
        () => {
          written++
        },
        (error: unknown) => {
          failure ??= { error }
        },
      )
      running.add(write)
      void write.finally(() => running.delete(write))
      if (running.size >= concurrency) await Promise.race(running)
    }
    await Promise.all(running)
    if (failure !== undefined) throw failure.error
    return written
  }

  /**
   * The L1 entry for `key` if it may be served: fresh, and L1 trusted
   * (liveness). One clock read serves both checks; small enough for V8 to
   * inline into both callers.
   */
  #l1Hit(key: string): TierEntry | undefined {
    const entry = this.#l1?.get(key)
    if (entry === undefined) return undefined
    const now = clock()
    return entry.expiresAt > now && now - this.#trust.verifiedAt < this.#maxStalenessMs ? entry : undefined
  }

  async #getOrSetMiss(key: string, factory: Factory<V>, options: GetOrSetOptions | undefined): Promise<V> {
    this.#assertOpen(key)
    assertValidKey(this.name, key)
    if (typeof factory !== 'function') {
      throw new InvalidArgumentError('getOrSet needs a factory function', { cache: this.name, key })
    }
    // Parse per-call options before any I/O, so a bad option fails fast and writes nothing.
    const policy = resolvePolicy(options, this.#policy, { cache: this.name, key })
    const tags = options?.tags
    if (tags !== undefined) assertValidTags(this.name, tags, key)
    // Fail-safe backoff: after a factory failure answered with a stale value,
    // that value answers until the backoff ends (never past its grace).
    const backoff = this.#failSafe.get(key)
    if (backoff !== undefined) {
      const now = clock()
      if (now < backoff.until && usableUntil(backoff.entry) > now && this.#servable(backoff.t0, now)) {
        this.#counters.staleServed++
        return backoff.entry.value as V
      }
      this.#failSafe.delete(key)
    }
    const held = this.#l1?.get(key)
    // Stale-while-revalidate: past its TTL but within grace, L1 answers at once
    // and one refresh runs behind (joining one already running).
    const stale = this.#l1Usable(held)
    if (stale !== undefined && policy.refreshStale === 'background') {
      if (this.#joinable(key) === undefined) this.#startLoad(key, factory, policy, stale, true, tags).catch(() => {})
      this.#counters.staleServed++
      return stale.value as V
    }
    this.#counters.l1Misses++
    return this.#joinable(key) ?? this.#startLoad(key, factory, policy, stale, false, tags)
  }

  /**
   * The load in flight for `key`, if joining it still gives a usable answer:
   * a load that answered with a stale value is joinable only within that
   * value's grace (a refresh that hangs must not serve it forever).
   */
  #joinable(key: string): Promise<V> | undefined {
    const load = this.#inFlight.get(key)
    if (load === undefined) return undefined
    const now = clock()
    return now < load.staleUntil && this.#servable(load.t0, now) ? load.promise : undefined
  }

  /** Rule 7 (serve-rule.ts): may a value produced by a read issued at `t0` be served at `now`? */
  #servable(t0: number, now: number): boolean {
    return servable(this.#trust.verifiedAt, this.#maxStalenessMs, t0, now)
  }

  /**
   * Single-flight: registers the load so that concurrent callers join it,
   * until it has finished. A refresh started for a stale value is answered
   * with that value from the start: callers that join it get it at once.
   */
  #startLoad(
    key: string,
    factory: Factory<V>,
    policy: ReadPolicy,
    stale: TierEntry | undefined,
    answerStale: boolean,
    tags: readonly string[] | undefined,
  ): Promise<V> {
    const result = deferred<V>()
    const load: Load<V> = { promise: result.promise, staleUntil: Number.POSITIVE_INFINITY, t0: clock() }
    let answered = false
    /** Answers the callers once; true if this call was the answer. A stale answer limits who may still join, and until when. */
    const callers: LoadCallers<V> = {
      get answered() {
        return answered
      },
      answer: (value: V, stale?: { until: number; t0: number }): boolean => {
        if (answered) return false
        answered = true
        if (stale !== undefined) {
          load.staleUntil = stale.until
          load.t0 = stale.t0
        }
        result.resolve(value)
        return true
      },
    }
    // An L1 value within grace: the caller checked it against rule 7 just now.
    if (answerStale) callers.answer(stale!.value as V, { until: usableUntil(stale!), t0: UNKNOWN_T0 })
    this.#inFlight.set(key, load)
    this.#load(key, factory, policy, stale, callers, tags)
      .then(
        (value) => callers.answer(value),
        (error: unknown) => {
          if (answered) this.#report(this.#factoryError('refresh failed; callers had the stale value', key, error))
          else {
            answered = true
            result.reject(error)
          }
        },
      )
      .finally(() => {
        // A write may already have replaced or removed this load (see #invalidateLocally).
        if (this.#inFlight.get(key) === load) this.#inFlight.delete(key)
      })
    return result.promise
  }

  /**
   * The miss path, top to bottom: L2 (taking the key's lease in the same
   * round trip) → wait for another process's lease holder → the factory
   * (timeouts, fail-safe) → conditional L2 write → L1. The callers may be
   * answered early with a stale value; the load then carries on behind.
   */
  async #load(
    key: string,
    factory: Factory<V>,
    policy: ReadPolicy,
    staleFromL1: TierEntry | undefined,
    callers: LoadCallers<V>,
    tagsOption?: readonly string[],
  ): Promise<V> {
    const ticket = this.#guard.begin(key)
    let stale = staleFromL1
    /** Rule 7's `t0` of `stale`: unknown for an L1 value, the read's issue time for an L2 one. */
    let staleT0 = UNKNOWN_T0
    /**
     * Answers the callers with the stale value if rule 7 allows it now; true
     * if they have an answer (this one or an earlier one). Checked every time
     * it is handed out: by the time a soft timeout or a factory error asks,
     * trust may have lapsed (a silent partition). A fail-safe answer is
     * counted as `failSafe`, not `staleServed`.
     */
    const serveStale = (failSafe = false): boolean => {
      if (callers.answered) return true
      if (stale === undefined) return false
      const now = clock()
      const until = usableUntil(stale)
      if (until <= now || !this.#servable(staleT0, now)) return false
      if (callers.answer(stale.value as V, { until, t0: staleT0 }) && !failSafe) this.#counters.staleServed++
      return true
    }
    let lease: TierLease | undefined
    try {
      // 1. L2, and other processes' leases.
      const waitUntil = clock() + policy.lockTimeoutMs
      const skipL2 = this.#l1OnlyByPolicy(key)
      for (let attempt = 0; ; attempt++) {
        const readIssuedAt = clock()
        const read = skipL2 ? NO_ENTRY : await this.#readForFill(key, policy.lockTimeoutMs)
        const entry = read.entry
        const now = clock()
        if (entry !== undefined && entry.expiresAt > now) {
          this.#counters.l2Hits++
          if (hitChannel.hasSubscribers) hitChannel.publish({ cache: this.name, key, tier: 'l2', stale: false } satisfies HitEvent)
          this.#fillL1(key, entry, ticket)
          return entry.value as V
        }
        if (entry !== undefined && usableUntil(entry) > now) {
          if (stale === undefined || usableUntil(entry) > usableUntil(stale)) {
            stale = entry
            staleT0 = readIssuedAt
          }
          this.#fillL1(key, entry, ticket) // stale within grace: serves the next callers' SWR
        }
        const answeredStale = stale !== undefined && policy.refreshStale === 'background' && serveStale()
        lease = read.lease
        if (read.leasedElsewhere !== true) break
        // Another process holds the lease: it is producing this value. With a
        // stale answer given, leave the refresh to it; otherwise poll for its
        // value (5 ms doubling to 50 ms) until lockTimeout, then produce our own.
        if (answeredStale) return stale!.value as V
        if (clock() >= waitUntil) break
        if (attempt === 0) this.#counters.leaseWaits++
        await sleep(Math.min(50, 5 * 2 ** attempt))
      }

      // 2. The factory.
      const call = new FactoryCall<V>(this.name, key, stale === undefined ? undefined : { value: stale.value as V })
      let value: V
      const factoryStarted = clock()
      const expired = this.#l1?.get(key)
      if (expired !== undefined && expired.expiresAt <= factoryStarted) this.#counters.expiredMisses++
      try {
        this.#counters.factoryCalls++
        this.#counters.misses++
        value = await runFactory(factory, call, this.name, {
          softTimeoutMs: policy.softTimeoutMs,
          hardTimeoutMs: policy.hardTimeoutMs,
          onSoftTimeout: stale === undefined ? undefined : () => void serveStale(),
        })
      } catch (error) {
        const factoryMs = clock() - factoryStarted
        this.#factoryLatency.record(factoryMs)
        this.#counters.factoryErrors++
        if (lease !== undefined) await this.#releaseLease(key, lease)
        // Fail-safe only with a stale value rule 7 still allows (or one the
        // callers already have): past it, the caller gets the error.
        if (stale === undefined || !serveStale(true)) {
          if (missChannel.hasSubscribers) missChannel.publish({ cache: this.name, key, factoryMs, outcome: 'error' } satisfies MissEvent)
          throw error
        }
        // Fail-safe: answer with the stale value, and keep answering with it
        // for failSafeBackoff (within its grace, and while rule 7 allows)
        // before trying the factory again.
        const now = clock()
        this.#counters.failSafe++
        this.#report(this.#factoryError('factory failed; answered with the stale value (fail-safe)', key, error))
        this.#rememberFailSafe(key, stale, Math.min(now + policy.failSafeBackoffMs, usableUntil(stale)), staleT0)
        if (missChannel.hasSubscribers) missChannel.publish({ cache: this.name, key, factoryMs, outcome: 'fail-safe' } satisfies MissEvent)
        return stale.value as V
      }

      const factoryMs = clock() - factoryStarted
      this.#factoryLatency.record(factoryMs)
      this.#profiles.recordMiss(key, factoryMs)
      if (missChannel.hasSubscribers) {
        missChannel.publish({ cache: this.name, key, factoryMs, outcome: call.skipped ? 'not-stored' : 'stored' } satisfies MissEvent)
      }

      // 3. Store, unless the factory said not to or an invalidation overtook it.
      if (call.skipped) {
        if (lease !== undefined) await this.#releaseLease(key, lease)
        return value
      }
      const expiresAt = clock() + effectiveTtl(policy, value, call.ttlMs)
      const tags = entryTags(key, call.tags ?? tagsOption)
      const entry = newEntry(value, expiresAt, policy.graceMs, tags)
      await this.#store(key, entry, lease, ticket)
      return value
    } finally {
      this.#guard.end(key)
    }
  }

  /**
   * Stores a produced value. L2: under its lease where the tier has leases
   * (no lease, no L2 write: the holder of the lease fills it), else only if
   * no fresh entry is there. L1: unless the L2 write was held back (a write
   * revoked the lease: this value is older than what L2 has) or an
   * invalidation overtook the read (in-flight guard). A value computed while
   * its key was invalidated may predate the write that invalidated it: it
   * answers the caller, but is cached nowhere.
   */
  async #store(key: string, entry: TierEntry<V>, lease: TierLease | undefined, ticket: number): Promise<void> {
    const l2 = this.#l1OnlyByPolicy(key) ? undefined : this.#l2
    let mayFillL1 = true
    if (l2 !== undefined && this.#guard.mayFill(key, ticket) && (lease !== undefined || l2.readForFill === undefined)) {
      try {
        const written = await this.#l2Call(key, () => l2.set(key, entry, lease === undefined ? { ifAbsent: true } : { lease }))
        if (written === false) mayFillL1 = false
      } catch (error) {
        if (lease !== undefined) await this.#releaseLease(key, lease)
        const wrapped = this.#tierError('write', key, error)
        // A value that cannot be encoded is the caller's bug, not an outage: say so.
        if (wrapped.code === 'ERR_SERIALIZATION') throw wrapped
        this.#report(wrapped)
      }
    } else if (lease !== undefined) {
      await this.#releaseLease(key, lease)
    }
    if (mayFillL1) this.#fillL1(key, entry, ticket)
  }

  /** `policy: 'auto'` decided this key's group does not pay for L2 (needs an L1 to fall back on). */
  #l1OnlyByPolicy(key: string): boolean {
    if (!this.#autoPolicy || this.#l1 === undefined || this.#l2 === undefined) return false
    // While L1 is not trusted (a bus gap), an L1-only group would send every request to the factory: use L2.
    if (clock() - this.#trust.verifiedAt >= this.#maxStalenessMs) return false
    const l2 = this.#l2Latency
    return (
      this.#profiles.decide(key, l2.quantile(0.5), l2.count, (group, decision, factoryP50Ms) => {
        const message =
          decision === 'l1-only'
            ? `policy auto: "${group}" now skips L2 (factory ${factoryP50Ms.toFixed(2)} ms < 2x L2 round trip ${l2.quantile(0.5).toFixed(2)} ms)`
            : `policy auto: "${group}" uses L2 again (factory ${factoryP50Ms.toFixed(2)} ms >= 2x L2 round trip ${l2.quantile(0.5).toFixed(2)} ms)`
        try {
          if (this.#logger !== undefined) this.#logger.warn({ cache: this.name, group, decision, factoryP50Ms }, message)
          else process.emitWarning(`cache "${this.name}": ${message}`, { code: 'TIERCACHE_POLICY_AUTO' })
        } catch {
          // A broken logger must not fail the call.
        }
      }) === 'l1-only'
    )
  }

  /** Bounded: a flood of failing keys must not grow it without limit (oldest dropped first). */
  #rememberFailSafe(key: string, entry: TierEntry, until: number, t0: number): void {
    this.#failSafe.delete(key)
    if (this.#failSafe.size >= MAX_FAIL_SAFE_KEYS) this.#failSafe.delete(this.#failSafe.keys().next().value!)
    this.#failSafe.set(key, { until, entry, t0 })
  }

  /** The L1 entry if usable past its TTL (within grace) and rule 7 allows it (an L1 value: liveness alone). */
  #l1Usable(entry: TierEntry | undefined): TierEntry | undefined {
    if (entry === undefined || entry.staleUntil === undefined) return undefined
    const now = clock()
    return entry.staleUntil > now && this.#servable(UNKNOWN_T0, now) ? entry : undefined
  }

  async #getMiss(key: string): Promise<V | undefined> {
    this.#assertOpen(key)
    assertValidKey(this.name, key)
    this.#counters.l1Misses++
    const ticket = this.#guard.begin(key)
    try {
      const cached = await this.#readL2(key)
      if (cached === undefined) {
        this.#counters.misses++
        return undefined
      }
      this.#counters.l2Hits++
      this.#fillL1(key, cached, ticket)
      return cached.value as V
    } finally {
      this.#guard.end(key)
    }
  }

  /** L2 lookup that degrades to a miss when L2 fails: the factory path must keep working without Redis. */
  async #readL2(key: string): Promise<TierEntry | undefined> {
    const l2 = this.#l2
    if (l2 === undefined) return undefined
    try {
      const entry = await this.#l2Call(key, () => l2.get(key))
      return entry !== undefined && entry.expiresAt > clock() ? entry : undefined
    } catch (error) {
      this.#report(this.#tierError('read', key, error))
      return undefined
    }
  }

  /** The fill path's L2 read (with a lease where the tier has them); an L2 failure reads as a plain miss. */
  async #readForFill(key: string, leaseMs: number): Promise<FillRead> {
    const l2 = this.#l2
    if (l2 === undefined) return NO_ENTRY
    try {
      return await this.#l2Call(key, () => (l2.readForFill !== undefined ? l2.readForFill(key, leaseMs) : l2.get(key).then((entry) => ({ entry }))))
    } catch (error) {
      this.#report(this.#tierError('read', key, error))
      return NO_ENTRY
    }
  }

  /**
   * Gives an unused lease back before the caller hears of the outcome, so
   * that the next caller anywhere takes it at once instead of waiting out
   * lockTimeout. Never rejects: a lost release only costs that wait.
   */
  async #releaseLease(key: string, lease: TierLease): Promise<void> {
    const l2 = this.#l2
    if (l2?.releaseLease === undefined) return
    try {
      await this.#l2Call(key, () => l2.releaseLease!(key, lease))
    } catch (error) {
      this.#report(this.#tierError('lease release', key, error))
    }
  }


  /**
   * Every shared-tier call goes through the circuit breaker: skipped at once
   * while it is open, and its outcome counted. A value the tier rejected
   * (encoding) says nothing about the tier's health.
   */
  async #l2Call<T>(key: string | undefined, run: () => Promise<T>): Promise<T> {
    const breaker = this.#breaker
    if (breaker === undefined) {
      const started = clock()
      try {
        return await run()
      } finally {
        this.#l2Latency.record(clock() - started)
      }
    }
    if (!breaker.allow()) {
      throw new CircuitOpenError('shared tier skipped: circuit breaker open after repeated failures', {
        cache: this.name,
        key,
        tier: this.#l2Name,
      })
    }
    const started = clock()
    try {
      const result = await run()
      this.#l2Latency.record(clock() - started)
      breaker.success()
      return result
    } catch (error) {
      this.#l2Latency.record(clock() - started)
      // A value the tier refused to encode never reached it: no verdict on its health.
      if ((error as { code?: unknown } | null)?.code === 'ERR_SERIALIZATION') breaker.release()
      else breaker.failure()
      throw error
    }
  }

  #fillL1(key: string, entry: TierEntry, ticket: number): void {
    if (this.#l1 !== undefined && !this.#closed && this.#guard.mayFill(key, ticket)) this.#l1.set(key, entry)
  }

  // --------------------------------------------------------------- write path

  /** Stores `value` in every tier and tells every other instance to drop its L1 copy. */
  async set(key: string, value: V, options?: SetOptions): Promise<void> {
    this.#assertOpen(key)
    assertValidKey(this.name, key)
    const policy = resolvePolicy(options, this.#policy, { cache: this.name, key })
    if (options?.tags !== undefined) assertValidTags(this.name, options.tags, key)
    const now = clock()
    const expiresAt = now + effectiveTtl(policy, undefined, policy.ttlMs)
    const tags = entryTags(key, options?.tags)
    const entry = newEntry(value, expiresAt, policy.graceMs, tags)
    const invalidation: Invalidation = { kind: 'key', cache: this.name, key }
    await this.#write(key, invalidation, async (publish) => void (await this.#l2!.set(key, entry, { publish })), entry)
  }

  /** Removes `key` from every tier, on every instance. */
  async delete(key: string): Promise<void> {
    this.#assertOpen(key)
    assertValidKey(this.name, key)
    const invalidation: Invalidation = { kind: 'key', cache: this.name, key }
    await this.#write(key, invalidation, (publish) => this.#l2!.delete(key, { publish }))
  }

  /**
   * Makes every entry written under any of `tags` a miss, on every instance:
   * O(1) per tag in Redis (version counters, no scan), L1 copies dropped
   * through the bus with the coherence contract's guarantees.
   */
  async invalidateTags(tags: readonly string[]): Promise<void> {
    this.#assertOpen()
    assertValidTags(this.name, tags, undefined, MAX_TAGS_PER_INVALIDATION)
    if (tags.length > 0) await this.#invalidateTagged([...new Set(tags)])
  }

  /** Makes every entry under `namespace` (and its sub-namespaces: all pages, all filters) a miss, on every instance. */
  async invalidateNamespace(namespace: string): Promise<void> {
    this.#assertOpen()
    assertValidNamespace(this.name, namespace)
    await this.#invalidateTagged([namespaceTag(namespace)])
  }

  async #invalidateTagged(tags: readonly string[]): Promise<void> {
    const invalidation: Invalidation = { kind: 'tags', cache: this.name, tags }
    await this.#write(undefined, invalidation, (publish) => this.#l2!.invalidateTags(tags, { publish }))
  }

  /**
   * A handle on `namespace` (`'company:42'`): the same calls with keys scoped
   * to it, sharing this cache's tiers, bus and single-flight state. Its
   * `invalidate()` drops everything under it; `namespace('orders')` nests.
   */
  namespace(namespace: string): CacheNamespace<V> {
    assertValidNamespace(this.name, namespace)
    const scoped = (key: string): string => {
      assertValidKey(this.name, key)
      if (key.includes(NAMESPACE_SEPARATOR)) {
        throw new InvalidKeyError('a key in a namespace cannot itself be namespaced; nest with .namespace()', { cache: this.name, key })
      }
      return namespacedKey(namespace, key)
    }
    return {
      name: namespace,
      // async: a bad key rejects like any other call, never throws synchronously.
      get: async (key) => this.get(scoped(key)),
      getOrSet: async (key, factory, options) => this.getOrSet(scoped(key), factory, options),
      getMany: async (keys) => this.getMany(keys.map(scoped)),
      getOrSetMany: async (keys, loader, options) => {
        const scopedKeys = keys.map(scoped)
        const back = new Map(scopedKeys.map((full, i) => [full, keys[i]!]))
        return this.getOrSetMany(scopedKeys, async (missing) => {
          const loaded = await loader(missing.map((full) => back.get(full)!))
          if (loaded instanceof Map) return new Map(missing.map((full) => [full, loaded.get(back.get(full)!) as V]))
          return loaded
        }, options)
      },
      set: async (key, value, options) => this.set(scoped(key), value, options),
      delete: async (key) => this.delete(scoped(key)),
      invalidate: () => this.invalidateNamespace(namespace),
      namespace: (sub) => this.namespace(`${namespace}:${sub}`),
    }
  }

  /**
   * A typed key template: `cache.key('company:{companyId}:orders:page:{page}',
   * { scope: 'company:{companyId}:orders' })` builds keys from exactly those
   * parameters (escaping ':' inside values, so two parameter sets never build
   * the same key), places each key in its scope's namespace, and
   * `.invalidate({ companyId })` drops the whole scope. Values are written as
   * strings: `{ page: 1 }` and `{ page: '1' }` name the same key, on purpose.
   */
  key<T extends string, S extends string = never>(template: T, options: { scope?: S } = {}): KeyTemplate<T, S> {
    const full = parseTemplate(template, 'key template', this.name)
    const scope = options.scope === undefined ? undefined : parseTemplate(options.scope, 'scope', this.name)
    if (scope !== undefined && scope.names.some((name) => !full.names.includes(name))) {
      throw new InvalidArgumentError(`scope "${scope.source}" uses a parameter that key "${template}" does not have`, { cache: this.name })
    }
    if (!this.#keyTemplates.some((k) => k.template === template && k.scope === options.scope)) {
      this.#keyTemplates.push({ template, scope: options.scope })
    }
    const build = ((params: KeyParams<T>): string => {
      const key = fillTemplate(full, params, this.name)
      if (scope === undefined) return key
      const pick = Object.fromEntries(scope.names.map((name) => [name, (params as Record<string, unknown>)[name]]))
      const namespace = fillTemplate(scope, pick, this.name)
      assertValidNamespace(this.name, namespace) // a key its scope could not invalidate must not be written
      const local = key.startsWith(`${namespace}:`) ? key.slice(namespace.length + 1) : key
      return namespacedKey(namespace, local)
    }) as KeyTemplate<T, S>
    Object.defineProperties(build, {
      template: { value: template },
      scope: { value: options.scope },
      invalidate: {
        value: async (params: KeyParams<S>) => {
          if (scope === undefined) throw new InvalidArgumentError(`key "${template}" has no scope to invalidate`, { cache: this.name })
          await this.invalidateNamespace(fillTemplate(scope, params, this.name))
        },
      },
    })
    return build
  }

  /**
   * Memoizes `fn` through `getOrSet` (single-flight, leases and all):
   * `cache.wrap(loadUser, { key: (id) => `user:${id}`, ttl: '5m', tags: (id) => [...] })`.
   */
  wrap<A extends unknown[]>(
    fn: (...args: A) => V | Promise<V>,
    options: { key: (...args: A) => string; tags?: readonly string[] | ((...args: A) => readonly string[]) } & ReadPolicyOptions,
  ): (...args: A) => Promise<V> {
    if (typeof fn !== 'function' || typeof options?.key !== 'function') {
      throw new InvalidArgumentError('wrap needs a function and a key(...args) function', { cache: this.name })
    }
    const { key, tags, ...policy } = options
    // async: a key() or tags() that throws rejects the call like any other bad input.
    return async (...args: A) =>
      this.getOrSet(key(...args), () => fn(...args), { ...policy, tags: typeof tags === 'function' ? tags(...args) : tags })
  }

  /**
   * Wires a domain event to invalidation in one line:
   * `cache.invalidateOn(events, 'order.updated', (e) => ({ namespaces: [`company:${e.companyId}:orders`] }))`.
   * Returns a function that unwires it. Failures go to `onError`.
   */
  invalidateOn<E>(
    emitter: { on(event: string, listener: (payload: E) => void): unknown; off?(event: string, listener: (payload: E) => void): unknown },
    event: string,
    map: (payload: E) => { keys?: readonly string[]; tags?: readonly string[]; namespaces?: readonly string[] },
  ): () => void {
    const listener = (payload: E): void => {
      let plan: { keys?: readonly string[]; tags?: readonly string[]; namespaces?: readonly string[] }
      try {
        plan = map(payload)
        const arrays = plan === null || typeof plan !== 'object' ? [] : [plan.keys, plan.tags, plan.namespaces]
        if (arrays.length === 0 || arrays.some((list) => list !== undefined && !Array.isArray(list))) {
          throw new Error('the mapper must return { keys?, tags?, namespaces? } with arrays')
        }
      } catch (error) {
        // A listener must not throw into the emitter's caller: report instead.
        this.#report(new InvalidArgumentError(`invalidateOn("${event}"): ${errorMessageOf(error)}`, { cache: this.name, cause: error }))
        return
      }
      const work = [
        ...(plan.keys ?? []).map((key) => this.delete(key)),
        ...(plan.tags !== undefined && plan.tags.length > 0 ? [this.invalidateTags(plan.tags)] : []),
        ...(plan.namespaces ?? []).map((namespace) => this.invalidateNamespace(namespace)),
      ]
      for (const done of work) {
        done.catch((error: unknown) => this.#report(error instanceof TierCacheError ? error : this.#tierError('invalidate', undefined, error)))
      }
    }
    emitter.on(event, listener)
    return () => {
      emitter.off?.(event, listener)
    }
  }

  /** Removes every entry of this cache (no other cache's) from every tier, on every instance. */
  async clear(): Promise<void> {
    this.#assertOpen()
    const invalidation: Invalidation = { kind: 'clear', cache: this.name }
    await this.#write(undefined, invalidation, (publish) => this.#l2!.clear({ publish }))
  }

  /**
   * The write path shared by set, delete and clear: L2 (with the invalidation
   * published in the same atomic step when the tier can), then this
   * instance's L1 and in-flight state, then the invalidation on the bus if
   * the tier did not carry it. Resolves only when other instances have been
   * told; rejects when that cannot be confirmed.
   */
  async #write(
    key: string | undefined,
    invalidation: Invalidation,
    writeL2: (publish: AtomicPublish | undefined) => Promise<void>,
    l1Entry?: TierEntry,
  ): Promise<void> {
    this.#counters.writes++
    if (writeChannel.hasSubscribers) {
      writeChannel.publish({ cache: this.name, kind: invalidation.kind === 'key' ? (l1Entry === undefined ? 'delete' : 'set') : invalidation.kind, key } satisfies WriteEvent)
    }
    const atomic: AtomicPublish | undefined =
      this.#atomicRoute === undefined
        ? undefined
        : { route: this.#atomicRoute, origin: this.instanceId, invalidations: [invalidation] }
    // The writer's own L1 copy is guarded like any fill: if another
    // instance's invalidation for this key arrives while this write is in
    // flight, that write may be newer than ours, so ours stays out of L1.
    const fillKey = l1Entry !== undefined && this.#l1 !== undefined ? key : undefined
    const ticket = fillKey === undefined ? 0 : this.#guard.begin(fillKey)
    try {
      if (this.#l2 !== undefined) {
        try {
          await this.#l2Call(key, () => writeL2(atomic))
        } catch (error) {
          await this.#onFailedWrite(key, invalidation, error)
        }
      }
      let mayFill = fillKey !== undefined && this.#guard.mayFill(fillKey, ticket)
      this.#invalidateLocally(invalidation)
      const afterOwnInvalidation = this.#guard.current
      if (this.#l2 === undefined || atomic === undefined) await this.#publish(invalidation, key)
      mayFill &&= this.#guard.mayFill(fillKey!, afterOwnInvalidation)
      if (mayFill && !this.#closed) this.#l1!.set(fillKey!, l1Entry!)
    } finally {
      if (fillKey !== undefined) this.#guard.end(fillKey)
    }
  }

  /**
   * An L2 write that failed may or may not have landed (a timeout is not a
   * "no"), so the local copy is dropped and other instances are told to drop
   * theirs before the caller gets the error: an uncertain write must not
   * leave any L1 serving the old value. An encoding error happened before any
   * I/O: nothing changed, nothing to undo.
   */
  async #onFailedWrite(key: string | undefined, invalidation: Invalidation, error: unknown): Promise<never> {
    const wrapped = this.#tierError('write', key, error)
    // Not attempted (bad value, open circuit): nothing changed, nothing to undo.
    if (wrapped.code !== 'ERR_SERIALIZATION' && wrapped.code !== 'ERR_CIRCUIT_OPEN') {
      this.#invalidateLocally(invalidation)
      await this.#publish(invalidation, key).catch((publishError: unknown) => this.#report(publishError as TierCacheError))
    }
    throw wrapped
  }

  async #publish(invalidation: Invalidation, key: string | undefined): Promise<void> {
    if (this.#membership === undefined) return
    try {
      await this.#membership.publish([invalidation])
    } catch (error) {
      throw new PublishError(`invalidation could not be published: ${errorMessageOf(error)}`, {
        cache: this.name,
        key,
        cause: error,
      })
    }
  }

  // ------------------------------------------------------------ invalidation

  #invalidateLocally(invalidation: Invalidation): void {
    if (invalidation.kind === 'clear') {
      this.#clearLocally()
      return
    }
    if (invalidation.kind === 'tags') {
      const tags = new Set(invalidation.tags)
      if (this.#l1?.deleteTagged !== undefined) this.#l1.deleteTagged(tags)
      else this.#l1?.clear()
      for (const [key, { entry }] of this.#failSafe) if (entry.tags?.some((tag) => tags.has(tag)) === true) this.#failSafe.delete(key)
      // Which reads in flight were tagged is unknown until they finish: none may fill, none may be joined.
      this.#guard.invalidateAll()
      this.#inFlight.clear()
      return
    }
    const key = invalidation.key
    this.#l1?.delete(key)
    this.#failSafe.delete(key)
    this.#guard.invalidateKey(key)
    // Callers arriving from now on must not join a load that began before the write.
    this.#inFlight.delete(key)
  }

  #clearLocally(): void {
    this.#l1?.clear()
    this.#failSafe.clear()
    this.#guard.invalidateAll()
    this.#inFlight.clear()
  }

  #onRemoteInvalidation(invalidation: Invalidation): void {
    if (this.#closed) return
    this.#counters.invalidationsReceived++
    if (invalidationChannel.hasSubscribers) {
      invalidationChannel.publish({ cache: this.name, kind: invalidation.kind, key: invalidation.kind === 'key' ? invalidation.key : undefined } satisfies InvalidationEvent)
    }
    this.#invalidateLocally(invalidation)
  }

  // --------------------------------------------------------------- lifecycle

  /**
   * Leaves the bus and releases the tiers (a shared Redis connection closes
   * when its last user closes). Calls made after `close()` reject with
   * `CacheClosedError`. The bus itself is closed with `bus.close()`.
   */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#membership?.leave()
    this.#inFlight.clear()
    this.#l1?.clear()
    this.#l1?.close()
    await this.#l2?.close()
  }

  get closed(): boolean {
    return this.#closed
  }

  /** The cache as documentation: tiers, TTLs, key templates, invalidation plan; as an object and a Markdown table. */
  describe(): CacheDescription & { markdown: string } {
    const description: CacheDescription = {
      name: this.name,
      tiers: [...this.#tierNames],
      bus: this.#membership !== undefined,
      ttlMs: this.#policy.ttlMs,
      negativeTtlMs: this.#policy.negativeTtlMs,
      graceMs: this.#policy.graceMs,
      maxStalenessMs: this.#maxStalenessMs,
      keyTemplates: this.#keyTemplates.map((k) => ({ ...k })),
      invalidation: this.#invalidation,
    }
    return { ...description, markdown: describeMarkdown([description]) }
  }

  /**
   * Profile first, cache second: compares the measured factory cost with the
   * L2 round trip and the hit rate, and says whether this cache pays off
   * ("l1-only: factory 1.2 ms < 2x L2 round trip 0.9 ms", "do-not-cache: hit
   * rate 3 %", "raise-ttl: 45 % of misses are expirations").
   */
  advise(): Advice {
    return advise(this.name, this.stats(), this.#l2 !== undefined)
  }

  /**
   * The advisor per group of keys (namespace or key-template scope): each
   * group's own factory cost against this cache's L2 round trip and hit rate.
   */
  adviseGroups(): Advice[] {
    const stats = this.stats()
    return this.#profiles.groups().map(({ group, misses, factoryP50Ms }) => {
      if (misses < MIN_GROUP_SAMPLE) {
        return {
          cache: `${this.name} ${group}`,
          group,
          recommendation: 'not-enough-data' as const,
          reason: `${misses} factory runs in this group so far; advice needs ${MIN_GROUP_SAMPLE}`,
          numbers: { lookups: misses, hitRate: 0, factoryP50Ms, l2P50Ms: stats.l2Latency.p50, expiredMissShare: 0 },
        }
      }
      // Hits are counted per cache, not per group (the hit path stays free of it): the group's own number is its factory cost.
      const groupStats: CacheCounters = { ...stats, factoryLatency: { ...stats.factoryLatency, count: misses, p50: factoryP50Ms } }
      return { ...advise(`${this.name} ${group}`, groupStats, this.#l2 !== undefined), group }
    })
  }

  /** Counters of the read path's rarer events (fail-safe, stale answers, lease waits, factory calls). */
  stats(): CacheCounters {
    return {
      l1Hits: this.#l1Hits,
      ...this.#counters,
      l1Entries: this.#l1?.size ?? 0,
      l2CorruptEntries: this.#l2?.counters?.().corruptEntries ?? 0,
      circuitOpenings: this.#breaker?.openings ?? 0,
      circuit: this.#breaker?.state ?? 'off',
      l2Latency: this.#l2Latency.summary(),
      factoryLatency: this.#factoryLatency.summary(),
    }
  }

  // ----------------------------------------------------------------- helpers

  #assertOpen(key?: string): void {
    if (this.#closed) throw new CacheClosedError('cache is closed', { cache: this.name, key })
  }


  #tierError(operation: string, key: string | undefined, error: unknown): TierCacheError {
    if (error instanceof TierCacheError) return error
    return new TierError(`${operation} failed: ${errorMessageOf(error)}`, {
      cache: this.name,
      key,
      tier: this.#l2Name,
      cause: error,
    })
  }

  #factoryError(message: string, key: string, error: unknown): TierCacheError {
    return new FactoryError(`${message}: ${errorMessageOf(error)}`, { cache: this.name, key, cause: error })
  }

  #report(error: TierCacheError): void {
    if (this.#onError !== undefined) {
      try {
        this.#onError(error)
      } catch {
        // A throwing error handler must not turn a recovered error into a failed call.
      }
      return
    }
    if (this.#logger !== undefined) {
      try {
        this.#logger.warn({ cache: error.cache, key: error.key, tier: error.tier, code: error.code, err: error }, error.message)
      } catch {
        // A broken logger must not fail the call.
      }
      return
    }
    if (this.#warned.has(error.code)) return
    this.#warned.add(error.code)
    process.emitWarning(`${error.message} (further ${error.code} errors of this cache are not reported; pass onError to see them)`, {
      code: error.code,
    })
  }
}

function pickTiers(
  cache: string,
  tiers: readonly Tier[] | undefined,
): { local: LocalTier | undefined; shared: SharedTier | undefined } {
  if (!Array.isArray(tiers) || tiers.length === 0 || tiers.length > 2) {
    throw new InvalidOptionError('tiers: give one or two tiers, e.g. [memoryTier(), redisTier()]', { cache })
  }
  let local: LocalTier | undefined
  let shared: SharedTier | undefined
  tiers.forEach((tier: Tier, index: number) => {
    if (tier === null || typeof tier !== 'object' || typeof tier.bind !== 'function') {
      throw new InvalidOptionError(`tiers[${index}] is not a tier`, { cache })
    }
    if (tier.kind === 'local') {
      if (local !== undefined || index !== 0) {
        throw new InvalidOptionError('tiers: the local tier (L1) must come first, and only one', { cache })
      }
      local = tier as LocalTier
    } else if (tier.kind === 'shared') {
      if (shared !== undefined) throw new InvalidOptionError('tiers: at most one shared tier (L2)', { cache })
      shared = tier as SharedTier
    } else {
      throw new InvalidOptionError(`tiers[${index}] has unknown kind ${JSON.stringify(tier.kind)}`, { cache })
    }
  })
  return { local, shared }
}

const warnedNoPlan = new Set<string>()

/** Once per cache name and process: a cache nobody declared an invalidation plan for is how stale data ships. */
function warnNoPlan(cache: string): void {
  if (warnedNoPlan.has(cache)) return
  warnedNoPlan.add(cache)
  process.emitWarning(
    `cache "${cache}" declares no invalidation plan: pass invalidation: { on, tags, namespaces } or { ttlOnly: true } (see describe())`,
    { code: 'TIERCACHE_NO_INVALIDATION_PLAN' },
  )
}

function checkPlan(plan: unknown, cache: string): InvalidationPlan | undefined {
  if (plan === undefined) return undefined
  if (plan === null || typeof plan !== 'object') throw new InvalidOptionError('invalidation: expected { on?, tags?, namespaces?, ttlOnly?, notes? }', { cache })
  const known = new Set(['on', 'tags', 'namespaces', 'ttlOnly', 'notes'])
  for (const [field, value] of Object.entries(plan)) {
    if (!known.has(field)) throw new InvalidOptionError(`invalidation: unknown field "${field}"`, { cache })
    const valid =
      field === 'ttlOnly'
        ? typeof value === 'boolean'
        : field === 'notes'
          ? typeof value === 'string'
          : Array.isArray(value) && value.every((item) => typeof item === 'string')
    if (!valid) throw new InvalidOptionError(`invalidation.${field}: expected ${field === 'ttlOnly' ? 'a boolean' : field === 'notes' ? 'a string' : 'an array of strings'}`, { cache })
  }
  return { ...(plan as InvalidationPlan) }
}

function isPair<V>(item: WarmEntry<V>): item is readonly [string, V] {
  return Array.isArray(item)
}

function makeBreaker(option: CacheOptions['circuitBreaker'], cache: string): CircuitBreaker | undefined {
  if (option === false) return undefined
  if (option !== undefined && (option === null || typeof option !== 'object')) {
    throw new InvalidOptionError('circuitBreaker: give { failureThreshold?, openFor? } or false', { cache })
  }
  const threshold = option?.failureThreshold ?? 5
  if (!Number.isSafeInteger(threshold) || threshold < 1) {
    throw new InvalidOptionError(`circuitBreaker.failureThreshold: must be a positive integer, got ${String(threshold)}`, { cache })
  }
  const openForMs = option?.openFor === undefined ? 2_000 : parseDuration(option.openFor, 'circuitBreaker.openFor', { cache })
  return new CircuitBreaker(threshold, openForMs)
}

/** Creates a named cache. See `CacheOptions`. */
export function createCache<V = unknown>(options: CacheOptions): Cache<V> {
  return new Cache<V>(options)
}

/**
 * An entry as L1 holds it. Two plain literals rather than one with a
 * conditional spread: the spread form measured 8.5 bytes more per entry
 * (bench/scenarios/memory.mjs; about 2 % of a 200-byte value's footprint),
 * and both give every untagged entry the same shape as the ones the shared
 * tiers return, so the hit path stays monomorphic.
 */
function newEntry<V>(value: V, expiresAt: number, graceMs: number, tags: readonly string[] | undefined): TierEntry<V> {
  const createdAt = Date.now()
  const staleUntil = expiresAt + graceMs
  return tags === undefined ? { value, createdAt, expiresAt, staleUntil } : { value, createdAt, expiresAt, staleUntil, tags }
}
