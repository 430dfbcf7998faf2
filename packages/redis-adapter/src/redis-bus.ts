import type { Cluster, Redis } from 'ioredis'
import { clock, errorMessageOf, type BusMember, type BusMembership, type ConnectionChange } from '@tiercache/core/adapter'
import {
  acquireCommandConnection,
  closeConnection,
  openSubscriberConnection,
  type ClusterSeed,
  type ConnectionLease,
  type RedisUrlWithOptions,
} from './connections.js'
import { keyOfLayout } from './keyspace.js'
import { BusCore, MAX_OUTSTANDING_PROBES, type RedisBus, type RedisBusStatus } from './bus-common.js'
import { resolveBusOptions, type RedisBusOptions, type ResolvedBusOptions } from './bus-options.js'
import { ConnectionGroup, watchConnection, type WatchLease } from './connection-state.js'
import { DatasetIdentity, datasetIdentityKey } from './dataset-identity.js'
import { ClusterShardedBus } from './cluster-bus.js'
import { serverClockOf } from './server-clock.js'

export type { RedisBus, RedisBusStatus } from './bus-common.js'
export type { RedisBusOptions } from './bus-options.js'

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
  const config = resolveBusOptions(options)
  if (config.cluster) return new ClusterShardedBus({ ...config, input: config.input as unknown as Cluster | readonly ClusterSeed[] })
  return new RedisPubSubBus({ ...config, input: config.input as string | RedisUrlWithOptions | Redis })
}

interface BusConfig extends ResolvedBusOptions {
  input: string | RedisUrlWithOptions | Redis
}

class RedisPubSubBus implements RedisBus {
  #config: BusConfig
  #core: BusCore
  #publisher: ConnectionLease
  #subscriber: Redis
  /** The publisher's and the subscriber's watches: released before their connections close (a close is not a loss). */
  #watches: WatchLease[]
  /** Both connections as one, for ready(), onConnectionChange and the log. */
  #connections: ConnectionGroup
  /** Bumped by every break of the subscriber connection: tracking switched on before it is gone. */
  #epoch = 0
  /** Bumped by every gap (a break, a replaced dataset): answers to probes sent before it prove nothing. */
  #round = 0
  /** Send times of probes awaiting their answer, oldest first (answers come in order). */
  #outstanding: number[] = []
  /** A reconnect was forced on the current connection: not again until a new one is ready (each call stacks listeners on the socket). */
  #reconnectForced = false
  /** trackExternalWrites: the dataset identity every probe checks; undefined otherwise. */
  #identity: DatasetIdentity | undefined
  #probeTimer: NodeJS.Timeout
  /** trackExternalWrites: CLIENT TRACKING is on for the current subscriber connection (it ends with the connection). */
  #tracking = false
  #trackingError: string | undefined

  constructor(config: BusConfig) {
    this.#config = config
    this.#publisher = acquireCommandConnection(config.input)
    const publisher = this.#publisher.client
    if (config.trackExternalWrites) this.#identity = new DatasetIdentity(publisher as Redis, datasetIdentityKey(config.prefix))
    // No automatic resubscribe: #onReady subscribes itself, before its probe
    // (and after CLIENT TRACKING, which a subscribed RESP2 connection refuses);
    // ioredis's own resubscribe also leaves its promise unhandled, which
    // surfaces as an unhandled rejection when the connection drops again
    // before the reply (seen in a Sentinel failover). Tracking redirected to a
    // subscriber arrives as pub/sub messages under RESP2; ioredis's default
    // RESP3 would deliver them as push frames it drops.
    this.#subscriber = openSubscriberConnection(config.input, config.trackExternalWrites ? { protocol: 2, autoResubscribe: false } : { autoResubscribe: false })
    this.#watches = [watchConnection(publisher), watchConnection(this.#subscriber)]
    const published = this.#watches[0]!.watch
    this.#connections = new ConnectionGroup(this.#watches.map(({ watch }) => watch))
    // A publish while the command connection is known down fails at once instead of waiting out the timeout in ioredis's queue.
    const send = (message: string) =>
      published.available()
        ? publisher.publish(config.channel, message)
        : Promise.reject(new Error(`the connection to ${published.endpoint} is down (${published.describeCause()})`))
    this.#core = new BusCore(config, this.#connections, publisher, send, () =>
      config.trackExternalWrites && !this.#tracking && this.#trackingError !== undefined ? `CLIENT TRACKING refused: ${this.#trackingError}` : undefined,
    )

    // carryValues: a carried entry's server-time freshness is converted with the command connection's clock estimate (the tiers' too).
    if (config.carry !== undefined) {
      const serverClock = serverClockOf(publisher)
      this.#core.serverAheadMs = () => serverClock.aheadMs(clock())
    }
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

  ready(options?: { timeout?: number | string }): Promise<void> {
    return this.#core.ready(options)
  }

  onConnectionChange(listener: (change: ConnectionChange) => void): () => void {
    return this.#core.onConnectionChange(listener)
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
    this.#epoch++
    this.#openGap()
  }

