/**
 * What an L1+L2 cache would do, written plainly, to check observe mode's
 * ghosts against: L1 an LRU of `capacity` entries (a scan finds the least
 * recently used), L2 unbounded; a read hits L1, else L2 (L1 then takes L2's
 * entry and expiry), else misses and fills both. Used by core's unit tests
 * (a controlled clock) and by tests/observe-fleet.test.ts (real processes).
 */
export class ReferenceTwoTier {
  readonly #l1 = new Map<string, { expiresAt: number; usedAt: number; tags: readonly string[] }>()
  readonly #l2 = new Map<string, { expiresAt: number; tags: readonly string[] }>()
  #tick = 0
  lookups = 0
  l1Hits = 0
  l2Hits = 0

  constructor(
    readonly capacity: number,
    readonly now: () => number,
  ) {}

  read(key: string, ttlMs: number, tags: readonly string[] = []): void {
    this.lookups++
    const now = this.now()
    const held = this.#l1.get(key)
    if (held !== undefined && held.expiresAt > now) {
      this.l1Hits++
      held.usedAt = ++this.#tick
      return
    }
    const inL2 = this.#l2.get(key)
    let expiresAt = now + ttlMs
    if (inL2 !== undefined && inL2.expiresAt > now) {
      this.l2Hits++
      expiresAt = inL2.expiresAt
    } else this.#l2.set(key, { expiresAt, tags })
    this.#l1.set(key, { expiresAt, usedAt: ++this.#tick, tags })
    if (this.#l1.size > this.capacity) {
      let oldest = ''
      let oldestAt = Number.POSITIVE_INFINITY
      for (const [k, e] of this.#l1) if (e.usedAt < oldestAt) [oldest, oldestAt] = [k, e.usedAt]
      this.#l1.delete(oldest)
    }
  }

  /** A delete (this instance's or another's): gone from both tiers. */
  drop(key: string): void {
    this.#l1.delete(key)
    this.#l2.delete(key)
  }

  /** A tag invalidation: every entry written under any of `tags`, from both tiers. */
  dropTagged(tags: readonly string[]): void {
    for (const tier of [this.#l1, this.#l2]) for (const [k, e] of tier) if (e.tags.some((tag) => tags.includes(tag))) tier.delete(k)
  }

  get l1HitRate(): number {
    return this.l1Hits / this.lookups
  }

  /** The share of L1 misses L2 answered. */
  get l2HitRate(): number {
    return this.l2Hits / (this.lookups - this.l1Hits)
  }
}
