/**
 * The Bus contract as a test suite: what every bus (memoryBus, redisBus on
 * one server, redisBus on a Cluster, yours) must do for the coherence
 * contract to hold on top of it. Run it from a test file:
 *
 *   runBusConformance({ name: 'my bus', open: async () => ({ buses: [a, b], close }) })
 *
 * `buses` are two handles on one transport, as two instances would hold
 * (they may be the same object for an in-process bus). The test framework
 * is found when the suite is called (testing-harness.ts).
 */
import { clock } from './clock.js'
import type { Bus, BusMember, BusMembership, Invalidation } from './contracts.js'
import { type ConformanceHarness, resolveHarness } from './testing-harness.js'

export interface BusHarness {
  /** Two handles on one transport: instance A's bus and instance B's (may be the same object). */
  readonly buses: readonly [Bus, Bus]
  /** Resolves when both buses deliver (e.g. redisBus `ready()`); default: at once. */
  ready?(): Promise<void>
  /**
   * Breaks instance A's subscription the way a network does (kill its
   * connection), so the bus must report a gap. Omit for buses that cannot
   * lose messages (in-process): the gap cases are then skipped by design.
   */
  breakSubscription?(): Promise<void> | void
  /** Closes both buses and anything the harness opened. */
  close(): Promise<void>
}

export interface BusConformanceOptions {
  /** Label for the describe block. */
  name: string
  open(): Promise<BusHarness>
  /** How long to wait for a delivery before failing (default 5 000 ms). */
  deliveryTimeoutMs?: number
  /** The test framework to register with; see `ConformanceHarness`. Default: globals, else vitest. */
  harness?: ConformanceHarness
}

/** A member that records what reaches it. */
class Recorder implements BusMember {
  readonly received: Invalidation[] = []
  gaps = 0
  readonly instanceId: string
  readonly cacheName: string
  membership: BusMembership | undefined
  constructor(instanceId: string, cacheName: string) {
    this.instanceId = instanceId
    this.cacheName = cacheName
  }
  onInvalidation(invalidation: Invalidation): void {
    this.received.push(invalidation)
  }
  onGap(): void {
    this.gaps++
  }
}

let nextId = 0

/**
 * Registers the suite for one bus with the test framework: `framework` (or
 * `options.harness`), else vitest/jest-style globals, else vitest itself.
 */
