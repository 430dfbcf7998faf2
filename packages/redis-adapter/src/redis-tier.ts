import {
  TierError,
  clock,
  type AtomicPublish,
  type BoundSharedTier,
  type ConnectionChange,
  type FillRead,
  type TierLease,
  type PublishRoute,
  type Serializer,
  type SharedTier,
  type TierEntry,
  type TierScope,
  type TierWriteOptions,
} from '@tiercache/core/adapter'
import { isCluster } from './connections.js'
import type { ConnectionWatch } from './connection-state.js'
import { TierConnection } from './tier-connection.js'
import { resolveTierOptions, type RedisTierOptions, type ResolvedTierOptions } from './tier-options.js'
import { clusterLayout, standaloneLayout, type KeyLayout } from './keyspace.js'
import { randomBytes } from 'node:crypto'
import { Deadlines } from './deadlines.js'
import { defineScripts, type ScriptedRedis } from './scripts.js'
import { encodeEnvelope } from './serializer.js'
import { checkFastRead, decodeStored, entryFrom, TAG_SEPARATOR, wholeAheadMs, type DecodedEntry } from './entry-codec.js'
import { submitFastRead, submitRead } from './read-batcher.js'
import { serverClockOf, type ServerClock } from './server-clock.js'
import { submitWrite, type ReplicaWait, type WriteOperation } from './write-batcher.js'
import { carryOf } from './carry.js'

export type { RedisTierOptions } from './tier-options.js'

/**
 * The shared L2 tier on Redis. An entry is one string key holding
 * `<generation>:<msgpack envelope>` with a PX expiry. A read is one round
 * trip: an MGET of the entry and its cache's generation (bumped by
 * `clear()`), or, when Redis must help (a miss on the fill path takes the
 * lease, a tagged entry's tags are checked), one Lua script; the reads of
 * one tick share one command (see #read). Writes issued in one tick go as
 * one script that also publishes their invalidations when the bus shares
 * this connection (same URL, or the same ioredis client).
 */
export function redisTier(options: RedisTierOptions): SharedTier {
  const { prefix, ...config } = resolveTierOptions(options)
  return {
    kind: 'shared',
    name: 'redis',
    deployment: prefix,
    bind(scope: TierScope): BoundSharedTier {
      return new BoundRedisTier({ scope, prefix, ...config })
    },
  }
}

interface BoundRedisTierConfig extends ResolvedTierOptions {
  scope: TierScope
}

class BoundRedisTier implements BoundSharedTier {
  #cache: string
  /** Undefined once closed. */
  #connection: TierConnection | undefined
  /** The connection's watch, kept after close so that `available()` stays a field read. */
  #watch: ConnectionWatch
  #redis: ScriptedRedis
  #layout: KeyLayout
  #deadlines: Deadlines
  #maxValueBytes: number
  #serializer: Serializer
  #waitForReplicas: ReplicaWait | undefined
  /** Lease tokens: unique per process and tier binding, then a counter. */
  #tokenPrefix = `${randomBytes(6).toString('base64url')}.`
  #serverClock: ServerClock
  #leases = 0
  #corruptEntries = 0
  /** Fills under a lease that Redis refused: lease lost or revoked, scope changed or lost (mechanism 6). */
  #fillsRefused = 0
  /** Fill-path misses that could not take a lease (Redis out of memory): their values were not stored. */
  #fillsWithoutLease = 0

  constructor(config: BoundRedisTierConfig) {
    this.#cache = config.scope.cacheName
    const connection = new TierConnection(config.input, this.#cache)
    this.#connection = connection
    this.#watch = connection.watch
    this.#redis = defineScripts(connection.client)
    this.#serverClock = serverClockOf(connection.client)
    this.#layout = isCluster(connection.client) ? clusterLayout(config.prefix, this.#cache) : standaloneLayout(config.prefix, this.#cache)
    const timeoutMs = config.timeoutMs
    this.#deadlines = new Deadlines(
      timeoutMs,
      (operation, key) => connection.timedOut(operation, key, timeoutMs),
      // A TierError (a value the serializer refused, a reply that did not decode) already says what failed.
      (operation, key, error) => (error instanceof TierError ? error : connection.failed(operation, key, error)),
    )
    this.#maxValueBytes = config.maxValueBytes
    this.#serializer = config.serializer
    this.#waitForReplicas = config.waitForReplicas
  }

