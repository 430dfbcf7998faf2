import type { Cluster, Redis } from 'ioredis'
import {
  InvalidOptionError,
  assertKnownOptions,
  clock,
  errorMessageOf,
  parseDuration,
  type Bus,
  type BusMember,
  type BusMembership,
  type BusStatus,
  type Duration,
} from '@tiercache/core'
import {
  acquireCommandConnection,
  assertRedisInput,
  closeConnection,
  isCluster,
  openDedicatedConnection,
  type ClusterSeed,
  type RedisClient,
  type ConnectionLease,
  type RedisInput,
} from './connections.js'
import { assertValidPrefix, DEFAULT_PREFIX, invalidationChannel, keyOfLayout } from './keyspace.js'
import { BusCore, MAX_OUTSTANDING_PROBES } from './bus-common.js'
import { ClusterShardedBus } from './cluster-bus.js'

export interface RedisBusOptions {
  /**
   * A `redis://` / `rediss://` URL or an ioredis client you own (the bus
   * duplicates it for its subscriber); on Redis Cluster, an ioredis `Cluster`
   * or a list of seed nodes: invalidations then go over sharded pub/sub
   * (SPUBLISH/SSUBSCRIBE, Redis ≥ 7), one subscriber connection per primary.
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
   */
  trackExternalWrites?: boolean
}

export interface RedisBus extends Bus {
  /** Resolves once the subscription is active and proven by a probe: invalidations published from then on reach this process. */
  ready(): Promise<void>
}

const KNOWN_OPTIONS = new Set(['redis', 'prefix', 'timeout', 'maxStaleness', 'probeInterval', 'trackExternalWrites'])
/** Where Redis sends the key-space invalidations of CLIENT TRACKING (RESP2, redirected). */
const TRACKING_CHANNEL = '__redis__:invalidate'
/** The origin of invalidations from CLIENT TRACKING: no cache instance has it, so every member applies them. */
const EXTERNAL_ORIGIN = 'redis:tracking'

/**
 * Invalidations over Redis pub/sub. One bus per process serves every cache:
 * one subscriber connection, and the command connection shared with the
 * Redis tiers of the same URL — which lets a tier publish each write's
 * invalidation in the same Lua script as the write.
 */
export function redisBus(options: RedisBusOptions): RedisBus {
  assertKnownOptions(options, KNOWN_OPTIONS, 'redisBus')
  assertRedisInput(options.redis, 'redisBus')
  const prefix = options.prefix ?? DEFAULT_PREFIX
  assertValidPrefix(prefix, 'redisBus')
  const timeoutMs = options.timeout === undefined ? 1_000 : parseDuration(options.timeout, 'redisBus timeout')
  const maxStalenessMs =
    options.maxStaleness === undefined ? 1_000 : parseDuration(options.maxStaleness, 'redisBus maxStaleness')
  const probeIntervalMs =
    options.probeInterval === undefined
      ? Math.max(1, Math.floor(maxStalenessMs / 4))
      : parseDuration(options.probeInterval, 'redisBus probeInterval')
  if (probeIntervalMs >= maxStalenessMs) {
    throw new InvalidOptionError('redisBus: probeInterval must be shorter than maxStaleness, or L1 would never be trusted')
  }
  const trackExternalWrites = options.trackExternalWrites ?? false
  if (typeof trackExternalWrites !== 'boolean') {
    throw new InvalidOptionError(`redisBus: trackExternalWrites must be true or false, got ${JSON.stringify(trackExternalWrites)}`)
  }
  const input = options.redis
  if (Array.isArray(input) || isCluster(input as RedisClient)) {
    if (trackExternalWrites) {
      throw new InvalidOptionError('redisBus: trackExternalWrites is not supported on Redis Cluster (tracking would need a redirect per node)')
    }
    return new ClusterShardedBus({ input: input as Cluster | readonly ClusterSeed[], prefix, channel: invalidationChannel(prefix), timeoutMs, maxStalenessMs, probeIntervalMs })
  }
  return new RedisPubSubBus({
    input: input as string | Redis,
    prefix,
    channel: invalidationChannel(prefix),
    timeoutMs,
    maxStalenessMs,
    probeIntervalMs,
    trackExternalWrites,
  })
}

interface BusConfig {
  input: string | Redis
  prefix: string
  channel: string
  timeoutMs: number
  maxStalenessMs: number
  probeIntervalMs: number
  trackExternalWrites: boolean
}

class RedisPubSubBus implements RedisBus {
  #config: BusConfig
  #core: BusCore
  #publisher: ConnectionLease
  #subscriber: Redis
  /** Bumped by every break: answers to probes sent before it prove nothing. */
  #epoch = 0
  /** Send times of probes awaiting their answer, oldest first (answers come in order). */
  #outstanding: number[] = []
  #probeTimer: NodeJS.Timeout
  /** trackExternalWrites: CLIENT TRACKING is on for the current subscriber connection (it ends with the connection). */
  #tracking = false
  #trackingError: string | undefined

  constructor(config: BusConfig) {
    this.#config = config
    this.#publisher = acquireCommandConnection(config.input, 'tiercache')
    const publisher = this.#publisher.client
    this.#core = new BusCore(config, publisher, (message) => publisher.publish(config.channel, message))
    // No automatic resubscribe: #onReady subscribes itself, before its probe
    // (and after CLIENT TRACKING, which a subscribed RESP2 connection refuses);
    // ioredis's own resubscribe also leaves its promise unhandled, which
    // surfaces as an unhandled rejection when the connection drops again
    // before the reply (seen in a Sentinel failover). Tracking redirected to a
    // subscriber arrives as pub/sub messages under RESP2; ioredis's default
    // RESP3 would deliver them as push frames it drops.
    this.#subscriber = openDedicatedConnection(
      config.input,
      'tiercache:bus',
      config.trackExternalWrites ? { protocol: 2, autoResubscribe: false } : { autoResubscribe: false },
    )

