/**
 * `getOrSetEntry`: the value with its ETag, creation and expiry times (wall
 * clock) and its own tags, as an HTTP layer needs them; and the ETag's
 * canonical form (etag.ts).
 */
import { describe, expect, it } from 'vitest'
import { createCache } from '../src/index.js'
import { etagOf } from '../src/etag.js'
import { FakeBus, controlledSharedTier, fakeLocalTier } from './fakes.js'

function twoTier(extra: Record<string, unknown> = {}) {
  const l1 = fakeLocalTier()
  const l2 = controlledSharedTier()
  const cache = createCache<unknown>({ name: 'entries', tiers: [l1, l2], bus: new FakeBus(), ttl: '10m', invalidation: { ttlOnly: true }, ...extra })
  return { cache, l1: l1.bound, l2: l2.bound }
}

describe('etagOf: a quoted strong entity-tag of the value', () => {
  it('is the same for the same value, and changes when any part of it does', () => {
    const user = { id: 1, name: 'Ada', roles: ['admin'], joined: new Date(0), prefs: new Map([['theme', 'dark']]) }
    expect(etagOf(user)).toMatch(/^"[0-9a-f]{16}"$/)
    expect(etagOf(structuredClone(user))).toBe(etagOf(user))
    expect(etagOf({ ...user, roles: ['reader'] })).not.toBe(etagOf(user))
    expect(etagOf({ ...user, joined: new Date(1) })).not.toBe(etagOf(user))
    expect(etagOf({ ...user, prefs: new Map([['theme', 'light']]) })).not.toBe(etagOf(user))
    expect(etagOf('1')).not.toBe(etagOf(1))
    expect(etagOf(['a', 'b'])).not.toBe(etagOf(['ab']))
    expect(etagOf({ a: 'b' })).not.toBe(etagOf({ ab: '' }))
  })

  it('ignores what a msgpack round trip drops: prototypes, -0, array holes; a cached null has one too', () => {
    class User {
      constructor(readonly id: number) {}
    }
    expect(etagOf(new User(1))).toBe(etagOf({ id: 1 }))
    expect(etagOf(-0)).toBe(etagOf(0))
    // biome-ignore lint/suspicious/noSparseArray: the hole is the point
    expect(etagOf([1, , 3])).toBe(etagOf([1, undefined, 3]))
    expect(etagOf(null)).toMatch(/^"[0-9a-f]{16}"$/)
    expect(etagOf(null)).not.toBe(etagOf(undefined))
    const cyclic: Record<string, unknown> = { a: 1 }
    cyclic.self = cyclic
    expect(etagOf(cyclic)).toMatch(/^"[0-9a-f]{16}"$/)
  })
})

describe('getOrSetEntry', () => {
  it('answers the value with its etag, wall-clock times and own tags; an L1 hit answers the same description', async () => {
    const { cache } = twoTier()
    const before = Date.now()
    const first = await cache.namespace('team:1').getOrSet('x', async () => 0) // the namespace tag must not show
    expect(first).toBe(0)
    const entry = await cache.getOrSetEntry('user:1', async () => ({ id: 1 }), { tags: ['users'] })
    expect(entry.value).toEqual({ id: 1 })
    expect(entry.etag).toBe(etagOf({ id: 1 }))
    expect(entry.createdAt).toBeGreaterThanOrEqual(before)
    expect(entry.createdAt).toBeLessThanOrEqual(Date.now())
    expect(Math.abs(entry.expiresAt - entry.createdAt - 600_000)).toBeLessThan(1_000)
    expect(entry.tags).toEqual(['users'])
    const again = await cache.getOrSetEntry('user:1', async () => ({ id: 2 }))
    expect(again.value).toBe(entry.value)
    expect(again.etag).toBe(entry.etag)
    expect(again.createdAt).toBe(entry.createdAt)
    expect(Math.abs(again.expiresAt - entry.expiresAt)).toBeLessThanOrEqual(1)
    expect(cache.stats().l1Hits).toBe(1)
  })

  it('a namespaced entry shows only its own tags', async () => {
    const { cache } = twoTier()
    await cache.namespace('team:1').getOrSet('x', async () => 1, { tags: ['t'] })
    const held = await cache.getOrSetEntry(`team:1\u001ex`, async () => 2)
    expect(held.tags).toEqual(['t'])
  })

  it('a write changes the etag; a cached null has an etag and the negative TTL', async () => {
    const { cache } = twoTier({ negativeTtl: '30s' })
    const v1 = await cache.getOrSetEntry('k', async () => ({ n: 1 }))
    await cache.set('k', { n: 2 })
    const v2 = await cache.getOrSetEntry('k', async () => ({ n: 3 }))
    expect(v2.value).toEqual({ n: 2 })
    expect(v2.etag).not.toBe(v1.etag)
    const none = await cache.getOrSetEntry('missing', async () => null)
    expect(none.value).toBeNull()
    expect(none.etag).toBe(etagOf(null))
    expect(Math.abs(none.expiresAt - none.createdAt - 30_000)).toBeLessThan(1_000)
  })

  it('a value held nowhere (skipCache, observe mode) is described as produced now, for its TTL', async () => {
    const { cache } = twoTier()
    const skipped = await cache.getOrSetEntry('k', async (ctx) => {
      ctx.skipCache()
      return 'v'
    })
    expect(skipped).toMatchObject({ value: 'v', etag: etagOf('v'), tags: [] })
    const { cache: observing } = twoTier({ mode: 'observe' })
    const observed = await observing.getOrSetEntry('k', async () => 'v', { ttl: '1m', tags: ['t'] })
    expect(observed).toMatchObject({ value: 'v', etag: etagOf('v'), tags: ['t'] })
    expect(Math.abs(observed.expiresAt - observed.createdAt - 60_000)).toBeLessThan(1_000)
  })
})
