import {
  BusMembers,
  CacheClosedError,
  type Bus,
  type BusMember,
  type BusMembership,
  type BusStatus,
  type Invalidation,
} from '@tiercache/core'

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
    }
  }

  status(): BusStatus {
    return {
      connected: !this.#closed,
      messagesPublished: this.#published,
      messagesReceived: this.#received,
      messagesDropped: 0,
      members: this.#members.size,
    }
  }

  async close(): Promise<void> {
    this.#closed = true
  }
}
