/**
 * Observe mode's simulation of the first tier: a ghost index of keys — no
 * values, only each key's expiry and tags — with the tier's capacity, LRU
 * eviction, TTL expiry and tag invalidation. Every lookup asks it whether the
 * tier would have answered; the share it would have is the predicted hit rate.
 *
 * It stands in for L1 in the cache's local state (a BoundLocalTier whose
 * `get` never answers), so every fill, write and invalidation — this
 * instance's own, those arriving on the bus, a gap's clear — reaches it by
 * the very paths that reach L1 in normal mode, guard included.
 */
import { clock } from '../clock.js'
import type { BoundLocalTier, Invalidation, TierEntry } from '../contracts.js'
import { freshUntilOf } from './refresh-ahead.js'

interface GhostEntry {
  readonly expiresAt: number
  readonly tags: readonly string[] | undefined
}

/**
 * Keys held at most by a ghost of an unbounded tier (an L2-only cache):
 * past it, the least recently used key goes, so a cache over millions of
 * live keys costs bounded memory and its prediction errs low, not the process.
 */
export const MAX_GHOST_KEYS = 1_000_000
/** A sweep of expired keys runs when the index reaches this size, then at twice the size it kept. */
const FIRST_SWEEP_AT = 1_024

/**
 * The capacity to simulate for a cache's first tier: the local tier's own
 * entry bound (`memoryTier`'s `maxEntries`), else unbounded — an L2-only
 * cache (Redis keeps every key until its TTL), or a local tier that does not
 * say (its evictions then go unpredicted, and the prediction errs high).
 */
export function ghostCapacityOf(local: { readonly capacity?: number } | undefined): number {
  const capacity = local?.capacity
  return capacity !== undefined && Number.isSafeInteger(capacity) && capacity >= 1 ? capacity : Number.POSITIVE_INFINITY
}

/**
 * The ghosts of a cache's tiers: the first tier's (L1's, or L2's for a
 * cache without L1) and, for an L1+L2 cache, L2's: unbounded, it is asked
 * on the first ghost's misses, so its hit rate is the share of L1 misses L2
 * would have answered. It learns only this instance's own fills: in a
 * fleet, other instances' fills would answer some of the misses it counts,
 * so its prediction errs low there.
 */
export interface TierGhosts {
  readonly first: GhostIndex
  /** True when `first` stands for a local tier (L1), false for an L2-only cache. */
  readonly firstIsLocal: boolean
  readonly shared: GhostIndex | undefined
}

export function tierGhostsOf(local: { readonly capacity?: number } | undefined, hasShared: boolean): TierGhosts {
  if (local === undefined) return { first: new GhostIndex(), firstIsLocal: false, shared: undefined }
  return { first: new GhostIndex(ghostCapacityOf(local)), firstIsLocal: true, shared: hasShared ? new GhostIndex() : undefined }
}

export class GhostIndex implements BoundLocalTier {
  /** Insertion order is recency order: a touched key is deleted and set again, so the first key is the least recently used. */
  readonly #entries = new Map<string, GhostEntry>()
  readonly #capacity: number
  /** A ghost of an unbounded tier sweeps its expired keys; a bounded one keeps them, as an LRU does, until pushed out. */
  readonly #unbounded: boolean
  readonly #now: () => number
  #sweepAt = FIRST_SWEEP_AT
  #lookups = 0
  #hits = 0
  #evictions = 0

  /**
   * `capacity`: the simulated tier's entry bound (a positive integer, or
   * `Infinity` for a tier without one, held to MAX_GHOST_KEYS). `now`: the
   * clock expiries are read on (core's by default; tests drive their own).
   */
  constructor(capacity: number = Number.POSITIVE_INFINITY, now: () => number = clock) {
    if (!(capacity === Number.POSITIVE_INFINITY || (Number.isSafeInteger(capacity) && capacity >= 1))) {
      throw new RangeError(`ghost index capacity must be a positive integer or Infinity, got ${String(capacity)}`)
    }
    this.#capacity = Math.min(capacity, MAX_GHOST_KEYS)
    this.#unbounded = capacity === Number.POSITIVE_INFINITY
    this.#now = now
  }

