/**
 * Rule 7 — one rule for everything served locally: an L1 hit, a grace value,
 * a fail-safe value and a joined load are each served at `now` only if
 * `now < max(verifiedAt, t0) + maxStaleness`. Liveness lapses here the way a
 * silent partition makes it lapse: `verifiedAt` simply stops moving, and no
 * gap is ever reported.
 */
import { describe, expect, it, vi } from 'vitest'
import { clock } from '../src/adapter.js'
import { FactoryTimeoutError, createCache } from '../src/index.js'
import { FakeBus, controlledSharedTier, deferred, fakeLocalTier } from './fakes.js'

function cache(options: Record<string, unknown> = {}) {
  const l1 = fakeLocalTier()
  const l2 = controlledSharedTier()
  const bus = new FakeBus()
  const c = createCache<string>({ name: 'rule7', tiers: [l1, l2], bus, ttl: '1h', grace: '10m', onError: () => {}, ...options })
  /** The last answered probe is now older than maxStaleness: what a silent partition looks like from inside. */
  const lapse = () => {
    bus.trust.verifiedAt = clock() - 2 * bus.maxStalenessMs
  }
  return { cache: c, l1: l1.bound, l2: l2.bound, lapse }
}

/** Puts `value` past its TTL but within grace in the given tier maps. */
function expire(maps: Array<{ map: Map<string, unknown> }>, key: string, value: string) {
  const now = clock()
  for (const { map } of maps) map.set(key, { value, createdAt: now - 10_000, expiresAt: now - 1, staleUntil: now + 600_000 })
}

const databaseDown = async (): Promise<string> => {
  throw new Error('database down')
}

describe('rule 7 — everything served locally obeys the staleness bound', () => {
  it('fail-safe: an invalidation that arrives while the factory runs keeps the old value out of the backoff', async () => {
    const l1 = fakeLocalTier()
    const l2 = controlledSharedTier()
    const bus = new FakeBus()
    const options = { ttl: '1h', grace: '10m', refreshStale: 'wait', softTimeout: '10ms', failSafeBackoff: '1h', onError: () => {} } as const
    const c = createCache<string>({ name: 'rule7', tiers: [l1, l2], bus, ...options })
    expire([l1.bound, l2.bound], 'k', 'old')
    const factory = deferred<string>()
    expect(await c.getOrSet('k', () => factory.promise)).toBe('old') // the soft timeout answered; the factory runs on
    // Another instance writes k: L2 holds the new value, and its invalidation arrives here.
    l2.bound.map.set('k', { value: 'new', createdAt: Date.now(), expiresAt: clock() + 60_000, staleUntil: clock() + 60_000 })
    bus.deliver({ kind: 'key', cache: 'rule7', key: 'k' })
    factory.reject(new Error('database down'))
    await vi.waitFor(() => expect(c.stats().failSafe).toBe(1), { timeout: 5_000 })
    expect(await c.getOrSet('k', databaseDown)).toBe('new')
    await c.close()
  })

  it('fail-safe: the backoff value is not served once liveness lapses, though no gap was reported', async () => {
    const { cache: c, l1, l2, lapse } = cache({ refreshStale: 'wait', failSafeBackoff: '1h' })
    expire([l1, l2], 'k', 'old')
    expect(await c.getOrSet('k', databaseDown)).toBe('old') // fail-safe, backoff for 1 h
    expect(await c.getOrSet('k', databaseDown)).toBe('old') // from the backoff, while trusted
    expect(c.stats().staleServed).toBe(1)
    lapse()
    l2.failWith = new Error('partitioned') // and Redis is out of reach too
    await expect(c.getOrSet('k', databaseDown)).rejects.toThrow('database down')
    expect(c.stats().staleServed).toBe(1)
  })

  it('joined load: a refresh that already answered stale is not joined once liveness lapses', async () => {
    const { cache: c, l1, l2, lapse } = cache()
    expire([l1, l2], 'k', 'old')
    const hanging = vi.fn(() => new Promise<string>(() => {}))
    expect(await c.getOrSet('k', hanging)).toBe('old') // answered stale, the refresh hangs
    expect(await c.getOrSet('k', hanging)).toBe('old') // joins it while trusted
    await vi.waitFor(() => expect(hanging).toHaveBeenCalledTimes(1))
    lapse()
    l2.failWith = new Error('partitioned')
    await expect(c.getOrSet('k', databaseDown)).rejects.toThrow('database down')
  })

  it('grace: an L1 value past its TTL is not served stale-while-revalidate once liveness lapses', async () => {
    const { cache: c, l1, lapse, l2 } = cache()
    expire([l1], 'k', 'old')
    lapse()
    l2.failWith = new Error('partitioned')
    await expect(c.getOrSet('k', databaseDown)).rejects.toThrow('database down')
    expect(c.stats().staleServed).toBe(0)
  })

  it('soft timeout: a stale L1 value is not handed out when liveness lapsed while the factory ran', async () => {
    const { cache: c, l1, l2, lapse } = cache({ refreshStale: 'wait', softTimeout: '20ms', hardTimeout: '200ms' })
    expire([l1], 'k', 'old')
    l2.failWith = new Error('partitioned')
    const started = deferred()
    const factory = () => {
      started.resolve()
      return new Promise<string>(() => {})
    }
    const read = c.getOrSet('k', factory)
    await started.promise
    lapse() // after the stale value was picked, before the soft timeout hands it out
    await expect(read).rejects.toBeInstanceOf(FactoryTimeoutError)
  })

  it('a grace value from an L2 read issued within maxStaleness is still served while liveness has lapsed (its t0 bounds it)', async () => {
    const { cache: c, l2, lapse } = cache({ refreshStale: 'wait' })
    expire([l2], 'k', 'old')
    lapse()
    // The L2 read was issued just now: any write it missed completed after it.
    expect(await c.getOrSet('k', databaseDown)).toBe('old')
    expect(c.stats().failSafe).toBe(1)
  })

  it('an L1 hit is not served once liveness lapses (the inline form of the rule)', async () => {
    const { cache: c, l1, lapse } = cache()
    l1.map.set('k', { value: 'old', createdAt: clock(), expiresAt: clock() + 60_000 })
    expect(await c.get('k')).toBe('old')
    lapse()
    expect(await c.get('k')).toBeUndefined() // L2 has nothing: the L1 copy was bypassed
  })
})
