/**
 * A cache's options: their types and documentation, and their validation.
 * `resolveConfig` checks every option before anything is bound or joined,
 * so a rejected `createCache` holds nothing open.
 */
import { CircuitBreaker } from '../circuit-breaker.js'
import type { TierSkipOptions } from './skips.js'
import type { Bus, LocalTier, SharedTier, Tier } from '../contracts.js'
import type { InvalidationPlan } from '../describe.js'
import { parseDuration, type Duration } from '../duration.js'
import { InvalidOptionError, type TierCacheError } from '../errors.js'
import type { Logger } from '../events.js'
import { assertValidCacheName } from '../keys.js'
import { assertKnownOptions } from '../options.js'
import { READ_POLICY_OPTIONS, resolvePolicy, type ReadPolicy, type ReadPolicyOptions } from '../policy.js'

/**
 * The options of {@link createCache}. Every option is checked at creation:
 * an unknown name, a malformed duration or a bad value throws
 * `InvalidOptionError` naming the cache and the option, so a typo never
 * becomes a silent default. The read-path options ({@link ReadPolicyOptions}:
 * `ttl`, `grace`, timeouts, `refreshAhead`, …) are the cache's defaults; a
 * `getOrSet` call may override them.
 */
export interface CacheOptions extends ReadPolicyOptions {
  /**
   * Names the cache: prefixes its keys in shared tiers and its traffic on the
   * bus, and labels its errors and log lines. 1-100 characters from
   * `A-Z a-z 0-9 _ . - /`. Required.
   *
   * Prevents: two caches on one Redis reading or clearing each other's
   * entries (`clear()` and tags act on this name only), and errors nobody can
   * trace to a cache.
   */
  name: string
  /**
   * The tiers, nearest first: `[memoryTier()]` (L1 only), `[redisTier()]`
   * (L2 only) or `[memoryTier(), redisTier()]`. At most one local and one
   * shared tier; the local one comes first. Required.
   *
   * Prevents: a tier order that would read Redis before memory, or two local
   * tiers splitting one budget; both are refused at creation.
   */
  tiers: readonly Tier[]
  /**
   * Carries invalidations between instances (`redisBus()` or `memoryBus()`;
   * one per process serves every cache).
   *
   * Prevents: other instances serving their L1 copy of a value this instance
   * replaced until its TTL ends. Without a bus that is exactly what happens:
   * only give an L1 to a cache without a bus when a single instance writes
   * and reads it.
   *
   * @defaultValue none
   */
  bus?: Bus
  /**
   * The coherence bound: after a write resolves on any instance, this
   * instance stops returning the old value (from L1, grace, fail-safe or a
   * load it joined) within this time, even when connections drop, Redis
   * restarts or pauses, or messages are lost. L1 is read only while the bus
   * has proven, within this window, that its subscription delivers.
   *
   * Prevents: an instance that silently lost its subscription (a half-dead
   * socket, a partition) serving old values for as long as it is cut off.
   *
   * @defaultValue the bus's `maxStaleness` (`'1s'` for `redisBus`)
   */
  maxStaleness?: Duration
  /**
   * Receives every error the cache recovered from without failing the caller:
   * an L2 read that fell back to the factory, a fill that could not be
   * written, a factory failure answered with a stale value (fail-safe), a
   * failed background refresh. A throwing handler is ignored.
   *
   * Prevents: failures that never reach a caller going unseen (Redis failing
   * every read while the database silently takes the load).
   *
   * @defaultValue the `logger` if one is given; else one process warning per
   * error code and cache
   */
  onError?: (error: TierCacheError) => void
  /**
   * `'auto'`: once a group of keys (a namespace, a key template's scope) has
   * been sampled, stop using L2 for it while its factory costs less than two
   * L2 round trips (the advisor's `l1-only`), and go back when that changes.
   * Each decision is logged. Writes still go to L2 and the bus, so coherence
   * is unchanged.
   *
   * Prevents: paying a Redis round trip on every lookup (and two on every
   * miss) for values cheaper to recompute than to fetch.
   *
   * @defaultValue `'fixed'`
   */
  policy?: 'fixed' | 'auto'
  /**
   * A pino-compatible logger: `warn(object, message)` required; `error`,
   * `info` and `debug` used when present. One line per state change (a
   * connection lost, with host:port and the cause, at `error`; restored at
   * `info`; the circuit opened or closed), and, when no `onError` is given,
   * each recovered error at `warn`: the first of each code at once, the rest
   * summed up in one line every 10 s. A throwing logger is ignored.
   *
   * Prevents: an outage that leaves no trace in your logs, and one that
   * floods them with a line per request.
   *
   * @defaultValue none: `error`-level state changes and the first recovered
   * error of each code become process warnings
   */
  logger?: Logger
  /**
   * Skips the shared tier after `failureThreshold` consecutive failures, for
   * `openFor`; then a background probe (never a user's request) tries the
   * tier, and its answer closes the circuit. While open, reads go to the
   * factory (single-flight still applies) and writes reject at once with
   * `WriteFailedError` (its `cause` a `CircuitOpenError`). `false` turns it
   * off.
   *
   * Prevents: every request waiting out the tier's timeout while Redis is
   * failing, and a dead Redis being probed by user requests.
   *
   * @defaultValue `{ failureThreshold: 5, openFor: '2s' }`
   */
  circuitBreaker?:
    | {
        /** Consecutive shared-tier failures that open the circuit. @defaultValue 5 */
        failureThreshold?: number
        /** How long the circuit stays open before the background probe tries the tier. @defaultValue `'2s'` */
        openFor?: Duration
      }
    | false
  /**
   * What L1 serves while the bus cannot prove its subscription delivers (a
   * gap, a lost connection, Redis down):
   * - `'reuse'`: the coherence contract, with the database
   *   shielded. L1 values from before the outage are not served; a value
   *   this instance loaded itself (from L2 or its factory) at `t0` is served
   *   until `t0 + maxStaleness` (rule 7: any write it missed completed after
   *   `t0`), so each key costs at most one load per `maxStaleness` per
   *   instance however long the outage lasts.
   * - `'bypass-l1'`: no reuse; every read goes to L2, or to the factory when
   *   L2 is down too (the database takes the whole read load).
   * - `{ serveStale: '30s' }`: also serves older L1 values, while
   *   `now < max(verifiedAt, t0) + serveStale`. A breach of the default
   *   contract the user chose: values up to `serveStale` old, not
   *   `maxStaleness`, may be served during an outage.
   * - `'serve-stale-l1'` (deprecated): `{ serveStale: Infinity }`, no bound at all.
   *
   * Prevents (`'reuse'`): both failures of an outage at once — values from
   * before it served past the bound, and the database hit by every read.
   *
   * @defaultValue `'reuse'`
   */
  onBusDown?: 'reuse' | 'bypass-l1' | { serveStale: Duration } | 'serve-stale-l1'
  /**
   * Opt-in. A write whose shared-tier write fails still rejects (with
   * `WriteFailedError`, `queued: true`), but its invalidation is queued
   * (a `set` as a delete) and replayed in order once the tier answers,
   * before this instance trusts L1 again; until then this instance leaves L2
   * alone for the keys concerned. Bounded: past `maxQueued` invalidations,
   * or after `maxAttempts` failed replays of one, the queue collapses into
   * one `clear()` of the cache (it fails closed). The queue is in memory: it
   * is lost on `close()` or if the process dies. `true` takes every default.
   *
   * Prevents: a write that failed during an outage leaving the previous
   * value in Redis, served by every instance, until the key's TTL ends.
   *
   * @defaultValue off: the write rejects with `WriteFailedError`
   * (`queued: false`) and the caller retries
   */
  writeRecovery?:
    | boolean
    | {
        /** Invalidations held at most; one more collapses the queue into one `clear()`. @defaultValue 1000 */
        maxQueued?: number
        /** Failed replays of one invalidation before the queue collapses into one `clear()`. @defaultValue 10 */
        maxAttempts?: number
        /** How often a replay is tried while the queue is not empty. @defaultValue `'1s'` */
        retryEvery?: Duration
      }
  /**
   * How this cache's data becomes invalid, declared like an API: the events
   * that invalidate it, its tags and namespaces, or `ttlOnly: true`. Shown by
   * `describe()`.
   *
   * Prevents: a cache nobody can say how it is kept current (TTL-only
   * invalidation by accident). A cache without one gets a process warning at
   * creation.
   *
   * @defaultValue none
   */
  invalidation?: InvalidationPlan
  /**
   * `'observe'`: profile first, cache second. Reads run the factory every
   * time and touch no tier (as with no cache); writes and invalidations still
   * reach L2 and the bus, as deletes, so a fleet can switch over one instance
   * at a time. Meanwhile a ghost of the first tier (keys only: TTLs, tags, L1
   * capacity) predicts the hit rate the cache would have:
   * `stats().predictedHitRate`, and `advise()` says whether caching pays.
   *
   * Prevents: caching what costs less than the cache itself (a 5 ms query
   * behind a 3 ms Redis hop), found out only in production.
   *
   * @defaultValue `'normal'`
   */
  mode?: 'normal' | 'observe'
  /** Observe mode only. */
  observe?: {
    /**
     * The L2 round trip the advisor weighs, declared (e.g. `'3ms'`, what
     * production's network costs when the observing instance runs somewhere
     * closer to Redis).
     *
     * Prevents: advice computed from a round trip that is not production's.
     *
     * @defaultValue measured, behind the requests, with a probe that reads
     * no value (a few per second)
     */
    l2RoundTrip?: Duration
  }
}

