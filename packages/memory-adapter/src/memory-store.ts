import { LRUCache } from 'lru-cache'
import {
  InvalidOptionError,
  SerializationError,
  clock,
  errorMessageOf,
  type BoundSharedTier,
  type SharedTier,
  type TierEntry,
  type TierScope,
} from '@tiercache/core'

export interface MemoryStoreOptions {
  /** Most entries held across all caches using the store. Default 100 000. */
  maxEntries?: number
}

interface StoredEntry {
  /** A private copy: what callers hold can never change what the store holds. */
  readonly value: unknown
  readonly createdAt: number
  readonly expiresAt: number
  /** The cache's generation when written; a clear bumps the generation, so older entries read as absent. */
  readonly generation: number
}

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
  const maxEntries = options.maxEntries ?? 100_000
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
    throw new InvalidOptionError(`memoryStore: maxEntries must be a positive integer, got ${String(options.maxEntries)}`, {
      tier: 'memory-store',
    })
  }
  const entries = new LRUCache<string, StoredEntry>({ max: maxEntries })
  const generations = new Map<string, number>()
  return {
    kind: 'shared',
    name: 'memory-store',
    bind(scope: TierScope): BoundSharedTier {
      return new BoundMemoryStore(scope.cacheName, entries, generations)
    },
  }
}

class BoundMemoryStore implements BoundSharedTier {
  #cache: string
  #entries: LRUCache<string, StoredEntry>
  #generations: Map<string, number>

  constructor(cache: string, entries: LRUCache<string, StoredEntry>, generations: Map<string, number>) {
    this.#cache = cache
    this.#entries = entries
    this.#generations = generations
  }

  // Cache names cannot contain NUL, so this prefix cannot be forged by a key of another cache.
  #storeKey(key: string): string {
    return `${this.#cache}\u0000${key}`
  }

  #generation(): number {
    return this.#generations.get(this.#cache) ?? 0
  }

  #live(storeKey: string): StoredEntry | undefined {
    const stored = this.#entries.get(storeKey)
    if (stored === undefined) return undefined
    if (stored.generation !== this.#generation() || stored.expiresAt <= clock()) {
      this.#entries.delete(storeKey)
      return undefined
    }
    return stored
  }

  async get(key: string): Promise<TierEntry | undefined> {
    const stored = this.#live(this.#storeKey(key))
    if (stored === undefined) return undefined
    return { value: structuredClone(stored.value), createdAt: stored.createdAt, expiresAt: stored.expiresAt }
  }

  async set(key: string, entry: TierEntry, options?: { ifAbsent?: boolean }): Promise<void> {
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
    if (options?.ifAbsent === true && this.#live(storeKey) !== undefined) return
    this.#entries.set(storeKey, {
      value,
      createdAt: entry.createdAt,
      expiresAt: entry.expiresAt,
      generation: this.#generation(),
    })
  }

  async delete(key: string): Promise<void> {
    this.#entries.delete(this.#storeKey(key))
  }

  /** O(1): bumps the generation; older entries read as absent and are dropped when met. */
  async clear(): Promise<void> {
    this.#generations.set(this.#cache, this.#generation() + 1)
  }

  // No canPublishVia: the in-process bus delivers synchronously inside
  // publish, so write-then-publish leaves no window for a lost message.

  async close(): Promise<void> {}
}
