/**
 * A tier binding's hold on its command connection: the connection itself
 * (shared per URL), the watch that knows whether it is up, the binding's
 * connection-change listeners and its pending `ready()` waits — all let go
 * of together on close, the watch before the connection, so closing is not
 * reported as a loss.
 */
import { CacheClosedError, NotReadyError, TierError, TierUnavailableError, errorMessageOf, parseDuration, type ConnectionChange } from '@tiercache/core/adapter'
import { causeOf, explainConnectionError, isUnsentBecauseDisconnected, isWrongDatabase } from './connection-errors.js'
import { acquireCommandConnection, type ConnectionLease, type RedisClient, type RedisInput } from './connections.js'
import { ReadyWaits, watchConnection, type ConnectionWatch, type WatchLease } from './connection-state.js'

export class TierConnection {
  readonly client: RedisClient
  readonly watch: ConnectionWatch
  readonly #cache: string
  readonly #lease: ConnectionLease
  readonly #watchLease: WatchLease
  readonly #waits = new ReadyWaits()
  readonly #unsubscribes = new Set<() => void>()

  constructor(input: RedisInput, cache: string) {
    this.#cache = cache
    this.#lease = acquireCommandConnection(input)
    this.client = this.#lease.client
    this.#watchLease = watchConnection(this.client)
    this.watch = this.#watchLease.watch
  }

  onConnectionChange(listener: (change: ConnectionChange) => void): () => void {
    const remove = this.watch.onChange(listener)
    const unsubscribe = () => {
      this.#unsubscribes.delete(unsubscribe)
      remove()
    }
    this.#unsubscribes.add(unsubscribe)
    return unsubscribe
  }

  /** Throws, for `operation`, while the connection is known down: nothing would answer, and ioredis would only queue the command. */
  assertAvailable(operation: string): void {
    const watch = this.watch
    if (!watch.available())
      throw new TierError(`${operation}: redis at ${watch.endpoint} is down (${watch.describeCause()})`, { cache: this.#cache, tier: 'redis' })
  }

  /**
   * A failed call as a typed error. One that failed because the connection
   * did (refused, host not found, auth, TLS, timeout, wrong database) names
   * host:port, the real cause and what to do, instead of ioredis's "Reached
   * the max retries per request limit"; it is a TierUnavailableError when
   * the command was never sent.
   */
  failed(operation: string, key: string | undefined, error: unknown): TierError {
    const context = { cache: this.#cache, key, tier: 'redis', cause: error }
    const watch = this.watch
    const cause = causeOf(error)
    const connectionFailed =
      cause === 'refused' || cause === 'auth' || cause === 'tls' || cause === 'timeout' || /^getaddrinfo /.test(cause) || isWrongDatabase(error)
    if (isUnsentBecauseDisconnected(error) || connectionFailed) {
      const why = watch.cause !== undefined ? watch.describeCause() : explainConnectionError(error)
      return new TierUnavailableError(`${operation} failed: no connection to redis at ${watch.endpoint}: ${why}`, context)
    }
    if (cause === 'closed') {
      // Closed because of a failure the watch saw (a database that does not exist): that is the cause to name.
      const why = watch.cause !== undefined && watch.cause !== 'closed' ? watch.describeCause() : explainConnectionError(error)
      return new TierError(`${operation} failed: redis at ${watch.endpoint}: ${why}`, context)
    }
    return new TierError(`${operation} failed: ${errorMessageOf(error)}`, context)
  }

  /** A call that outlived the tier's timeout; while the connection is not up, the error says why it is not. */
  timedOut(operation: string, key: string | undefined, timeoutMs: number): TierError {
    const watch = this.watch
    const why = watch.up ? '' : `: redis at ${watch.endpoint} is not connected (${watch.describeCause()})`
    return new TierError(`${operation} timed out after ${timeoutMs} ms${why}`, { cache: this.#cache, key, tier: 'redis' })
  }

  /** See redisTier's `ready`. */
  ready(timeout: number | undefined): Promise<void> {
    const timeoutMs = timeout === undefined ? undefined : parseDuration(timeout, 'redisTier ready timeout', { cache: this.#cache })
    const watch = this.watch
    watch.connect()
    return this.#waits.wait(
      () => watch.up,
      (wake) => watch.subscribe(wake),
      timeoutMs,
      () => new NotReadyError(`redis at ${watch.endpoint} is not ready after ${timeoutMs} ms: ${watch.describeCause()}`, { cache: this.#cache, tier: 'redis' }),
    )
  }

  async close(): Promise<void> {
    this.#waits.close(() => new CacheClosedError('redisTier was closed before its connection was ready', { cache: this.#cache, tier: 'redis' }))
    for (const unsubscribe of [...this.#unsubscribes]) unsubscribe()
    this.#watchLease.release()
    await this.#lease.release()
  }
}