/** The options of `set` and `setMany`. */
export interface SetOptions extends TierSkipOptions {
  /** Overrides the cache's `ttl` for this value. @defaultValue the cache's `ttl` */
  ttl?: Duration
  /** Overrides the cache's `grace` for this value. @defaultValue the cache's `grace` */
  grace?: Duration
  /**
   * Tags to write the value under; `invalidateTags` on any of them drops it
   * everywhere. Without `keepTags`, these are the entry's only tags. At most
   * 32, no control characters.
   *
   * @defaultValue none
   */
  tags?: readonly string[]
  /**
   * Keep the tags of the entry this value replaces (read from L1, else from
   * L2: one more round trip), joined with `tags`. A write between that read
   * and this one is not seen: pass the tags you mean when writers race on
   * one key.
   *
   * Prevents: an update that silently drops the entry out of the tags it was
   * filled under, so a later `invalidateTags` misses it.
   *
   * @defaultValue false: a `set` writes the entry whole, so a value set
   * without tags has none
   */
  keepTags?: boolean
}

/** Per-call overrides of the cache's read-path options, and the tags to store a produced value under. */
export interface GetOrSetOptions extends ReadPolicyOptions, TierSkipOptions {
  /**
   * Tags to store the produced value under (the factory may set its own with
   * `ctx.setTags`). At most 32, no control characters.
   *
   * @defaultValue none
   */
  tags?: readonly string[]
  /**
   * This caller's cancellation: when it aborts, this call rejects with
   * `signal.reason` (other callers of the key are unharmed), and once every
   * caller waiting on the load has aborted, the factory's `ctx.signal`
   * aborts too (not while the load holds the key's lease, nor for a
   * background refresh). `getOrSet` only.
   *
   * Prevents: a request that gave up (client gone, deadline passed) still
   * holding its slot until a slow factory returns.
   *
   * @defaultValue none
   */
  signal?: AbortSignal
}

