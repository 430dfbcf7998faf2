/**
 * The contracts between core and adapters. Core never imports an adapter;
 * adapters implement these interfaces and import nothing else from core
 * except errors and helpers that are part of the public API.
 */

/** One cached value as tiers hold it. */
export interface TierEntry<V = unknown> {
  /** The cached value; `null` for a cached miss (negative entry). */
  readonly value: V
  /** Epoch ms at which the value was produced (informational). */
  readonly createdAt: number
  /**
   * Epoch ms, on this process's clock, after which the entry is no longer
   * fresh. A shared tier stores the remaining time (not this timestamp) and
   * converts it back on read, so clock skew between hosts never stretches or
   * shortens a TTL.
   */
  readonly expiresAt: number
  /**
   * Epoch ms (core's clock) until which the entry may still be served stale
   * (grace: stale-while-revalidate and fail-safe). Absent: `expiresAt`.
   * Shared tiers keep the entry physically until then.
   */
  readonly staleUntil?: number
  /**
   * The tags (and namespaces) the value was written under: `invalidateTags`
   * on any of them makes the entry a miss everywhere.
   */
  readonly tags?: readonly string[]
}

/** A fill lease (coherence mechanism 4), granted by a shared tier on a miss. */
export interface TierLease {
  readonly token: string
  /** The cache generation the miss was read under: a clear since then voids the fill. */
  readonly generation: string
}

/** What a read on the fill path learned. */
export interface FillRead {
  /** The entry, if the tier holds a usable one (possibly past `expiresAt`, within `staleUntil`). */
  readonly entry: TierEntry | undefined
  /** Granted to this caller: its factory's value may be written under it. */
  readonly lease?: TierLease
  /** Another caller holds the key's lease: its value should appear shortly. */
  readonly leasedElsewhere?: boolean
}

/** What a tier is told about the cache it serves when the cache is created. */
export interface TierScope {
  /** The cache's name: a shared tier prefixes its keys with it. */
  readonly cacheName: string
}

export interface TierWriteOptions {
  /**
   * Publish these invalidations in the same atomic step as the write (only
   * passed to a tier whose `canPublishVia` accepted the bus's route). The
   * write resolves after both happened, or rejects with neither confirmed.
   */
  readonly publish?: AtomicPublish
}

export interface TierSetOptions extends TierWriteOptions {
  /**
   * Write only if the key holds no fresh entry (a stale one, within grace,
   * may be replaced). Used when a `getOrSet` fills the tier without a lease,
   * so a slow factory never overwrites a value that a concurrent `set` wrote
   * meanwhile.
   */
  readonly ifAbsent?: boolean
  /**
   * Write only while this lease holds: a `set`, `delete` or `clear` since the
   * lease was granted revokes it, and the (now stale) value is dropped.
   */
  readonly lease?: TierLease
}

/** Invalidations to publish together with a shared-tier write. */
export interface AtomicPublish {
  readonly route: PublishRoute
  readonly origin: string
  readonly invalidations: readonly Invalidation[]
}

/**
 * How a bus publishes, offered to a shared tier so that the tier can publish
 * an invalidation in the same step as its write (coherence mechanism 1:
 * no write lands without its message). Opaque to core.
 */
export interface PublishRoute {
  /** The connection the bus publishes on: a tier publishes atomically only over that same connection. */
  readonly connection: unknown
  readonly channel: string
  /** Encodes a batch, each invalidation with its origin, as one message. */
  encode(batch: readonly OriginInvalidation[]): string
  /** Tells the bus a message went out through a tier (for its counters). */
  notePublished(): void
}

/** An invalidation with the instance that issued it. */
export interface OriginInvalidation {
  readonly origin: string
  readonly invalidation: Invalidation
}

/**
 * A tier as the user constructs it (`memoryTier()`, `memoryStore()`,
 * `redisTier()`). `createCache` binds it to one cache.
 */
