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

export interface CacheOptions extends ReadPolicyOptions {
  /**
   * Names the cache: prefixes its keys in shared tiers and its traffic on the
   * bus, and labels its errors. 1-100 characters from `A-Z a-z 0-9 _ . - /`.
   */
  name: string
  /**
   * The tiers, nearest first: `[memoryTier()]` (L1 only), `[redisTier()]`
   * (L2 only) or `[memoryTier(), redisTier()]`. At most one local and one
   * shared tier; the local one comes first.
   */
  tiers: readonly Tier[]
  /**
   * Carries invalidations between instances. Without a bus, writes on other
   * instances do not evict this instance's L1: only give an L1 to a cache
   * without a bus when a single instance writes and reads it.
   */
  bus?: Bus
  /**
   * The coherence bound: after a write resolves on any instance, this
   * instance stops returning the old value from L1 within this time, even
   * when connections drop, Redis restarts or pauses, or messages are lost.
   * L1 is read only while the bus has proven, within this window, that its
   * subscription delivers. Default: the bus's `maxStaleness` (1 s).
   */
  maxStaleness?: Duration
  /**
   * Receives errors the cache recovered from without failing the caller (an
   * L2 read that fell back to the factory, a fill that could not be written,
   * a factory failure answered with a stale value). Default: one process
   * warning per error code and cache.
   */
  onError?: (error: TierCacheError) => void
  /**
   * `'auto'`: once a group of keys (a namespace, a key template's scope) has
   * been sampled, stop using L2 for it while its factory costs less than two
   * L2 round trips (the advisor's "l1-only"), and go back when that changes.
   * Each decision is logged. Writes still go to L2 and the bus, so coherence
   * is unchanged. Default `'fixed'`.
   */
  policy?: 'fixed' | 'auto'
  /**
   * A pino-compatible logger (`warn(object, message)`) for recovered errors
   * when no `onError` is given; each error is logged with its cache, key,
   * tier and code.
   */
  logger?: Logger
  /**
   * Skips the shared tier after `failureThreshold` consecutive failures, for
   * `openFor`, then lets one call probe it (half-open). While open, reads go
   * to the factory (single-flight still applies) and writes reject with
   * `CircuitOpenError` at once. Default `{ failureThreshold: 5, openFor: '2s' }`;
   * `false` turns it off.
   */
  circuitBreaker?: { failureThreshold?: number; openFor?: Duration } | false
  /**
   * What L1 serves while the bus cannot prove its subscription delivers (a
   * gap, a lost connection, Redis down):
   * - `'reuse'` (default): the coherence contract, with the database
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
   */
  onBusDown?: 'reuse' | 'bypass-l1' | { serveStale: Duration } | 'serve-stale-l1'
  /**
   * Opt-in. A write whose shared-tier write fails still rejects (with
   * `WriteFailedError`, `queued: true`), but its invalidation is queued
   * (a `set` as a delete) and replayed in order once the tier answers,
   * before this instance trusts L1 again; until then this instance leaves L2
   * alone for the keys concerned. Bounded: past `maxQueued` (default 1000)
   * invalidations, or after `maxAttempts` (default 10) failed replays of one,
   * the queue collapses into one `clear()` of the cache (it fails closed).
   * Replays are tried every `retryEvery` (default '1s'). The queue is in
   * memory: it is lost on close() or if the process dies. Default off: the write rejects
   * with `WriteFailedError` (`queued: false`) and the caller retries.
   */
  writeRecovery?: boolean | { maxQueued?: number; maxAttempts?: number; retryEvery?: Duration }
  /**
   * How this cache's data becomes invalid, declared like an API: the events
   * that invalidate it, its tags and namespaces, or `ttlOnly: true`. Shown by
   * `describe()`. A cache without one gets a process warning at creation.
   */
  invalidation?: InvalidationPlan
  /**
   * `'observe'`: profile first, cache second. Reads run the factory every
   * time and touch no tier (as with no cache); writes and invalidations still
   * reach L2 and the bus, as deletes, so a fleet can switch over one instance
   * at a time. Meanwhile a ghost of the first tier (keys only: TTLs, tags, L1
   * capacity) predicts the hit rate the cache would have: `stats().predictedHitRate`.
   * Default `'normal'`.
   */
  mode?: 'normal' | 'observe'
  /**
   * Observe mode only. `l2RoundTrip`: the L2 round trip the advisor weighs,
   * declared (e.g. `'3ms'`, what production's network costs when the
   * observing instance runs somewhere closer). Default: measured, behind
   * the requests, with a probe that reads no value (a few per second).
   */
  observe?: { l2RoundTrip?: Duration }
}

export interface SetOptions extends TierSkipOptions {
  /** Overrides the cache's `ttl` for this value. */
  ttl?: Duration
  /** Overrides the cache's `grace` for this value. */
  grace?: Duration
  /** Tags to write the value under; `invalidateTags` on any of them drops it everywhere. Without `keepTags`, these are the entry's only tags. */
  tags?: readonly string[]
  /**
   * Keep the tags of the entry this value replaces (read from L1, else from
   * L2: one more round trip), joined with `tags`. Default false: a `set`
   * writes the entry whole, so a value set without tags has none. A write
   * between that read and this one is not seen: pass the tags you mean when
   * writers race on one key.
   */
  keepTags?: boolean
}

/** Per-call overrides of the cache's read-path options, and the tags to store a produced value under. */
export interface GetOrSetOptions extends ReadPolicyOptions, TierSkipOptions {
  tags?: readonly string[]
  /**
   * This caller's cancellation: when it aborts, this call rejects with
   * `signal.reason` (other callers of the key are unharmed), and once every
   * caller waiting on the load has aborted, the factory's `ctx.signal`
   * aborts too (not while the load holds the key's lease, nor for a
   * background refresh). `getOrSet` only.
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
