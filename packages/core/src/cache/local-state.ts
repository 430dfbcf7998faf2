/**
 * This instance's own state: L1, the trust window the bus proves (liveness,
 * mechanism 3), the in-flight guard (mechanism 2), the loads in flight
 * (single-flight) and the fail-safe values held during a backoff. Filling,
 * invalidating and clearing all of it happen here, in one place, and what
 * any of it may serve is decided by one rule (mechanism 7, serve-rule.ts).
 */
import { clock } from '../clock.js'
import type { BoundLocalTier, BusTrust, Invalidation, TierEntry } from '../contracts.js'
import { CacheClosedError } from '../errors.js'
import { InFlightGuard } from '../in-flight-guard.js'
import { servable, UNKNOWN_T0 } from '../serve-rule.js'
import { AS_IS, freshUntilOf, type L1Shape, l1Copy } from './refresh-ahead.js'

/** A bus that cannot lose messages, or no bus: L1 is always trusted. */
export const ALWAYS_TRUSTED: BusTrust = { verifiedAt: Number.POSITIVE_INFINITY }

/** Bounded: a flood of failing keys must not grow the fail-safe map without limit (oldest dropped first). */
const MAX_FAIL_SAFE_KEYS = 10_000
/**
 * Bounded: in an outage, keys past this many (oldest dropped first) are
 * loaded again, which costs factory runs, never correctness. The map holds
 * only each key's `t0` (a number); the value stays in L1, under L1's own
 * limits, and is reused only while L1 still holds it.
 */
const MAX_REUSE_KEYS = 100_000

/** A load in flight; callers may join it until `staleUntil` (set when it answered with a stale value), while rule 7 allows. */
export interface Load<V> {
  readonly promise: Promise<V>
  staleUntil: number
  /**
   * Rule 7's `t0` for what a joiner would get: the load's start until it
   * answers (every read it issues comes later), then the stale answer's own.
   */
  t0: number
  /** Callers waiting on it, and how many of them aborted their own `signal`. */
  callers: number
  abandoned: number
  /** The last abandoning caller's `signal.reason`: the factory's `signal.reason` once all have gone. */
  abandonReason?: unknown
  /** The factory call, once it runs: aborted when every caller abandoned the load (unless `keep`). */
  call?: { abort(reason: unknown): void }
  /** Never aborted for its callers: it holds the key's lease (other processes may wait on it), or refreshes behind a stale answer. */
  keep: boolean
  /** A refresh-ahead: started by a hit past the value's refresh point. */
  ahead?: boolean
}

export class LocalState<V> {
  readonly #cache: string
  readonly l1: BoundLocalTier | undefined
  /** With an L2, an `l1Ttl` copy leaves grace to the L2 entry. */
  readonly hasL2: boolean
  /** Liveness: set once, when the cache joins its bus. */
  trust: BusTrust = ALWAYS_TRUSTED
  maxStalenessMs = 1_000
  readonly guard = new InFlightGuard()
  /** Single-flight: one load per key at a time in this instance; later callers join it. */
  readonly inFlight = new Map<string, Load<V>>()
  /** Fail-safe backoff per key: the stale value that answers until `until` (rule 7 still applies, with its `t0`). */
  readonly #failSafe = new Map<string, { until: number; entry: TierEntry; t0: number }>()
  /**
   * Outage reuse: values this instance loaded while L1 was not trusted,
   * with their rule-7 `t0` (when the L2 read or factory call that produced
   * them was issued). Rule 7 serves each until `t0 + maxStaleness` however
   * long the bus stays down: a write this instance missed completed after
   * `t0`. So an outage costs each key at most one load per `maxStaleness`
   * per instance, and the bound holds. Off with `onBusDown: 'bypass-l1'`.
   */
  readonly #reuse = new Map<string, number>()
  /** Factory calls running now: aborted when the cache closes. */
  readonly running = new Set<{ abort(reason: unknown): void }>()
  reuseOwnLoads = true
  /**
   * Observe mode, L1+L2: the ghost of L2. Every invalidation reaches it as
   * it would reach L2 (a gap does not: a gap clears L1, not Redis).
   */
  sharedGhost: { invalidate(invalidation: Invalidation): void; set(key: string, entry: TierEntry): void } | undefined
  #closed = false

