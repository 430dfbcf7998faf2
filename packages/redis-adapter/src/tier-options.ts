/**
 * redisTier's options: their documentation, defaults and validation, all
 * checked before anything connects.
 */
import { InvalidOptionError, assertKnownOptions, parseDuration, type Duration, type Serializer } from '@tiercache/core/adapter'
import { assertRedisInput, type RedisInput } from './connections.js'
import { assertValidPrefix, DEFAULT_PREFIX } from './keyspace.js'
import { msgpackSerializer } from './serializer.js'
import type { ReplicaWait } from './write-batcher.js'

export interface RedisTierOptions {
  /**
   * Where Redis is:
   * - a `redis://` / `rediss://` URL;
   * - `{ url, options }`: a URL and ioredis options next to it (username,
   *   password, `tls` with a private CA, `db`, `connectTimeout`, …; see
   *   RedisConnectionOptions for what is accepted and what is refused);
   * - an ioredis client you own (`Redis`, or `Cluster`; ioredis 5.3+ or 6,
   *   matched by shape), never closed by tiercache;
   * - a list of Redis Cluster seed nodes.
   *
   * Connections tiercache opens are shared in the process by every tier and
   * bus given the same URL and equal options (functions such as
   * `retryStrategy` compare by identity: pass the same options object to the
   * tiers and the bus), so a write and its invalidation go out in one
   * script. Different options get their own connection. On Cluster, keys
   * are hash-tagged into 64 groups (see keyspace.ts): every script stays in
   * one slot. A shape not listed here throws InvalidOptionError.
   */
  redis: RedisInput
  /**
   * Deployment prefix of every key: two deployments with different prefixes
   * on one Redis never see each other's entries. Must match the bus's prefix.
   * Default `'tiercache'`.
   */
  prefix?: string
  /** Longest a Redis call may take before it fails (and a read falls back to the factory). Default `'1s'`. */
  timeout?: Duration
  /** Largest encoded value accepted; larger ones are rejected before any write. Default 1 MiB. */
  maxValueBytes?: number
  /** Encoding of values. Default: msgpack (msgpackr, extended types). */
  serializer?: Serializer
  /**
   * A write resolves only once this many replicas have it (`WAIT`, sent right
   * behind the write: no extra round trip, plus the replication delay).
   * Replication is asynchronous: without this, a write the primary
   * acknowledged can be lost in a failover, and every instance then reads the
   * older value it had replaced. With it, such a write rejects instead
   * (`TierError`, the local copy dropped), so a resolved write survives a
   * Sentinel failover. Default: not waited for.
   */
  waitForReplicas?: { replicas: number; timeout?: Duration }
}

const KNOWN_OPTIONS = new Set(['redis', 'prefix', 'timeout', 'maxValueBytes', 'serializer', 'waitForReplicas'])
const DEFAULT_TIMEOUT_MS = 1_000
const DEFAULT_MAX_VALUE_BYTES = 1024 * 1024
/** The options checked and defaulted: what every bound tier is built from. */
export interface ResolvedTierOptions {
  input: RedisInput
  prefix: string
  timeoutMs: number
  maxValueBytes: number
  serializer: Serializer
  waitForReplicas: ReplicaWait | undefined
}

export function resolveTierOptions(options: RedisTierOptions): ResolvedTierOptions {
  assertKnownOptions(options, KNOWN_OPTIONS, 'redisTier')
  assertRedisInput(options.redis, 'redisTier')
  const prefix = options.prefix ?? DEFAULT_PREFIX
  assertValidPrefix(prefix, 'redisTier')
  const timeoutMs = options.timeout === undefined ? DEFAULT_TIMEOUT_MS : parseDuration(options.timeout, 'redisTier timeout')
  const maxValueBytes = options.maxValueBytes ?? DEFAULT_MAX_VALUE_BYTES
  if (!Number.isSafeInteger(maxValueBytes) || maxValueBytes < 1) {
    throw new InvalidOptionError(`redisTier: maxValueBytes must be a positive integer, got ${String(options.maxValueBytes)}`)
  }
  const serializer = options.serializer ?? msgpackSerializer()
  const waitForReplicas = replicaWaitOf(options.waitForReplicas, timeoutMs)
  return { input: options.redis, prefix, timeoutMs, maxValueBytes, serializer, waitForReplicas }
}

/** `waitForReplicas` checked: a count of at least 1, a timeout (default half the tier's) shorter than the tier's. */
function replicaWaitOf(option: RedisTierOptions['waitForReplicas'], tierTimeoutMs: number): ReplicaWait | undefined {
  if (option === undefined) return undefined
  const replicas: unknown = option.replicas
  if (typeof replicas !== 'number' || !Number.isSafeInteger(replicas) || replicas < 1) {
    throw new InvalidOptionError(`redisTier: waitForReplicas.replicas must be a positive integer, got ${String(replicas)}`)
  }
  const timeoutMs = option.timeout === undefined ? Math.floor(tierTimeoutMs / 2) : parseDuration(option.timeout, 'redisTier waitForReplicas.timeout')
  if (timeoutMs < 1 || timeoutMs >= tierTimeoutMs) {
    throw new InvalidOptionError(`redisTier: waitForReplicas.timeout must be at least 1 ms and shorter than the tier's timeout (${tierTimeoutMs} ms)`)
  }
  return { replicas, timeoutMs }
}
