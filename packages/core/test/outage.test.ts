/**
 * When Redis goes down (issue 18), in core with fakes: outage reuse keeps
 * the bound and shields the factory, `{ serveStale }` serves within its own
 * bound, a tier known down is never sent a command, write recovery replays
 * failed invalidations before L1 is trusted again, and the log gets one line
 * per state change and one summary per flood. The same behaviour on real
 * Redis processes is in tests/outage-*.test.ts.
 */
import { describe, expect, it, vi } from 'vitest'
import type { ConnectionChange } from '../src/adapter.js'
import { clock } from '../src/adapter.js'
import { InvalidOptionError, WriteFailedError, createCache, type CacheOptions } from '../src/index.js'
import { ControlledShared, FakeBus, controlledSharedTier, deferred, entry, fakeLocalTier } from './fakes.js'

/** A shared tier that can report its connection down, and counts every command it is sent. */
class DownableShared extends ControlledShared {
  up = true
  listeners = new Set<(change: ConnectionChange) => void>()
  probes = 0
  available() {
    return this.up
  }
  async probe() {
    this.probes++
    if (!this.up || this.failWith !== undefined) throw new Error('ECONNREFUSED')
  }
  onConnectionChange(listener: (change: ConnectionChange) => void) {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }
  /** What an adapter that can say why would say (the Redis adapter does); undefined: it says nothing. */
  reason: string | undefined
  unavailableReason() {
    return this.up ? undefined : this.reason
  }
  setUp(up: boolean) {
    this.up = up
    const detail = up ? undefined : this.reason
    for (const listener of this.listeners) listener({ state: up ? 'restored' : 'lost', endpoint: '127.0.0.1:6390', cause: up ? undefined : 'refused', detail })
  }
}

function outageCache(options: Partial<CacheOptions> = {}, maxStalenessMs = 3_600_000) {
  const l1 = fakeLocalTier()
  const l2 = new DownableShared()
  const bus = new FakeBus()
  bus.maxStalenessMs = maxStalenessMs
  const c = createCache<string>({ name: 'outage', tiers: [l1, controlledSharedTier(l2)], bus, ttl: '1h', onError: () => {}, circuitBreaker: false, ...options })
  /** The bus can no longer prove delivery: a gap is open (what a killed Redis looks like). */
  const busDown = () => {
    bus.trust.verifiedAt = Number.NEGATIVE_INFINITY
  }
  return { cache: c, l1: l1.bound, l2, bus, busDown }
}

const counting = (value: string) => {
  const factory = vi.fn(async () => value)
  return factory
}