  constructor(cache: string, l1: BoundLocalTier | undefined, hasL2: boolean) {
    this.#cache = cache
    this.l1 = l1
    this.hasL2 = hasL2
  }

  get closed(): boolean {
    return this.#closed
  }

  assertOpen(key?: string): void {
    if (this.#closed) throw new CacheClosedError('cache is closed', { cache: this.#cache, key })
  }

  /** Rule 7 (serve-rule.ts): may a value produced by a read issued at `t0` be served at `now`? */
  servable(t0: number, now: number): boolean {
    return servable(this.trust.verifiedAt, this.maxStalenessMs, t0, now)
  }

  /** True while L1 may be read at all (liveness): an L1 value has no `t0`. */
  trusted(now = clock()): boolean {
    return this.servable(UNKNOWN_T0, now)
  }

  /** The L1 entry for `key` if it may be served: fresh, and L1 trusted (the facade inlines this on its hit path); else an outage reuse. */
  hit(key: string): TierEntry | undefined {
    const entry = this.l1?.get(key)
    if (entry === undefined) return undefined
    const now = clock()
    return entry.expiresAt > now && this.servable(UNKNOWN_T0, now) ? entry : this.reusable(key)
  }

  /** The L1 entry for `key` if it is past its TTL but within grace, and rule 7 allows it (an L1 value: liveness alone). */
  usableStale(key: string): TierEntry | undefined {
    const entry = this.l1?.get(key)
    if (entry === undefined || entry.staleUntil === undefined) return undefined
    const now = clock()
    return entry.staleUntil > now && this.servable(UNKNOWN_T0, now) ? entry : undefined
  }

  /**
   * Mechanism 2: fills L1 unless an invalidation matching `key` arrived
   * since `ticket` was taken. `t0`: when the read or factory call that
   * produced `entry` was issued; a fill while L1 is not trusted keeps it for
   * outage reuse.
   */
  fill(key: string, entry: TierEntry, ticket: number, t0?: number, shape: L1Shape = AS_IS): void {
    if (this.l1 !== undefined && !this.#closed && this.guard.mayFill(key, ticket)) {
      this.l1.set(key, l1Copy(entry, shape, this.hasL2))
      if (t0 !== undefined && this.reuseOwnLoads && !this.trusted()) this.#keepForReuse(key, t0)
    }
  }

  /**
   * A value carried on the bus with the invalidation of `key` that was just
   * applied (same turn: nothing can arrive in between, so the ticket taken
   * now is one taken right after that eviction). A guarded fill like any
   * other: a read in flight that began before it still cannot fill (the
   * eviction stamped it), a later invalidation evicts it. Only while L1 is
   * trusted (liveness): an untrusted L1 takes nothing from the bus, and the
   * value gets no outage-reuse `t0` (this instance issued no read for it).
   * Never compares versions or times with what L1 held: the eviction just
   * dropped that, and the bus's order is the only order used.
   */
  fillCarried(key: string, entry: TierEntry, shape: L1Shape = AS_IS): void {
    if (this.l1 === undefined || this.#closed || !this.trusted()) return
    this.fill(key, entry, this.guard.current, undefined, shape)
  }

  /**
   * Outage reuse: the L1 value this instance loaded for `key` at `t0`, while
   * it is fresh and rule 7 allows it; else undefined (and forgotten). L1 may
   * hold a later fill than the one recorded (never an earlier one: the
   * guard keeps older loads out), so the recorded `t0` is a safe bound.
   */
  reusable(key: string): TierEntry | undefined {
    const t0 = this.#reuse.get(key)
    if (t0 === undefined) return undefined
    const entry = this.l1?.get(key)
    const now = clock()
    if (entry !== undefined && freshUntilOf(entry) > now && this.servable(t0, now)) return entry
    this.#reuse.delete(key)
    return undefined
  }

  /**
   * Refresh-ahead during an outage: the reused value of `key` is past
   * `fraction` of its reuse window (`t0 + fraction × maxStaleness`), so one
   * background load renews it before the window ends and no read waits.
   */
  reuseDue(key: string, fraction: number): boolean {
    const t0 = this.#reuse.get(key)
    return t0 !== undefined && clock() >= t0 + fraction * this.maxStalenessMs
  }

  #keepForReuse(key: string, t0: number): void {
    this.#reuse.delete(key)
    if (this.#reuse.size >= MAX_REUSE_KEYS) this.#reuse.delete(this.#reuse.keys().next().value!)
    this.#reuse.set(key, t0)
  }

  /**
   * The load in flight for `key`, if joining it still gives a servable
   * answer: a load that answered with a stale value is joinable only within
   * that value's grace (a refresh that hangs must not serve it forever), and
   * only while rule 7 allows its `t0`.
   */
  joinable(key: string): Promise<V> | undefined {
    const load = this.inFlight.get(key)
    if (load === undefined) return undefined
    const now = clock()
    return now < load.staleUntil && this.servable(load.t0, now) ? load.promise : undefined
  }

  /** The fail-safe value still answering for `key` (backoff running, within grace, rule 7), or undefined (and forgotten). */
  failSafeValue(key: string): TierEntry | undefined {
    const backoff = this.#failSafe.get(key)
    if (backoff === undefined) return undefined
    const now = clock()
    const until = backoff.entry.staleUntil ?? backoff.entry.expiresAt
    if (now < backoff.until && until > now && this.servable(backoff.t0, now)) return backoff.entry
    this.#failSafe.delete(key)
    return undefined
  }

  rememberFailSafe(key: string, entry: TierEntry, until: number, t0: number): void {
    this.#failSafe.delete(key)
    if (this.#failSafe.size >= MAX_FAIL_SAFE_KEYS) this.#failSafe.delete(this.#failSafe.keys().next().value!)
    this.#failSafe.set(key, { until, entry, t0 })
  }

  /** Drops what `invalidation` names from L1, the fail-safe values, the guard's open reads and the joinable loads. */
  invalidate(invalidation: Invalidation): void {
    this.sharedGhost?.invalidate(invalidation)
    if (invalidation.kind === 'clear') {
      this.clear()
      return
    }
    if (invalidation.kind === 'tags') {
      const tags = new Set(invalidation.tags)
      if (this.l1?.deleteTagged !== undefined) this.l1.deleteTagged(tags)
      else this.l1?.clear()
      for (const [key, { entry }] of this.#failSafe) if (entry.tags?.some((tag) => tags.has(tag)) === true) this.#failSafe.delete(key)
      // (Reuse records need no pass: the tagged L1 entries they point at are gone.)
      // Which reads in flight were tagged is unknown until they finish: none may fill, none may be joined.
      this.guard.invalidateAll()
      this.inFlight.clear()
      return
    }
    const key = invalidation.key
    this.l1?.delete(key)
    this.#failSafe.delete(key)
    this.#reuse.delete(key)
    this.guard.invalidateKey(key)
    // Callers arriving from now on must not join a load that began before the write.
    this.inFlight.delete(key)
  }

  /** Everything local goes: a clear of the cache, or a gap on the bus (messages may have been lost). */
  clear(): void {
    this.l1?.clear()
    this.#failSafe.clear()
    this.#reuse.clear()
    this.guard.invalidateAll()
    this.inFlight.clear()
  }

  close(): void {
    this.#closed = true
    const closed = new CacheClosedError('cache closed while the factory ran', { cache: this.#cache })
    for (const call of this.running) call.abort(closed)
    this.running.clear()
    this.inFlight.clear()
    this.#reuse.clear()
    this.l1?.clear()
    this.l1?.close()
  }
}
