/**
 * `@tiercache/core`: what a user of the cache imports. The cache, its options
 * and handles, durations, errors, key validation, diagnostics (describe,
 * advisor, channels) and, as types only, the contracts a tier and a bus
 * implement (users type their variables with them). The building blocks
 * adapters share live in `@tiercache/core/adapter`, so they are not API a
 * user can come to depend on.
 */
export { Cache, createCache } from './cache/cache.js'
export type { CacheOptions, GetOrSetManyOptions, GetOrSetOptions, ReadOptions, SetOptions } from './cache/config.js'
export type { SetManyEntry } from './cache/write.js'
export type { CachedEntry } from './cache/entry.js'
export type { BatchLoader } from './cache/batch.js'
export type { CacheCounters } from './cache/stats.js'
export type { CacheNamespace, KeyTemplate, WarmEntry, WarmSource } from './cache/handles.js'
export type { Factory, FactoryContext } from './factory.js'
export type { ReadPolicyOptions } from './policy.js'
export type {
  BoundLocalTier,
  BoundSharedTier,
  BoundTier,
  Bus,
  BusMember,
  BusMembership,
  BusStatus,
  BusTrust,
  ConnectionChange,
  AtomicPublish,
  OriginInvalidation,
  PublishRoute,
  TierWriteOptions,
  Invalidation,
  LocalTier,
  Serializer,
  SharedTier,
  Tier,
  TierEntry,
  TierLease,
  FillRead,
  TierScope,
  TierSetOptions,
} from './contracts.js'
export { MAX_DURATION_MS, parseDuration } from './duration.js'
export { MAX_TTL_MS } from './duration.js'
export type { Duration } from './duration.js'
// Every error class, errorMessageOf, ErrorContext and TierCacheErrorCode: errors.ts
// is all public API, and both entries re-export it whole, so an error class
// added there cannot be missing from one of them.
export * from './errors.js'
export { MAX_KEY_LENGTH, assertValidCacheName, assertValidKey } from './keys.js'
export type { KeyParamNames, KeyParams } from './key-template.js'
export { cached } from './cached.js'
export type { CachedOptions } from './cached.js'
export { describeCaches, describeMarkdown } from './describe.js'
export type { CacheDescription, InvalidationPlan } from './describe.js'
export type { LatencySummary } from './histogram.js'
export { adviseAll, formatAdvice, MIN_LOOKUPS } from './advisor.js'
export type { Advice, Recommendation } from './advisor.js'
export { CHANNELS, busStateChannel } from './events.js'
export type { BusStateEvent, HitEvent, InvalidationEvent, LogLevel, Logger, MissEvent, WriteEvent } from './events.js'