describe('outage reuse (onBusDown: reuse, the default)', () => {
  it('a value this instance loaded during the outage answers again until t0 + maxStaleness: one factory run, not one per read', async () => {
    const { cache: c, l2, busDown } = outageCache()
    busDown()
    l2.failWith = new Error('ECONNREFUSED')
    const factory = counting('v1')
    for (let i = 0; i < 5; i++) expect(await c.getOrSet('k', factory)).toBe('v1')
    expect(factory).toHaveBeenCalledTimes(1)
    expect(c.stats().outageReuses).toBe(4)
    await c.close()
  })

  it('the reuse window ends at t0 + maxStaleness: then the factory runs again', async () => {
    const { cache: c, l2, busDown } = outageCache({}, 30)
    busDown()
    l2.failWith = new Error('ECONNREFUSED')
    const factory = counting('v')
    await c.getOrSet('k', factory)
    await vi.waitFor(
      async () => {
        await c.getOrSet('k', factory)
        expect(factory).toHaveBeenCalledTimes(2)
      },
      { timeout: 10_000, interval: 5 },
    )
    await c.close()
  })

  it('with refreshAhead, a reused value is renewed behind its answer before its window ends: no read waits', async () => {
    const { cache: c, l2, busDown } = outageCache({ refreshAhead: 0.01 }, 10_000)
    busDown()
    l2.failWith = new Error('ECONNREFUSED')
    const renewal = deferred<string>()
    let calls = 0
    const factory = vi.fn(async () => (++calls === 1 ? 'v1' : renewal.promise))
    expect(await c.getOrSet('k', factory)).toBe('v1')
    // Past 1 % of the window (100 ms of 10 s), a read answers with v1 at once and starts the renewal (held here).
    await vi.waitFor(
      async () => {
        expect(await c.getOrSet('k', factory)).toBe('v1')
        expect(factory).toHaveBeenCalledTimes(2)
      },
      { timeout: 10_000, interval: 5 },
    )
    expect(await c.getOrSet('k', factory)).toBe('v1') // still answered while the renewal runs
    expect(factory).toHaveBeenCalledTimes(2)
    renewal.resolve('v2')
    await vi.waitFor(async () => expect(await c.getOrSet('k', factory)).toBe('v2'))
    await c.close()
  })

  it('values from before the outage do not qualify: L1 held them without a t0', async () => {
    const { cache: c, l1, l2, busDown } = outageCache()
    await c.set('k', 'before')
    expect(l1.get('k')?.value).toBe('before')
    busDown()
    l2.failWith = new Error('ECONNREFUSED')
    expect(await c.getOrSet('k', async () => 'fresh')).toBe('fresh')
    await c.close()
  })

  it('an invalidation that still arrives drops the reused value', async () => {
    const { cache: c, l2, bus, busDown } = outageCache()
    busDown()
    l2.failWith = new Error('ECONNREFUSED')
    await c.getOrSet('k', async () => 'v1')
    bus.deliver({ kind: 'key', cache: 'outage', key: 'k' })
    expect(await c.getOrSet('k', async () => 'v2')).toBe('v2')
    bus.deliver({ kind: 'tags', cache: 'outage', tags: ['t'] })
    await c.getOrSet('tagged', async () => 'a', { tags: ['t'] })
    bus.deliver({ kind: 'tags', cache: 'outage', tags: ['t'] })
    expect(await c.getOrSet('tagged', async () => 'b', { tags: ['t'] })).toBe('b')
    await c.close()
  })

  it("'bypass-l1' switches reuse off: every read in the outage runs the factory", async () => {
    const { cache: c, l2, busDown } = outageCache({ onBusDown: 'bypass-l1' })
    busDown()
    l2.failWith = new Error('ECONNREFUSED')
    const factory = counting('v')
    for (let i = 0; i < 3; i++) await c.getOrSet('k', factory)
    expect(factory).toHaveBeenCalledTimes(3)
    expect(c.stats().outageReuses).toBe(0)
    await c.close()
  })

  it('get and getMany reuse the same values; a value read from L2 during the outage qualifies with its read time', async () => {
    const { cache: c, l2, busDown } = outageCache()
    busDown()
    l2.map.set('fromL2', entry('l2-value'))
    expect(await c.get('fromL2')).toBe('l2-value')
    l2.failWith = new Error('ECONNREFUSED')
    expect(await c.get('fromL2')).toBe('l2-value')
    expect(await c.getMany(['fromL2'])).toEqual(['l2-value'])
    await c.close()
  })
})

describe('onBusDown: { serveStale }', () => {
  it('serves older L1 values within its own bound, and not past it', async () => {
    const { cache: c, l2, bus } = outageCache({ onBusDown: { serveStale: '2s' } }, 10)
    await c.set('k', 'before')
    bus.trust.verifiedAt = clock() // the last probe answered now; then the bus goes quiet
    l2.failWith = new Error('ECONNREFUSED')
    expect(await c.get('k')).toBe('before') // past maxStaleness (10 ms) soon, within serveStale (2 s: room for a stalled test box)
    await vi.waitFor(async () => expect(await c.get('k')).toBeUndefined(), { timeout: 10_000, interval: 5 })
    await c.close()
  })

  it('counts from the last proof while a gap is open (the bus drops verifiedAt to -Infinity then)', async () => {
    const { cache: c, l2, bus } = outageCache({ onBusDown: { serveStale: '1h' } }, 10)
    await c.set('k', 'before')
    const trust = bus.trust as { verifiedAt: number; lastProvenAt?: number }
    trust.lastProvenAt = clock()
    trust.verifiedAt = Number.NEGATIVE_INFINITY // Redis killed: a gap is open
    l2.failWith = new Error('ECONNREFUSED')
    expect(await c.get('k')).toBe('before')
    trust.lastProvenAt = undefined // a bus that keeps no last proof: nothing to count from
    expect(await c.get('k')).toBeUndefined()
    await c.close()
  })

  it('is validated', () => {
    const make = (onBusDown: unknown) => () => createCache({ name: 'x', tiers: [fakeLocalTier()], onBusDown: onBusDown as never })
    expect(make({ serveStale: 'soon' })).toThrow(InvalidOptionError)
    expect(make({ serveStale: '1s', extra: 1 })).toThrow(InvalidOptionError)
    expect(make('reuse')).not.toThrow()
  })
})