    const subscriber = this.#subscriber
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === config.channel) this.#core.receive(message)
    })
    if (config.trackExternalWrites) {
      subscriber.on('messageBuffer', (channel: Buffer, keys: unknown) => {
        if (channel.toString() === TRACKING_CHANNEL) this.#onKeysChanged(keys)
      })
    }
    subscriber.on('close', () => this.#onBreak())
    subscriber.on('ready', () => this.#onReady())
    this.#probeTimer = setInterval(() => this.#tick(), config.probeIntervalMs)
    this.#probeTimer.unref()
  }

  ready(): Promise<void> {
    return this.#core.ready()
  }

  join(member: BusMember): BusMembership {
    return this.#core.join(member)
  }

  // -------------------------------------------------------------- receiving

  /**
   * CLIENT TRACKING: these keys under our prefix were written (or expired, or
   * evicted) by some client; null means the database was flushed. Entry keys
   * (`<prefix>:<cache>:<key>`) evict that key, a generation key (`#gen`)
   * clears its cache; leases and tag keys carry nothing for L1.
   */
  #onKeysChanged(keys: unknown): void {
    const core = this.#core
    core.received++
    if (keys === null) {
      core.members.gap() // FLUSHALL / FLUSHDB: every L1 on this bus is emptied
      return
    }
    if (!Array.isArray(keys)) {
      core.dropped++
      return
    }
    for (const raw of keys) {
      const found = keyOfLayout(this.#config.prefix, Buffer.isBuffer(raw) ? raw.toString() : String(raw))
      if (found?.kind === 'entry') core.members.deliver(EXTERNAL_ORIGIN, { kind: 'key', cache: found.cache, key: found.key })
      else if (found?.kind === 'generation') core.members.deliver(EXTERNAL_ORIGIN, { kind: 'clear', cache: found.cache })
    }
  }

  // --------------------------------------------------------------- liveness

  /** The subscription broke: messages published from now until it is restored are lost to us. */
  #onBreak(): void {
    this.#tracking = false
    if (this.#core.closed) return // closing is not a gap
    this.#core.openGap()
    this.#epoch++
    this.#outstanding = []
  }

  /**
   * Connected (first time or again). Subscribing explicitly here, though
   * ioredis resubscribes by itself, puts our SUBSCRIBE before the probe in
   * the command stream, so the probe's answer proves the subscription is
   * active — 'ready' fires before ioredis's own SUBSCRIBE is acknowledged.
   */
  #onReady(): void {
    if (this.#core.closed) return
    if (this.#config.trackExternalWrites) {
      void this.#startTracking()
      return
    }
    this.#subscriber.subscribe(this.#config.channel).catch(() => {})
    this.#probe()
  }

  /**
   * Tracking is switched on before the subscription and the first probe, so
   * the probe's answer proves both: only then is L1 trusted. If Redis refuses
   * (before 6, or an ACL without CLIENT), L1 stays untrusted — the caches run
   * on L2 — and every probe tick tries again.
   */
  async #startTracking(): Promise<void> {
    const epoch = this.#epoch
    const subscriber = this.#subscriber
    try {
      const id = await subscriber.client('ID')
      await subscriber.client('TRACKING', 'ON', 'REDIRECT', String(id), 'BCAST', 'PREFIX', `${this.#config.prefix}:`)
    } catch (error) {
      this.#trackingError = errorMessageOf(error)
      return
    }
    if (this.#core.closed || epoch !== this.#epoch) return // the connection broke meanwhile: its next 'ready' starts over
    this.#tracking = true
    this.#trackingError = undefined
    subscriber.subscribe(this.#config.channel, TRACKING_CHANNEL).catch(() => {})
    this.#probe()
  }

  #tick(): void {
    const oldest = this.#outstanding[0]
    if (oldest !== undefined && clock() - oldest > 3 * this.#config.maxStalenessMs) {
      // Half-dead connection (a silent partition, no RST): nothing will come
      // back on it. Reconnect; the break opens a gap, the reconnect closes it.
      this.#subscriber.disconnect(true)
      return
    }
    if (this.#config.trackExternalWrites && !this.#tracking) {
      if (this.#subscriber.status === 'ready' && this.#trackingError !== undefined) void this.#startTracking()
      return
    }
    this.#probe()
  }

  /** A PING on the subscriber connection is answered after every message published before it. */
  #probe(): void {
    if (this.#core.closed || this.#subscriber.status !== 'ready') return
    if (this.#outstanding.length >= MAX_OUTSTANDING_PROBES) return
    const epoch = this.#epoch
    const sentAt = clock()
    this.#outstanding.push(sentAt)
    this.#subscriber.ping().then(
      () => {
        if (epoch !== this.#epoch) return
        this.#outstanding.shift()
        this.#core.lastRoundTripMs = clock() - sentAt
        this.#core.proven(sentAt)
      },
      () => {
        // Failed probes prove nothing; a break (close event) handles the connection.
      },
    )
  }

  status(): BusStatus {
    return {
      ...this.#core.status(this.#subscriber.status === 'ready' && this.#publisher.client.status === 'ready'),
      ...(this.#config.trackExternalWrites ? { externalWrites: this.#tracking ? 'tracked' : `not tracked: ${this.#trackingError ?? 'connecting'}` } : {}),
    }
  }

  async close(): Promise<void> {
    if (!this.#core.close()) return
    clearInterval(this.#probeTimer)
    await Promise.all([closeConnection(this.#subscriber), this.#publisher.release()])
  }
}
