import { BusMembers, CacheClosedError, type Bus, type BusMember, type BusMembership, type BusStatus, type Invalidation } from '@tiercache/core/adapter'

/** In-process delivery cannot lose a message, so L1 is always trusted. */
const ALWAYS_DELIVERED = { verifiedAt: Number.POSITIVE_INFINITY }

/**
 * An in-process bus: every cache given the same `memoryBus()` object hears
 * the others' invalidations, as instances sharing a Redis bus would.
 * Delivery is synchronous, inside `publish`: by the time a write resolves,
 * every other cache on the bus has dropped its copy.
 */
export function memoryBus(): Bus {
  return new MemoryBus()
}

class MemoryBus implements Bus {
  #members = new BusMembers()
  #closed = false
  #published = 0
  #received = 0

  join(member: BusMember): BusMembership {
    if (this.#closed) throw new CacheClosedError('memoryBus is closed', { cache: member.cacheName })
    const leave = this.#members.add(member)
    return {
      publish: async (invalidations: readonly Invalidation[]) => {
        if (this.#closed) throw new CacheClosedError('memoryBus is closed', { cache: member.cacheName })
        this.#published++
        this.#received++
        for (const invalidation of invalidations) this.#members.deliver(member.instanceId, invalidation)
      },
      leave,
      trust: ALWAYS_DELIVERED,
      maxStalenessMs: 1_000,
    }
  }

  status(): BusStatus {
    return {
      connected: !this.#closed,
      messagesPublished: this.#published,
      messagesReceived: this.#received,
      messagesDropped: 0,
      members: this.#members.size,
      trusted: !this.#closed,
      lastProbeRoundTripMs: undefined,
      gapsSeen: 0,
      messagesPublishedAtomically: 0,
    }
  }

  async close(): Promise<void> {
    this.#closed = true
  }
}
