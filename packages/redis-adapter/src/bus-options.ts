/**
 * redisBus's options: their documentation, defaults and validation, all
 * checked before anything connects.
 */
import { InvalidOptionError, assertKnownOptions, parseDuration, type Duration, type Logger } from '@tiercache/core/adapter'
import { assertRedisInput, isCluster, type RedisClient, type RedisInput } from './connections.js'
import { assertValidPrefix, DEFAULT_PREFIX, invalidationChannel } from './keyspace.js'

export interface RedisBusOptions {
  /**
   * Where Redis is: a `redis://` / `rediss://` URL; `{ url, options }` (a
   * URL and ioredis options: credentials, TLS, db, timeouts; see
   * RedisConnectionOptions); or an ioredis client you own (ioredis 5.3+ or
   * 6; the bus duplicates it for its subscriber). On Redis Cluster, an
   * ioredis `Cluster` or a list of seed nodes: invalidations then go over
   * sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis ≥ 7), one subscriber
   * connection per primary. Give the bus the same URL and options (the same
   * options object) as the tiers, so they share the command connection and
   * each write publishes its invalidation in the same script. A shape not
   * listed here throws InvalidOptionError.
   */
  redis: RedisInput
  /** Deployment prefix; names the channel. Must match the tiers' prefix. Default `'tiercache'`. */
  prefix?: string
  /** Longest a publish may take before the write that issued it rejects. Default `'1s'`. */
  timeout?: Duration
  /**
   * The coherence bound of every cache on this bus (a cache may set its own):
   * L1 is read only while a liveness probe sent less than this long ago has
   * come back over the subscription. Default `'1s'`.
   */
  maxStaleness?: Duration
  /** How often the subscription is probed. Default: a quarter of `maxStaleness`. */
  probeInterval?: Duration
  /**
   * Also evict L1 copies when something other than this SDK writes a cached
   * key — a script, `redis-cli`, another service. Uses Redis server-assisted
   * client-side caching in broadcast mode (`CLIENT TRACKING ON BCAST PREFIX
   * <prefix>:`, redirected to the bus's subscriber connection; Redis ≥ 6, and
   * an ACL that allows `CLIENT`). Redis then sends every instance one message
   * per write to any key under the prefix — entries, but also fill leases and
   * generation keys, and this SDK's own writes — so it costs bus traffic
   * proportional to all writes, and a writer drops its own fresh L1 copy
   * (its next read of that key goes to L2). Worth it when keys under the
   * prefix have writers outside the SDK. Default false.
   *
   * Tracking does not report a SWAPDB (nor a dataset replaced any other way
   * it does not see), so in this mode the bus also keeps an identity key,
   * `<prefix>:#dataset-identity` (a random token, no TTL), and reads it with
   * every liveness probe: a changed or missing token is a gap (every L1 on the
   * bus is emptied) before L1 is trusted again.
   */
  trackExternalWrites?: boolean
  /**
   * A pino-compatible logger (`warn` required; `error` and `info` used when
   * present, console works too). The bus logs one line per state change, never
   * per message: its connection lost (`error`, with host:port and the cause:
   * refused, closed, auth, tls, timeout) and restored (`info`); a gap opened
   * (`warn`: invalidations may have been missed, every L1 on the bus is
   * bypassed) and closed (`info`, with its length in ms: every L1 was emptied
   * and is trusted again). Default: no log (the same changes are on the
   * `tiercache:bus` diagnostics channel and `onConnectionChange`).
   */
  logger?: Logger
}

const KNOWN_OPTIONS = new Set(['redis', 'prefix', 'timeout', 'maxStaleness', 'probeInterval', 'trackExternalWrites', 'logger'])

/** The options checked and defaulted. */
export interface ResolvedBusOptions {
  input: RedisInput
  /** Redis Cluster (a `Cluster` client or a list of seed nodes): the sharded bus. */
  cluster: boolean
  prefix: string
  channel: string
  timeoutMs: number
  maxStalenessMs: number
  probeIntervalMs: number
  trackExternalWrites: boolean
  logger: Logger | undefined
}

export function resolveBusOptions(options: RedisBusOptions): ResolvedBusOptions {
  assertKnownOptions(options, KNOWN_OPTIONS, 'redisBus')
  assertRedisInput(options.redis, 'redisBus')
  const prefix = options.prefix ?? DEFAULT_PREFIX
  assertValidPrefix(prefix, 'redisBus')
  const timeoutMs = options.timeout === undefined ? 1_000 : parseDuration(options.timeout, 'redisBus timeout')
  const maxStalenessMs = options.maxStaleness === undefined ? 1_000 : parseDuration(options.maxStaleness, 'redisBus maxStaleness')
  const probeIntervalMs =
    options.probeInterval === undefined ? Math.max(1, Math.floor(maxStalenessMs / 4)) : parseDuration(options.probeInterval, 'redisBus probeInterval')
  if (probeIntervalMs >= maxStalenessMs) {
    throw new InvalidOptionError('redisBus: probeInterval must be shorter than maxStaleness, or L1 would never be trusted')
  }
  const trackExternalWrites = options.trackExternalWrites ?? false
  if (typeof trackExternalWrites !== 'boolean') {
    throw new InvalidOptionError(`redisBus: trackExternalWrites must be true or false, got ${JSON.stringify(trackExternalWrites)}`)
  }
  const logger = options.logger
  if (logger !== undefined && typeof (logger as { warn?: unknown } | null)?.warn !== 'function') {
    throw new InvalidOptionError('redisBus: logger must have a warn(object, message) method (pino, console, …)')
  }
  const input = options.redis
  const cluster = Array.isArray(input) || isCluster(input as unknown as RedisClient)
  if (cluster && trackExternalWrites) {
    throw new InvalidOptionError('redisBus: trackExternalWrites is not supported on Redis Cluster (tracking would need a redirect per node)')
  }
  return { input, cluster, prefix, channel: invalidationChannel(prefix), timeoutMs, maxStalenessMs, probeIntervalMs, trackExternalWrites, logger }
}