export interface Tier {
  /**
   * `'local'`: lives in this process (L1), read synchronously, kept coherent
   * by the bus. `'shared'`: seen by every instance (L2).
   */
  readonly kind: 'local' | 'shared'
  /** Short label used in errors and stats: `'memory'`, `'redis'`, … */
  readonly name: string
  /**
   * The deployment (key prefix) a shared tier writes under, if it has one.
   * `createCache` rejects a tier and a bus of different deployments: their
   * instances would never hear each other's invalidations.
   */
  readonly deployment?: string
  bind(scope: TierScope): BoundTier
}

/** A tier bound to one cache: keys are that cache's keys, unprefixed. */
export interface BoundTier {
  get(key: string): TierEntry | undefined | Promise<TierEntry | undefined>
  // biome-ignore lint/suspicious/noConfusingVoidType: an adapter may return nothing (a plain write) or whether it wrote
  set(key: string, entry: TierEntry, options?: TierSetOptions): void | boolean | Promise<void | boolean>
  delete(key: string): void | Promise<void>
  /** Removes every entry of this cache (and no other cache's). */
  clear(): void | Promise<void>
  /** Releases what the binding holds (connections, memory). Idempotent. */
  close(): void | Promise<void>
}

export interface LocalTier extends Tier {
  readonly kind: 'local'
  /** Most entries it holds (its LRU bound), if it has one: observe mode simulates an L1 of this size. */
  readonly capacity?: number
  bind(scope: TierScope): BoundLocalTier
}

/** L1: synchronous, because the L1 hit path must not wait for a microtask it does not need. */
export interface BoundLocalTier extends BoundTier {
  get(key: string): TierEntry | undefined
  set(key: string, entry: TierEntry, options?: TierSetOptions): void
  delete(key: string): void
  clear(): void
  close(): void
  /** Entries held now (for stats and tests). */
  readonly size: number
  /** Drops every entry written under any of `tags`. */
  deleteTagged(tags: ReadonlySet<string>): void
  /**
   * Counters the cache folds into `stats()` (`l1Evictions`, `l1Bytes`); read
   * at stats time only. `evictions`: entries dropped for room (entry count or
   * bytes), not expiries, deletes or clears. `bytes`: held now, when the tier
   * measures them.
   */
  counters?(): { evictions: number; bytes?: number }
}

export interface SharedTier extends Tier {
  readonly kind: 'shared'
  bind(scope: TierScope): BoundSharedTier
}

