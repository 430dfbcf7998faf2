import type { BusMember, Invalidation, TierEntry } from './contracts.js'

/**
 * The members of one bus in this process, indexed by cache name so that an
 * incoming invalidation reaches only the caches it names. Buses share it
 * rather than each keeping their own routing.
 */
export class BusMembers {
  #byCache = new Map<string, Set<BusMember>>()
  #count = 0

  add(member: BusMember): () => void {
    let members = this.#byCache.get(member.cacheName)
    if (members === undefined) {
      members = new Set()
      this.#byCache.set(member.cacheName, members)
    }
    members.add(member)
    this.#count++
    let removed = false
    return () => {
      if (removed) return
      removed = true
      this.#count--
      members.delete(member)
      if (members.size === 0 && this.#byCache.get(member.cacheName) === members) this.#byCache.delete(member.cacheName)
    }
  }

  /** Hands `invalidation` to every member of its cache except its origin. A throwing member does not stop the others. */
  deliver(origin: string, invalidation: Invalidation): void {
    const members = this.#byCache.get(invalidation.cache)
    if (members === undefined) return
    for (const member of members) {
      if (member.instanceId === origin) continue
      try {
        member.onInvalidation(invalidation)
      } catch {
        // Members must not throw (the contract says so); one that does must not break delivery to the rest.
      }
    }
  }

  /**
   * A value carried with the key invalidation just delivered: offered to
   * every member of `cache` that takes carried values, except its origin and
   * any member `refuse` names (see the carrying bus: one with its own write
   * of the key not yet echoed back). `entry` is built once, on the first
   * taker. A throwing member does not stop the others.
   */
  offer(origin: string, cache: string, key: string, entry: () => TierEntry | undefined, refuse: (instanceId: string) => boolean): void {
    const members = this.#byCache.get(cache)
    if (members === undefined) return
    let built: TierEntry | undefined | null = null
    for (const member of members) {
      if (member.instanceId === origin || member.onCarriedValue === undefined || refuse(member.instanceId)) continue
      if (built === null) built = entry()
      if (built === undefined) return
      try {
        member.onCarriedValue(key, built)
      } catch {
        // As in deliver.
      }
    }
  }

  /** Tells every member the bus may have lost messages: each drops its L1 before the bus trusts it again. */
  gap(): void {
    for (const members of this.#byCache.values()) {
      for (const member of members) {
        try {
          member.onGap()
        } catch {
          // As above: one member must not stop the others from clearing.
        }
      }
    }
  }

  get size(): number {
    return this.#count
  }
}
