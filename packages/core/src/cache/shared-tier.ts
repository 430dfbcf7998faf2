/**
 * The one way to the shared tier (L2): every call goes through the circuit
 * breaker and is timed; a read that fails is reported and becomes a miss, so
 * the factory path keeps working without Redis; leases are taken with the
 * fill read and given back here (mechanism 4's client side).
 *
 * In an outage no request pays a timeout it could have known about: while
 * the tier reports its connection down (`available()`), calls fail at once
 * with nothing sent; once the breaker opens, requests skip the tier and the
 * half-open probe runs in the background (`probe()`), never on a request.
 */
import { clock } from '../clock.js'
import type { BoundSharedTier, ConnectionChange, FillRead, TierEntry, TierLease } from '../contracts.js'
import type { CircuitBreaker } from '../circuit-breaker.js'
import { CircuitOpenError, TierUnavailableError, errorMessageOf } from '../errors.js'
import type { LatencyHistogram } from '../histogram.js'
import type { Reporter } from './report.js'

export const NO_ENTRY: FillRead = { entry: undefined }

/** A key no one writes: the probe of a tier without `probe()` reads it (one round trip, a miss). */
const PROBE_KEY = '\u0000tiercache-probe'

export class SharedTierAccess {
  readonly tier: BoundSharedTier
  readonly name: string
  readonly breaker: CircuitBreaker | undefined
  /** Every L2 call (reads, writes, lease operations), ms. */
  readonly latency: LatencyHistogram
  /** Calls failed at once, nothing sent: the connection was known down, or the circuit open. */
  skipped = 0
  readonly #cache: string
  readonly #reporter: Reporter
  #probeTimer: NodeJS.Timeout | undefined
  #closed = false
  readonly #unsubscribe: (() => void) | undefined

  constructor(cache: string, tier: BoundSharedTier, name: string, breaker: CircuitBreaker | undefined, latency: LatencyHistogram, reporter: Reporter) {
    this.#cache = cache
    this.tier = tier
    this.name = name
    this.breaker = breaker
    this.latency = latency
    this.#reporter = reporter
    if (breaker !== undefined) breaker.backgroundProbe = true
    this.#unsubscribe = tier.onConnectionChange?.((change) => this.#onConnectionChange(change))
  }

  /**
   * Runs one shared-tier call: failed at once while the tier's connection is
   * known down or the circuit is open, else sent, timed and its outcome
   * counted. A value the tier refused to encode says nothing about the
   * tier's health.
   */
  async call<T>(key: string | undefined, run: () => Promise<T>): Promise<T> {
    if (this.tier.available?.() === false) {
      this.skipped++
      const reason = this.tier.unavailableReason?.()
      const message = `shared tier skipped: its connection is down (nothing was sent)${reason === undefined ? '' : `: ${reason}`}`
      throw new TierUnavailableError(message, { cache: this.#cache, key, tier: this.name })
    }
    const breaker = this.breaker
    if (breaker === undefined) {
      const started = clock()
      try {
        return await run()
      } finally {
        this.latency.record(clock() - started)
      }
    }
    if (!breaker.allow()) {
      this.skipped++
      throw new CircuitOpenError('shared tier skipped: circuit breaker open after repeated failures (a background probe will close it)', {
        cache: this.#cache,
        key,
        tier: this.name,
      })
    }
    const started = clock()
    try {
      const result = await run()
      this.latency.record(clock() - started)
      breaker.success()
      return result
    } catch (error) {
      this.latency.record(clock() - started)
      // A value the tier refused to encode never reached it: no verdict on its health.
      if ((error as { code?: unknown } | null)?.code === 'ERR_SERIALIZATION') breaker.release()
      else this.#failed(breaker, error)
      throw error
    }
  }

  #failed(breaker: CircuitBreaker, error: unknown): void {
    const before = breaker.state
    breaker.failure()
    if (breaker.state !== 'open') return
    if (before === 'closed') {
      this.#reporter.state(
        'error',
        { tier: this.name, openForMs: breaker.openForMs, cause: errorMessageOf(error) },
        `circuit opened: shared tier ${this.name} skipped after repeated failures (last: ${errorMessageOf(error)}); probing it in the background every ${breaker.openForMs} ms`,
        'TIERCACHE_CIRCUIT_OPEN',
      )
    }
    this.#scheduleProbe(breaker)
  }

