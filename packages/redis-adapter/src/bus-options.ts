/**
 * redisBus's options: their documentation, defaults and validation, all
 * checked before anything connects.
 */
import { InvalidOptionError, assertKnownOptions, parseDuration, type Duration, type Logger } from '@tiercache/core/adapter'
import { assertRedisInput, isCluster, type RedisClient, type RedisInput } from './connections.js'
import { assertValidPrefix, DEFAULT_PREFIX, invalidationChannel } from './keyspace.js'
import { MAX_CARRIED_BYTES_PER_MESSAGE, type CarryConfig } from './carry.js'

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
  /**
   * Off by default. Carry small values in the invalidation, so a reader
   * takes the new value from the message instead of re-reading L2 after a
   * write (docs/coherence.md, "Carrying values on the bus"). The message
   * still evicts everywhere as today (instances without this option only
   * evict); a carried value enters L1 only as a guarded fill. Every
   * instance's L1 takes what arrives on the channel, so this needs either
   * `secret` (each message carries an HMAC-SHA256 of its values; a value
   * whose MAC does not check is only evicted — give every instance the same
   * secret) or `channelProtected: true` (you declare that only your
   * instances can PUBLISH on the channel, e.g. a Redis ACL). An HMAC proves
   * who wrote a value, not when: anyone who can PUBLISH could replay an old
   * message, so keep the channel protected in any case. Standalone and
   * Sentinel only (Cluster's sharded bus refuses it).
   * `maxBytes`: largest encoded entry carried, default 1 KiB, at most 64 KiB.
   */
  carryValues?: { maxBytes?: number; secret?: string | Buffer; channelProtected?: true }
}

const KNOWN_OPTIONS = new Set(['redis', 'prefix', 'timeout', 'maxStaleness', 'probeInterval', 'trackExternalWrites', 'logger', 'carryValues'])

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
  /** carryValues, checked; undefined when off. */
  carry: CarryConfig | undefined
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
  const carry = carryConfigOf(options.carryValues)
  if (cluster && carry !== undefined) {
    throw new InvalidOptionError(
      "redisBus: carryValues is not supported on Redis Cluster: a key's value and a later tag invalidation go over different shard channels, whose order no receiver can see; leave carryValues off there",
    )
  }
  return { input, cluster, prefix, channel: invalidationChannel(prefix), timeoutMs, maxStalenessMs, probeIntervalMs, trackExternalWrites, logger, carry }
}

/** Default and ceiling of carryValues.maxBytes (the ceiling is the per-message budget, carry.ts). */
const DEFAULT_CARRY_BYTES = 1024
/** A shorter secret would make the MAC guessable by brute force offline. */
const MIN_SECRET_BYTES = 16

function carryConfigOf(given: RedisBusOptions['carryValues']): CarryConfig | undefined {
  if (given === undefined) return undefined
  if (given === null || typeof given !== 'object') {
    throw new InvalidOptionError('redisBus: carryValues must be an object such as { secret: process.env.TIERCACHE_BUS_SECRET } or { channelProtected: true }')
  }
  assertKnownOptions(given, new Set(['maxBytes', 'secret', 'channelProtected']), 'redisBus carryValues')
  const maxBytes = given.maxBytes ?? DEFAULT_CARRY_BYTES
  if (!Number.isInteger(maxBytes) || maxBytes < 1 || maxBytes > MAX_CARRIED_BYTES_PER_MESSAGE) {
    throw new InvalidOptionError(
      `redisBus: carryValues.maxBytes must be an integer from 1 to ${MAX_CARRIED_BYTES_PER_MESSAGE}, got ${JSON.stringify(maxBytes)}`,
    )
  }
  if (given.channelProtected !== undefined && given.channelProtected !== true) {
    throw new InvalidOptionError(`redisBus: carryValues.channelProtected can only be true (omit it otherwise), got ${JSON.stringify(given.channelProtected)}`)
  }
  let secret: Buffer | undefined
  if (given.secret !== undefined) {
    if (typeof given.secret !== 'string' && !Buffer.isBuffer(given.secret)) {
      throw new InvalidOptionError('redisBus: carryValues.secret must be a string or a Buffer shared by every instance')
    }
    secret = Buffer.from(given.secret)
    if (secret.length < MIN_SECRET_BYTES) {
      throw new InvalidOptionError(
        `redisBus: carryValues.secret must be at least ${MIN_SECRET_BYTES} bytes (use e.g. 32 random bytes, the same on every instance)`,
      )
    }
  }
  if (secret === undefined && given.channelProtected !== true) {
    throw new InvalidOptionError(
      'redisBus: carryValues needs a secret or channelProtected: true: a carried value is written into the L1 of every instance, so messages must be authenticated (an HMAC with a secret shared by your instances) or you must declare the channel ACL-protected',
    )
  }
  return { maxBytes, secret }
}
