/**
 * A cache's options checked and resolved (their types and documentation: cache-options.ts).
 * `resolveConfig` checks every option before anything is bound or joined,
 * so a rejected `createCache` holds nothing open.
 */
import { CircuitBreaker } from '../circuit-breaker.js'
import type { Bus, LocalTier, SharedTier, Tier } from '../contracts.js'
import type { InvalidationPlan } from '../describe.js'
import { parseDuration } from '../duration.js'
import { InvalidOptionError, type TierCacheError } from '../errors.js'
import type { Logger } from '../events.js'
import { assertValidCacheName } from '../keys.js'
import { assertKnownOptions } from '../options.js'
import { READ_POLICY_OPTIONS, resolvePolicy, type ReadPolicy } from '../policy.js'
import type { CacheOptions } from './cache-options.js'
export type { CacheOptions, GetOrSetManyOptions, GetOrSetOptions, ReadOptions, SetOptions } from './cache-options.js'

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