  /** The half-open probe, off the request path: when the cool-down ends, one round trip decides. */
  #scheduleProbe(breaker: CircuitBreaker): void {
    if (this.#probeTimer !== undefined || this.#closed) return
    this.#probeTimer = setTimeout(
      () => {
        this.#probeTimer = undefined
        void this.#probe(breaker)
      },
      Math.max(1, breaker.coolDownLeftMs),
    )
    this.#probeTimer.unref()
  }

  async #probe(breaker: CircuitBreaker): Promise<void> {
    if (this.#closed) return
    // A Node timer can fire before clock() reaches its delay (libuv's loop time is cached and whole ms): the
    // cool-down is not over, which is no failure; counted as one, it pushed the cool-down out again, forever.
    if (breaker.state === 'open') return this.#scheduleProbe(breaker)
    // Known down: no round trip can answer; look again after another cool-down.
    if (this.tier.available?.() === false || !breaker.beginProbe()) {
      if (breaker.state !== 'closed') {
        breaker.failure()
        this.#scheduleProbe(breaker)
      }
      return
    }
    const tier = this.tier
    try {
      await (tier.probe !== undefined ? tier.probe() : tier.get(PROBE_KEY))
      breaker.success()
      this.#reporter.state('info', { tier: this.name }, `circuit closed: shared tier ${this.name} answered the background probe`, 'TIERCACHE_CIRCUIT_CLOSED')
    } catch (error) {
      breaker.failure()
      this.#reporter.state(
        'debug',
        { tier: this.name, cause: errorMessageOf(error) },
        `circuit stays open: probe failed (${errorMessageOf(error)})`,
        'TIERCACHE_CIRCUIT_OPEN',
      )
      this.#scheduleProbe(breaker)
    }
  }

  #onConnectionChange(change: ConnectionChange): void {
    if (change.state === 'lost') {
      // The adapter's sentence (host, cause, what to do) where it gives one, else its short code.
      const cause = change.detail !== undefined ? `: ${change.detail}` : change.cause === undefined ? '' : ` (${change.cause})`
      this.#reporter.state(
        'error',
        { tier: this.name, endpoint: change.endpoint, cause: change.cause },
        `shared tier ${this.name} lost its connection to ${change.endpoint}${cause}; until it is back, reads go to the factory and writes fail`,
        'TIERCACHE_CONNECTION_LOST',
      )
    } else {
      this.#reporter.state(
        'info',
        { tier: this.name, endpoint: change.endpoint },
        `shared tier ${this.name} reconnected to ${change.endpoint}`,
        'TIERCACHE_CONNECTION_RESTORED',
      )
    }
  }

  /**
   * One timed round trip through the tier's `probe()`, which reads no value
   * (redisTier: a PING on its command connection): observe mode measures
   * the L2 hop with it. Rejects as the tier does; the caller decides what a
   * failure means. Only for tiers with `probe()`.
   */
  async roundTrip(): Promise<void> {
    const tier = this.tier
    if (tier.probe !== undefined) await this.call(undefined, () => tier.probe!())
  }

  /** A fresh entry, or undefined; an L2 failure is reported and reads as a miss. */
  async read(key: string): Promise<TierEntry | undefined> {
    const tier = this.tier
    try {
      const entry = await this.call(key, () => tier.get(key))
      return entry !== undefined && entry.expiresAt > clock() ? entry : undefined
    } catch (error) {
      this.#reporter.report(this.#reporter.tierError('read', key, error))
      return undefined
    }
  }

  /** Entries for `keys` in order (one round trip where the tier can), or undefined if L2 failed (reported). */
  async readMany(keys: readonly string[]): Promise<Array<TierEntry | undefined> | undefined> {
    const tier = this.tier
    try {
      return await this.call(undefined, () => (tier.getMany !== undefined ? tier.getMany(keys) : Promise.all(keys.map((key) => tier.get(key)))))
    } catch (error) {
      this.#reporter.report(this.#reporter.tierError('read', keys.length === 1 ? keys[0] : undefined, error))
      return undefined
    }
  }

  /**
   * The fill path's read, taking the key's lease in the same round trip where
   * the tier has leases (with `refreshAheadMs`, also for a fresh entry that
   * is due for refresh-ahead); a failure reads as a plain miss.
   */
  async readForFill(key: string, leaseMs: number, refreshAheadMs?: number): Promise<FillRead> {
    const tier = this.tier
    try {
      return await this.call(key, () =>
        tier.readForFill !== undefined ? tier.readForFill(key, leaseMs, refreshAheadMs) : tier.get(key).then((entry) => ({ entry })),
      )
    } catch (error) {
      this.#reporter.report(this.#reporter.tierError('read', key, error))
      return NO_ENTRY
    }
  }

  /** True where a fill must hold a lease to write (the tier has leases). */
  get hasLeases(): boolean {
    return this.tier.readForFill !== undefined
  }

  /**
   * Gives an unused lease back before the caller hears of the outcome, so
   * that the next caller anywhere takes it at once instead of waiting out
   * lockTimeout. Never rejects: a lost release only costs that wait.
   */
  async releaseLease(key: string, lease: TierLease): Promise<void> {
    const tier = this.tier
    if (tier.releaseLease === undefined) return
    try {
      await this.call(key, () => tier.releaseLease!(key, lease))
    } catch (error) {
      this.#reporter.report(this.#reporter.tierError('lease release', key, error))
    }
  }

  /** The tier's own counters (see `CacheCounters.l2CorruptEntries`, `l2FillsRefused`, `l2FillsWithoutLease`). */
  counters(): { corruptEntries: number; fillsRefused: number; fillsWithoutLease: number } {
    const counters = this.tier.counters?.()
    return { corruptEntries: counters?.corruptEntries ?? 0, fillsRefused: counters?.fillsRefused ?? 0, fillsWithoutLease: counters?.fillsWithoutLease ?? 0 }
  }

  /** Resolves once the tier is connected (see `BoundSharedTier.ready`); at once for a tier without a connection. */
  ready(timeoutMs?: number): Promise<void> {
    return this.tier.ready?.(timeoutMs) ?? Promise.resolve()
  }

  close(): Promise<void> {
    this.#closed = true
    if (this.#probeTimer !== undefined) clearTimeout(this.#probeTimer)
    this.#unsubscribe?.()
    return this.tier.close()
  }
}
