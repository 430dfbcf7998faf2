/**
 * In-process fakes for unit tests of core logic only. The real adapters are
 * proven against real Redis in packages/redis-adapter and tests/.
 */
import type {
  BoundLocalTier,
  BoundSharedTier,
  Bus,
  BusMember,
  BusMembership,
  BusStatus,
  Invalidation,
  LocalTier,
  PublishRoute,
  SharedTier,
  TierEntry,
  TierWriteOptions,
} from '../src/index.js'
import { clock } from '../src/adapter.js'

export class FakeLocal implements BoundLocalTier {
  map = new Map<string, TierEntry>()
  get(key: string) {
    return this.map.get(key)
  }
  set(key: string, entry: TierEntry, options?: { ifAbsent?: boolean }) {
    if (options?.ifAbsent === true && this.map.has(key)) return
    this.map.set(key, entry)
  }
  delete(key: string) {
    this.map.delete(key)
  }
  clear() {
    this.map.clear()
  }
  deleteTagged(tags: ReadonlySet<string>) {
    for (const [key, entry] of this.map) if (entry.tags?.some((tag) => tags.has(tag)) === true) this.map.delete(key)
  }
  close() {}
  get size() {
    return this.map.size
  }
}

export function fakeLocalTier(): LocalTier & { bound: FakeLocal } {
  const bound = new FakeLocal()
  return { kind: 'local', name: 'fake-local', bound, bind: () => bound }
}

interface Deferred<T> {
  promise: Promise<T>
  resolve: (value: T) => void
  reject: (error: unknown) => void
}

export function deferred<T = void>(): Deferred<T> {
  let resolve!: (value: T) => void
  let reject!: (error: unknown) => void
  const promise = new Promise<T>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** A shared tier whose calls can be held, failed, and counted. */
export class ControlledShared implements BoundSharedTier {
  map = new Map<string, TierEntry>()
  calls: string[] = []
  /** When set, the next get waits for this gate, reading the map only once it opens. */
  gate: Deferred<void> | undefined
  /** When set, every call rejects with it. */
  failWith: unknown
  /** When set, set() throws it synchronously from the tier (as an encoder would). */
  encodeError: unknown
  /** Routes this tier accepts for atomic publishing, and what it published through them. */
  acceptsRoute: PublishRoute | undefined
  atomicallyPublished: Array<readonly Invalidation[]> = []

  canPublishVia(route: PublishRoute) {
    return route === this.acceptsRoute
  }
  #carry(options?: TierWriteOptions) {
    if (options?.publish !== undefined) this.atomicallyPublished.push(options.publish.invalidations)
  }

  async get(key: string) {
    this.calls.push(`get ${key}`)
    if (this.failWith !== undefined) throw this.failWith
    const gate = this.gate
    this.gate = undefined
    // Snapshot before waiting: the reply reflects L2 as it was when the read reached it.
    const snapshot = this.map.get(key)
    if (gate !== undefined) await gate.promise
    return snapshot
  }
  async set(key: string, entry: TierEntry, options?: { ifAbsent?: boolean } & TierWriteOptions) {
    if (this.encodeError !== undefined) throw this.encodeError
    this.calls.push(`set ${key}${options?.ifAbsent === true ? ' ifAbsent' : ''}`)
    if (this.failWith !== undefined) throw this.failWith
    if (options?.ifAbsent === true && (this.map.get(key)?.expiresAt ?? 0) > clock()) return
    this.map.set(key, entry)
    this.#carry(options)
  }
  async delete(key: string, options?: TierWriteOptions) {
    this.calls.push(`delete ${key}`)
    if (this.failWith !== undefined) throw this.failWith
    this.map.delete(key)
    this.#carry(options)
  }
  async invalidateTags(tags: readonly string[], options?: TierWriteOptions) {
    this.calls.push(`invalidateTags ${tags.join(',')}`)
    if (this.failWith !== undefined) throw this.failWith
    for (const [key, entry] of this.map) if (entry.tags?.some((tag) => tags.includes(tag)) === true) this.map.delete(key)
    this.#carry(options)
  }
  async clear(options?: TierWriteOptions) {
    this.calls.push('clear')
    if (this.failWith !== undefined) throw this.failWith
    this.map.clear()
    this.#carry(options)
  }
  async close() {}
}

export function controlledSharedTier(bound = new ControlledShared()): SharedTier & { bound: ControlledShared } {
  return { kind: 'shared', name: 'fake-shared', bound, bind: () => bound }
}

/** A bus that records what is published and delivers only when the test says so. */
export class FakeBus implements Bus {
  members: BusMember[] = []
  published: Array<{ origin: string; invalidations: readonly Invalidation[] }> = []
  failWith: unknown
  /** Liveness as the bus reports it; tests move it to open and close gaps. */
  trust = { verifiedAt: Number.POSITIVE_INFINITY }
  maxStalenessMs = 1_000
  /** When set, offered to shared tiers for atomic publishing. */
  route: PublishRoute | undefined

  join(member: BusMember): BusMembership {
    this.members.push(member)
    return {
      publish: async (invalidations) => {
        if (this.failWith !== undefined) throw this.failWith
        this.published.push({ origin: member.instanceId, invalidations })
      },
      leave: () => {
        this.members = this.members.filter((m) => m !== member)
      },
      trust: this.trust,
      maxStalenessMs: this.maxStalenessMs,
      route: this.route,
    }
  }

  /** Delivers an invalidation as if another instance had published it. */
  deliver(invalidation: Invalidation): void {
    for (const member of this.members) if (member.cacheName === invalidation.cache) member.onInvalidation(invalidation)
  }

  /** Reports a gap: the subscription broke and was restored. */
  gap(): void {
    for (const member of this.members) member.onGap()
  }

  status(): BusStatus {
    return {
      connected: true,
      messagesPublished: this.published.length,
      messagesReceived: 0,
      messagesDropped: 0,
      members: this.members.length,
      trusted: true,
      lastProbeRoundTripMs: undefined,
      gapsSeen: 0,
      messagesPublishedAtomically: 0,
    }
  }

  async close() {}
}

export const entry = <V>(value: V, ttlMs = 60_000): TierEntry<V> => {
  const now = clock()
  return { value, createdAt: now, expiresAt: now + ttlMs }
}
