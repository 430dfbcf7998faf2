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
 * What it records: the invalidations, not the reads. A read is a counter
 * bump on `begin` and `end` (no Map touched); an invalidation that arrives
 * while any read is open records its key's stamp. The earlier design kept a
 * Map record per key being read, inserted on `begin` and deleted on `end`:
 * that insert/delete pair on every L2 read cost 0.8 µs of the lone L2 hit's
 * ~10 µs of client overhead in `node bench/l2-profile.mjs tiercache 1 5000`
 * (most of it the Map shrinking and growing its table).
 *
 * Memory: recorded stamps are dropped as soon as no read is open, and, under
 * a load that always has reads open, every time the record doubles, down to
 * the stamps some open read could still need (newer than the oldest open
 * ticket). So it is bounded by the invalidations seen during the oldest open
 * read, not by traffic.
 */
export class InFlightGuard {
  /** Monotonic stamp; a ticket is the stamp at the moment a read began. */
  #stamp = 0
  /** Stamp of the last clear: it matches every key. */
  #clearedAt = 0
  /** Open reads whose ticket is the current stamp. */
  #openAtStamp = 0
  /** Open reads with older tickets: ticket → count, in ticket order (inserted as the stamp moves on). */
  #older = new Map<number, number>()
  /** Key → stamp of its last invalidation while any read was open. */
  #invalidated = new Map<string, number>()
  /** `#invalidated`'s size after the last pruning: the next one waits until it doubles. */
  #prunedSize = 0

  /** Call before a read leaves L1; pass the ticket to `mayFill` and `end`. The key is for symmetry with `mayFill`. */
  begin(_key?: string): number {
    this.#openAtStamp++
    return this.#stamp
  }

  /** True while no invalidation matching `key` has arrived since `ticket` was taken. */
  mayFill(key: string, ticket: number): boolean {
    if (this.#clearedAt > ticket) return false
    const invalidatedAt = this.#invalidated.get(key)
    return invalidatedAt === undefined || invalidatedAt <= ticket
  }

  /** Every read that called `begin` calls `end` exactly once with its ticket, however it finished. */
  end(ticket: number): void {
    if (ticket === this.#stamp) {
      if (this.#openAtStamp > 0) this.#openAtStamp--
    } else {
      const count = this.#older.get(ticket)
      if (count === undefined) return
      if (count > 1) this.#older.set(ticket, count - 1)
      else this.#older.delete(ticket)
    }
    if (this.#openAtStamp === 0 && this.#older.size === 0 && this.#invalidated.size > 0) {
      this.#invalidated.clear()
      this.#prunedSize = 0
    }
  }

  invalidateKey(key: string): void {
    if (this.#openAtStamp === 0 && this.#older.size === 0) return // no read open: nothing to guard
    this.#invalidated.set(key, this.#advance())
    if (this.#invalidated.size > 2 * this.#prunedSize + 64) this.#prune()
  }

  invalidateAll(): void {
    this.#clearedAt = this.#advance()
    // The clear's stamp outranks every recorded one for every open read.
    this.#invalidated.clear()
    this.#prunedSize = 0
  }

  /** The stamp now: a ticket for "after everything seen so far", for a key already being tracked. */
  get current(): number {
    return this.#stamp
  }

  /** Open reads plus recorded invalidations (for tests: the guard must not leak). */
  get trackedKeys(): number {
    let open = this.#openAtStamp
    for (const count of this.#older.values()) open += count
    return open + this.#invalidated.size
  }

  /** A new stamp; the reads open at the old one keep their count under their ticket. */
  #advance(): number {
    if (this.#openAtStamp > 0) {
      this.#older.set(this.#stamp, this.#openAtStamp)
      this.#openAtStamp = 0
    }
    return ++this.#stamp
  }

  /** Drops the stamps no open read can be refused by: those not newer than the oldest open ticket. */
  #prune(): void {
    const oldest = this.#older.size > 0 ? (this.#older.keys().next().value as number) : this.#stamp
    for (const [key, stamp] of this.#invalidated) if (stamp <= oldest) this.#invalidated.delete(key)
    this.#prunedSize = this.#invalidated.size
  }
}
