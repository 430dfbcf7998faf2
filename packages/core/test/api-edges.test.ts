/**
 * The API edges a new user trips on (issue 21): per-call options checked
 * whenever they are passed (on an L1 hit too), `set(k, undefined)` refused,
 * what `set` does to tags, and `has`, `setMany`, `deleteMany` — each with
 * bad input writing nothing.
 */
import { describe, expect, it } from 'vitest'
import { InvalidArgumentError, InvalidOptionError, createCache } from '../src/index.js'
import { FakeBus, controlledSharedTier, fakeLocalTier } from './fakes.js'

function twoTier(mode?: 'observe') {
  const l1 = fakeLocalTier()
  const l2 = controlledSharedTier()
  const bus = new FakeBus()
  const cache = createCache<unknown>({ name: 'edges', tiers: [l1, l2], bus, ttl: '1h', mode, invalidation: { ttlOnly: true } })
  return { cache, l1: l1.bound, l2: l2.bound, bus }
}

describe('per-call options are checked whenever they are passed', () => {
  it('a misspelt option fails on an L1 hit as on a miss, naming the option, the cache and the key', async () => {
    const { cache } = twoTier()
    await cache.getOrSet('k', async () => 1)
    const onHit = cache.getOrSet('k', async () => 2, { tll: '5m' } as never)
    await expect(onHit).rejects.toBeInstanceOf(InvalidOptionError)
    await expect(onHit).rejects.toMatchObject({ cache: 'edges', key: 'k', message: expect.stringContaining('unknown option "tll"') })
    await expect(cache.getOrSet('cold', async () => 2, { tll: '5m' } as never)).rejects.toBeInstanceOf(InvalidOptionError)
    expect(cache.stats().factoryCalls).toBe(1)
  })

  it('a bad value fails on a hit too; a good options object is answered from L1', async () => {
    const { cache } = twoTier()
    await cache.getOrSet('k', async () => 1)
    await expect(cache.getOrSet('k', async () => 2, { ttl: 'soon' })).rejects.toThrow(/ttl/)
    await expect(cache.getOrSet('k', async () => 2, { skipL2: 'yes' as never })).rejects.toThrow(/skipL2/)
    await expect(cache.getOrSet('k', async () => 2, { tags: ['ok', ''] })).rejects.toBeInstanceOf(InvalidArgumentError)
    expect(await cache.getOrSet('k', async () => 2, { ttl: '5m', tags: ['t'] })).toBe(1)
    expect(cache.stats().l1Hits).toBe(1)
  })

  it('get, getMany, has, delete, set and getOrSetMany reject unknown options, and a non-object', async () => {
    const { cache, l2 } = twoTier()
    await cache.set('k', 1)
    const callsBefore = l2.calls.length
    await expect(cache.get('k', { skipl1: true } as never)).rejects.toThrow(/get: unknown option "skipl1"/)
    await expect(cache.getMany(['k'], { ttl: '1m' } as never)).rejects.toBeInstanceOf(InvalidOptionError)
    await expect(cache.has('k', { tags: [] } as never)).rejects.toBeInstanceOf(InvalidOptionError)
    await expect(cache.delete('k', { ttl: '1m' } as never)).rejects.toBeInstanceOf(InvalidOptionError)
    await expect(cache.set('k', 2, { negativeTtl: '1m' } as never)).rejects.toThrow(/set: unknown option "negativeTtl"/)
    await expect(cache.getOrSetMany(['k'], async (keys) => keys, { skipL1: true } as never)).rejects.toBeInstanceOf(InvalidOptionError)
    await expect(cache.getOrSet('k', async () => 2, 'fast' as never)).rejects.toThrow(/options must be an object/)
    expect(l2.calls.slice(callsBefore)).toEqual([])
    expect(await cache.get('k')).toBe(1)
  })
})

describe('set', () => {
  it('refuses undefined with a typed error naming the cache and key, and writes nothing', async () => {
    const { cache, l1, l2, bus } = twoTier()
    const error = await cache.set('k', undefined).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(InvalidArgumentError)
    expect(error).toMatchObject({ code: 'ERR_INVALID_ARGUMENT', cache: 'edges', key: 'k', message: expect.stringContaining('use delete()') })
    expect(l2.calls).toEqual([])
    expect(l1.map.size).toBe(0)
    expect(bus.published).toEqual([])
    await cache.set('n', null)
    expect(await cache.has('n')).toBe(true)
  })

  it("writes the entry whole: a set without tags drops the old value's tags", async () => {
    const { cache } = twoTier()
    await cache.set('k', 1, { tags: ['team:1'] })
    await cache.set('k', 2)
    await cache.invalidateTags(['team:1'])
    expect(await cache.get('k')).toBe(2)
    await cache.set('k', 3, { tags: ['team:1'] })
    await cache.invalidateTags(['team:1'])
    expect(await cache.get('k')).toBeUndefined()
  })
})

describe('set with keepTags', () => {
  it("keeps the replaced entry's tags (from L1, else from L2), joined with the new ones", async () => {
    const { cache, l1 } = twoTier()
    await cache.set('k', 1, { tags: ['a'] })
    await cache.set('k', 2, { keepTags: true, tags: ['b'] })
    l1.map.clear() // the next keepTags reads the tags from L2
    await cache.set('k', 3, { keepTags: true })
    await cache.invalidateTags(['a'])
    expect(await cache.get('k')).toBeUndefined()
    await cache.set('k', 4, { keepTags: true }) // nothing left to keep
    await cache.invalidateTags(['b'])
    expect(await cache.get('k')).toBe(4)
    await expect(cache.set('k', 5, { keepTags: 'yes' as never })).rejects.toThrow(/keepTags/)
  })
})

