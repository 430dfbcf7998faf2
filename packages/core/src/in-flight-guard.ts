/**
 * In-flight guard (coherence mechanism 2).
 *
 * The hole it closes: a read goes to L2 (or runs the factory), and while it
 * waits, another instance writes the key and its invalidation arrives here.
 * When the read then completes, writing what it got into L1 would resurrect
 * the old value and keep serving it until the TTL: no later message will come
 * to remove it. So every read takes a ticket before it leaves L1, every
 * matching invalidation (the key, or a clear of the cache) is stamped, and a
 * read may fill only if nothing matching was stamped after its ticket. The
 * read still answers its own caller with what it got.
 *
 * Cost: invalidations of keys with no read in flight touch one Map lookup;
 * state is kept only for keys being read, so memory is bounded by the number
 * of reads in flight, not by traffic.
 */
export class InFlightGuard {
  /** Monotonic stamp; a ticket is the stamp at the moment a read began. */
  #stamp = 0
  /** Stamp of the last clear: it matches every key. */
  #clearedAt = 0
  /** Reads in flight per key, and the stamp of the key's last invalidation while any was. */
  #reads = new Map<string, { count: number; invalidatedAt: number }>()

  /** Call before a read leaves L1; pass the ticket to `mayFill` and `end`. */
  begin(key: string): number {
    const read = this.#reads.get(key)
    if (read === undefined) this.#reads.set(key, { count: 1, invalidatedAt: 0 })
    else read.count++
    return this.#stamp
  }

  /** True while no invalidation matching `key` has arrived since `ticket` was taken. */
  mayFill(key: string, ticket: number): boolean {
    if (this.#clearedAt > ticket) return false
    const read = this.#reads.get(key)
    return read === undefined || read.invalidatedAt <= ticket
  }

  /** Every read that called `begin` calls `end` exactly once, however it finished. */
  end(key: string): void {
    const read = this.#reads.get(key)
    if (read !== undefined && --read.count === 0) this.#reads.delete(key)
  }

  invalidateKey(key: string): void {
    const read = this.#reads.get(key)
    if (read !== undefined) read.invalidatedAt = ++this.#stamp
  }

  invalidateAll(): void {
    this.#clearedAt = ++this.#stamp
  }

  /** The stamp now: a ticket for "after everything seen so far", for a key already being tracked. */
  get current(): number {
    return this.#stamp
  }

  /** Reads currently tracked (for tests: the guard must not leak). */
  get trackedKeys(): number {
    return this.#reads.size
  }
}