/** Options of `getOrSetMany`: the read policy and tags (a batch has no tier flags and no per-caller `signal`). */
export type GetOrSetManyOptions = Omit<GetOrSetOptions, 'skipL1' | 'skipL2' | 'signal'>

/** Options of `get`, `getMany` and `delete`: the per-call tier flags. */
export interface ReadOptions extends TierSkipOptions {}

const KNOWN_OPTIONS = new Set<string>([
  'name',
  'tiers',
  'bus',
  'maxStaleness',
  'onError',
  'circuitBreaker',
  'onBusDown',
  'writeRecovery',
  'invalidation',
  'logger',
  'policy',
  'mode',
  'observe',
  ...READ_POLICY_OPTIONS,
])

/** `writeRecovery` resolved (see `CacheOptions.writeRecovery`). */
export interface WriteRecoveryOptions {
  /** Invalidations held at most; one more collapses the queue into one clear. */
  readonly maxQueued: number
  /** Failed replays of one invalidation before the queue collapses into one clear. */
  readonly maxAttempts: number
  /** How often a replay is tried while the queue is not empty, ms. */
  readonly retryMs: number
}

/** Every option checked and parsed; nothing bound or joined yet. */
export interface CacheConfig {
  readonly name: string
  readonly local: LocalTier | undefined
  readonly shared: SharedTier | undefined
  readonly tierNames: string[]
  readonly bus: Bus | undefined
  readonly policy: ReadPolicy
  readonly autoPolicy: boolean
  readonly breaker: CircuitBreaker | undefined
  readonly invalidation: InvalidationPlan | undefined
  /** `onBusDown` resolved: reuse own loads (rule 7), and the bound older L1 values are served within (`{ serveStale }`). */
  readonly outageReuse: boolean
  readonly serveStaleMs: number | undefined
  readonly writeRecovery: WriteRecoveryOptions | undefined
  /** The cache's own `maxStaleness`; undefined: the bus's. */
  readonly maxStalenessMs: number | undefined
  readonly onError: ((error: TierCacheError) => void) | undefined
  readonly logger: Logger | undefined
  /** `mode: 'observe'`: reads touch no tier, and a ghost of the first tier predicts the hit rate. */
  readonly observe: boolean
  /** `observe.l2RoundTrip`, ms: declared, so not probed. */
  readonly declaredL2RoundTripMs: number | undefined
}

