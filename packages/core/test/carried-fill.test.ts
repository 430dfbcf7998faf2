/**
 * Carrying values on the bus, core's side (docs/coherence.md, "Carrying
 * values on the bus"): a carried value enters L1 only as a guarded fill,
 * right after its invalidation evicted the key — mechanism 2 (a read in
 * flight that began before it still cannot fill, a later invalidation evicts
 * it) and liveness (an untrusted L1 takes nothing, and what it holds is not
 * served once trust lapses). Never a comparison of versions or times.
 */
import { describe, expect, it, vi } from 'vitest'
import { clock, type Invalidation, type TierEntry } from '../src/adapter.js'
import { createCache } from '../src/index.js'
import { FakeBus, controlledSharedTier, deferred, fakeLocalTier } from './fakes.js'

function reader(options: { l1Ttl?: string } = {}) {
  const l1 = fakeLocalTier()
  const l2 = controlledSharedTier()
  const bus = new FakeBus()
  const cache = createCache<string>({ name: 'carry', invalidation: { notes: 'test' }, tiers: [l1, l2], bus, ttl: '60s', onError: () => {}, ...options })
  return { cache, l1: l1.bound, l2: l2.bound, bus }
}

const fresh = (value: string, tags?: string[]): TierEntry => {
  const now = clock()
  return { value, createdAt: now, expiresAt: now + 60_000, ...(tags === undefined ? {} : { tags }) }
}

/** What a carrying bus does with one message: evict, then offer the value, in the same turn. */
function carry(bus: FakeBus, invalidation: Invalidation & { kind: 'key' }, entry: TierEntry): void {
  for (const member of bus.members) {
    if (member.cacheName !== invalidation.cache) continue
    member.onInvalidation(invalidation)
    member.onCarriedValue?.(invalidation.key, entry)
  }
}

describe('carried values: a guarded fill', () => {
  it('a carried value lands in L1: the next read makes no L2 call', async () => {
    const { cache, l2, bus } = reader()
    carry(bus, { kind: 'key', cache: 'carry', key: 'k' }, fresh('new'))
    const calls = l2.calls.length
    expect(await cache.get('k')).toBe('new')
    expect(l2.calls.length).toBe(calls)
    expect(cache.stats().l1Hits).toBe(1)
  })

  it('in-flight guard: a read in flight that began before the carrying message does not overwrite the carried value', async () => {
    const { cache, l2, bus } = reader()
    l2.map.set('k', fresh('old'))
    const gate = deferred()
    l2.gate = gate
    const read = cache.get('k')
    await vi.waitFor(() => expect(l2.calls).toContain('get k'), { timeout: 5_000 })
    carry(bus, { kind: 'key', cache: 'carry', key: 'k' }, fresh('new'))
    gate.resolve()
    expect(await read).toBe('old') // the caller may still get what it read
    l2.gate = undefined
    expect(await cache.get('k')).toBe('new') // but L1 kept the carried value, not the older read
  })

  it('in-flight guard: an invalidation after the carrying message evicts the carried value', async () => {
    const { cache, l1, bus } = reader()
    carry(bus, { kind: 'key', cache: 'carry', key: 'k' }, fresh('new', ['t']))
    expect(l1.get('k')?.value).toBe('new')
    bus.deliver({ kind: 'tags', cache: 'carry', tags: ['t'] })
    expect(l1.get('k')).toBeUndefined()
    carry(bus, { kind: 'key', cache: 'carry', key: 'k' }, fresh('newer'))
    bus.deliver({ kind: 'key', cache: 'carry', key: 'k' })
    expect(l1.get('k')).toBeUndefined()
    expect(await cache.get('k')).toBeUndefined()
  })

  it('liveness: an untrusted L1 takes no carried value, and a carried copy is not served once trust lapses', async () => {
    const { cache, l1, l2, bus } = reader()
    bus.trust.verifiedAt = Number.NEGATIVE_INFINITY
    carry(bus, { kind: 'key', cache: 'carry', key: 'k' }, fresh('new'))
    expect(l1.get('k')).toBeUndefined()
    bus.trust.verifiedAt = Number.POSITIVE_INFINITY
    carry(bus, { kind: 'key', cache: 'carry', key: 'k' }, fresh('new'))
    expect(l1.get('k')?.value).toBe('new')
    bus.trust.verifiedAt = clock() - 5_000 // the last proof is older than maxStaleness
    l2.map.set('k', fresh('from-l2'))
    expect(await cache.get('k')).toBe('from-l2')
  })

  it('caches with l1Ttl (their L1 copies are shaped at fill time) only evict', () => {
    const { l1, bus } = reader({ l1Ttl: '1s' })
    carry(bus, { kind: 'key', cache: 'carry', key: 'k' }, fresh('new'))
    expect(l1.get('k')).toBeUndefined()
  })
})
