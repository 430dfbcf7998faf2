/**
 * Every error tiercache throws to a caller is a `TierCacheError` with a stable
 * `code`, so callers can branch on `err.code` without parsing messages, and a
 * message that names the cache, the key and the tier involved.
 */
export type TierCacheErrorCode =
  | 'ERR_INVALID_KEY'
  | 'ERR_INVALID_OPTION'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_SERIALIZATION'
  | 'ERR_TIER'
  | 'ERR_PUBLISH'
  | 'ERR_CLOSED'
  | 'ERR_FACTORY_TIMEOUT'
  | 'ERR_FACTORY'
  | 'ERR_CIRCUIT_OPEN'
  | 'ERR_TIER_UNAVAILABLE'
  | 'ERR_WRITE_FAILED'
  | 'ERR_NOT_READY'

export interface ErrorContext {
  /** The cache's `name`, when the error belongs to one. */
  cache?: string
  /** The key involved (truncated in the message if long). */
  key?: string
  /** The tier involved: `'memory'`, `'redis'`, … */
  tier?: string
  cause?: unknown
}

const MAX_KEY_IN_MESSAGE = 120

function describe(context: ErrorContext): string {
  const parts: string[] = []
  if (context.cache !== undefined) parts.push(`cache "${context.cache}"`)
  if (context.key !== undefined) {
    const key = String(context.key)
    const shown = key.length > MAX_KEY_IN_MESSAGE ? `${key.slice(0, MAX_KEY_IN_MESSAGE)}…(${key.length} chars)` : key
    parts.push(`key "${shown}"`)
  }
  if (context.tier !== undefined) parts.push(`tier ${context.tier}`)
  return parts.length > 0 ? ` [${parts.join(', ')}]` : ''
}

export class TierCacheError extends Error {
  readonly code: TierCacheErrorCode
  readonly cache: string | undefined
  readonly key: string | undefined
  readonly tier: string | undefined

  constructor(code: TierCacheErrorCode, message: string, context: ErrorContext = {}) {
    super(`${message}${describe(context)}`, context.cause === undefined ? undefined : { cause: context.cause })
    this.name = new.target.name
    this.code = code
    this.cache = context.cache
    this.key = context.key === undefined ? undefined : String(context.key)
    this.tier = context.tier
  }
}

/** The key is not a non-empty string within the length limit. Thrown before any I/O. */
export class InvalidKeyError extends TierCacheError {
  constructor(message: string, context: ErrorContext) {
    super('ERR_INVALID_KEY', message, context)
  }
}

/** An option (to `createCache`, a tier, a bus or a call) is malformed. */
export class InvalidOptionError extends TierCacheError {
  constructor(message: string, context: ErrorContext = {}) {
    super('ERR_INVALID_OPTION', message, context)
  }
}

/** A call argument other than the key or options is malformed (e.g. a factory that is not a function). */
export class InvalidArgumentError extends TierCacheError {
  constructor(message: string, context: ErrorContext = {}) {
    super('ERR_INVALID_ARGUMENT', message, context)
  }
}

/** A value could not be encoded for (or decoded from) a shared tier. Nothing was written. */
export class SerializationError extends TierCacheError {
  constructor(message: string, context: ErrorContext = {}) {
    super('ERR_SERIALIZATION', message, context)
  }
}

/** A tier operation failed (connection lost, timeout, server error). */
export class TierError extends TierCacheError {
  constructor(message: string, context: ErrorContext = {}, code: 'ERR_TIER' | 'ERR_TIER_UNAVAILABLE' = 'ERR_TIER') {
    super(code, message, context)
  }
}

/** The invalidation for a write could not be published; other instances may not have seen it. */
export class PublishError extends TierCacheError {
  constructor(message: string, context: ErrorContext = {}) {
    super('ERR_PUBLISH', message, context)
  }
}

/** The cache (or bus) was closed. */
export class CacheClosedError extends TierCacheError {
  constructor(message: string, context: ErrorContext = {}) {
    super('ERR_CLOSED', message, context)
  }
}

/** A factory did not finish within `hardTimeout` (and no stale value could answer instead). */
export class FactoryTimeoutError extends TierCacheError {
  constructor(message: string, context: ErrorContext = {}) {
    super('ERR_FACTORY_TIMEOUT', message, context)
  }
}

/**
 * A factory failed where the cache recovered (fail-safe answered with a
 * stale value, or a background refresh failed): reported to `onError`, never
 * thrown to the caller, whose own factory error passes through unchanged.
 */
export class FactoryError extends TierCacheError {
  constructor(message: string, context: ErrorContext = {}) {
    super('ERR_FACTORY', message, context)
  }
}

/** The shared tier is skipped after repeated failures (circuit breaker open); the write was not attempted. */
export class CircuitOpenError extends TierCacheError {
  constructor(message: string, context: ErrorContext = {}) {
    super('ERR_CIRCUIT_OPEN', message, context)
  }
}

/**
 * The shared tier's connection is known to be down (refused, closed,
 * reconnecting): the call failed at once and sent nothing, instead of
 * waiting out the tier timeout. A read becomes a miss; a write rejects with
 * `WriteFailedError` whose `cause` is this.
 */
export class TierUnavailableError extends TierError {
  constructor(message: string, context: ErrorContext = {}) {
    super(message, context, 'ERR_TIER_UNAVAILABLE')
  }
}

/**
 * A write (set, delete, invalidateTags, invalidateNamespace, clear) that may
 * not have reached the shared tier: other instances may keep serving the
 * previous value from it until the write is retried or the entry's TTL ends.
 * This instance dropped its own copy. `queued` is true when `writeRecovery`
 * holds the invalidation for replay once the tier is back (the value still
 * may be served elsewhere until then); `cause` is the tier's own error.
 */
export class WriteFailedError extends TierCacheError {
  readonly queued: boolean

  constructor(message: string, queued: boolean, context: ErrorContext = {}) {
    super('ERR_WRITE_FAILED', message, context)
    this.queued = queued
  }
}

/** `ready({ timeout })`: a tier or bus was not connected in time; the message names the endpoint and the cause. */
export class NotReadyError extends TierCacheError {
  constructor(message: string, context: ErrorContext = {}) {
    super('ERR_NOT_READY', message, context)
  }
}

export function errorMessageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
