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

/*
 * Checks that hold across copies of this module. An app that loads
 * @tiercache/core both as ESM and as CJS (or two versions of it) has two
 * TierCacheError classes, and a plain `instanceof` answers false for an
 * error of the other copy. So every error class's prototype carries, under
 * the global `Symbol.for('tiercache.error')`, its lineage of stable names
 * (['TierCacheError', 'TierError', 'TierUnavailableError']), and each
 * class's `Symbol.hasInstance` falls back on it: `x instanceof
 * WriteFailedError` holds for a write-failed error of any copy, and only for
 * one. The names are written out, not taken from `.name`, which a minifier
 * may change. A class a user derives from one of these answers `instanceof`
 * the ordinary way (it has no name here), and its instances carry the
 * lineage of the class they extend.
 */
const BRAND = Symbol.for('tiercache.error')
/** The stable name of each class defined here, by constructor; what `Symbol.hasInstance` looks for in a lineage. */
const CLASS_NAMES = new Map<unknown, string>()
const ordinaryHasInstance = Function.prototype[Symbol.hasInstance]

/** Registers `ctor` (a class defined in this file) under `name`, extending its parent's lineage. Called from each class's static block. */
function brand(ctor: abstract new (...args: never[]) => TierCacheError, name: string): void {
  const parent = (Object.getPrototypeOf(ctor.prototype) as Record<symbol, unknown>)[BRAND]
  const lineage = Object.freeze([...(Array.isArray(parent) ? parent : []), name])
  Object.defineProperty(ctor.prototype, BRAND, { value: lineage, enumerable: false, writable: false, configurable: false })
  CLASS_NAMES.set(ctor, name)
}

/** The brand's lineage of a tiercache error from any copy of this module, or undefined for anything else. */
function lineageOf(value: unknown): readonly unknown[] | undefined {
  if (typeof value !== 'object' || value === null) return undefined
  const lineage = (value as Record<symbol, unknown>)[BRAND]
  return Array.isArray(lineage) && typeof (value as { code?: unknown }).code === 'string' ? lineage : undefined
}

/**
 * Whether `value` is a tiercache error, from this copy of the library or any
 * other (ESM and CJS builds loaded side by side, two versions), and, with
 * `code`, one with that code. Narrows the type, so `err.code`, `err.cache`
 * and `err.key` can be read after it.
 */
export function isTierCacheError(value: unknown): value is TierCacheError
export function isTierCacheError<C extends TierCacheErrorCode>(value: unknown, code: C): value is TierCacheError & { readonly code: C }
export function isTierCacheError(value: unknown, code?: TierCacheErrorCode): boolean {
  if (lineageOf(value) === undefined) return false
  return code === undefined || (value as TierCacheError).code === code
}

export class TierCacheError extends Error {
  static {
    brand(TierCacheError, 'TierCacheError')
  }

  /** True for an instance of this class, or of the same class from another copy of the library (see BRAND). */
  static override [Symbol.hasInstance]<T>(this: abstract new (...args: never[]) => T, value: unknown): value is T {
    // `this` is the class on the right of `instanceof`: this one or a subclass, which inherits this method.
    // biome-ignore lint/complexity/noThisInStatic: the subclass being tested, not TierCacheError
    if (ordinaryHasInstance.call(this, value)) return true
    // biome-ignore lint/complexity/noThisInStatic: the subclass being tested, not TierCacheError
    const name = CLASS_NAMES.get(this)
    return name !== undefined && lineageOf(value)?.includes(name) === true
  }

  readonly code: TierCacheErrorCode
  readonly cache: string | undefined
  readonly key: string | undefined
  readonly tier: string | undefined

