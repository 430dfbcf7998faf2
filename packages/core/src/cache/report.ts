import { FactoryError, TierCacheError, TierError, errorMessageOf } from '../errors.js'
import type { Logger } from '../events.js'

/**
 * Where the errors a cache recovered from go (an L2 read that fell back to
 * the factory, a fill that could not be written, a fail-safe answer): the
 * user's `onError`, else the logger, else one process warning per error code
 * and cache, so a flood of one failure does not flood the log.
 */
export class Reporter {
  readonly #cache: string
  readonly #l2Name: string
  readonly #onError: ((error: TierCacheError) => void) | undefined
  readonly #logger: Logger | undefined
  readonly #warned = new Set<string>()

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

  /** A decision the cache took on its own (not an error): to the logger, else a process warning with `code`. */
  notice(fields: Record<string, unknown>, message: string, code: string): void {
    try {
      if (this.#logger !== undefined) this.#logger.warn({ cache: this.#cache, ...fields }, message)
      else process.emitWarning(`cache "${this.#cache}": ${message}`, { code })
    } catch {
      // A broken logger must not fail the call.
    }
  }

  /** A shared-tier failure as a typed error naming the cache, key and tier (typed errors pass through). */
  tierError(operation: string, key: string | undefined, error: unknown): TierCacheError {
    if (error instanceof TierCacheError) return error
    return new TierError(`${operation} failed: ${errorMessageOf(error)}`, { cache: this.#cache, key, tier: this.#l2Name, cause: error })
  }

  factoryError(message: string, key: string, error: unknown): TierCacheError {
    return new FactoryError(`${message}: ${errorMessageOf(error)}`, { cache: this.#cache, key, cause: error })
  }
}
