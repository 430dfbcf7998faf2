/**
 * The miss path, read top to bottom: a fail-safe value still in its backoff
 * → an L1 value within grace (answer it, refresh behind) → a load already in
 * flight → L2 (taking the key's lease in the same round trip) → another
 * process's lease holder → the factory (soft and hard timeouts, fail-safe) →
 * the conditional L2 write → L1, unless an invalidation overtook the load.
 */
import { clock } from '../clock.js'
import type { TierEntry, TierLease } from '../contracts.js'
import { hitChannel, missChannel, type HitEvent, type MissEvent } from '../events.js'
import { FactoryCall, type Factory } from '../factory.js'
import type { HotKeys } from '../hot-keys.js'
import type { LatencyHistogram } from '../histogram.js'
import { assertValidKey } from '../keys.js'
import { effectiveTtl, type ReadPolicy } from '../policy.js'
import type { GroupProfiles } from '../profiles.js'
import { UNKNOWN_T0 } from '../serve-rule.js'
import { entryTags } from '../tags.js'
import type { GetOrSetOptions } from './config.js'
import { newEntry, usableUntil } from './entry.js'
import type { Load, LocalState } from './local-state.js'
import { type LoadCallers, NO_CALLERS, RegisteredCallers } from './load-callers.js'
import { abandonable, untilAborted } from './cancellation.js'
import { checkGetOrSetCall } from './get-or-set-call.js'
import { deferred, produce } from './produce.js'
import type { Reporter } from './report.js'
import { NO_ENTRY, type SharedTierAccess } from './shared-tier.js'
import { aheadMsOf, dueAhead, type L1Shape, shapeOf } from './refresh-ahead.js'
import { NO_SKIPS, type TierSkipOptions, type TierSkips, tierSkipsOf } from './skips.js'
import type { Counters } from './stats.js'
import type { WriteRecovery } from './write-recovery.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export interface LoaderParts<V> {
  readonly name: string
  readonly local: LocalState<V>
  readonly shared: SharedTierAccess | undefined
  readonly reporter: Reporter
  readonly counters: Counters
  readonly policy: ReadPolicy
  readonly autoPolicy: boolean
  readonly profiles: GroupProfiles
  readonly factoryLatency: LatencyHistogram
  readonly l2Latency: LatencyHistogram
  /** "Is it hot?": every lookup past the L1 hit path (the facade samples the hits). */
  readonly hotKeys: HotKeys
  readonly recovery: WriteRecovery | undefined
  /** `ctx.skipL2()`: deletes the key's L2 copy and publishes its invalidation (the write path's; never rejects). */
  readonly dropSharedCopy: (key: string) => Promise<void>
}

export class Loader<V> {
  readonly #p: LoaderParts<V>

  constructor(parts: LoaderParts<V>) {
    this.#p = parts
  }

  /**
   * `getOrSet` after L1 could not answer fresh. Not an async function: the
   * promise of the load (or of a joined one) is handed back as it is, not
   * wrapped in another that settles a tick later; bad input still rejects.
   */
  getOrSet(key: string, factory: Factory<V>, options: GetOrSetOptions | undefined): Promise<V> {
    try {
      return this.#getOrSet(key, factory, options)
    } catch (error) {
      return Promise.reject(error)
    }
  }