  /** Messages or writes may have been missed: L1 is untrusted, and only probes sent from now on can close the gap. */
  #openGap(): void {
    this.#core.openGap()
    this.#round++
    this.#outstanding = []
  }

  /**
   * Connected (first time or again). Subscribing explicitly here, though
   * ioredis resubscribes by itself, puts our SUBSCRIBE before the probe in
   * the command stream, so the probe's answer proves the subscription is
   * active — 'ready' fires before ioredis's own SUBSCRIBE is acknowledged.
   */
  #onReady(): void {
    this.#reconnectForced = false
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
    this.#trackingError = undefined // no tick starts tracking again while the read below is pending
    // Make sure the dataset identity exists before subscribing: created later,
    // by this instance's first probe, its tracking message could arrive after
    // ready() resolved and be counted as an outside write. Tracking messages
    // to a RESP2 connection that has not subscribed yet are dropped by Redis.
    // A failure here is left to the probes (they retry, and L1 stays untrusted).
    await this.#identity?.read().catch(() => {})
    if (this.#core.closed || epoch !== this.#epoch) return // the connection broke meanwhile: its next 'ready' starts over
    this.#tracking = true
    subscriber.subscribe(this.#config.channel, TRACKING_CHANNEL).catch(() => {})
    this.#probe()
  }

  #tick(): void {
    const oldest = this.#outstanding[0]
    if (oldest !== undefined && clock() - oldest > 3 * this.#config.maxStalenessMs) {
      // Half-dead connection (a silent partition, no RST): nothing will come
      // back on it. Reconnect; the break opens a gap, the reconnect closes it.
      // Once per connection: one already reconnecting (a frozen Redis accepts
      // the TCP connection and never answers) is left to ioredis, or every
      // tick would stack another close listener on the stuck socket.
      if (this.#subscriber.status === 'ready' && !this.#reconnectForced) {
        this.#reconnectForced = true
        this.#subscriber.disconnect(true)
      }
      return
    }
    if (this.#config.trackExternalWrites && !this.#tracking) {
      if (this.#subscriber.status === 'ready' && this.#trackingError !== undefined) void this.#startTracking()
      return
    }
    this.#probe()
  }

  /**
   * A PING on the subscriber connection is answered after every message
   * published before it. With trackExternalWrites, the probe also reads the
   * dataset identity, and counts only if that matched too.
   *
   * Why the identity read keeps the bound although it goes over another
   * connection (a RESP2 subscriber may send nothing but PING and
   * (UN)SUBSCRIBE): `sentAt` is taken before the PING and the read are
   * issued, so the read reaches Redis after `sentAt`, and Redis runs commands
   * one at a time: a SWAPDB or FLUSHDB that completed before `sentAt` has run
   * before the read, which then sees the replaced dataset. So a probe that
   * counts (its `sentAt` becomes verifiedAt) proves both halves as of
   * `sentAt`: every invalidation published before it has arrived, and the
   * dataset was not replaced before it. A swap after `sentAt` is caught by
   * the next probe, and until then trust runs out at `sentAt + maxStaleness`,
   * before `swap + maxStaleness`: no probe sent after the swap counts until a
   * gap has emptied L1. Each probe's answer depends on both replies, whichever
   * connection answers last; a late reply only delays trust, never extends it.
   * The cost: L1 is trusted only while the command connection answers too.
   */
  #probe(): void {
    if (this.#core.closed || this.#subscriber.status !== 'ready') return
    if (this.#outstanding.length >= MAX_OUTSTANDING_PROBES) return
    const identity = this.#identity
    // A command connection that stopped answering: its reads would pile up, and no probe could count anyway.
    if (identity !== undefined && identity.pending >= MAX_OUTSTANDING_PROBES) return
    const round = this.#round
    const sentAt = clock()
    this.#outstanding.push(sentAt)
    const answered = this.#subscriber.ping().then(() => {
      if (round !== this.#round) return
      this.#outstanding.shift()
      this.#core.lastRoundTripMs = clock() - sentAt
    })
    // Issued after the PING, never before sentAt (see above).
    const matched = identity === undefined ? true : identity.read().then((token) => this.#datasetMatches(token, round))
    Promise.all([answered, matched]).then(
      ([, same]) => {
        if (same && round === this.#round) this.#core.proven(sentAt)
      },
      () => {
        // Failed probes prove nothing; a break (close event) handles the
        // subscriber connection, and a failed identity read is recorded by
        // DatasetIdentity for status().
      },
    )
  }

  /**
   * trackExternalWrites: whether the dataset still carries the identity this
   * bus accepted. A changed or missing token means the dataset was swapped
   * (SWAPDB), flushed or replaced, or only the token key was lost (evicted
   * under allkeys-*, deleted): either way a gap, emptying every L1 on the bus
   * before it is trusted again. Failing closed costs a clear on a false alarm.
   * The read is judged only if no gap opened since its probe was sent: an
   * older read could be older than the token accepted meanwhile.
   */
  #datasetMatches(token: string | null, round: number): boolean {
    const identity = this.#identity!
    if (round !== this.#round || this.#core.closed) return false
    if (identity.expected === undefined) {
      // Start-up, or the token was found missing: either way a gap is open,
      // and the probe that closes it empties every L1 first.
      if (token !== null) identity.expected = token
      return token !== null
    }
    if (token === identity.expected) return true
    // Whichever token the database holds now is the one to check from here
    // on: every instance adopts the same one (DatasetIdentity.read creates
    // it only if absent), so they converge rather than replace one another's.
    identity.expected = token ?? undefined
    this.#openGap()
    return false
  }

  status(): RedisBusStatus {
    return {
      ...this.#core.status(this.#connections.up),
      ...(this.#config.trackExternalWrites ? { externalWrites: this.#externalWrites() } : {}),
    }
  }

  #externalWrites(): string {
    if (!this.#tracking) return `not tracked: ${this.#trackingError ?? 'connecting'}`
    const failed = this.#identity?.error
    return failed === undefined ? 'tracked' : `not tracked: dataset identity ${this.#identity!.key}: ${failed}`
  }

  async close(): Promise<void> {
    if (!this.#core.close()) return
    clearInterval(this.#probeTimer)
    this.#connections.close()
    for (const watch of this.#watches) watch.release()
    await Promise.all([closeConnection(this.#subscriber), this.#publisher.release()])
  }
}
