/**
 * The one way to the shared tier (L2): every call goes through the circuit
 * breaker and is timed; a read that fails is reported and becomes a miss, so
 * the factory path keeps working without Redis; leases are taken with the
 * fill read and given back here (mechanism 4's client side).
 */
import { clock } from '../clock.js'
import type { BoundSharedTier, FillRead, TierEntry, TierLease } from '../contracts.js'
import type { CircuitBreaker } from '../circuit-breaker.js'
import { CircuitOpenError } from '../errors.js'
import type { LatencyHistogram } from '../histogram.js'
import type { Reporter } from './report.js'

export const NO_ENTRY: FillRead = { entry: undefined }

export class SharedTierAccess {
  readonly tier: BoundSharedTier
  readonly name: string
  readonly breaker: CircuitBreaker | undefined
  /** Every L2 call (reads, writes, lease operations), ms. */
  readonly latency: LatencyHistogram
  readonly #cache: string
  readonly #reporter: Reporter

  constructor(cache: string, tier: BoundSharedTier, name: string, breaker: CircuitBreaker | undefined, latency: LatencyHistogram, reporter: Reporter) {
    this.#cache = cache
    this.tier = tier
    this.name = name
    this.breaker = breaker
    this.latency = latency
    this.#reporter = reporter
  }

  /**
   * Runs one shared-tier call through the circuit breaker: skipped at once
   * while it is open, and its outcome counted. A value the tier rejected
   * (encoding) says nothing about the tier's health.
   */
  async call<T>(key: string | undefined, run: () => Promise<T>): Promise<T> {
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
      throw new CircuitOpenError('shared tier skipped: circuit breaker open after repeated failures', {
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
      else breaker.failure()
      throw error
    }
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

  /** The fill path's read, taking the key's lease in the same round trip where the tier has leases; a failure reads as a plain miss. */
  async readForFill(key: string, leaseMs: number): Promise<FillRead> {
    const tier = this.tier
    try {
      return await this.call(key, () => (tier.readForFill !== undefined ? tier.readForFill(key, leaseMs) : tier.get(key).then((entry) => ({ entry }))))
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

  close(): Promise<void> {
    return this.tier.close()
  }
}
