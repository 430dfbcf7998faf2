/**
 * Where what a cache recovers from, and the state changes it goes through,
 * are told: errors to the user's `onError` (every one), else the logger,
 * else one process warning per error code and cache; state changes
 * (connection lost/restored, circuit opened/closed) as one line each.
 *
 * Per-request errors are aggregated for the logger: in an outage every
 * request fails the same way, and a log with 53 near-identical lines per
 * instance (measured before this change) hides the one line that matters.
 * The first error of a code is logged at once; the rest within the window
 * are counted and summed up in one line when it ends.
 */
import { FactoryError, TierCacheError, TierError, errorMessageOf } from '../errors.js'
import type { LogLevel, Logger } from '../events.js'

/** How long repeats of one error code are counted before one summary line. */
export const AGGREGATION_WINDOW_MS = 10_000

interface Aggregate {
  count: number
  timer: NodeJS.Timeout
  example: string
}

export class Reporter {
  readonly #cache: string
  readonly #l2Name: string
  readonly #onError: ((error: TierCacheError) => void) | undefined
  readonly #logger: Logger | undefined
  readonly #warned = new Set<string>()
  readonly #aggregates = new Map<string, Aggregate>()

  constructor(cache: string, l2Name: string, onError: ((error: TierCacheError) => void) | undefined, logger: Logger | undefined) {
    this.#cache = cache
    this.#l2Name = l2Name
    this.#onError = onError
    this.#logger = logger
  }

  report(error: TierCacheError): void {
    if (this.#onError !== undefined) {
      try {
        this.#onError(error)
      } catch {
        // A throwing error handler must not turn a recovered error into a failed call.
      }
      return
    }
    if (this.#logger !== undefined) {
      const aggregate = this.#aggregates.get(error.code)
      if (aggregate !== undefined) {
        aggregate.count++
        return
      }
      this.#startAggregate(error.code, error.message)
      this.#log('warn', { cache: error.cache, key: error.key, tier: error.tier, code: error.code, err: error }, error.message)
      return
    }
    if (this.#warned.has(error.code)) return
    this.#warned.add(error.code)
    process.emitWarning(`${error.message} (further ${error.code} errors of this cache are not reported; pass onError or a logger to see them)`, {
      code: error.code,
    })
  }

  /** A decision the cache took on its own (not an error): to the logger, else a process warning with `code`. */
  notice(fields: Record<string, unknown>, message: string, code: string): void {
    if (this.#logger !== undefined) this.#log('warn', { cache: this.#cache, ...fields }, message)
    else process.emitWarning(`cache "${this.#cache}": ${message}`, { code })
  }

  /**
   * One line for one state change (a connection lost or restored, the
   * circuit opened or closed). Without a logger, `error`-level changes
   * become a process warning and the rest are dropped.
   */
  state(level: LogLevel, fields: Record<string, unknown>, message: string, code: string): void {
    if (this.#logger !== undefined) this.#log(level, { cache: this.#cache, ...fields }, message)
    else if (level === 'error') process.emitWarning(`cache "${this.#cache}": ${message}`, { code })
  }

  /** A shared-tier failure as a typed error naming the cache, key and tier (typed errors pass through). */
  tierError(operation: string, key: string | undefined, error: unknown): TierCacheError {
    if (error instanceof TierCacheError) return error
    return new TierError(`${operation} failed: ${errorMessageOf(error)}`, { cache: this.#cache, key, tier: this.#l2Name, cause: error })
  }

  factoryError(message: string, key: string, error: unknown): TierCacheError {
    return new FactoryError(`${message}: ${errorMessageOf(error)}`, { cache: this.#cache, key, cause: error })
  }

  /** Sums up what is being counted and stops the windows' timers (the cache is closing). */
  close(): void {
    for (const code of [...this.#aggregates.keys()]) this.#endAggregate(code)
  }

  #startAggregate(code: string, example: string): void {
    const timer = setTimeout(() => this.#endAggregate(code), AGGREGATION_WINDOW_MS)
    timer.unref()
    this.#aggregates.set(code, { count: 0, timer, example })
  }

  #endAggregate(code: string): void {
    const aggregate = this.#aggregates.get(code)
    if (aggregate === undefined) return
    clearTimeout(aggregate.timer)
    this.#aggregates.delete(code)
    if (aggregate.count === 0) return
    const seconds = AGGREGATION_WINDOW_MS / 1000
    this.#log(
      'warn',
      { cache: this.#cache, code, count: aggregate.count, windowMs: AGGREGATION_WINDOW_MS },
      `${aggregate.count} more ${code} errors in the last ${seconds} s, like: ${aggregate.example}`,
    )
  }

  #log(level: LogLevel, fields: Record<string, unknown>, message: string): void {
    const logger = this.#logger!
    const method = logger[level] ?? (level === 'error' ? logger.warn : undefined)
    try {
      method?.call(logger, fields, message)
    } catch {
      // A broken logger must not fail the call.
    }
  }
}
