import { LRUCache } from 'lru-cache'
import {
  InvalidOptionError,
  SerializationError,
  assertKnownOptions,
  clock,
  errorMessageOf,
  type BoundSharedTier,
  type FillRead,
  type SharedTier,
  type TierEntry,
  type TierLease,
  type TierScope,
} from '@tiercache/core/adapter'

/** The options of {@link memoryStore}. */
export interface MemoryStoreOptions {
  /**
   * Most entries held across all caches using the store; the least recently
   * used is evicted beyond it (a miss, as an eviction in Redis would be).
   *
   * Prevents: a long-running test or single-node app growing the store
   * without bound.
   *
   * @defaultValue 100 000
   */
  maxEntries?: number
}

interface StoredEntry {
  /** A private copy: what callers hold can never change what the store holds. */
  readonly value: unknown
  readonly createdAt: number
  readonly expiresAt: number
  /** Kept until then (grace); read back as `staleUntil`. */
  readonly staleUntil: number
  /** The cache's generation when written; a clear bumps the generation, so older entries read as absent. */
  readonly generation: number
  /** The tags it was written under, each with its version then. */
  readonly tags: ReadonlyArray<readonly [string, number]>
}

interface Lease {
  readonly token: string
  readonly until: number
  /** The generation and tag epoch it was taken under: a clear or a tag invalidation frees the key for new fills. */
  readonly scope: string
}

/** State shared by every cache bound to one store. */
interface Store {
  readonly entries: LRUCache<string, StoredEntry>
  readonly generations: Map<string, number>
  /** Tag versions by `<cache>\u0000<tag>`, unique numbers; invalidateTags deletes them (a missing version matches no entry). */
  readonly tagVersions: Map<string, number>
  /** Per cache, replaced by every tag invalidation: a lease taken before one cannot fill after it. */
  readonly tagEpochs: Map<string, number>
  /** Fill leases by store key; bounded by the keys being filled, expired ones dropped when met. */
  readonly leases: Map<string, Lease>
  tokens: number
}

const KNOWN_OPTIONS = new Set(['maxEntries'])

/**
 * An in-process stand-in for a shared tier (L2): every cache given the same
 * `memoryStore()` object sees the same entries, as instances sharing one
 * Redis would. For tests, single-node apps, and the demo without Redis.
 *
 * Values are copied with `structuredClone`, so Date, Map, Set, BigInt and
 * undefined round-trip as they do through the Redis tier, and a function or
 * symbol is rejected as it would be there.
 */
export function memoryStore(options: MemoryStoreOptions = {}): SharedTier {
  assertKnownOptions(options as unknown, KNOWN_OPTIONS, 'memoryStore')
  const maxEntries = options.maxEntries ?? 100_000
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
    throw new InvalidOptionError(`memoryStore: maxEntries must be a positive integer, got ${String(options.maxEntries)}`, {
      tier: 'memory-store',
    })
  }
  const store: Store = {
    entries: new LRUCache<string, StoredEntry>({ max: maxEntries }),
    generations: new Map(),
    tagVersions: new Map(),
    tagEpochs: new Map(),
    leases: new Map(),
    tokens: 0,
  }
  return {
    kind: 'shared',
    name: 'memory-store',
    bind(scope: TierScope): BoundSharedTier {
      return new BoundMemoryStore(scope.cacheName, store)
    },
  }
}

/** Leases are dropped when used, released or overwritten; past this many, expired ones are swept. */
const MAX_LEASES = 10_000

function pruneExpired(leases: Map<string, Lease>, now: number): void {
  for (const [key, lease] of leases) if (lease.until <= now) leases.delete(key)
}

class BoundMemoryStore implements BoundSharedTier {
  #cache: string
  #store: Store

  constructor(cache: string, store: Store) {
    this.#cache = cache
    this.#store = store
  }

