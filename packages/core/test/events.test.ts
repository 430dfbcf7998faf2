import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { CHANNELS, createCache } from '../src/index.js'
import { FakeBus, controlledSharedTier, fakeLocalTier } from './fakes.js'

const subscriptions: Array<[string, (message: unknown) => void]> = []
function listen(name: string): unknown[] {
  const seen: unknown[] = []
  const listener = (message: unknown) => seen.push(message)
  subscribe(name, listener)
  subscriptions.push([name, listener])
  return seen
}
afterEach(() => {
  for (const [name, listener] of subscriptions.splice(0)) unsubscribe(name, listener)
})

describe('diagnostics channels', () => {
  it('publish hits, misses, writes and received invalidations', async () => {
    const hits = listen(CHANNELS.hit)
    const misses = listen(CHANNELS.miss)
    const writes = listen(CHANNELS.write)
    const invalidations = listen(CHANNELS.invalidation)
    const bus = new FakeBus()
    const l2 = controlledSharedTier()
    const c = createCache<string>({ name: 'events', tiers: [fakeLocalTier(), l2], bus, invalidation: { ttlOnly: true } })
    await c.getOrSet('a', async () => 'A')
    await c.getOrSet('a', async () => 'unused')
    await c.set('b', 'B')
    await c.delete('b')
    bus.deliver({ kind: 'key', cache: 'events', key: 'a' })
    expect(misses).toEqual([expect.objectContaining({ cache: 'events', key: 'a', outcome: 'stored' })])
    expect(hits).toEqual([{ cache: 'events', key: 'a', tier: 'l1', stale: false }])
    expect(writes).toEqual([
      { cache: 'events', kind: 'set', key: 'b' },
      { cache: 'events', kind: 'delete', key: 'b' },
    ])
    expect(invalidations).toEqual([{ cache: 'events', kind: 'key', key: 'a' }])
  })
})

describe('logger', () => {
  it('a pino-style logger receives recovered errors with cache, key, tier and code', async () => {
    const logger = { warn: vi.fn() }
    const l2 = controlledSharedTier()
    const c = createCache<string>({ name: 'logged', tiers: [l2], logger, invalidation: { ttlOnly: true } })
    l2.bound.failWith = new Error('ECONNREFUSED')
    expect(await c.getOrSet('k', async () => 'v')).toBe('v')
    expect(logger.warn).toHaveBeenCalledWith(
      expect.objectContaining({ cache: 'logged', key: 'k', tier: 'fake-shared', code: 'ERR_TIER' }),
      expect.stringContaining('ECONNREFUSED'),
    )
    expect(() => createCache({ name: 'bad', tiers: [fakeLocalTier()], logger: {} as never })).toThrow(/logger/)
  })
})
