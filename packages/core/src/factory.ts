import { parseTtl, type Duration } from './duration.js'
import { FactoryTimeoutError } from './errors.js'
import { assertValidTags } from './tags.js'

/** What a factory learns about, and can decide for, the value it produces. */
export interface FactoryContext<V> {
  /** The key being produced. */
  readonly key: string
  /** The value this call replaces, if one is cached past its TTL but within grace; otherwise `undefined`. */
  readonly stale: V | undefined
  /** True when `stale` holds a value (which may itself be `undefined` or `null`). */
  readonly hasStale: boolean
  /**
   * Aborted when no one needs this value any more: at `hardTimeout` (reason:
   * `FactoryTimeoutError`), when the cache closes (`CacheClosedError`), and
   * when every caller waiting on it aborted its own `signal` — but never
   * while this load holds the key's lease (other processes may be waiting
   * for it), and never for a background refresh. Pass it to fetch, your
   * database driver, etc.
   */
  readonly signal: AbortSignal
  /** Stores this value with this TTL instead of the configured one. */
  setTtl(ttl: Duration): void
  /** Returns the value to the caller without caching it anywhere. */
  skipCache(): void
  /** Stores this value under these tags (instead of the call's `tags`). */
  setTags(tags: readonly string[]): void
  /**
   * Keeps this value out of the shared tier (e.g. too big for Redis): it is
   * kept in this instance's L1 only. The L2 copy of the key is deleted and
   * the invalidation published, as for `set(key, value, { skipL2: true })`,
   * so no instance reads an older value back from L2 meanwhile.
   */
  skipL2(): void
  /** Keeps this value usable this long past its TTL (stale-while-revalidate, fail-safe) instead of the configured `grace`. */
  setGrace(grace: Duration): void
}

/** Produces the value on a miss. `null` and `undefined` are cached as misses (negative caching). */
export type Factory<V> = (context: FactoryContext<V>) => V | Promise<V>

/** The context handed to one factory call, and what the factory decided through it. */
export class FactoryCall<V> implements FactoryContext<V> {
  readonly key: string
  readonly stale: V | undefined
  readonly hasStale: boolean
  ttlMs: number | undefined
  graceMs: number | undefined
  tags: readonly string[] | undefined
  skipped = false
  l2Skipped = false
  readonly #cache: string
  /**
   * Made on the first read of `signal`: an AbortController and its signal
   * cost ~2 µs and garbage per factory call (measured: 26 % of observe
   * mode's per-request time, bench/observe-cost.mjs), and most factories
   * never look at it.
   */
  #controller: AbortController | undefined
  #aborted = false
  #abortReason: unknown

  constructor(cache: string, key: string, stale: { value: V } | undefined) {
    this.#cache = cache
    this.key = key
    this.hasStale = stale !== undefined
    this.stale = stale?.value
  }

  get signal(): AbortSignal {
    if (this.#controller === undefined) {
      this.#controller = new AbortController()
      if (this.#aborted) this.#controller.abort(this.#abortReason)
    }
    return this.#controller.signal
  }

  /** True once `abort` ran (whether or not the factory ever read `signal`). */
  get aborted(): boolean {
    return this.#aborted
  }

  /** Aborts `signal` (once; later calls do nothing). */
  abort(reason: unknown): void {
    if (this.#aborted) return
    this.#aborted = true
    this.#abortReason = reason
    this.#controller?.abort(reason)
  }

  setTtl(ttl: Duration): void {
    this.ttlMs = parseTtl(ttl, 'setTtl', { cache: this.#cache, key: this.key })
  }

  setGrace(grace: Duration): void {
    // 0 switches grace off for this value.
    this.graceMs = grace === 0 ? 0 : parseTtl(grace, 'setGrace', { cache: this.#cache, key: this.key })
  }

  skipL2(): void {
    this.l2Skipped = true
  }

  skipCache(): void {
    this.skipped = true
  }

  setTags(tags: readonly string[]): void {
    assertValidTags(this.#cache, tags, this.key)
    this.tags = tags
  }
}

export interface FactoryTimeouts {
  softTimeoutMs: number | undefined
  hardTimeoutMs: number | undefined
  /** Called once if the soft timeout passes first; the factory keeps running. */
  onSoftTimeout: (() => void) | undefined
}

/**
 * Runs a factory under its timeouts. The soft timeout only signals (the
 * caller decides whether a stale value answers meanwhile); the hard timeout
 * rejects with FactoryTimeoutError and abandons the call, whose eventual
 * result or error is then ignored.
 */
export function runFactory<V>(factory: Factory<V>, call: FactoryCall<V>, cache: string, timeouts: FactoryTimeouts): Promise<V> {
  let produced: Promise<V>
  try {
    produced = Promise.resolve(factory(call))
  } catch (error) {
    return Promise.reject(error)
  }
  const { softTimeoutMs, hardTimeoutMs, onSoftTimeout } = timeouts
  if (hardTimeoutMs === undefined && (softTimeoutMs === undefined || onSoftTimeout === undefined)) return produced
  return new Promise<V>((resolve, reject) => {
    const soft = softTimeoutMs === undefined || onSoftTimeout === undefined ? undefined : setTimeout(onSoftTimeout, softTimeoutMs)
    const hard =
      hardTimeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            clearTimeout(soft)
            produced.catch(() => {}) // abandoned: its outcome reaches no one
            const timedOut = new FactoryTimeoutError(`factory did not finish within hardTimeout ${hardTimeoutMs} ms`, { cache, key: call.key })
            call.abort(timedOut)
            reject(timedOut)
          }, hardTimeoutMs)
    produced.then(
      (value) => {
        clearTimeout(soft)
        clearTimeout(hard)
        resolve(value)
      },
      (error: unknown) => {
        clearTimeout(soft)
        clearTimeout(hard)
        reject(error)
      },
    )
  })
}