describe('fail fast: a tier known down is sent nothing', () => {
  it("the adapter's reason (endpoint, cause, what to do) reaches the log and the errors of skipped calls", async () => {
    const logger = { warn: vi.fn(), error: vi.fn(), info: vi.fn() }
    const { cache: c, l2 } = outageCache({ logger, onError: undefined })
    l2.reason = 'connection refused (ECONNREFUSED): check the host and port in the URL'
    l2.setUp(false)
    expect(logger.error.mock.calls[0]![1]).toContain('lost its connection to 127.0.0.1:6390: connection refused (ECONNREFUSED): check the host')
    const rejected = await c.delete('k').catch((error: unknown) => error)
    expect(rejected).toBeInstanceOf(WriteFailedError)
    expect((rejected as WriteFailedError).cause).toMatchObject({ code: 'ERR_TIER_UNAVAILABLE' })
    expect(((rejected as WriteFailedError).cause as Error).message).toContain('nothing was sent): connection refused (ECONNREFUSED): check the host')
    await c.close()
  })

  it('reads go to the factory and writes reject at once, with no command sent; the log says so once', async () => {
    const logger = { warn: vi.fn(), error: vi.fn(), info: vi.fn() }
    const { cache: c, l2 } = outageCache({ logger, onError: undefined })
    l2.setUp(false)
    expect(logger.error).toHaveBeenCalledTimes(1)
    expect(logger.error.mock.calls[0]![1]).toMatch(/lost its connection to 127\.0\.0\.1:6390 \(refused\)/)
    for (let i = 0; i < 10; i++) expect(await c.getOrSet(`k${i}`, async () => 'db')).toBe('db')
    const rejected = await c.delete('k0').catch((error: unknown) => error)
    expect(rejected).toBeInstanceOf(WriteFailedError)
    expect(rejected).toMatchObject({ queued: false, cause: { code: 'ERR_TIER_UNAVAILABLE' } })
    expect((rejected as Error).message).toMatch(/did not reach the shared tier/)
    expect(l2.calls).toEqual([])
    expect(c.stats().l2CallsSkipped).toBe(21) // 10 reads, 10 fills, 1 delete
    // One line for the first skipped call, the rest summed up (here: on close).
    expect(logger.warn).toHaveBeenCalledTimes(1)
    await c.close()
    expect(logger.warn).toHaveBeenCalledTimes(2)
    expect(logger.warn.mock.calls[1]![1]).toMatch(/^19 more ERR_TIER_UNAVAILABLE errors in the last 10 s/) // 10 reads, 10 fills; the delete rejected to its caller
    l2.setUp(true) // unsubscribed on close: no line
    expect(logger.info).not.toHaveBeenCalled()
  })

  it('the breaker logs one line when it opens and one when the background probe closes it; a warn-only logger still works', async () => {
    const logger = { warn: vi.fn(), error: vi.fn(), info: vi.fn() }
    const { cache: c, l2 } = outageCache({ logger, onError: undefined, circuitBreaker: { failureThreshold: 2, openFor: '20ms' } })
    l2.failWith = new Error('ETIMEDOUT')
    await c.getOrSet('a', async () => 'v')
    expect(c.stats().circuit).toBe('open')
    expect(logger.error).toHaveBeenCalledTimes(1)
    expect(logger.error.mock.calls[0]![1]).toMatch(/^circuit opened/)
    await vi.waitFor(() => expect(l2.probes).toBeGreaterThanOrEqual(1), { timeout: 10_000 })
    l2.failWith = undefined
    await vi.waitFor(() => expect(c.stats().circuit).toBe('closed'), { timeout: 10_000 })
    expect(logger.info.mock.calls.some(([, message]) => /^circuit closed/.test(message as string))).toBe(true)
    expect(logger.error).toHaveBeenCalledTimes(1)
    await c.close()
    const warnOnly = { warn: vi.fn() }
    const { cache: d, l2: l2b } = outageCache({ logger: warnOnly, onError: undefined })
    l2b.setUp(false)
    await d.getOrSet('k', async () => 'v')
    expect(warnOnly.warn).toHaveBeenCalled() // the error-level line went to warn
    await d.close()
  })
})

