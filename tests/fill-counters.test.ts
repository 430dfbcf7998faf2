/**
 * What failing closed costs is visible in stats(): a fill the shared tier
 * refused at store time (its lease revoked by a write elsewhere, or a
 * bookkeeping key gone) is counted in l2FillsRefused, on a real redis-server.
 */
import { createCache } from '@tiercache/core'
import { redisTier } from '@tiercache/redis-adapter'
import { describe, expect, it } from 'vitest'
import { useRedisSuite } from './support/redis-suite.js'

const suite = useRedisSuite()

describe('fill counters', () => {
  it('a fill whose lease a delete revoked is refused, answered to its caller, and counted in l2FillsRefused', async () => {
    const filler = createCache<string>({ name: 'fills', tiers: [redisTier({ redis: suite.server.url })], invalidation: { on: ['test'] } })
    const writer = createCache<string>({ name: 'fills', tiers: [redisTier({ redis: suite.server.url })], invalidation: { on: ['test'] } })
    suite.cleanup(
      () => filler.close(),
      () => writer.close(),
    )
    let release!: (value: string) => void
    let started!: () => void
    const factoryStarted = new Promise<void>((resolve) => (started = resolve))
    const fill = filler.getOrSet('k', () => {
      started()
      return new Promise<string>((resolve) => (release = resolve))
    })
    await factoryStarted // the lease is taken: the factory runs under it
    await writer.delete('k') // revokes it
    release('computed before the delete')
    expect(await fill).toBe('computed before the delete')
    expect(filler.stats().l2FillsRefused).toBe(1)
    expect(filler.stats().l2FillsWithoutLease).toBe(0)
    expect(await writer.get('k')).toBeUndefined() // nothing stale stored
  })
})