  /** One lookup: true if the simulated tier holds `key` fresh now (then it becomes the most recently used). Counted. */
  lookup(key: string): boolean {
    return this.lookupExpiry(key) !== undefined
  }

  /** `lookup`, answering when the held key expires (undefined on a miss): an L2 hit fills L1 with L2's expiry, not a new one. */
  lookupExpiry(key: string): number | undefined {
    this.#lookups++
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    this.#entries.delete(key)
    if (entry.expiresAt <= this.#now()) return undefined
    this.#entries.set(key, entry)
    this.#hits++
    return entry.expiresAt
  }

  /** What a fill would have stored: `key`, fresh for `ttlMs` from now, under `tags`; the least recently used key goes past capacity. */
  record(key: string, ttlMs: number, tags?: readonly string[]): void {
    this.#hold(key, this.#now() + ttlMs, tags)
  }

  /**
   * The BoundLocalTier side: what L1 would have stored. A refresh-ahead copy
   * counts until its value's own expiry (a lookup past its refresh point is
   * still answered). Values within grace count as gone: a stale answer is
   * predicted as a miss, so the prediction errs low.
   */
  set(key: string, entry: TierEntry): void {
    this.#hold(key, freshUntilOf(entry), entry.tags)
  }

  /** Never answers: the ghost holds no values, and the observing cache reads none. */
  get(_key: string): undefined {
    return undefined
  }

  #hold(key: string, expiresAt: number, tags: readonly string[] | undefined): void {
    this.#entries.delete(key)
    this.#entries.set(key, { expiresAt, tags: tags === undefined || tags.length === 0 ? undefined : tags })
    if (this.#unbounded && this.#entries.size >= this.#sweepAt) this.#sweepExpired()
    while (this.#entries.size > this.#capacity) {
      this.#entries.delete(this.#entries.keys().next().value!)
      this.#evictions++
    }
  }

  /** Applies an invalidation, this instance's own or one from the bus, as L1 would. */
  invalidate(invalidation: Invalidation): void {
    if (invalidation.kind === 'key') this.#entries.delete(invalidation.key)
    else if (invalidation.kind === 'tags') this.deleteTagged(new Set(invalidation.tags))
    else this.clear()
  }

  /** One pass, as the memory tier's own: tag invalidations are rare next to lookups. */
  deleteTagged(tags: ReadonlySet<string>): void {
    for (const [key, entry] of this.#entries) if (entry.tags?.some((tag) => tags.has(tag)) === true) this.#entries.delete(key)
  }

  delete(key: string): void {
    this.#entries.delete(key)
  }

  /** A clear, or a gap on the bus (L1 is cleared then too). */
  clear(): void {
    this.#entries.clear()
  }

  close(): void {
    this.#entries.clear()
  }

  get lookups(): number {
    return this.#lookups
  }

  get hits(): number {
    return this.#hits
  }

  /** Keys the capacity pushed out (the simulated tier's evictions). */
  get evictions(): number {
    return this.#evictions
  }

  /** Keys held now. */
  get size(): number {
    return this.#entries.size
  }

  /** Ghost hits over lookups; 0 before the first lookup (never NaN). */
  get hitRate(): number {
    return this.#lookups === 0 ? 0 : this.#hits / this.#lookups
  }

  /** An unbounded tier's ghost drops its expired keys now and then, so it holds about the live set. */
  #sweepExpired(): void {
    const now = this.#now()
    for (const [key, entry] of this.#entries) if (entry.expiresAt <= now) this.#entries.delete(key)
    this.#sweepAt = Math.max(FIRST_SWEEP_AT, 2 * this.#entries.size)
  }
}
