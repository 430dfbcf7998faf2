import { MAX_DURATION_MS, MAX_TTL_MS, parseDuration, parseTtl, type Duration } from './duration.js'
import { InvalidOptionError, type ErrorContext } from './errors.js'

/** How a cache (or one call) reads, produces and stores values: every option of the read path, parsed. */
export interface ReadPolicy {
  readonly ttlMs: number
  readonly negativeTtlMs: number
  /** How long past its TTL an entry may still be served stale (SWR, fail-safe). 0: never. */
  readonly graceMs: number
  /** A fraction in [0, 1): TTLs are spread by ± this share. */
  readonly jitter: number
  /** Past this, a factory with a stale value to fall back on answers with the stale value. */
  readonly softTimeoutMs: number | undefined
  /** Past this, a factory call is abandoned (FactoryTimeoutError, or fail-safe). */
  readonly hardTimeoutMs: number | undefined
  /** After a factory failure answered with a stale value, how long that value is served before the factory is tried again. */
  readonly failSafeBackoffMs: number
  /** How long a miss waits for another process's lease holder, and how long a lease lasts. */
  readonly lockTimeoutMs: number
  /** On a stale hit within grace: answer at once and refresh behind (`'background'`), or wait for the refresh. */
  readonly refreshStale: 'background' | 'wait'
  /** L1 keeps a value at most this long from its fill (never past its L2 TTL); undefined: as long as L2. */
  readonly l1TtlMs: number | undefined
  /** A fraction of the TTL in (0, 1): past it, a hit answers at once and starts one background refresh. */
  readonly refreshAhead: number | undefined
}

/**
 * The read-path options: on `createCache` (the cache's defaults) and on each
 * `getOrSet` / `getOrSetMany` / `wrap` call (for that call). Durations are
 * milliseconds or strings such as `'250ms'`, `'5m'`, `'1h30m'`.
 */
export interface ReadPolicyOptions {
  /**
   * How long a value is fresh: served from L1 or L2 without calling the
   * factory. Up to 3650 days.
   *
   * Prevents: the factory (your database) running on every read.
   *
   * @defaultValue `'1m'`
   */
  ttl?: Duration
  /**
   * How long a cached miss (the factory returned `null` or `undefined`) is
   * kept: lookups of rows that do not exist are cached too.
   *
   * Prevents: a flood of lookups for missing rows reaching the database on
   * every call, while keeping a row created after a miss from staying
   * invisible for a whole `ttl` when nothing invalidates it.
   *
   * @defaultValue the smaller of `ttl` and `'30s'`
   */
  negativeTtl?: Duration
  /**
   * Keeps an entry usable this long past its TTL (Redis keeps it that much
   * longer): within grace a read answers with the stale value and refreshes
   * it (stale-while-revalidate, see `refreshStale`), and a failing factory is
   * answered with it (fail-safe). Never past the coherence bound: a stale
   * value is served only while rule 7 allows.
   *
   * Prevents: callers waiting for a slow factory when a value just expired,
   * and an error page when the database is down but a recent value exists.
   *
   * @defaultValue 0 (off)
   */
  grace?: Duration
  /**
   * Spreads each TTL by ± this fraction (0.1: ±10 %), from 0 up to (not
   * including) 1.
   *
   * Prevents: a set of keys written together (a warm-up, a deploy) expiring
   * together and sending their misses to the database at once.
   *
   * @defaultValue 0
   */
  jitter?: number
  /**
   * With a stale value at hand (within grace), a factory slower than this is
   * answered with the stale value and finishes behind, updating the cache.
   * Must be shorter than `hardTimeout`.
   *
   * Prevents: a slow database making callers wait when a slightly old value
   * would do.
   *
   * @defaultValue none
   */
  softTimeout?: Duration
  /**
   * A factory slower than this is abandoned: the caller gets
   * `FactoryTimeoutError`, or the stale value (fail-safe) if one is within
   * grace; `ctx.signal` aborts.
   *
   * Prevents: a hung database call holding requests (and the key's load)
   * forever.
   *
   * @defaultValue none
   */
  hardTimeout?: Duration
  /**
   * After a factory failure answered with a stale value (fail-safe), serve
   * that value this long before calling the factory again.
   *
   * Prevents: a failing database being retried by every read while it is
   * down.
   *
   * @defaultValue `'5s'`
   */
  failSafeBackoff?: Duration
  /**
   * How long a miss waits for another process that holds the key's lease
   * (polling L2 every 5 ms, doubling to 50 ms) before running its own
   * factory; also the lease's lifetime.
   *
   * Prevents: a stampede across processes (every instance running the same
   * factory for one expired key), without letting a crashed lease holder
   * block the key for longer than this.
   *
   * @defaultValue `'5s'`
   */
  lockTimeout?: Duration
  /**
   * Within grace: `'background'` answers with the stale value at once and
   * refreshes once behind; `'wait'` waits for the refresh (the stale value
   * still answers if the factory fails).
   *
   * Prevents (`'background'`): a caller paying the factory's latency for a
   * key that has a usable value.
   *
   * @defaultValue `'background'`
   */
  refreshStale?: 'background' | 'wait'
  /**
   * L1 keeps a value at most this long, counted from its fill, and never
   * past its L2 TTL; then the next read goes to L2 (grace applies after the
   * L2 TTL, as without it). On an L1-only cache it is simply
   * `min(ttl, l1Ttl)`.
   *
   * Prevents: one instance's memory holding a value it never hears about (a
   * value nobody invalidates, e.g. `ttlOnly` data in a long TTL) for the
   * whole TTL, while L2 has a newer one.
   *
   * @defaultValue none: L1 keeps what L2 keeps
   */
  l1Ttl?: Duration
  /**
   * A fraction of the TTL, between 0 and 1 (e.g. `0.8`): a hit past that
   * point of a value's life returns it at once and starts one background
   * refresh — one across every instance (under the key's lease) — so a hot
   * key never goes cold and no request waits for its factory after warm-up.
   * A failed refresh keeps the current value until its TTL (grace and
   * fail-safe as usual) and is reported to `onError`.
   *
   * Prevents: the latency spike (and the burst of database calls) each time
   * a hot key expires.
   *
   * @defaultValue none
   */
  refreshAhead?: number
}