  #getOrSet(key: string, factory: Factory<V>, options: GetOrSetOptions | undefined): Promise<V> {
    const { local, counters } = this.#p
    const { policy, tags, skips, signal } = checkGetOrSetCall(this.#p.name, local, this.#p.policy, key, factory, options)
    this.#p.hotKeys.add(key)
    if (skips !== NO_SKIPS) return untilAborted(this.#loadPastTiers(key, factory, policy, tags, skips), signal)
    // Fail-safe backoff: after a factory failure answered with a stale value,
    // that value answers until the backoff ends (never past its grace, never past rule 7).
    const backoff = local.failSafeValue(key)
    if (backoff !== undefined) {
      counters.staleServed++
      return Promise.resolve(backoff.value as V)
    }
    // Outage reuse: L1 is not trusted (the bus is down), but this instance
    // loaded the value itself recently enough for rule 7 to serve it.
    const reused = local.reusable(key)
    if (reused !== undefined) {
      counters.outageReuses++
      // The end of a reuse window is refresh-ahead's business too: one load renews it behind.
      if (policy.refreshAhead !== undefined && local.reuseDue(key, policy.refreshAhead) && !local.inFlight.has(key)) {
        this.#start(key, factory, policy, reused, true, tags, true).catch(() => {})
      }
      return Promise.resolve(reused.value as V)
    }
    // Stale-while-revalidate: past its TTL but within grace, L1 answers at once
    // and one refresh runs behind (joining one already running).
    // Refresh-ahead too: an L1 copy past its refresh point but still fresh
    // answers at once, whatever refreshStale says, and one refresh runs behind.
    const stale = local.usableStale(key)
    if (stale !== undefined) {
      const ahead = dueAhead(stale, clock())
      if (ahead || policy.refreshStale === 'background') {
        if (local.joinable(key) === undefined) this.#start(key, factory, policy, stale, true, tags, ahead).catch(() => {})
        if (ahead) counters.refreshAheadHits++
        else counters.staleServed++
        return Promise.resolve(stale.value as V)
      }
    }
    counters.l1Misses++
    const promise = local.joinable(key) ?? this.#start(key, factory, policy, stale, false, tags)
    const load = local.inFlight.get(key)
    if (load === undefined || load.promise !== promise) return untilAborted(promise, signal)
    load.callers++
    return signal === undefined ? promise : abandonable(local, key, load, signal)
  }

  /**
   * A `getOrSet` with tier flags: neither joins a load in flight nor can be
   * joined (the others read and store where this call does not), and reads
   * L1's stale values only if it may read L1.
   */
  async #loadPastTiers(key: string, factory: Factory<V>, policy: ReadPolicy, tags: readonly string[] | undefined, skips: TierSkips): Promise<V> {
    this.#p.counters.l1Misses++
    const stale = skips.skipL1 ? undefined : this.#p.local.usableStale(key)
    return this.load(key, factory, policy, stale, NO_CALLERS, tags, skips)
  }