  // Cache names cannot contain NUL, so this prefix cannot be forged by a key of another cache.
  #storeKey(key: string): string {
    return `${this.#cache}\u0000${key}`
  }

  #tagVersion(tag: string): number | undefined {
    return this.#store.tagVersions.get(`${this.#cache}\u0000${tag}`)
  }

  /** The version to write an entry under, created if the tag has none. */
  #ensureTagVersion(tag: string): number {
    const key = `${this.#cache}\u0000${tag}`
    let version = this.#store.tagVersions.get(key)
    if (version === undefined) {
      version = ++this.#store.tokens
      this.#store.tagVersions.set(key, version)
    }
    return version
  }

  /** What a lease is bound to: the generation and the tag epoch. */
  #leaseScope(): string {
    return `${this.#generation()}/${this.#store.tagEpochs.get(this.#cache) ?? 0}`
  }

  #generation(): number {
    return this.#store.generations.get(this.#cache) ?? 0
  }

  #live(storeKey: string): StoredEntry | undefined {
    const stored = this.#store.entries.get(storeKey)
    if (stored === undefined) return undefined
    if (stored.generation !== this.#generation() || stored.staleUntil <= clock() || stored.tags.some(([tag, version]) => this.#tagVersion(tag) !== version)) {
      this.#store.entries.delete(storeKey)
      return undefined
    }
    return stored
  }

  async get(key: string): Promise<TierEntry | undefined> {
    const stored = this.#live(this.#storeKey(key))
    if (stored === undefined) return undefined
    return {
      value: structuredClone(stored.value),
      createdAt: stored.createdAt,
      expiresAt: stored.expiresAt,
      staleUntil: stored.staleUntil,
      ...(stored.tags.length > 0 ? { tags: stored.tags.map(([tag]) => tag) } : {}),
    }
  }

  async getMany(keys: readonly string[]): Promise<Array<TierEntry | undefined>> {
    return Promise.all(keys.map((key) => this.get(key)))
  }

  /**
   * Like `get`; on a miss or a stale entry, takes the key's lease unless
   * another caller holds a live one. With `refreshAheadMs`, a fresh entry
   * that expires within it (by core's clock) is leased the same way, for its
   * refresh ahead of expiry.
   */
  async readForFill(key: string, leaseMs: number, refreshAheadMs?: number): Promise<FillRead> {
    const entry = await this.get(key)
    const now = clock()
    // 0 when absent or not a positive number (NaN too): then only a stale entry is leased, as without it.
    const aheadMs = refreshAheadMs !== undefined && refreshAheadMs > 0 ? refreshAheadMs : 0
    if (entry !== undefined && entry.expiresAt - now > aheadMs) return { entry }
    const storeKey = this.#storeKey(key)
    const scope = this.#leaseScope()
    const held = this.#store.leases.get(storeKey)
    if (held !== undefined && held.until > now && held.scope === scope) return { entry, leasedElsewhere: true }
    const lease = { token: String(++this.#store.tokens), until: now + leaseMs, scope }
    if (this.#store.leases.size >= MAX_LEASES) pruneExpired(this.#store.leases, now)
    this.#store.leases.set(storeKey, lease)
    return { entry, lease: { token: lease.token, generation: scope } }
  }

  async releaseLease(key: string, lease: TierLease): Promise<void> {
    const storeKey = this.#storeKey(key)
    if (this.#store.leases.get(storeKey)?.token === lease.token) this.#store.leases.delete(storeKey)
  }

  async set(key: string, entry: TierEntry, options?: { ifAbsent?: boolean; lease?: TierLease }): Promise<boolean> {
    let value: unknown
    try {
      value = structuredClone(entry.value)
    } catch (error) {
      throw new SerializationError(`value cannot be stored: ${errorMessageOf(error)}`, {
        cache: this.#cache,
        key,
        tier: 'memory-store',
        cause: error,
      })
    }
    const storeKey = this.#storeKey(key)
    const lease = options?.lease
    if (lease !== undefined) {
      // Written only while the lease holds and no clear happened since the read.
      const held = this.#store.leases.get(storeKey)
      if (held?.token !== lease.token || held.until <= clock() || lease.generation !== this.#leaseScope()) {
        if (held?.token === lease.token) this.#store.leases.delete(storeKey) // ours, but void
        return false
      }
    } else if (options?.ifAbsent === true && (this.#live(storeKey)?.expiresAt ?? 0) > clock()) return false
    this.#store.leases.delete(storeKey) // a write revokes any lease on the key (or ends its own)
    this.#store.entries.set(storeKey, {
      value,
      createdAt: entry.createdAt,
      expiresAt: entry.expiresAt,
      staleUntil: entry.staleUntil ?? entry.expiresAt,
      generation: this.#generation(),
      tags: (entry.tags ?? []).map((tag) => [tag, this.#ensureTagVersion(tag)] as const),
    })
    return true
  }

  /** O(1) per tag: deletes its version; entries written under it read as absent, fills begun before it cannot land. */
  async invalidateTags(tags: readonly string[]): Promise<void> {
    for (const tag of tags) this.#store.tagVersions.delete(`${this.#cache}\u0000${tag}`)
    this.#store.tagEpochs.set(this.#cache, ++this.#store.tokens)
  }

  async delete(key: string): Promise<void> {
    const storeKey = this.#storeKey(key)
    this.#store.entries.delete(storeKey)
    this.#store.leases.delete(storeKey) // revokes a fill in progress
  }

  /** O(1): bumps the generation; older entries (and leases) read as absent and are dropped when met. */
  async clear(): Promise<void> {
    this.#store.generations.set(this.#cache, this.#generation() + 1)
  }

  // No canPublishVia: the in-process bus delivers synchronously inside
  // publish, so write-then-publish leaves no window for a lost message.

  async close(): Promise<void> {}
}