export const READ_POLICY_OPTIONS = [
  'ttl',
  'negativeTtl',
  'grace',
  'jitter',
  'softTimeout',
  'hardTimeout',
  'failSafeBackoff',
  'lockTimeout',
  'refreshStale',
  'l1Ttl',
  'refreshAhead',
] as const

const DEFAULT_TTL_MS = 60_000
const DEFAULT_NEGATIVE_TTL_MS = 30_000

/** Resolves options over a base policy (the cache's, or built-in defaults). Returns `base` itself when nothing is overridden. */
export function resolvePolicy(options: ReadPolicyOptions | undefined, base: ReadPolicy | undefined, context: ErrorContext): ReadPolicy {
  if (base !== undefined && (options === undefined || !READ_POLICY_OPTIONS.some((name) => options[name] !== undefined))) {
    return base
  }
  const o = options ?? {}
  // TTLs set no timer, so they may go past the 24.8-day timer bound of the timeouts (up to MAX_TTL_MS).
  const duration = (value: Duration | undefined, name: string, maxMs = MAX_DURATION_MS) =>
    value === undefined ? undefined : parseDuration(value, name, context, maxMs)
  const ttlMs = duration(o.ttl, 'ttl', MAX_TTL_MS) ?? base?.ttlMs ?? DEFAULT_TTL_MS
  // A cached miss never outlives the value the call would have cached.
  const negativeTtlMs = duration(o.negativeTtl, 'negativeTtl', MAX_TTL_MS) ?? Math.min(base?.negativeTtlMs ?? DEFAULT_NEGATIVE_TTL_MS, ttlMs)
  const jitter = o.jitter ?? base?.jitter ?? 0
  if (typeof jitter !== 'number' || !(jitter >= 0 && jitter < 1)) {
    throw new InvalidOptionError(`jitter: must be a number from 0 up to (not including) 1, got ${String(o.jitter)}`, context)
  }
  const refreshStale = o.refreshStale ?? base?.refreshStale ?? 'background'
  if (refreshStale !== 'background' && refreshStale !== 'wait') {
    throw new InvalidOptionError(`refreshStale: must be 'background' or 'wait', got ${JSON.stringify(o.refreshStale)}`, context)
  }
  const softTimeoutMs = duration(o.softTimeout, 'softTimeout') ?? base?.softTimeoutMs
  const hardTimeoutMs = duration(o.hardTimeout, 'hardTimeout') ?? base?.hardTimeoutMs
  if (softTimeoutMs !== undefined && hardTimeoutMs !== undefined && softTimeoutMs >= hardTimeoutMs) {
    throw new InvalidOptionError('softTimeout must be shorter than hardTimeout', context)
  }
  return {
    ttlMs,
    negativeTtlMs,
    graceMs: o.grace === undefined ? (base?.graceMs ?? 0) : parseTtl(o.grace, 'grace', context),
    jitter,
    softTimeoutMs,
    hardTimeoutMs,
    failSafeBackoffMs: duration(o.failSafeBackoff, 'failSafeBackoff') ?? base?.failSafeBackoffMs ?? 5_000,
    lockTimeoutMs: duration(o.lockTimeout, 'lockTimeout') ?? base?.lockTimeoutMs ?? 5_000,
    refreshStale,
    l1TtlMs: duration(o.l1Ttl, 'l1Ttl', MAX_TTL_MS) ?? base?.l1TtlMs,
    refreshAhead: refreshAheadOf(o.refreshAhead, context) ?? base?.refreshAhead,
  }
}

function refreshAheadOf(value: unknown, context: ErrorContext): number | undefined {
  if (value === undefined) return undefined
  if (typeof value !== 'number' || !(value > 0 && value < 1)) {
    throw new InvalidOptionError(`refreshAhead: must be a fraction of the TTL between 0 and 1 (e.g. 0.8), got ${String(value)}`, context)
  }
  return value
}

/** The TTL to store a value with: the policy's (or the factory's choice), spread by jitter. */
export function effectiveTtl(policy: ReadPolicy, value: unknown, chosenTtlMs: number | undefined): number {
  const base = chosenTtlMs ?? (value === null || value === undefined ? policy.negativeTtlMs : policy.ttlMs)
  if (policy.jitter === 0) return base
  return Math.max(1, Math.round(base * (1 + policy.jitter * (2 * Math.random() - 1))))
}