  async get(key: string): Promise<TierEntry | undefined> {
    return (await this.#read(key, 0)).entry
  }

  /** Several keys in one script call (one round trip), in order; on Cluster, one call per group, all at once. */
  async getMany(keys: readonly string[]): Promise<Array<TierEntry | undefined>> {
    if (keys.length === 0) return []
    const sentAt = clock()
    const byGroup = new Map<string, number[]>()
    keys.forEach((key, i) => {
      const group = this.#layout.groupOf(key)
      const members = byGroup.get(group)
      if (members === undefined) byGroup.set(group, [i])
      else members.push(i)
    })
    const replies: Array<[Buffer, number] | null> = new Array(keys.length)
    await this.#call('read', keys.length === 1 ? keys[0] : undefined, (redis) =>
      Promise.all(
        [...byGroup].map(async ([group, members]) => {
          const entryKeys = members.map((i) => this.#layout.entry(keys[i]!, group))
          const groupReplies = await redis.tiercacheGetManyBuffer(entryKeys.length + 1, this.#layout.generation(group), ...entryKeys)
          members.forEach((i, n) => (replies[i] = groupReplies[n] ?? null))
        }),
      ),
    )
    return replies.map((reply, i) => {
      if (reply === null) return undefined
      const [stored, remainingMs] = reply
      const decoded = remainingMs > 0 ? this.#decode(stored) : undefined
      if (decoded === undefined) {
        this.#discard(keys[i]!, stored)
        return undefined
      }
      return entryFrom(decoded, sentAt + remainingMs)
    })
  }

  /**
   * The fill path's read: on a miss, a stale entry, or (with `refreshAheadMs`)
   * a fresh entry that Redis's clock says expires within it, takes the key's
   * lease in the same script (one round trip).
   */
  readForFill(key: string, leaseMs: number, refreshAheadMs?: number): Promise<FillRead> {
    return this.#read(key, leaseMs, wholeAheadMs(refreshAheadMs))
  }

  /**
   * A read takes the fast path — one MGET of the entry and its cache's
   * generation, checked here, no script — when the answer cannot need Redis's
   * help: a live, untagged entry that is fresh and not due for its refresh
   * ahead (or any live entry, for a plain read), or a plain read's miss.
   * Everything else (a miss, a stale or a due entry on the fill path, which
   * needs the lease; a tagged entry, whose tag versions
   * the script checks; anything odd) goes through READ_ENTRIES. A script call
   * costs Redis about 6 µs against well under 1 µs for the MGET, about a
   * seventh of a whole L2 hit on loopback. When most fill-path reads end up in
   * the script anyway (a miss-heavy load), they go there directly, so a miss
   * does not pay two round trips.
   */
  async #read(key: string, leaseMs: number, refreshAheadMs = 0): Promise<FillRead> {
    const group = this.#layout.groupOf(key)
    const serverClock = group === '' ? this.#serverClock : serverClockOf(this.#redis, group)
    const aheadMs = this.#fastReadAllowed(leaseMs) ? serverClock.aheadMs(clock()) : undefined
    if (aheadMs !== undefined) {
      const [stored, generation] = await this.#call('read', key, (redis) =>
        submitFastRead(redis, group, this.#layout.entry(key, group), this.#layout.generation(group)),
      )
      const read = checkFastRead(stored, generation, aheadMs, leaseMs === 0, this.#serializer, refreshAheadMs)
      if (leaseMs > 0) this.#noteFillRead(read !== undefined)
      if (read !== undefined) return read
    }
    return this.#scriptedRead(key, group, leaseMs, refreshAheadMs)
  }

  /** Fill-path reads that needed the script, as a decaying share (1/8 per read): above one half, skip the fast path. */
  #fillScriptShare = 0

  #fastReadAllowed(leaseMs: number): boolean {
    return leaseMs === 0 || this.#fillScriptShare < 0.5
  }

  #noteFillRead(servedFast: boolean): void {
    this.#fillScriptShare = this.#fillScriptShare * 0.875 + (servedFast ? 0 : 0.125)
  }