export function resolveConfig(options: CacheOptions): CacheConfig {
  assertKnownOptions(options, KNOWN_OPTIONS, 'createCache', {
    cache: typeof (options as { name?: unknown } | null)?.name === 'string' ? options.name : undefined,
  })
  assertValidCacheName(options.name)
  const name = options.name
  const { local, shared } = pickTiers(name, options.tiers)
  const policy = resolvePolicy(options, undefined, { cache: name })
  const breaker = makeBreaker(options.circuitBreaker, name)
  const invalidation = checkPlan(options.invalidation, name)
  const tierNames = options.tiers.map((tier) => tier.name)
  const { outageReuse, serveStaleMs } = parseOnBusDown(options.onBusDown, name)
  const writeRecovery = parseWriteRecovery(options.writeRecovery, name)
  if (options.onError !== undefined && typeof options.onError !== 'function') {
    throw new InvalidOptionError('onError must be a function', { cache: name })
  }
  const bus = options.bus
  if (bus !== undefined && (bus === null || typeof bus.join !== 'function')) {
    throw new InvalidOptionError('bus must be a Bus (memoryBus(), redisBus(), …)', { cache: name })
  }
  const maxStalenessMs = options.maxStaleness === undefined ? undefined : parseDuration(options.maxStaleness, 'maxStaleness', { cache: name })
  if (options.logger !== undefined && typeof options.logger?.warn !== 'function') {
    throw new InvalidOptionError('logger must have a warn(object, message) method (pino, console, …)', { cache: name })
  }
  if (options.policy !== undefined && options.policy !== 'fixed' && options.policy !== 'auto') {
    throw new InvalidOptionError(`policy: must be 'fixed' or 'auto', got ${JSON.stringify(options.policy)}`, { cache: name })
  }
  if (options.mode !== undefined && options.mode !== 'normal' && options.mode !== 'observe') {
    throw new InvalidOptionError(`mode: must be 'normal' or 'observe', got ${JSON.stringify(options.mode)}`, { cache: name })
  }
  const declaredL2RoundTripMs = parseObserveOptions(options, name)
  return {
    name,
    local,
    shared,
    tierNames,
    bus,
    policy,
    autoPolicy: options.policy === 'auto',
    breaker,
    invalidation,
    outageReuse,
    serveStaleMs,
    writeRecovery,
    maxStalenessMs,
    onError: options.onError,
    logger: options.logger,
    observe: options.mode === 'observe',
    declaredL2RoundTripMs,
  }
}

function parseObserveOptions(options: CacheOptions, cache: string): number | undefined {
  const given = options.observe
  if (given === undefined) return undefined
  if (options.mode !== 'observe') throw new InvalidOptionError("observe: only with mode: 'observe'", { cache })
  if (given === null || typeof given !== 'object') throw new InvalidOptionError("observe: expected an object such as { l2RoundTrip: '3ms' }", { cache })
  assertKnownOptions(given, new Set(['l2RoundTrip']), 'observe', { cache })
  return given.l2RoundTrip === undefined ? undefined : parseDuration(given.l2RoundTrip, 'observe.l2RoundTrip', { cache })
}

function pickTiers(cache: string, tiers: readonly Tier[] | undefined): { local: LocalTier | undefined; shared: SharedTier | undefined } {
  if (!Array.isArray(tiers) || tiers.length === 0 || tiers.length > 2) {
    throw new InvalidOptionError('tiers: give one or two tiers, e.g. [memoryTier(), redisTier()]', { cache })
  }
  let local: LocalTier | undefined
  let shared: SharedTier | undefined
  tiers.forEach((tier: Tier, index: number) => {
    if (tier === null || typeof tier !== 'object' || typeof tier.bind !== 'function') {
      throw new InvalidOptionError(`tiers[${index}] is not a tier`, { cache })
    }
    if (tier.kind === 'local') {
      if (local !== undefined || index !== 0) {
        throw new InvalidOptionError('tiers: the local tier (L1) must come first, and only one', { cache })
      }
      local = tier as LocalTier
    } else if (tier.kind === 'shared') {
      if (shared !== undefined) throw new InvalidOptionError('tiers: at most one shared tier (L2)', { cache })
      shared = tier as SharedTier
    } else {
      throw new InvalidOptionError(`tiers[${index}] has unknown kind ${JSON.stringify(tier.kind)}`, { cache })
    }
  })
  return { local, shared }
}

const warnedNoPlan = new Set<string>()

