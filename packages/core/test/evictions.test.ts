/**
 * stats().l1Evictions and l1Bytes: read from the local tier's optional
 * counters() (memoryTier's own are proven in packages/memory-adapter), or,
 * in observe mode, from the ghost of the first tier.
 */
import { describe, expect, it } from 'vitest'
import { createCache, type LocalTier, type TierEntry } from '../src/index.js'
import { fakeLocalTier, FakeLocal } from './fakes.js'

/** The fake L1 with an entry bound, least recently set out first, counting what it pushes out and the bytes it holds (1 per entry). */
class BoundedLocal extends FakeLocal {
  evictions = 0
  constructor(readonly capacity: number) {
    super()
  }
  override set(key: string, entry: TierEntry, options?: { ifAbsent?: boolean }) {
    super.set(key, entry, options)
    while (this.map.size > this.capacity) {
      this.map.delete(this.map.keys().next().value!)
      this.evictions++
    }
  }
  counters() {
    return { evictions: this.evictions, bytes: this.map.size }
  }
}

function boundedTier(capacity: number): LocalTier {
  const bound = new BoundedLocal(capacity)
  return { kind: 'local', name: 'bounded', capacity, bind: () => bound }
}

const plan = { invalidation: { ttlOnly: true } }

describe('stats(): l1Evictions and l1Bytes', () => {
  it("are the local tier's counters when it has them", async () => {
    const c = createCache<number>({ name: 'counted', tiers: [boundedTier(10)], ttl: '1h', ...plan })
    for (let i = 0; i < 25; i++) await c.getOrSet(`k${i}`, async () => i)
    expect(c.stats()).toMatchObject({ l1Entries: 10, l1Evictions: 15, l1Bytes: 10 })
  })

  it('are undefined when the local tier does not count them, or there is none', async () => {
    const c = createCache<number>({ name: 'uncounted', tiers: [fakeLocalTier()], ...plan })
    await c.set('a', 1)
    expect(c.stats()).toMatchObject({ l1Evictions: undefined, l1Bytes: undefined })
  })

  it("observe mode: l1Evictions is the ghost's (what the first tier would have pushed out), l1Bytes unknown", async () => {
    const c = createCache<number>({ name: 'observed', tiers: [boundedTier(10)], ttl: '1h', mode: 'observe', ...plan })
    for (let i = 0; i < 25; i++) await c.getOrSet(`k${i}`, async () => i)
    expect(c.stats()).toMatchObject({ mode: 'observe', l1Entries: 0, l1Evictions: 15, l1Bytes: undefined })
  })
})
