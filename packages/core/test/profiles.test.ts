import { describe, expect, it } from 'vitest'
import { createCache } from '../src/index.js'
import { fakeLocalTier } from './fakes.js'

describe('group profiles', () => {
  it('past 64 namespaces, further groups are profiled together as "(other)" (no runaway recursion)', async () => {
    const cache = createCache<string>({ name: 'groups', tiers: [fakeLocalTier()], invalidation: { ttlOnly: true } })
    for (let i = 0; i < 70; i++) expect(await cache.namespace(`tenant:${i}`).getOrSet('k', () => `v${i}`)).toBe(`v${i}`)
    const groups = cache.adviseGroups().map((advice) => advice.group)
    expect(groups).toHaveLength(65)
    expect(groups.filter((group) => group === '(other)')).toHaveLength(1)
    expect(cache.adviseGroups().find((advice) => advice.group === '(other)')?.numbers.lookups).toBe(6)
  })
})
