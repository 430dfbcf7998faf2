import { LRUCache } from 'lru-cache'
import { InvalidOptionError, assertKnownOptions, clock, type BoundLocalTier, type LocalTier, type TierEntry, type TierScope } from '@tiercache/core/adapter'

/** The options of {@link memoryTier}: the bounds of one cache's L1. */
export interface MemoryTierOptions {
  /**
   * Most entries held; the least recently used is evicted beyond it. Size it
   * to the hot set: an L1 that holds everything only delays garbage
   * collection (about 450 bytes per entry of a ~200-byte object, measured in
   * docs/benchmarks.md). The advisor says `raise-l1-size` when evictions are
   * at least half the misses.
   *
   * Prevents: an L1 that grows with the key space until the process runs out
   * of memory.
   *
   * @defaultValue 10 000
   */
  maxEntries?: number
  /**
   * Most bytes held, by `sizeOf` (default: an estimate, see
   * {@link estimateBytes}); least recently used entries are evicted beyond
   * it, and an entry larger than the whole budget is not kept in L1 at all
   * (reads of it go to L2).
   *
   * Prevents: a few large values (a report, a big list) taking the memory
   * `maxEntries` budgeted for thousands of small ones.
   *
   * @defaultValue none: no byte bound, only `maxEntries`
   */
  maxBytes?: number
  /**
   * An entry's size in bytes, for `maxBytes` (and, given alone, for the
   * tier's byte count in `stats().l1Bytes`, with no byte bound). Pass your
   * own for exact accounting (e.g.
   * `(value) => Buffer.byteLength(JSON.stringify(value))` if you accept a
   * serialization per set).
   *
   * Prevents: a byte budget counted so slowly that every set pays a
   * serialization (the default estimate serializes nothing).
   *
   * @defaultValue {@link estimateBytes}: a walk of the value that adds up its
   * strings, numbers, buffers and containers with V8-like overheads — no
   * serialization, no allocation; about the cost of one structured clone
   * check
   */
  sizeOf?: (value: unknown, key: string) => number
}

const KNOWN_OPTIONS = new Set(['maxEntries', 'maxBytes', 'sizeOf'])
const DEFAULT_MAX_ENTRIES = 10_000
/** Nodes the default size estimate visits at most; past it, the value counts as this big already. */
const ESTIMATE_NODE_LIMIT = 10_000

/**
 * Stands in for an entry deleted while it was the only one. lru-cache empties
 * itself by refilling its preallocated arrays, so deleting its last entry costs
 * O(maxEntries) — measured 32 µs at 10 000 and 0.72 ms at 200 000, against
 * about 1.5 µs for any other delete — and a cache holding one hot key (a
 * config, a feature flag) would pay that on every invalidation, with its event
 * loop blocked. Overwriting the entry with this marker is O(1); `get` hides it.
 */
const DELETED: TierEntry = Object.freeze({ value: undefined, createdAt: 0, expiresAt: Number.NEGATIVE_INFINITY })

/**
 * The in-process L1 tier: an LRU of entries, read synchronously.
 *
 * Expiry is checked by the cache against `expiresAt` on each hit rather than
 * by lru-cache's own TTL machinery: that keeps one clock read per hit (the
 * cache needs it anyway) instead of two, and no per-entry timers. Expired
 * entries are overwritten by the next fill or pushed out by the LRU.
 *
 * One `memoryTier()` serves one cache: binding it twice would silently give
 * two caches one budget, so it throws instead.
 */
export function memoryTier(options: MemoryTierOptions = {}): LocalTier {
  assertKnownOptions(options as unknown, KNOWN_OPTIONS, 'memoryTier')
  const maxEntries = options.maxEntries ?? DEFAULT_MAX_ENTRIES
  if (!Number.isSafeInteger(maxEntries) || maxEntries < 1) {
    throw new InvalidOptionError(`memoryTier: maxEntries must be a positive integer, got ${String(options.maxEntries)}`, {
      tier: 'memory',
    })
  }
  const maxBytes = options.maxBytes
  if (maxBytes !== undefined && (!Number.isSafeInteger(maxBytes) || maxBytes < 1)) {
    throw new InvalidOptionError(`memoryTier: maxBytes must be a positive integer, got ${String(maxBytes)}`, { tier: 'memory' })
  }
  if (options.sizeOf !== undefined && typeof options.sizeOf !== 'function') {
    throw new InvalidOptionError('memoryTier: sizeOf must be a function (value, key) => bytes', { tier: 'memory' })
  }
  const sizeOf = options.sizeOf ?? estimateBytes
  // Bytes are counted when either is set: a sizeOf alone measures without bounding.
  const bytes = maxBytes === undefined && options.sizeOf === undefined ? undefined : { maxBytes, sizeOf }
  let boundTo: string | undefined
  return {
    kind: 'local',
    name: 'memory',
    capacity: maxEntries,
    bind(scope: TierScope): BoundLocalTier {
      if (boundTo !== undefined) {
        throw new InvalidOptionError(`this memoryTier() already serves cache "${boundTo}"; give each cache its own memoryTier()`, {
          cache: scope.cacheName,
          tier: 'memory',
        })
      }
      boundTo = scope.cacheName
      // Closing the cache frees the tier for another cache (e.g. after a failed createCache).
      return new BoundMemoryTier(maxEntries, bytes, () => (boundTo = undefined))
    },
  }
}

class BoundMemoryTier implements BoundLocalTier {
  #entries: LRUCache<string, TierEntry>
  /** The key that may hold `DELETED` (at most one does; it is re-checked, since a set or eviction replaces it). */
  #deletedKey: string | undefined
  #release: (() => void) | undefined
  /** Entries the LRU pushed out for room (entries or bytes): not expiries, deletes, overwrites or clears. */
  #evictions = 0
  readonly #countsBytes: boolean