  constructor(code: TierCacheErrorCode, message: string, context: ErrorContext = {}) {
    super(`${message}${describe(context)}`, context.cause === undefined ? undefined : { cause: context.cause })
    // The branded name, not `new.target.name`: bundlers rename self-referencing classes (`_WriteFailedError`).
    this.name = CLASS_NAMES.get(new.target) ?? new.target.name
    this.code = code
    this.cache = context.cache
    this.key = context.key === undefined ? undefined : String(context.key)
    this.tier = context.tier
  }
}

/** The key is not a non-empty string within the length limit. Thrown before any I/O. */
export class InvalidKeyError extends TierCacheError {
  static {
    brand(InvalidKeyError, 'InvalidKeyError')
  }

  constructor(message: string, context: ErrorContext) {
    super('ERR_INVALID_KEY', message, context)
  }
}

/** An option (to `createCache`, a tier, a bus or a call) is malformed. */
export class InvalidOptionError extends TierCacheError {
  static {
    brand(InvalidOptionError, 'InvalidOptionError')
  }

  constructor(message: string, context: ErrorContext = {}) {
    super('ERR_INVALID_OPTION', message, context)
  }
}

/** A call argument other than the key or options is malformed (e.g. a factory that is not a function). */
export class InvalidArgumentError extends TierCacheError {
  static {
    brand(InvalidArgumentError, 'InvalidArgumentError')
  }

  constructor(message: string, context: ErrorContext = {}) {
    super('ERR_INVALID_ARGUMENT', message, context)
  }
}

/** A value could not be encoded for (or decoded from) a shared tier. Nothing was written. */
export class SerializationError extends TierCacheError {
  static {
    brand(SerializationError, 'SerializationError')
  }

  constructor(message: string, context: ErrorContext = {}) {
    super('ERR_SERIALIZATION', message, context)
  }
}

/** A tier operation failed (connection lost, timeout, server error). */
export class TierError extends TierCacheError {
  static {
    brand(TierError, 'TierError')
  }

  constructor(message: string, context: ErrorContext = {}, code: 'ERR_TIER' | 'ERR_TIER_UNAVAILABLE' = 'ERR_TIER') {
    super(code, message, context)
  }
}

/** The invalidation for a write could not be published; other instances may not have seen it. */
export class PublishError extends TierCacheError {
  static {
    brand(PublishError, 'PublishError')
  }

  constructor(message: string, context: ErrorContext = {}) {
    super('ERR_PUBLISH', message, context)
  }
}

/** The cache (or bus) was closed. */
export class CacheClosedError extends TierCacheError {
  static {
    brand(CacheClosedError, 'CacheClosedError')
  }

  constructor(message: string, context: ErrorContext = {}) {
    super('ERR_CLOSED', message, context)
  }
}

/** A factory did not finish within `hardTimeout` (and no stale value could answer instead). */
export class FactoryTimeoutError extends TierCacheError {
  static {
    brand(FactoryTimeoutError, 'FactoryTimeoutError')
  }

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
  static {
    brand(FactoryError, 'FactoryError')
  }

  constructor(message: string, context: ErrorContext = {}) {
    super('ERR_FACTORY', message, context)
  }
}

/** The shared tier is skipped after repeated failures (circuit breaker open); the write was not attempted. */
export class CircuitOpenError extends TierCacheError {
  static {
    brand(CircuitOpenError, 'CircuitOpenError')
  }

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
  static {
    brand(TierUnavailableError, 'TierUnavailableError')
  }

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
  static {
    brand(WriteFailedError, 'WriteFailedError')
  }

  readonly queued: boolean

  constructor(message: string, queued: boolean, context: ErrorContext = {}) {
    super('ERR_WRITE_FAILED', message, context)
    this.queued = queued
  }
}

/** `ready({ timeout })`: a tier or bus was not connected in time; the message names the endpoint and the cause. */
export class NotReadyError extends TierCacheError {
  static {
    brand(NotReadyError, 'NotReadyError')
  }

  constructor(message: string, context: ErrorContext = {}) {
    super('ERR_NOT_READY', message, context)
  }
}

export function errorMessageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error)
}