describe('writeRecovery', () => {
  it('a failed set is queued and rejects with queued: true; L2 is skipped for the key and L1 untrusted until the replay, which deletes', async () => {
    const { cache: c, l1, l2, bus } = outageCache({ writeRecovery: { retryEvery: '5ms' } })
    await c.set('other', 'kept')
    l2.failWith = new Error('ECONNREFUSED')
    const rejected = await c.set('k', 'new').catch((error: unknown) => error)
    expect(rejected).toBeInstanceOf(WriteFailedError)
    expect(rejected).toMatchObject({ queued: true, key: 'k' })
    expect((rejected as Error).message).toMatch(/until it is replayed/)
    expect(c.stats().writesQueued).toBe(1)
    l2.failWith = undefined
    l2.map.set('k', entry('from-before-the-write'))
    l2.up = false // keep the replay waiting while we look
    expect(await c.getOrSet('k', async () => 'db')).toBe('db') // L2 skipped for the queued key
    expect(l1.get('other')?.value).toBe('kept')
    expect(await c.get('other')).toBeUndefined() // L1 not trusted while the queue holds writes (L2 is down too)
    const published = bus.published.length
    l2.up = true
    await vi.waitFor(() => expect(c.stats().writesQueued).toBe(0), { timeout: 10_000 })
    expect(l2.calls).toContain('delete k') // the set replayed as a delete
    expect(l2.map.has('k')).toBe(false)
    expect(bus.published.slice(published).map((p) => p.invalidations)).toEqual([[{ kind: 'key', cache: 'outage', key: 'k' }]])
    expect(c.stats().writesReplayed).toBe(1)
    expect(await c.get('other')).toBe('kept') // trusted again
    await c.close()
  })

  it('replays in order, and a queue past maxQueued collapses into one clear', async () => {
    const { cache: c, l2 } = outageCache({ writeRecovery: { maxQueued: 2, retryEvery: '5ms' } })
    l2.up = false
    await c.delete('a').catch(() => {})
    await c.invalidateTags(['t']).catch(() => {})
    expect(c.stats().writesQueued).toBe(2)
    await c.delete('c').catch(() => {})
    expect(c.stats()).toMatchObject({ writesQueued: 1, writeQueueCollapses: 1 })
    l2.up = true
    await vi.waitFor(() => expect(c.stats().writesQueued).toBe(0), { timeout: 10_000 })
    expect(l2.calls).toEqual(['clear'])
    await c.close()
  })

  it('replays that keep failing end in one clear (fails closed)', async () => {
    const { cache: c, l2 } = outageCache({ writeRecovery: { maxAttempts: 2, retryEvery: '5ms' } })
    l2.failWith = new Error('READONLY')
    await c.delete('a').catch(() => {})
    await c.delete('b').catch(() => {})
    await vi.waitFor(() => expect(c.stats().writeQueueCollapses).toBe(1), { timeout: 10_000 })
    l2.failWith = undefined
    await vi.waitFor(() => expect(c.stats().writesQueued).toBe(0), { timeout: 10_000 })
    expect(l2.calls.at(-1)).toBe('clear')
    await c.close()
  })

  it('is validated', () => {
    const make = (writeRecovery: unknown) => () => createCache({ name: 'x', tiers: [fakeLocalTier()], writeRecovery: writeRecovery as never })
    expect(make({ maxQueued: 0 })).toThrow(InvalidOptionError)
    expect(make({ retryEvery: 'often' })).toThrow(InvalidOptionError)
    expect(make({ maxQueue: 5 })).toThrow(InvalidOptionError)
    expect(make(true)).not.toThrow()
  })
})