  constructor(maxEntries: number, bytes: { maxBytes: number | undefined; sizeOf: (value: unknown, key: string) => number } | undefined, release: () => void) {
    // Called by lru-cache on every removal, never on a read: the hit path stays as it was.
    const dispose = (entry: TierEntry, _key: string, reason: string) => {
      if (reason === 'evict' && entry !== DELETED) this.#evictions++
    }
    this.#countsBytes = bytes !== undefined
    if (bytes === undefined) {
      this.#entries = new LRUCache<string, TierEntry>({ max: maxEntries, dispose })
    } else {
      const { maxBytes, sizeOf } = bytes
      this.#entries = new LRUCache<string, TierEntry>({
        max: maxEntries,
        // sizeOf alone counts bytes without bounding them (lru-cache sizes entries only under a maxSize).
        maxSize: maxBytes ?? Number.MAX_SAFE_INTEGER,
        dispose,
        // Run on set only. A sizeOf that throws or answers nonsense must not fail the write: the entry counts as the whole budget (kept only if alone), or, unbounded, as its estimate.
        sizeCalculation: (entry, key) => {
          if (entry === DELETED) return 1
          const fallback = () => maxBytes ?? Math.max(1, estimateBytes(entry.value))
          let size: number
          try {
            size = sizeOf(entry.value, key)
          } catch {
            return fallback()
          }
          return Number.isFinite(size) && size >= 1 ? Math.ceil(size) : fallback()
        },
      })
    }
    this.#release = release
  }

  /** Bytes held by `sizeOf`'s count (0 without `maxBytes` or `sizeOf`); the deleted-entry marker's 1 is not counted. */
  get bytes(): number {
    const size = this.#entries.calculatedSize ?? 0
    return this.#holdsMarker() ? size - 1 : size
  }

  /** Read at stats time only: evictions, and bytes when they are counted (`maxBytes` or `sizeOf` set). */
  counters(): { evictions: number; bytes?: number } {
    return this.#countsBytes ? { evictions: this.#evictions, bytes: this.bytes } : { evictions: this.#evictions }
  }

  get(key: string): TierEntry | undefined {
    const entry = this.#entries.get(key)
    // One pointer comparison on the hit path (measured: within run-to-run noise).
    return entry === DELETED ? undefined : entry
  }

  set(key: string, entry: TierEntry, options?: { ifAbsent?: boolean }): void {
    if (options?.ifAbsent === true) {
      const existing = this.#entries.get(key)
      if (existing !== undefined && existing.expiresAt > clock()) return
    }
    this.#entries.set(key, entry)
  }

  delete(key: string): void {
    if (this.#entries.size === 1) {
      if (this.#entries.has(key)) {
        this.#entries.set(key, DELETED)
        this.#deletedKey = key
      }
      return
    }
    this.#entries.delete(key)
  }

  /** One pass over L1: tag invalidations are rare next to reads, and the hit path stays free of tag checks. */
  deleteTagged(tags: ReadonlySet<string>): void {
    const doomed: string[] = []
    for (const [key, entry] of this.#entries.entries()) {
      if (entry.tags?.some((tag) => tags.has(tag))) doomed.push(key)
    }
    for (const key of doomed) this.delete(key)
  }

  clear(): void {
    this.#entries.clear()
    this.#deletedKey = undefined
  }

  close(): void {
    this.clear()
    this.#release?.()
    this.#release = undefined
  }

  get size(): number {
    const size = this.#entries.size
    return this.#holdsMarker() ? size - 1 : size
  }

  #holdsMarker(): boolean {
    return this.#deletedKey !== undefined && this.#entries.peek(this.#deletedKey) === DELETED
  }
}

/**
 * A value's approximate heap size: 8 per number, 2 per string character plus
 * a header, byte length for buffers, a header plus 8 per slot for arrays and
 * objects (plus their keys), shared references counted once. Bounded by
 * ESTIMATE_NODE_LIMIT visits, so a huge value costs a bounded walk.
 */
export function estimateBytes(value: unknown): number {
  const seen = new Set<object>()
  let visits = 0
  let total = 0
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const node = stack.pop()
    if (++visits > ESTIMATE_NODE_LIMIT) return total + 16 * stack.length
    switch (typeof node) {
      case 'string':
        total += 16 + 2 * node.length
        continue
      case 'number':
      case 'bigint':
        total += 8
        continue
      case 'boolean':
      case 'undefined':
      case 'symbol':
      case 'function':
        total += 4
        continue
    }
    if (node === null) {
      total += 4
      continue
    }
    const object = node as object
    if (seen.has(object)) continue
    seen.add(object)
    if (ArrayBuffer.isView(object)) total += 64 + object.byteLength
    else if (object instanceof ArrayBuffer) total += 64 + object.byteLength
    else if (object instanceof Date) total += 24
    else if (Array.isArray(object)) {
      total += 16 + 8 * object.length
      for (const item of object) stack.push(item)
    } else if (object instanceof Map) {
      total += 32 + 24 * object.size
      for (const [k, v] of object) stack.push(k, v)
    } else if (object instanceof Set) {
      total += 32 + 16 * object.size
      for (const v of object) stack.push(v)
    } else {
      const keys = Object.keys(object)
      total += 24 + 8 * keys.length
      for (const k of keys) {
        total += 2 * k.length
        stack.push((object as Record<string, unknown>)[k])
      }
    }
  }
  return total
}
