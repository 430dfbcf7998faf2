/**
 * The facade: a named cache over one or two tiers, created with
 * `createCache`. It wires the parts together and answers L1 hits itself;
 * everything else is one call down into them:
 *
 *   read:   getOrSet → L1 hit (here) → load.ts (miss path) → shared-tier.ts (L2)
 *   batch:  getMany / getOrSetMany → batch.ts → load.ts
 *   write:  set / delete / invalidate… / clear → write.ts
 *   state:  local-state.ts (L1, trust, guard, loads, fail-safe), serve-rule.ts
 *
 * Writing order: L2, then L1, then the invalidation on the bus, then the call
 * resolves — so once a write resolves, every other instance has been told.
 */
import type { Advice } from '../advisor.js'
import { clock } from '../clock.js'
import type { BoundLocalTier, Bus, BusMembership, BusTrust, Invalidation } from '../contracts.js'
import { parseDuration, type Duration } from '../duration.js'
import type { CacheDescription } from '../describe.js'
import { hitChannel, invalidationChannel, type HitEvent, type InvalidationEvent } from '../events.js'
import type { Factory } from '../factory.js'
import { LatencyHistogram } from '../histogram.js'
import { HotKeys } from '../hot-keys.js'
import { newInstanceId } from '../instance-id.js'
import { effectiveTtl, resolvePolicy, type ReadPolicy, type ReadPolicyOptions } from '../policy.js'
import { GroupProfiles } from '../profiles.js'
import { assemblePaths, type Paths } from './assemble.js'
import type { BatchLoader } from './batch.js'
import { assertCallOptions, READ_OPTIONS } from './call-options.js'
import { resolveConfig, warnNoPlan, type CacheOptions, type GetOrSetManyOptions, type GetOrSetOptions, type ReadOptions, type SetOptions } from './config.js'
import {
  keyTemplate,
  namespaceHandle,
  warmFrom,
  wireInvalidation,
  wrapFunction,
  type CacheCalls,
  type CacheNamespace,
  type KeyTemplate,
  type WarmSource,
} from './handles.js'
import { getOrSetOptionsError } from './get-or-set-call.js'
import { tierGhostsOf } from './ghost-index.js'
import { type CachedEntry, cachedEntryOf, uncachedEntryOf } from './entry.js'
import { Introspection } from './introspection.js'
import { joinBus } from './join-bus.js'
import { freshUntilOf } from './refresh-ahead.js'
import { LocalState } from './local-state.js'
import { Reporter } from './report.js'
import { SharedTierAccess } from './shared-tier.js'
import { tierSkipsOf } from './skips.js'
import { newCounters, type CacheCounters } from './stats.js'
import type { SetManyEntry, Writer } from './write.js'
import { WriteRecovery } from './write-recovery.js'

export class Cache<V = unknown> implements CacheCalls<V> {
  readonly name: string
  /** Identifies this instance on the bus; invalidations it publishes are not delivered back to it. */
  readonly instanceId: string

  // The L1 hit path reads these three fields and nothing else: copies of
  // what LocalState holds (set once, at construction), so a hit costs no
  // extra indirection (see bench/scenarios/l1-hit.mjs).
  readonly #l1: BoundLocalTier | undefined
  readonly #trust: BusTrust
  readonly #maxStalenessMs: number
  /** A plain field, not in the counters object: the L1 hit path pays one increment and nothing else. */
  #l1Hits = 0

  readonly #local: LocalState<V>
  readonly #shared: SharedTierAccess | undefined
  readonly #loader: Paths<V>['reads']
  readonly #batch: Paths<V>['batch']
  /** "Is it hot?": the hottest keys' share of lookups (hot-keys.ts); the hit path samples into it. */
  readonly #hotKeys = new HotKeys()
  readonly #writer: Writer<V>
  readonly #reporter: Reporter
  readonly #counters = newCounters()
  readonly #policy: ReadPolicy
  readonly #membership: BusMembership | undefined
  readonly #keyTemplates: Array<{ template: string; scope: string | undefined }> = []
  readonly #recovery: WriteRecovery | undefined
  readonly #bus: Bus | undefined
  readonly #introspection: Introspection