describe('has', () => {
  it('tells a cached null from a miss, reads L2 past L1, and never runs a factory', async () => {
    const { cache, l1, l2 } = twoTier()
    await cache.getOrSet('none', async () => null)
    expect(await cache.get('none')).toBeNull()
    expect(await cache.has('none')).toBe(true)
    expect(await cache.has('missing')).toBe(false)
    l1.map.clear()
    await cache.set('x', 1, { skipL1: true })
    expect(await cache.has('x')).toBe(true)
    expect(l2.calls).toContain('get x')
    await cache.delete('x')
    expect(await cache.has('x')).toBe(false)
    expect(await cache.has('x', { skipL2: true })).toBe(false)
    expect(cache.stats().factoryCalls).toBe(1)
  })

  it('is always false in observe mode (nothing is cached), reading no tier', async () => {
    const { cache, l2 } = twoTier('observe')
    await cache.getOrSet('k', async () => 1)
    expect(await cache.has('k')).toBe(false)
    expect(l2.calls).toEqual([])
  })
})

describe('setMany and deleteMany', () => {
  it('setMany writes every entry, each with its own options over the shared ones, and tells the other instances', async () => {
    const { cache, l2, bus } = twoTier()
    await cache.setMany([['a', 1], { key: 'b', value: 2, tags: ['t'] }, ['c', null]], { ttl: '5m' })
    expect(await cache.getMany(['a', 'b', 'c'])).toEqual([1, 2, null])
    expect(l2.map.get('a')!.expiresAt - l2.map.get('a')!.createdAt).toBeGreaterThan(299_000)
    expect(l2.map.get('a')!.expiresAt - l2.map.get('a')!.createdAt).toBeLessThan(300_100)
    expect(l2.map.get('b')!.tags).toContain('t')
    expect(bus.published.flatMap((p) => p.invalidations).map((i) => (i.kind === 'key' ? i.key : i.kind))).toEqual(['a', 'b', 'c'])
  })

  it('setMany with one bad entry (an undefined value, an invalid key, an unknown option) writes nothing', async () => {
    const { cache, l2 } = twoTier()
    await expect(
      cache.setMany([
        ['a', 1],
        ['b', undefined],
      ]),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_ARGUMENT', key: 'b' })
    await expect(
      cache.setMany([
        ['a', 1],
        ['', 2],
      ]),
    ).rejects.toMatchObject({ code: 'ERR_INVALID_KEY' })
    await expect(cache.setMany([{ key: 'a', value: 1, tll: 1 } as never])).rejects.toBeInstanceOf(InvalidOptionError)
    await expect(cache.setMany([['a', 1]], { tll: 1 } as never)).rejects.toBeInstanceOf(InvalidOptionError)
    await expect(cache.setMany([7 as never])).rejects.toBeInstanceOf(InvalidArgumentError)
    await expect(cache.setMany(undefined as never)).rejects.toBeInstanceOf(InvalidArgumentError)
    expect(l2.calls).toEqual([])
  })

  it('deleteMany removes every key everywhere; one invalid key deletes nothing', async () => {
    const { cache, l2, bus } = twoTier()
    await cache.setMany([
      ['a', 1],
      ['b', 2],
      ['c', 3],
    ])
    await expect(cache.deleteMany(['a', ''])).rejects.toMatchObject({ code: 'ERR_INVALID_KEY' })
    await expect(cache.deleteMany('a' as never)).rejects.toBeInstanceOf(InvalidArgumentError)
    expect(await cache.getMany(['a', 'b', 'c'])).toEqual([1, 2, 3])
    const published = bus.published.length
    await cache.deleteMany(['a', 'b', 'a'])
    expect(await cache.getMany(['a', 'b', 'c'])).toEqual([undefined, undefined, 3])
    expect(l2.map.has('a') || l2.map.has('b')).toBe(false)
    expect(bus.published.length - published).toBe(2)
  })

  it('a failed write rejects setMany after the other writes settled (they landed)', async () => {
    const { cache, l2 } = twoTier()
    const failing = new Error('L2 down for b')
    const original = l2.set.bind(l2)
    l2.set = async (key, entry, options) => {
      if (key === 'b') throw failing
      return original(key, entry, options)
    }
    const outcome = await cache
      .setMany([
        ['a', 1],
        ['b', 2],
        ['c', 3],
      ])
      .catch((e: unknown) => e)
    expect(outcome).toMatchObject({ code: 'ERR_WRITE_FAILED', key: 'b' })
    expect([...l2.map.keys()].sort()).toEqual(['a', 'c'])
  })
})

describe('a namespace handle has the same calls', () => {
  it('has, getOrSetEntry and deleteMany scope their keys', async () => {
    const { cache } = twoTier()
    const team = cache.namespace('team:1')
    await team.set('a', 1)
    await team.set('b', null)
    expect(await team.has('b')).toBe(true)
    expect(await cache.has('b')).toBe(false)
    expect((await team.getOrSetEntry('a', async () => 2)).value).toBe(1)
    await team.deleteMany(['a', 'b'])
    expect(await team.has('a')).toBe(false)
    await expect(team.deleteMany(['ok', 'nested\u001ekey'])).rejects.toMatchObject({ code: 'ERR_INVALID_KEY' })
  })
})