export interface BoundSharedTier extends BoundTier {
  get(key: string): Promise<TierEntry | undefined>
  /** Counters the cache folds into `stats()`; read at stats time only. */
  counters?(): {
    corruptEntries: number
    /** Fills refused at store time because a lease or a bookkeeping key no longer held (failing closed). */
    fillsRefused?: number
    /** Fills that could not take a lease (e.g. Redis refused the write under noeviction): produced, not stored. */
    fillsWithoutLease?: number
  }
  /**
   * Resolves `false` when a conditional write (`lease`, `ifAbsent`) was held
   * back by its condition, so the caller keeps the value out of L1 too;
   * `true` or nothing when it wrote.
   */
  // biome-ignore lint/suspicious/noConfusingVoidType: `true` or nothing when it wrote, `false` when a condition refused it
  set(key: string, entry: TierEntry, options?: TierSetOptions): Promise<boolean | void>
  delete(key: string, options?: TierWriteOptions): Promise<void>
  clear(options?: TierWriteOptions): Promise<void>
  close(): Promise<void>
  /**
   * True if this tier can publish over `route` atomically with its writes
   * (e.g. the Redis tier, when the bus publishes on the same connection).
   * Core then hands every write its invalidation instead of publishing it.
   */
  canPublishVia?(route: PublishRoute): boolean
  /**
   * The fill path's read: like `get`, but on a miss, or when the entry is
   * stale (within grace), asks for the key's lease for `leaseMs` in the same
   * round trip. Tiers without leases omit it.
   *
   * When `refreshAheadMs` is given and the entry is fresh but will expire
   * within `refreshAheadMs` (its remaining freshness, measured by the tier's
   * own clock, is at most that), the read also tries to take the key's
   * lease, exactly as for a stale entry: `{ entry, lease }` when granted (the
   * caller refreshes it in the background and writes under the lease),
   * `{ entry, leasedElsewhere: true }` when another caller holds it (someone
   * is refreshing it). A fresh entry further from its expiry reads as today
   * (no lease).
   */
  readForFill?(key: string, leaseMs: number, refreshAheadMs?: number): Promise<FillRead>
  /** Gives a lease back unused (the factory failed), so waiters need not wait it out. */
  releaseLease?(key: string, lease: TierLease): Promise<void>
  /** Reads several keys in one round trip, in order. Tiers without it are read key by key. */
  getMany?(keys: readonly string[]): Promise<Array<TierEntry | undefined>>
  /**
   * Makes every entry of this cache written under any of `tags` a miss, in
   * O(1) per tag whatever the number of entries (version counters, no scan).
   */
  invalidateTags(tags: readonly string[], options?: TierWriteOptions): Promise<void>
  /**
   * False while the tier's connection is known to be down (refused, closed,
   * reconnecting, not ready yet): the cache then fails the call at once, with
   * no command sent, instead of letting a request wait out the tier timeout.
   * Omitted: the tier is always tried.
   */
  available?(): boolean
  /**
   * Why `available()` says false, as one sentence naming the endpoint, the
   * cause and what to do: core puts it in the error of a call it skips, so a
   * wrong URL reads as one, not as "connection is down". Omitted: no reason given.
   */
  unavailableReason?(): string | undefined
  /**
   * One cheap round trip (e.g. PING) that proves the tier answers. The
   * circuit breaker's half-open probe runs it in the background, so no
   * user's request is ever the probe.
   */
  probe?(): Promise<void>
  /** Reports connection changes (lost with its cause, restored) for the cache's log. Returns the unsubscribe. */
  onConnectionChange?(listener: (change: ConnectionChange) => void): () => void
  /**
   * Resolves once the tier's connection is ready. With `timeoutMs`, rejects
   * with a `TierError` naming the endpoint and the cause (refused, auth,
   * TLS, timeout) if it is not ready by then; without, waits as long as it takes.
   */
  ready?(timeoutMs?: number): Promise<void>
}

/** A connection a tier or bus depends on went down or came back. */
export interface ConnectionChange {
  readonly state: 'lost' | 'restored'
  /** `host:port`, or a description for Cluster and Sentinel. */
  readonly endpoint: string
  /** Why it was lost: `refused`, `closed`, `auth`, `tls`, `timeout`, or the error's own message. */
  readonly cause?: string
  /** The same cause as one sentence for people: host:port, what failed and what to do (e.g. "connection refused (ECONNREFUSED): nothing is listening there; …"). */
  readonly detail?: string
}

/** Encodes entries for a shared tier. Must round-trip across processes with no shared state. */
export interface Serializer {
  encode(value: unknown): Uint8Array
  decode(bytes: Uint8Array): unknown
}

/** One invalidation carried by a bus. */
export type Invalidation =
  /** Drop this key of this cache. */
  | { readonly kind: 'key'; readonly cache: string; readonly key: string }
  /** Drop every entry of this cache written under any of these tags (namespaces are tags too). */
  | { readonly kind: 'tags'; readonly cache: string; readonly tags: readonly string[] }
  /** Drop every entry of this cache. */
  | { readonly kind: 'clear'; readonly cache: string }