  constructor(options: CacheOptions) {
    const config = resolveConfig(options)
    const name = config.name
    this.name = name
    this.instanceId = newInstanceId()
    this.#policy = config.policy
    const l2Latency = new LatencyHistogram()
    const factoryLatency = new LatencyHistogram()
    const profiles = new GroupProfiles()
    this.#reporter = new Reporter(name, config.shared?.name ?? 'none', config.onError, config.logger)
    // Bind and join only after every option is valid (joinBus undoes the
    // bindings if joining fails).
    // Observe mode: L1 is not bound; its ghost takes its place in the local
    // state (every fill, write and invalidation reaches it as it would L1),
    // and the facade has no L1, so the inline hit check always falls through.
    const ghosts = config.observe ? tierGhostsOf(config.local, config.shared !== undefined) : undefined
    const ghost = ghosts?.first
    const local = new LocalState<V>(name, ghost ?? config.local?.bind({ cacheName: name }), config.shared !== undefined)
    local.sharedGhost = ghosts?.shared
    const boundShared = config.shared?.bind({ cacheName: name })
    this.#local = local
    this.#l1 = ghost === undefined ? local.l1 : undefined
    this.#shared =
      boundShared === undefined ? undefined : new SharedTierAccess(name, boundShared, config.shared!.name, config.breaker, l2Latency, this.#reporter)
    const { membership, atomicRoute } = joinBus(config, this.instanceId, local, boundShared, (invalidation) => this.#onRemoteInvalidation(invalidation))
    if (config.invalidation === undefined) warnNoPlan(name)
    local.reuseOwnLoads = config.outageReuse
    const recovery =
      config.writeRecovery === undefined || this.#shared === undefined ? undefined : new WriteRecovery(name, config.writeRecovery, this.#reporter)
    if (recovery !== undefined) local.trust = recovery.gate(local.trust)
    this.#recovery = recovery
    this.#bus = config.bus
    this.#membership = membership
    this.#trust = local.trust
    this.#maxStalenessMs = local.maxStalenessMs
    const paths = assemblePaths<V>({
      config,
      instanceId: this.instanceId,
      local,
      shared: this.#shared,
      membership,
      atomicRoute,
      recovery,
      ghosts,
      hotKeys: this.#hotKeys,
      reporter: this.#reporter,
      counters: this.#counters,
      profiles,
      factoryLatency,
      l2Latency,
      countL1Hits: (hits) => {
        this.#l1Hits += hits
      },
    })
    this.#loader = paths.reads
    this.#batch = paths.batch
    this.#writer = paths.writer
    this.#introspection = new Introspection({
      config,
      bus: membership !== undefined,
      maxStalenessMs: this.#maxStalenessMs,
      keyTemplates: this.#keyTemplates,
      l1Hits: () => this.#l1Hits,
      counters: this.#counters,
      l1: this.#l1,
      shared: this.#shared,
      recovery,
      breaker: config.breaker,
      l2Latency,
      factoryLatency,
      ghosts,
      hotKeys: this.#hotKeys,
      profiles,
    })
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
    // written, so it can never hit. Options, when given, are checked here
    // too (a typo must not wait for a miss to fail; bench/options-hit.mjs
    // measures the cost). A call with skipL1 goes past L1.
    if (options !== undefined) {
      const problem = getOrSetOptionsError(this.name, this.#policy, key, options)
      if (problem !== undefined) return Promise.reject(problem)
    }
    const entry = options?.skipL1 === true ? undefined : this.#l1Hit(key)
    if (entry !== undefined) {
      // One hit in 64 feeds the hot-key sketch, weighted 64: a mask and a compare on the hit path.
      if ((++this.#l1Hits & 63) === 0) this.#hotKeys.add(key, 64)
      if (hitChannel.hasSubscribers) hitChannel.publish({ cache: this.name, key, tier: 'l1', stale: false } satisfies HitEvent)
      return Promise.resolve(entry.value as V)
    }
    return this.#loader.getOrSet(key, factory, options)
  }

  /**
   * `getOrSet`, answering with the entry described for HTTP: `{ value,
   * etag, createdAt, expiresAt, tags }` (see `CachedEntry`; `@tiercache/http`
   * turns it into Cache-Control, ETag and 304s). A value this instance does
   * not hold in L1 afterwards (no L1, `skipL1`, not cached, or replaced
   * meanwhile) is described as produced now, for its TTL.
   */
  async getOrSetEntry(key: string, factory: Factory<V>, options?: GetOrSetOptions): Promise<CachedEntry<V>> {
    const value = await this.getOrSet(key, factory, options)
    const held = this.#local.l1?.get(key)
    if (held !== undefined && held.value === value) return cachedEntryOf<V>(held, freshUntilOf(held))
    const policy = resolvePolicy(options, this.#policy, { cache: this.name, key })
    return uncachedEntryOf(value, effectiveTtl(policy, value, undefined), options?.tags)
  }

  /**
   * The cached value, or `undefined` when no tier holds a fresh one. Never runs a factory. `skipL1`/`skipL2` read past a tier.
   * In observe mode: always `undefined`, reading no tier (the lookup counts toward `predictedHitRate`).
   */
  get(key: string, options?: ReadOptions): Promise<V | undefined> {
    if (options !== undefined) {
      try {
        assertCallOptions('get', options, READ_OPTIONS, { cache: this.name, key })
        tierSkipsOf(options, { cache: this.name, key })
      } catch (error) {
        return Promise.reject(error)
      }
    }
    const entry = options?.skipL1 === true ? undefined : this.#l1Hit(key)
    if (entry !== undefined) {
      // One hit in 64 feeds the hot-key sketch, weighted 64: a mask and a compare on the hit path.
      if ((++this.#l1Hits & 63) === 0) this.#hotKeys.add(key, 64)
      if (hitChannel.hasSubscribers) hitChannel.publish({ cache: this.name, key, tier: 'l1', stale: false } satisfies HitEvent)
      return Promise.resolve(entry.value as V)
    }
    return this.#loader.get(key, options)
  }

  /**
   * The L1 entry for `key` if it may be served: fresh, and L1 trusted
   * (liveness; rule 7 with `t0` unknown, the inline form of
   * `LocalState.hit`). One clock read serves both checks; small enough for
   * V8 to inline into both callers.
   */
  #l1Hit(key: string) {
    const entry = this.#l1?.get(key)
    if (entry === undefined) return undefined
    const now = clock()
    return entry.expiresAt > now && now - this.#trust.verifiedAt < this.#maxStalenessMs ? entry : undefined
  }

  /**
   * Values for `keys`, in order (`undefined` where no tier holds a fresh
   * one): L1 first, then one L2 round trip for the rest. Never runs a factory.
   * In observe mode: `undefined` for every key, reading no tier.
   */
  async getMany(keys: readonly string[], options?: ReadOptions): Promise<Array<V | undefined>> {
    assertCallOptions('getMany', options, READ_OPTIONS, { cache: this.name })
    const entries = await this.#batch.getMany(keys, tierSkipsOf(options, { cache: this.name }))
    return entries.map((entry) => entry?.value as V | undefined)
  }

  /**
   * True when a tier holds a fresh value for `key` — a cached `null` too,
   * which `get` cannot tell from a miss. Reads as `getMany` does (L1, then
   * one L2 round trip); never runs a factory. Observe mode: always false.
   */
  async has(key: string, options?: ReadOptions): Promise<boolean> {
    assertCallOptions('has', options, READ_OPTIONS, { cache: this.name, key })
    const [entry] = await this.#batch.getMany([key], tierSkipsOf(options, { cache: this.name, key }))
    return entry !== undefined
  }

  /**
   * Values for `keys`, in order, calling `loader` once with the keys no tier
   * holds (and no load already in flight covers). `loader` returns a Map, or
   * an array aligned with the keys it was given; a key it leaves out is
   * cached as a miss (negative caching). Loads are shared per key with
   * `getOrSet`, take the same leases, and obey `hardTimeout`; stale values
   * (grace) are not served by this call.
   */
  getOrSetMany(keys: readonly string[], loader: BatchLoader<V>, options?: GetOrSetManyOptions): Promise<V[]> {
    return this.#batch.getOrSetMany(keys, loader, options)
  }

  // --------------------------------------------------------------- write path

  /** Stores `value` in every tier and tells every other instance to drop its L1 copy. */
  set(key: string, value: V, options?: SetOptions): Promise<void> {
    return this.#writer.set(key, value, options)
  }

  /** Removes `key` from every tier, on every instance. */
  delete(key: string, options?: ReadOptions): Promise<void> {
    return this.#writer.delete(key, options)
  }

  /** `set` for each entry, every argument checked before any write (see `Writer.setMany`). */
  setMany(entries: Iterable<SetManyEntry<V>>, options?: SetOptions): Promise<void> {
    return this.#writer.setMany(entries, options)
  }

  /** `delete` for each key, every key checked before any write (see `Writer.deleteMany`). */
  deleteMany(keys: readonly string[], options?: ReadOptions): Promise<void> {
    return this.#writer.deleteMany(keys, options)
  }

  /**
   * Makes every entry written under any of `tags` a miss, on every instance:
   * O(1) per tag in Redis (version counters, no scan), L1 copies dropped
   * through the bus with the coherence contract's guarantees.
   */
  invalidateTags(tags: readonly string[]): Promise<void> {
    return this.#writer.invalidateTags(tags)
  }

  /** Makes every entry under `namespace` (and its sub-namespaces: all pages, all filters) a miss, on every instance. */
  invalidateNamespace(namespace: string): Promise<void> {
    return this.#writer.invalidateNamespace(namespace)
  }

  /** Removes every entry of this cache (no other cache's) from every tier, on every instance. */
  clear(): Promise<void> {
    return this.#writer.clear()
  }

  /** Another instance's write: drop what it names, here. */
  #onRemoteInvalidation(invalidation: Invalidation): void {
    if (this.#local.closed) return
    this.#counters.invalidationsReceived++
    if (invalidationChannel.hasSubscribers) {
      invalidationChannel.publish({
        cache: this.name,
        kind: invalidation.kind,
        key: invalidation.kind === 'key' ? invalidation.key : undefined,
      } satisfies InvalidationEvent)
    }
    this.#local.invalidate(invalidation)
  }

  // ------------------------------------------------------------------ handles

  /**
   * A handle on `namespace` (`'company:42'`): the same calls with keys scoped
   * to it, sharing this cache's tiers, bus and single-flight state. Its
   * `invalidate()` drops everything under it; `namespace('orders')` nests.
   */
  namespace(namespace: string): CacheNamespace<V> {
    return namespaceHandle(this, namespace)
  }

  /**
   * A typed key template: `cache.key('company:{companyId}:orders:page:{page}',
   * { scope: 'company:{companyId}:orders' })` builds keys from exactly those
   * parameters (escaping ':' inside values, so two parameter sets never build
   * the same key), places each key in its scope's namespace, and
   * `.invalidate({ companyId })` drops the whole scope. Values are written as
   * strings: `{ page: 1 }` and `{ page: '1' }` name the same key, on purpose.
   *
   * @param template The key, with `{name}` for each parameter.
   * @param options `scope`: a template using only parameters of `template`
   * (`InvalidArgumentError` otherwise); each key is placed in the namespace
   * it names, so `.invalidate(scopeParams)` drops every key of that scope in
   * O(1). Default: no scope (`.invalidate` then rejects with
   * `InvalidArgumentError`).
   */
  key<T extends string, S extends string = never>(template: T, options: { scope?: S } = {}): KeyTemplate<T, S> {
    return keyTemplate<V, T, S>(this, template, options, this.#keyTemplates)
  }

  /**
   * Memoizes `fn` through `getOrSet` (single-flight, leases and all):
   * `cache.wrap(loadUser, { key: (id) => `user:${id}`, ttl: '5m', tags: (id) => [...] })`.
   *
   * @param options `key` builds the cache key from the arguments (required;
   * every argument that changes the result must be in it); `tags` (a list,
   * or a function of the arguments) stores each result under those tags
   * (default none); any read-path option ({@link ReadPolicyOptions}) applies
   * to every call (default: the cache's).
   */
  wrap<A extends unknown[]>(
    fn: (...args: A) => V | Promise<V>,
    options: { key: (...args: A) => string; tags?: readonly string[] | ((...args: A) => readonly string[]) } & ReadPolicyOptions,
  ): (...args: A) => Promise<V> {
    return wrapFunction(this, fn, options)
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
    return wireInvalidation(this, this.#reporter, emitter, event, map)
  }

  /**
   * Fills the cache after a deploy: `set` for each entry, at most
   * `concurrency` (default 32) at a time, so that writes go out in batches.
   * Accepts entries (`[key, value]` or `{ key, value, ttl? }`), an iterable
   * or async iterable of them, or a function returning one. Resolves with the
   * number written; rejects on the first failure, after the writes under way
   * have settled.
   *
   * @param options `concurrency`: writes in flight at once (default 32).
   * Bounds the burst a warm-up sends to Redis, so that it does not starve
   * the requests served meanwhile.
   */
  async warm(source: WarmSource<V> | (() => WarmSource<V> | Promise<WarmSource<V>>), options: { concurrency?: number } = {}): Promise<number> {
    this.#local.assertOpen()
    return warmFrom(this, source, options)
  }

  // --------------------------------------------------------------- lifecycle

  /**
   * Resolves once the shared tier's connection and the bus are ready. With
   * `timeout` (a duration), rejects with `NotReadyError` naming the endpoint
   * (host:port) and the cause (refused, auth, TLS, timeout) if they are not
   * ready by then: use it at startup, where a wrong URL should fail loudly.
   * Without a timeout it waits as long as it takes. The cache works before it
   * is ready (reads go to the factory), so calling this is optional.
   *
   * @param options `timeout`: how long to wait before rejecting with
   * `NotReadyError` (default: no limit). Prevents a service that starts with
   * a wrong Redis URL or password from running on its factories alone
   * without anyone noticing.
   */
  async ready(options: { timeout?: Duration } = {}): Promise<void> {
    this.#local.assertOpen()
    const timeoutMs = options.timeout === undefined ? undefined : parseDuration(options.timeout, 'ready timeout', { cache: this.name })
    await Promise.all([this.#shared?.ready(timeoutMs), this.#bus?.ready?.(timeoutMs === undefined ? {} : { timeout: timeoutMs })])
  }

  /**
   * Leaves the bus and releases the tiers (a shared Redis connection closes
   * when its last user closes). Calls made after `close()` reject with
   * `CacheClosedError`. The bus itself is closed with `bus.close()`.
   */
  async close(): Promise<void> {
    if (this.#local.closed) return
    this.#local.close()
    this.#recovery?.close()
    this.#reporter.close()
    this.#membership?.leave()
    await this.#shared?.close()
  }

  get closed(): boolean {
    return this.#local.closed
  }

  // ---------------------------------------------------------- introspection

  /** The cache as documentation: tiers, TTLs, key templates, invalidation plan; as an object and a Markdown table. */
  describe(): CacheDescription & { markdown: string } {
    return this.#introspection.describe()
  }

  /**
   * Profile first, cache second: from writes per read, the (predicted, in
   * observe mode) hit rate, the factory cost against the L2 round trip,
   * expirations and L1 evictions, says whether this cache pays off
   * (`do-not-cache`, `l1-only`, `raise-ttl`, `raise-l1-size` or `keep`),
   * each in one sentence with its numbers (see advisor.ts).
   */
  advise(): Advice {
    return this.#introspection.advise()
  }

  /**
   * The advisor per group of keys (namespace or key-template scope): each
   * group's own factory cost against this cache's L2 round trip and hit rate.
   */
  adviseGroups(): Advice[] {
    return this.#introspection.adviseGroups()
  }

  /** Counters of the read path's rarer events (fail-safe, stale answers, lease waits, factory calls). */
  stats(): CacheCounters {
    return this.#introspection.stats()
  }
}

/** Creates a named cache. See `CacheOptions`. */
export function createCache<V = unknown>(options: CacheOptions): Cache<V> {
  return new Cache<V>(options)
}