  async #scriptedRead(key: string, group: string, leaseMs: number, refreshAheadMs: number): Promise<FillRead> {
    const token = leaseMs > 0 ? `${this.#tokenPrefix}${++this.#leases}` : ''
    // The remaining TTL is measured by Redis after the request left: counting it
    // from the send time never stretches an entry's life by the reply's transit.
    const sentAt = clock()
    const reply = await this.#call('read', key, (redis) =>
      submitRead(redis, group, {
        entryKey: this.#layout.entry(key, group),
        generationKey: this.#layout.generation(group),
        leaseKey: this.#layout.lease(key, group),
        leaseMs: String(leaseMs),
        refreshAheadMs: String(refreshAheadMs),
        token,
      }),
    )
    if (leaseMs > 0 && !this.#fastReadAllowed(leaseMs)) this.#noteFillRead(reply !== null && reply[0] !== null && reply.length === 2)
    if (reply === null) return { entry: undefined }
    if (reply[0] === null) {
      const [, scope, granted] = reply
      return this.#leaseOutcome(undefined, token, scope, granted)
    }
    const [stored, remainingMs] = reply
    const decoded = remainingMs > 0 ? this.#decode(stored) : undefined
    if (decoded === undefined) {
      // Undecodable (corrupt, another format version) or without expiry (not
      // written by us): a miss, and removed so that the next fill can replace it.
      // In its last millisecond (PTTL 0, GET still answers) it is simply a miss.
      if (remainingMs !== 0) this.#discard(key, stored)
      // A lease the script granted with it is this caller's: dropping it would
      // block every other process for lockTimeout, then let them all load at once.
      if (reply.length === 4) return this.#leaseOutcome(undefined, token, reply[2], reply[3])
      return { entry: undefined }
    }
    const entry = entryFrom(decoded, sentAt + remainingMs)
    if (reply.length === 4) {
      // Stale (within grace), or due for its refresh ahead, on the fill path: the refresh needs the lease like a miss.
      const [, , scope, granted] = reply
      return this.#leaseOutcome(entry, token, scope, granted)
    }
    return { entry }
  }

  /**
   * What the read script said about the key's lease: granted (1), held by
   * another caller (0), or none to be had (2: Redis refused the write, out of
   * memory): the caller then runs its factory and stores nothing, since a
   * fill without a lease has no scope to be checked against.
   */
  #leaseOutcome(entry: TierEntry | undefined, token: string, scope: Buffer | null, granted: number): FillRead {
    if (granted === 1 && scope !== null) return { entry, lease: { token, generation: scope.toString() } }
    if (granted === 0) return { entry, leasedElsewhere: true }
    this.#fillsWithoutLease++
    return { entry }
  }

  async set(key: string, entry: TierEntry, options?: { ifAbsent?: boolean; lease?: TierLease } & TierWriteOptions): Promise<boolean> {
    const payload = encodeEnvelope(entry, this.#serializer, this.#maxValueBytes, { cache: this.#cache, key, tier: 'redis' })
    const now = clock()
    const ttlMs = Math.ceil((entry.staleUntil ?? entry.expiresAt) - now)
    // A fill of an already expired entry has nothing to add: Redis would only drop it. A plain set
    // still goes through, so it replaces (and revokes the lease of) whatever older value is there.
    const fill = options?.ifAbsent === true || options?.lease !== undefined
    if (ttlMs <= 0 && options?.publish === undefined && fill) return false
    const lease = options?.lease
    const group = this.#layout.groupOf(key)
    const written = await this.#write(key, group, {
      kind: lease !== undefined ? 'f' : options?.ifAbsent === true ? 'a' : 's',
      key: this.#layout.entry(key, group),
      generationKey: this.#layout.generation(group),
      leaseKey: this.#layout.lease(key, group),
      payload,
      ttlMs: Math.max(ttlMs, 1),
      // Not clamped at 0: an entry written already past its TTL must read back that way (its grace counts from expiresAt).
      freshMs: Math.floor(entry.expiresAt - now),
      token: lease?.token,
      expectedGeneration: lease?.generation,
      tags: entry.tags === undefined || entry.tags.length === 0 ? undefined : entry.tags.join(TAG_SEPARATOR),
      publish: this.#publishOf(options?.publish, group),
      carry: this.#carryOf(options?.publish, key, payload, entry, now),
    })
    if (!written && lease !== undefined) this.#fillsRefused++
    return written
  }

  /**
   * O(1) per tag whatever the number of entries: one operation deletes every
   * tag's version and carries the invalidation, so the message can never go
   * out before all of its tags are invalid. On Cluster, one such operation
   * per group, each with its own message: an instance that refills from a
   * group not yet invalidated gets that group's message after it.
   */
  async invalidateTags(tags: readonly string[], options?: TierWriteOptions): Promise<void> {
    const payload = Buffer.from(tags.join(TAG_SEPARATOR))
    await this.#writeEveryGroup((group) => ({
      kind: 't',
      key: this.#layout.generation(group),
      generationKey: this.#layout.generation(group),
      leaseKey: this.#layout.generation(group),
      payload,
      publish: this.#publishOf(options?.publish, group),
    }))
  }

  /** One operation per group (standalone: one), all issued in one tick. */
  async #writeEveryGroup(operationOf: (group: string) => WriteOperation): Promise<void> {
    await Promise.all(this.#layout.groups.map((group) => this.#write(undefined, group, operationOf(group))))
  }

  async releaseLease(key: string, lease: TierLease): Promise<void> {
    const group = this.#layout.groupOf(key)
    await this.#write(key, group, {
      kind: 'r',
      key: this.#layout.entry(key, group),
      generationKey: this.#layout.generation(group),
      leaseKey: this.#layout.lease(key, group),
      token: lease.token,
    })
  }

  async delete(key: string, options?: TierWriteOptions): Promise<void> {
    const group = this.#layout.groupOf(key)
    await this.#write(key, group, {
      kind: 'd',
      key: this.#layout.entry(key, group),
      generationKey: this.#layout.generation(group),
      leaseKey: this.#layout.lease(key, group),
      publish: this.#publishOf(options?.publish, group),
    })
  }

  /**
   * O(1) whatever the number of entries: bumps the cache's generation, which
   * every read checks (on Cluster, every group's, each with its message).
   */
  async clear(options?: TierWriteOptions): Promise<void> {
    await this.#writeEveryGroup((group) => ({
      kind: 'c',
      key: this.#layout.generation(group),
      generationKey: this.#layout.generation(group),
      leaseKey: this.#layout.generation(group),
      publish: this.#publishOf(options?.publish, group),
    }))
  }

  /** Atomic write+publish needs the bus to publish on this very connection: then one script does both. */
  canPublishVia(route: PublishRoute): boolean {
    const shared = this.#connection !== undefined && route.connection === this.#connection.client
    // carryValues: only caches whose writes go through the bus's script carry, and take carried values (decoded with this serializer).
    if (shared) carryOf(route)?.accept(this.#cache, this.#serializer)
    return shared
  }

  /**
   * carryValues: the value to carry with this write, if its bus carries
   * values and the encoded entry is within `maxBytes` (larger ones go
   * plain). `freshMs`/`ttlMs` as handed to the script, which stores them
   * from its own TIME, as it stamps the message.
   */
  #carryOf(publish: AtomicPublish | undefined, key: string, payload: Buffer, entry: TierEntry, now: number): WriteOperation['carry'] {
    const side = carryOf(publish?.route)
    if (side === undefined || publish === undefined || payload.byteLength > side.config.maxBytes) return undefined
    const ttlMs = Math.max(Math.ceil((entry.staleUntil ?? entry.expiresAt) - now), 1)
    const freshMs = Math.floor(entry.expiresAt - now)
    const tags = entry.tags === undefined || entry.tags.length === 0 ? '' : entry.tags.join(TAG_SEPARATOR)
    return { side, write: { origin: publish.origin, cache: this.#cache, key, payload, freshMs, ttlMs, tags } }
  }

  /**
   * False while the connection is known to be down (refused, closed,
   * reconnecting after a break): core then fails the call at once, with no
   * command sent. True during the very first connect (see ConnectionWatch).
   */
  available(): boolean {
    return this.#connection !== undefined && this.#watch.available()
  }

  /**
   * Why `available()` is false, for the error core throws when it skips a
   * call: host:port, the cause and what to do; undefined while available.
   * (Not in core's BoundSharedTier contract yet: core may ask for it.)
   */
  unavailableReason(): string | undefined {
    if (this.available()) return undefined
    return this.#connection === undefined ? 'the tier was closed' : `redis at ${this.#watch.endpoint}: ${this.#watch.describeCause()}`
  }

  /** One PING (on Cluster, to one node), bounded by the tier timeout: the circuit breaker's background probe. Fails at once, unsent, while known down. */
  async probe(): Promise<void> {
    this.#connection?.assertAvailable('probe')
    await this.#call('probe', undefined, (redis) => redis.ping())
  }

  /** 'lost' (with its cause: refused, closed, auth, tls, timeout, or the error's message) and 'restored', naming host:port. */
  onConnectionChange(listener: (change: ConnectionChange) => void): () => void {
    return this.#connection?.onConnectionChange(listener) ?? (() => {})
  }

  /**
   * Resolves once the command connection is ready. With `timeoutMs` (or a
   * duration string), rejects with NotReadyError naming host:port and why it
   * is not ready (connection refused, auth failed: WRONGPASS …, TLS failed,
   * connect timed out); without, waits as long as it takes.
   */
  ready(timeoutMs?: number): Promise<void> {
    return this.#connection?.ready(timeoutMs) ?? Promise.reject(new TierError('ready after the tier was closed', { cache: this.#cache, tier: 'redis' }))
  }

  async close(): Promise<void> {
    const connection = this.#connection
    this.#connection = undefined
    this.#deadlines.stopWhenIdle()
    await connection?.close()
  }

  #publishOf(publish: AtomicPublish | undefined, group: string): WriteOperation['publish'] {
    if (publish === undefined) return undefined
    return {
      route: publish.route,
      channel: this.#layout.channel(publish.route.channel, group),
      batch: publish.invalidations.map((invalidation) => ({ origin: publish.origin, invalidation })),
    }
  }

  /** Resolves true if the operation wrote, false if its condition (lease, freshness) held it back. */
  async #write(key: string | undefined, group: string, operation: WriteOperation): Promise<boolean> {
    const operationName = operation.kind === 'c' ? 'clear' : operation.kind === 'd' ? 'delete' : operation.kind === 'r' ? 'lease release' : 'write'
    const result = await this.#call(operationName, key, (redis) => submitWrite(redis, group, operation, this.#waitForReplicas))
    if (typeof result === 'string') {
      throw new TierError(`${operationName} failed in Redis: ${result}`, { cache: this.#cache, key, tier: 'redis' })
    }
    return result === 1
  }

  #discard(key: string, stored: Buffer): void {
    if (this.#connection === undefined) return
    this.#redis.tiercacheDiscard(this.#layout.entry(key, this.#layout.groupOf(key)), stored).catch(() => {})
  }

  /**
   * Anything that does not decode to an envelope of a known version — written
   * by another program, truncated, corrupted — reads as a miss (counted), to
   * be overwritten by the next fill. It never throws into the caller's request.
   */
  #decode(stored: Buffer): DecodedEntry | undefined {
    const decoded = decodeStored(stored, this.#serializer)
    if (decoded === undefined) this.#corruptEntries++
    return decoded
  }

  /**
   * Entries read from Redis that did not decode (treated as misses); fills
   * refused because their lease or scope did not hold any more (a write, an
   * invalidation, or lost bookkeeping); fill-path misses that got no lease
   * because Redis was out of memory. The last two are what failing closed
   * costs under memory pressure (docs/bookkeeping.md).
   */
  counters(): { corruptEntries: number; fillsRefused: number; fillsWithoutLease: number } {
    return { corruptEntries: this.#corruptEntries, fillsRefused: this.#fillsRefused, fillsWithoutLease: this.#fillsWithoutLease }
  }

  /** Runs one Redis call with a bounded wait, and types its failure. */
  #call<T>(operation: string, key: string | undefined, run: (redis: ScriptedRedis) => Promise<T>): Promise<T> {
    if (this.#connection === undefined) {
      return Promise.reject(new TierError(`${operation} after the tier was closed`, { cache: this.#cache, key, tier: 'redis' }))
    }
    // Deadlines.watch maps a failure to a typed error (see the constructor): no async frame of its own here.
    return this.#deadlines.watch(run(this.#redis), operation, key)
  }
}
