export { Cache, createCache } from './cache/cache.js'
export type { CacheOptions, GetOrSetOptions, SetOptions } from './cache/config.js'
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
export type { Duration } from './duration.js'
export {
  CacheClosedError,
  CircuitOpenError,
  FactoryError,
  FactoryTimeoutError,
  InvalidArgumentError,
  InvalidKeyError,
  InvalidOptionError,
  PublishError,
  SerializationError,
  TierCacheError,
  TierError,
  errorMessageOf,
} from './errors.js'
export type { ErrorContext, TierCacheErrorCode } from './errors.js'
export { InFlightGuard } from './in-flight-guard.js'
export { MAX_KEY_LENGTH, assertValidCacheName, assertValidKey } from './keys.js'
export { decodeInvalidations, encodeInvalidations, BUS_PROTOCOL_VERSION, MAX_MESSAGE_BYTES } from './bus-protocol.js'
export type { DecodedMessage } from './bus-protocol.js'
export { clock } from './clock.js'
export { TickBatcher } from './tick-batcher.js'
export type { TickBatcherOptions } from './tick-batcher.js'
export { BusMembers } from './bus-members.js'
export { assertKnownOptions } from './options.js'
export type { KeyParamNames, KeyParams } from './key-template.js'
export { NAMESPACE_SEPARATOR } from './tags.js'
export { cached } from './cached.js'
export type { CachedOptions } from './cached.js'
export { describeCaches, describeMarkdown } from './describe.js'
export type { CacheDescription, InvalidationPlan } from './describe.js'
export { LatencyHistogram } from './histogram.js'
export type { LatencySummary } from './histogram.js'
export { adviseAll, formatAdvice, MIN_LOOKUPS } from './advisor.js'
export type { Advice, Recommendation } from './advisor.js'
export { CHANNELS, busStateChannel } from './events.js'
export type { BusStateEvent, HitEvent, InvalidationEvent, Logger, MissEvent, WriteEvent } from './events.js'