/** Once per cache name and process: a cache nobody declared an invalidation plan for is how stale data ships. */
export function warnNoPlan(cache: string): void {
  if (warnedNoPlan.has(cache)) return
  warnedNoPlan.add(cache)
  process.emitWarning(`cache "${cache}" declares no invalidation plan: pass invalidation: { on, tags, namespaces } or { ttlOnly: true } (see describe())`, {
    code: 'TIERCACHE_NO_INVALIDATION_PLAN',
  })
}

function checkPlan(plan: unknown, cache: string): InvalidationPlan | undefined {
  if (plan === undefined) return undefined
  if (plan === null || typeof plan !== 'object') throw new InvalidOptionError('invalidation: expected { on?, tags?, namespaces?, ttlOnly?, notes? }', { cache })
  const known = new Set(['on', 'tags', 'namespaces', 'ttlOnly', 'notes'])
  for (const [field, value] of Object.entries(plan)) {
    if (!known.has(field)) throw new InvalidOptionError(`invalidation: unknown field "${field}"`, { cache })
    const valid =
      field === 'ttlOnly'
        ? typeof value === 'boolean'
        : field === 'notes'
          ? typeof value === 'string'
          : Array.isArray(value) && value.every((item) => typeof item === 'string')
    if (!valid)
      throw new InvalidOptionError(
        `invalidation.${field}: expected ${field === 'ttlOnly' ? 'a boolean' : field === 'notes' ? 'a string' : 'an array of strings'}`,
        { cache },
      )
  }
  return { ...(plan as InvalidationPlan) }
}

function makeBreaker(option: CacheOptions['circuitBreaker'], cache: string): CircuitBreaker | undefined {
  if (option === false) return undefined
  if (option !== undefined && (option === null || typeof option !== 'object')) {
    throw new InvalidOptionError('circuitBreaker: give { failureThreshold?, openFor? } or false', { cache })
  }
  const threshold = option?.failureThreshold ?? 5
  if (!Number.isSafeInteger(threshold) || threshold < 1) {
    throw new InvalidOptionError(`circuitBreaker.failureThreshold: must be a positive integer, got ${String(threshold)}`, { cache })
  }
  const openForMs = option?.openFor === undefined ? 2_000 : parseDuration(option.openFor, 'circuitBreaker.openFor', { cache })
  return new CircuitBreaker(threshold, openForMs)
}

function parseOnBusDown(option: CacheOptions['onBusDown'], cache: string): { outageReuse: boolean; serveStaleMs: number | undefined } {
  if (option === undefined || option === 'reuse') return { outageReuse: true, serveStaleMs: undefined }
  if (option === 'bypass-l1') return { outageReuse: false, serveStaleMs: undefined }
  if (option === 'serve-stale-l1') return { outageReuse: true, serveStaleMs: Number.POSITIVE_INFINITY }
  if (option !== null && typeof option === 'object' && Object.keys(option).length === 1 && 'serveStale' in option) {
    const serveStaleMs =
      option.serveStale === Number.POSITIVE_INFINITY ? Number.POSITIVE_INFINITY : parseDuration(option.serveStale, 'onBusDown.serveStale', { cache })
    return { outageReuse: true, serveStaleMs }
  }
  throw new InvalidOptionError(`onBusDown: must be 'reuse', 'bypass-l1' or { serveStale: duration }, got ${JSON.stringify(option)}`, { cache })
}

function parseWriteRecovery(option: CacheOptions['writeRecovery'], cache: string): WriteRecoveryOptions | undefined {
  if (option === undefined || option === false) return undefined
  if (option !== true && (option === null || typeof option !== 'object')) {
    throw new InvalidOptionError('writeRecovery: give true, false or { maxQueued?, maxAttempts?, retryEvery? }', { cache })
  }
  const given = option === true ? {} : option
  assertKnownOptions(given, new Set(['maxQueued', 'maxAttempts', 'retryEvery']), 'writeRecovery', { cache })
  const count = (value: unknown, field: string, fallback: number): number => {
    if (value === undefined) return fallback
    if (!Number.isSafeInteger(value) || (value as number) < 1) {
      throw new InvalidOptionError(`writeRecovery.${field}: must be a positive integer, got ${String(value)}`, { cache })
    }
    return value as number
  }
  return {
    maxQueued: count(given.maxQueued, 'maxQueued', 1_000),
    maxAttempts: count(given.maxAttempts, 'maxAttempts', 10),
    retryMs: given.retryEvery === undefined ? 1_000 : parseDuration(given.retryEvery, 'writeRecovery.retryEvery', { cache }),
  }
}