  /** `get` after L1 could not answer fresh: L2 only, never a factory. */
  async get(key: string, options: TierSkipOptions | undefined): Promise<V | undefined> {
    const { local, counters, shared } = this.#p
    local.assertOpen(key)
    assertValidKey(this.#p.name, key)
    const skips = tierSkipsOf(options, { cache: this.#p.name, key })
    this.#p.hotKeys.add(key)
    const reused = skips.skipL1 ? undefined : local.reusable(key)
    if (reused !== undefined) {
      counters.outageReuses++
      return reused.value as V
    }
    counters.l1Misses++
    const ticket = local.guard.begin(key)
    try {
      const readIssuedAt = clock()
      const cached = shared === undefined || skips.skipL2 || this.skipsL2(key) ? undefined : await shared.read(key)
      if (cached === undefined) {
        counters.misses++
        return undefined
      }
      counters.l2Hits++
      if (!skips.skipL1) local.fill(key, cached, ticket, readIssuedAt, shapeOf(this.#p.policy, this.#p.policy.ttlMs))
      return cached.value as V
    } finally {
      local.guard.end(ticket)
    }
  }

  /**
   * Single-flight: registers the load so that concurrent callers join it,
   * until it has finished. A refresh started for a stale value is answered
   * with that value from the start: callers that join it get it at once.
   */
  #start(
    key: string,
    factory: Factory<V>,
    policy: ReadPolicy,
    stale: TierEntry | undefined,
    answerStale: boolean,
    tags: readonly string[] | undefined,
    ahead = false,
  ): Promise<V> {
    const { promise, resolve, reject } = deferred<V>()
    // A refresh behind a stale answer is never aborted for its callers: they already have their answer.
    const load: Load<V> = { promise, staleUntil: Number.POSITIVE_INFINITY, t0: clock(), callers: 0, abandoned: 0, keep: answerStale, ahead }
    const callers = new RegisteredCallers(load, resolve, reject)
    // An L1 value within grace: the caller checked it against rule 7 just now.
    if (answerStale) callers.answer(stale!.value as V, { until: usableUntil(stale!), t0: UNKNOWN_T0 })
    this.#p.local.inFlight.set(key, load)
    void this.#run(key, factory, policy, stale, callers, tags)
    return promise
  }

  /**
   * Runs a registered load to its end: answers its callers (unless a stale
   * answer came first), then unregisters it. One async frame instead of the
   * `.then().finally()` chain it replaced: two promises and three closures
   * fewer per L2 read (the lone L2 hit, `node bench/l2-profile.mjs tiercache 1 5000 --alloc`).
   */
  async #run(
    key: string,
    factory: Factory<V>,
    policy: ReadPolicy,
    stale: TierEntry | undefined,
    callers: RegisteredCallers<V>,
    tags: readonly string[] | undefined,
  ): Promise<void> {
    const { local, reporter } = this.#p
    try {
      callers.answer(await this.load(key, factory, policy, stale, callers, tags))
    } catch (error) {
      if (!callers.fail(error)) reporter.report(reporter.factoryError('refresh failed; callers had the stale value', key, error))
    } finally {
      // A write may already have replaced or removed this load (see LocalState.invalidate).
      if (local.inFlight.get(key) === callers.load) local.inFlight.delete(key)
    }
  }

  /**
   * One key's load: L2 (taking the key's lease in the same round trip) →
   * wait for another process's lease holder → the factory (timeouts,
   * fail-safe) → conditional L2 write → L1. The callers may be answered
   * early with a stale value; the load then carries on behind.
   */
  async load(
    key: string,
    factory: Factory<V>,
    policy: ReadPolicy,
    staleFromL1: TierEntry | undefined,
    callers: LoadCallers<V>,
    tagsOption?: readonly string[],
    skips: TierSkips = NO_SKIPS,
  ): Promise<V> {
    const { local, shared, counters, reporter } = this.#p
    const ticket = local.guard.begin(key)
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
      if (until <= now || !local.servable(staleT0, now)) return false
      if (callers.answer(stale.value as V, { until, t0: staleT0 }) && !failSafe) counters.staleServed++
      return true
    }
    let lease: TierLease | undefined
    /** Refresh-ahead: this load took the lease of a fresh entry that is due, and refreshes it behind its answer. */
    let refreshingAhead = callers.load?.ahead === true
    try {
      // 1. L2, and other processes' leases.
      /** When to stop waiting for another process's lease: lockTimeout after the first read was issued. */
      let waitUntil = 0
      const skipL2 = shared === undefined || skips.skipL2 || this.skipsL2(key)
      const aheadMs = aheadMsOf(policy, policy.ttlMs)
      for (let attempt = 0; ; attempt++) {
        const readIssuedAt = clock()
        if (attempt === 0) waitUntil = readIssuedAt + policy.lockTimeoutMs // one clock read fewer per load
        const read = skipL2 || shared === undefined ? NO_ENTRY : await shared.readForFill(key, policy.lockTimeoutMs, aheadMs)
        const entry = read.entry
        const now = clock()
        if (entry !== undefined && entry.expiresAt > now) {
          counters.l2Hits++
          if (hitChannel.hasSubscribers) hitChannel.publish({ cache: this.#p.name, key, tier: 'l2', stale: false } satisfies HitEvent)
          if (read.lease === undefined) {
            if (!skips.skipL1) local.fill(key, entry, ticket, readIssuedAt, shapeOf(policy, policy.ttlMs))
            return entry.value as V
          }
          // Fresh but due, and the lease is ours (one refresher across every
          // instance): answer with the entry now and refresh it behind.
          callers.answer(entry.value as V)
          stale = entry
          staleT0 = readIssuedAt
          lease = read.lease
          if (callers.load !== undefined) callers.load.keep = true
          refreshingAhead = true
          break
        }
        if (entry !== undefined && usableUntil(entry) > now) {
          if (stale === undefined || usableUntil(entry) > usableUntil(stale)) {
            stale = entry
            staleT0 = readIssuedAt
          }
          if (!skips.skipL1) local.fill(key, entry, ticket) // stale within grace: serves the next callers' SWR
        }
        const answeredStale = stale !== undefined && policy.refreshStale === 'background' && serveStale()
        lease = read.lease
        // Holding the lease, this load may be awaited by other processes: its callers cannot abort it.
        if (lease !== undefined && callers.load !== undefined) callers.load.keep = true
        if (read.leasedElsewhere !== true) break
        // Another process holds the lease: it is producing this value. With a
        // stale answer given, leave the refresh to it; otherwise poll for its
        // value (5 ms doubling to 50 ms) until lockTimeout, then produce our own.
        if (answeredStale) return stale!.value as V
        if (clock() >= waitUntil) break
        if (attempt === 0) counters.leaseWaits++
        await sleep(Math.min(50, 5 * 2 ** attempt))
      }

      // 2. The factory.
      const call = new FactoryCall<V>(this.#p.name, key, stale === undefined ? undefined : { value: stale.value as V })
      const expired = local.l1?.get(key)
      const running = callers.load
      if (running !== undefined) {
        running.call = call
        if (!running.keep && running.callers > 0 && running.abandoned >= running.callers) call.abort(running.abandonReason)
      }
      if (refreshingAhead) counters.refreshesStarted++
      const factoryIssuedAt = clock()
      // A refresh-ahead is no miss: the value was there, and fresh.
      if (!refreshingAhead && expired !== undefined && expired.expiresAt <= factoryIssuedAt) counters.expiredMisses++
      const produced = await produce(this.#p, refreshingAhead ? 0 : 1, factory, call, {
        softTimeoutMs: policy.softTimeoutMs,
        hardTimeoutMs: policy.hardTimeoutMs,
        onSoftTimeout: stale === undefined ? undefined : () => void serveStale(),
      })
      const factoryMs = produced.ms
      if (!produced.ok) {
        if (lease !== undefined) await shared!.releaseLease(key, lease)
        // Fail-safe only with a stale value rule 7 still allows (or one the
        // callers already have): past it, the caller gets the error.
        if (stale === undefined || !serveStale(true)) {
          if (missChannel.hasSubscribers) missChannel.publish({ cache: this.#p.name, key, factoryMs, outcome: 'error' } satisfies MissEvent)
          throw produced.error
        }
        // Fail-safe: answer with the stale value, and keep answering with it
        // for failSafeBackoff (within its grace, and while rule 7 allows)
        // before trying the factory again.
        const now = clock()
        counters.failSafe++
        if (refreshingAhead) counters.refreshesFailed++
        reporter.report(reporter.factoryError('factory failed; answered with the stale value (fail-safe)', key, produced.error))
        // Not after an invalidation of the key overtook this load (the guard
        // stamped it): it dropped any backoff value, and remembering `stale`
        // now would serve a value from before that write to later reads.
        if (local.guard.mayFill(key, ticket)) local.rememberFailSafe(key, stale, Math.min(now + policy.failSafeBackoffMs, usableUntil(stale)), staleT0)
        if (missChannel.hasSubscribers) missChannel.publish({ cache: this.#p.name, key, factoryMs, outcome: 'fail-safe' } satisfies MissEvent)
        return stale.value as V
      }
      const value = produced.value
      if (refreshingAhead) counters.refreshesSucceeded++
      this.#p.profiles.recordMiss(key, factoryMs)
      if (missChannel.hasSubscribers) {
        missChannel.publish({ cache: this.#p.name, key, factoryMs, outcome: call.skipped ? 'not-stored' : 'stored' } satisfies MissEvent)
      }

      // 3. Store, unless the factory said not to or an invalidation overtook it.
      if (call.skipped) {
        if (lease !== undefined) await shared!.releaseLease(key, lease)
        return value
      }
      const ttlMs = effectiveTtl(policy, value, call.ttlMs)
      const expiresAt = clock() + ttlMs
      const tags = entryTags(key, call.tags ?? tagsOption)
      const graceMs = call.graceMs ?? policy.graceMs
      const entry = newEntry(value, expiresAt, graceMs, tags)
      if (call.l2Skipped && this.#p.shared !== undefined && !skips.skipL2) {
        // ctx.skipL2(): L1 only, and L2's copy goes (invalidation published), as a set with skipL2 would.
        await this.#p.dropSharedCopy(key)
        if (!skips.skipL1) local.fill(key, entry, ticket, factoryIssuedAt, shapeOf(policy, ttlMs))
        return value
      }
      await this.store(key, entry, lease, ticket, factoryIssuedAt, skips, shapeOf(policy, ttlMs))
      return value
    } finally {
      local.guard.end(ticket)
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
  async store(
    key: string,
    entry: TierEntry<V>,
    lease: TierLease | undefined,
    ticket: number,
    t0: number,
    skips: TierSkips = NO_SKIPS,
    shape: L1Shape = shapeOf(this.#p.policy, this.#p.policy.ttlMs),
  ): Promise<void> {
    const { local, reporter } = this.#p
    const shared = skips.skipL2 || this.skipsL2(key) ? undefined : this.#p.shared
    let mayFillL1 = true
    if (shared !== undefined && local.guard.mayFill(key, ticket) && (lease !== undefined || !shared.hasLeases)) {
      try {
        const written = await shared.call(key, () => shared.tier.set(key, entry, lease === undefined ? { ifAbsent: true } : { lease }))
        if (written === false) mayFillL1 = false
      } catch (error) {
        if (lease !== undefined) await shared.releaseLease(key, lease)
        const wrapped = reporter.tierError('write', key, error)
        // A value that cannot be encoded is the caller's bug, not an outage: say so.
        if (wrapped.code === 'ERR_SERIALIZATION') throw wrapped
        reporter.report(wrapped)
      }
    } else if (lease !== undefined) {
      await this.#p.shared?.releaseLease(key, lease)
    }
    if (mayFillL1 && !skips.skipL1) local.fill(key, entry, ticket, t0, shape)
  }

  /**
   * This key's reads and fills leave L2 alone: its group does not pay for L2
   * (`policy: 'auto'`), or a write to it waits in the write-recovery queue
   * (L2 may still hold the value from before that write).
   */
  skipsL2(key: string): boolean {
    return this.#p.recovery?.blocksL2(key) === true || this.#l1OnlyByPolicy(key)
  }

  /** `policy: 'auto'` decided this key's group does not pay for L2 (needs an L1 to fall back on). */
  #l1OnlyByPolicy(key: string): boolean {
    const { local, shared } = this.#p
    if (!this.#p.autoPolicy || local.l1 === undefined || shared === undefined) return false
    // While L1 is not trusted (a bus gap), an L1-only group would send every request to the factory: use L2.
    if (!local.trusted()) return false
    const l2 = this.#p.l2Latency
    return (
      this.#p.profiles.decide(key, l2.quantile(0.5), l2.count, (group, decision, factoryP50Ms) => {
        const message =
          decision === 'l1-only'
            ? `policy auto: "${group}" now skips L2 (factory ${factoryP50Ms.toFixed(2)} ms < 2x L2 round trip ${l2.quantile(0.5).toFixed(2)} ms)`
            : `policy auto: "${group}" uses L2 again (factory ${factoryP50Ms.toFixed(2)} ms >= 2x L2 round trip ${l2.quantile(0.5).toFixed(2)} ms)`
        this.#p.reporter.notice({ group, decision, factoryP50Ms }, message, 'TIERCACHE_POLICY_AUTO')
      }) === 'l1-only'
    )
  }
}