/** A cache instance listening on a bus. */
export interface BusMember {
  /** Unique per cache instance: a member never receives its own invalidations. */
  readonly instanceId: string
  readonly cacheName: string
  /** Called for each invalidation of `cacheName` published by another instance. Must not throw. */
  onInvalidation(invalidation: Invalidation): void
  /**
   * Optional: a value another instance stored for `key`, carried with the
   * key's invalidation (a bus with `carryValues`). Called right after
   * `onInvalidation` evicted the key, in the same turn, so the member may
   * keep it as a guarded fill of L1 (the in-flight guard, only while L1 is
   * trusted). Members without it only evict. Must not throw.
   */
  onCarriedValue?(key: string, entry: TierEntry): void
  /**
   * Called when the bus may have missed messages (its subscription broke and
   * was restored): the member must drop everything it holds in L1 before the
   * bus trusts it again. Must not throw.
   */
  onGap(): void
}

/**
 * Liveness (coherence mechanism 3), shared by the bus and every member and
 * read on each L1 hit. `verifiedAt` is the time (core's `clock()`) at which
 * the newest probe that has been answered was sent, over a subscription that
 * has not broken since: every message published before then has been
 * delivered. `-Infinity` while a gap is open; `Infinity` for a bus that
 * cannot lose messages (in-process).
 */
export interface BusTrust {
  readonly verifiedAt: number
  /**
   * The newest proof, kept through a gap (`verifiedAt` drops to `-Infinity`
   * while one is open): what `onBusDown: { serveStale }` counts its own bound
   * from. Buses without it: `verifiedAt` alone.
   */
  readonly lastProvenAt?: number
}

export interface BusMembership {
  /**
   * Publishes invalidations from this member to every other instance. Resolves
   * once the bus has accepted them; rejects if it could not.
   */
  publish(invalidations: readonly Invalidation[]): Promise<void>
  /** Stops delivery to this member. Idempotent. */
  leave(): void
  readonly trust: BusTrust
  /** The staleness bound the bus's probing is built for; a cache without its own `maxStaleness` uses it. */
  readonly maxStalenessMs: number
  /** Offered to a shared tier for atomic write+publish; absent when the bus cannot share a connection. */
  readonly route?: PublishRoute
  /** The deployment (prefix) whose channel the bus uses, if it has one; see `Tier.deployment`. */
  readonly deployment?: string
}

export interface BusStatus {
  /** The bus can publish and its subscription is active. */
  readonly connected: boolean
  readonly messagesPublished: number
  readonly messagesReceived: number
  /** Malformed or foreign messages dropped without effect. */
  readonly messagesDropped: number
  /** Members currently joined. */
  readonly members: number
  /** L1 may be trusted now (a probe answered within maxStaleness, no gap open). */
  readonly trusted: boolean
  /** Round trip of the last answered liveness probe, ms; undefined before the first. */
  readonly lastProbeRoundTripMs: number | undefined
  /** Times the subscription broke (disconnect, probe timeout) and every L1 was cleared. */
  readonly gapsSeen: number
  /** Batched messages published through a shared tier's atomic write. */
  readonly messagesPublishedAtomically: number
  /**
   * Buses that can also catch writes from outside the SDK (redisBus
   * `trackExternalWrites`): 'tracked', or 'not tracked: <why>' (L1 is not
   * trusted meanwhile). Absent where the mode is off or not offered.
   */
  readonly externalWrites?: string
  /**
   * Buses with one subscription per shard (redisBus on Redis Cluster): the
   * shard connections open now. Absent elsewhere.
   */
  readonly shards?: number
  /** Sharded buses whose last look at the slot map failed or found slots unserved: why. */
  readonly shardPlan?: string
}

/** Carries invalidations between instances. One bus serves many caches. */
export interface Bus {
  join(member: BusMember): BusMembership
  status(): BusStatus
  /**
   * Resolves once the bus can publish and its subscription is active. With
   * `timeout`, rejects with an error naming the endpoint and the cause
   * (refused, auth, TLS, timeout) if it is not by then; without, waits.
   */
  ready?(options?: { timeout?: number | string }): Promise<void>
  /** Reports connection changes of the bus's connections (lost with its cause, restored). Returns the unsubscribe. */
  onConnectionChange?(listener: (change: ConnectionChange) => void): () => void
  close(): Promise<void>
}