export function runBusConformance(options: BusConformanceOptions, framework?: ConformanceHarness): void {
  const { describe, it, expect } = resolveHarness('runBusConformance', framework ?? options.harness)
  const timeout = options.deliveryTimeoutMs ?? 5_000

  /** Polls `condition` every 5 ms until true, or fails after the delivery timeout. */
  async function until(condition: () => boolean, what: string): Promise<void> {
    const deadline = clock() + timeout
    while (!condition()) {
      if (clock() > deadline) throw new Error(`${options.name}: ${what} did not happen within ${timeout} ms`)
      await new Promise((resolve) => setTimeout(resolve, 5))
    }
  }

  async function withBuses(test: (h: BusHarness, join: (bus: 0 | 1, cacheName?: string) => Recorder) => Promise<void>): Promise<void> {
    const harness = await options.open()
    const joined: Recorder[] = []
    const join = (bus: 0 | 1, cacheName = 'conformance'): Recorder => {
      const member = new Recorder(`member-${nextId++}`, cacheName)
      member.membership = harness.buses[bus].join(member)
      joined.push(member)
      return member
    }
    try {
      await harness.ready?.()
      await test(harness, join)
    } finally {
      for (const member of joined) member.membership?.leave()
      await harness.close()
    }
  }

  describe(`Bus conformance: ${options.name}`, () => {
    it('delivers key, tag and clear invalidations to the other instance, intact and in order', async () => {
      await withBuses(async (_, join) => {
        const a = join(0)
        const b = join(1)
        const sent: Invalidation[] = [
          { kind: 'key', cache: 'conformance', key: 'user:1' },
          { kind: 'tags', cache: 'conformance', tags: ['orders', 'ns:company:42'] },
          { kind: 'clear', cache: 'conformance' },
        ]
        await a.membership!.publish(sent.slice(0, 2))
        await a.membership!.publish(sent.slice(2))
        await until(() => b.received.length >= 3, 'delivery of 3 invalidations')
        expect(b.received).toEqual(sent)
      })
    })

    it('no self-echo: an instance never receives its own invalidations', async () => {
      await withBuses(async (_, join) => {
        const a = join(0)
        const b = join(1)
        await a.membership!.publish([{ kind: 'key', cache: 'conformance', key: 'mine' }])
        await until(() => b.received.length === 1, "delivery of A's invalidation to B")
        // Anchor: B's reply reaches A after A's own message would have (one ordered channel).
        await b.membership!.publish([{ kind: 'key', cache: 'conformance', key: 'reply' }])
        await until(() => a.received.length >= 1, "delivery of B's reply to A")
        expect(a.received).toEqual([{ kind: 'key', cache: 'conformance', key: 'reply' }])
        expect(b.received).toEqual([{ kind: 'key', cache: 'conformance', key: 'mine' }])
      })
    })

    it('routes by cache name: members of another cache hear nothing', async () => {
      await withBuses(async (_, join) => {
        const a = join(0, 'orders')
        const other = join(1, 'users')
        const same = join(1, 'orders')
        await a.membership!.publish([{ kind: 'key', cache: 'orders', key: 'o1' }])
        await until(() => same.received.length === 1, 'delivery to the member of the same cache')
        expect(other.received).toEqual([])
      })
    })

    it('a member that left hears nothing more, and status counts members', async () => {
      await withBuses(async (h, join) => {
        const a = join(0)
        const gone = join(1)
        const stays = join(1)
        const before = h.buses[1].status().members
        gone.membership!.leave()
        gone.membership!.leave() // idempotent
        expect(h.buses[1].status().members).toBe(before - 1)
        await a.membership!.publish([{ kind: 'key', cache: 'conformance', key: 'after-leave' }])
        await until(() => stays.received.length === 1, 'delivery to the member that stayed')
        expect(gone.received).toEqual([])
      })
    })

    it('trust: once ready, the bus has proven delivery within maxStaleness', async () => {
      await withBuses(async (h, join) => {
        const a = join(0)
        await until(() => clock() - a.membership!.trust.verifiedAt < a.membership!.maxStalenessMs, 'trust')
        expect(a.membership!.maxStalenessMs).toBeGreaterThan(0)
        expect(h.buses[0].status().trusted).toBe(true)
        expect(h.buses[0].status().connected).toBe(true)
      })
    })

    it('after close, publishing rejects', async () => {
      const harness = await options.open()
      const member = new Recorder(`member-${nextId++}`, 'conformance')
      await harness.ready?.()
      const membership = harness.buses[0].join(member)
      await harness.close()
      const failure = await membership.publish([{ kind: 'clear', cache: 'conformance' }]).then(
        () => undefined,
        (error: unknown) => error,
      )
      expect(failure).toBeInstanceOf(Error)
    })

    it('a broken subscription is a gap: every member is told before the bus is trusted again (buses that can lose messages)', async () => {
      await withBuses(async (h, join) => {
        if (h.breakSubscription === undefined) {
          // An in-process bus cannot lose a message: it must say so by trusting forever.
          expect(h.buses[0].join(new Recorder(`member-${nextId++}`, 'probe')).trust.verifiedAt).toBe(Number.POSITIVE_INFINITY)
          return
        }
        const a = join(0)
        const b = join(1)
        await h.breakSubscription()
        await until(() => a.gaps >= 1, 'the gap reaching the member')
        await until(() => clock() - a.membership!.trust.verifiedAt < a.membership!.maxStalenessMs, 'trust after the gap')
        expect(h.buses[0].status().gapsSeen).toBeGreaterThanOrEqual(1)
        // Delivery works again after the gap.
        await b.membership!.publish([{ kind: 'key', cache: 'conformance', key: 'after-gap' }])
        await until(() => a.received.some((i) => i.kind === 'key' && i.key === 'after-gap'), 'delivery after the gap')
      })
    })
  })
}
