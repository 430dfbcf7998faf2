/**
 * `@tiercache/core/adapter`: what an adapter author needs and a user does not.
 * The contracts a tier and a bus implement, the errors and checks an adapter
 * shares with core (same classes as the user entry: the build splits chunks),
 * and the building blocks the bundled adapters share: the bus wire codec,
 * tick batching, bus membership, the in-flight guard, the clock, option
 * checking, the namespace separator and the latency histogram. Users import
 * `@tiercache/core`; the cache itself is not here, so an adapter cannot
 * reach into it.
 */
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
export type { Duration } from './duration.js'
// errors.ts whole, as in the user entry (see there).
export * from './errors.js'
export { MAX_KEY_LENGTH, NAMESPACE_SEPARATOR, assertValidCacheName, assertValidKey } from './keys.js'
export { CHANNELS, busStateChannel } from './events.js'
export type { BusStateEvent, LogLevel, Logger } from './events.js'
export type { LatencySummary } from './histogram.js'

// Internals: not in the user entry.
export { InFlightGuard } from './in-flight-guard.js'
export { decodeInvalidations, encodeInvalidations, encodeCarryingHead, BUS_PROTOCOL_VERSION, MAX_MESSAGE_BYTES } from './bus-protocol.js'
export type { CarriedValue, CarriedWire, DecodedMessage } from './bus-protocol.js'
export { clock } from './clock.js'
export { TickBatcher } from './tick-batcher.js'
export type { TickBatcherOptions } from './tick-batcher.js'
export { BusMembers } from './bus-members.js'
export { assertKnownOptions } from './options.js'
export { labelledBuses } from './labelled-buses.js'
export type { BusesOption } from './labelled-buses.js'
export { LatencyHistogram } from './histogram.js'
