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
}

/** What a tier is told about the cache it serves when the cache is created. */
export interface TierScope {
  /** The cache's name: a shared tier prefixes its keys with it. */
  readonly cacheName: string
}

export interface TierSetOptions {
  /**
   * Write only if the key holds no live entry. Used when a `getOrSet` fills
   * the tier after a miss, so a slow factory never overwrites a value that a
   * concurrent `set` wrote meanwhile.
   */
  readonly ifAbsent?: boolean
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
  bind(scope: TierScope): BoundTier
}

/** A tier bound to one cache: keys are that cache's keys, unprefixed. */
export interface BoundTier {
  get(key: string): TierEntry | undefined | Promise<TierEntry | undefined>
  set(key: string, entry: TierEntry, options?: TierSetOptions): void | Promise<void>
  delete(key: string): void | Promise<void>
  /** Removes every entry of this cache (and no other cache's). */
  clear(): void | Promise<void>
  /** Releases what the binding holds (connections, memory). Idempotent. */
  close(): void | Promise<void>
}

export interface LocalTier extends Tier {
  readonly kind: 'local'
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
}

export interface SharedTier extends Tier {
  readonly kind: 'shared'
  bind(scope: TierScope): BoundSharedTier
}

export interface BoundSharedTier extends BoundTier {
  get(key: string): Promise<TierEntry | undefined>
  set(key: string, entry: TierEntry, options?: TierSetOptions): Promise<void>
  delete(key: string): Promise<void>
  clear(): Promise<void>
  close(): Promise<void>
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
  /** Drop every entry of this cache. */
  | { readonly kind: 'clear'; readonly cache: string }

/** A cache instance listening on a bus. */
export interface BusMember {
  /** Unique per cache instance: a member never receives its own invalidations. */
  readonly instanceId: string
  readonly cacheName: string
  /** Called for each invalidation of `cacheName` published by another instance. Must not throw. */
  onInvalidation(invalidation: Invalidation): void
}

export interface BusMembership {
  /**
   * Publishes invalidations from this member to every other instance. Resolves
   * once the bus has accepted them; rejects if it could not.
   */
  publish(invalidations: readonly Invalidation[]): Promise<void>
  /** Stops delivery to this member. Idempotent. */
  leave(): void
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
}

/** Carries invalidations between instances. One bus serves many caches. */
export interface Bus {
  join(member: BusMember): BusMembership
  status(): BusStatus
  close(): Promise<void>
}
