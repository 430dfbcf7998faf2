/**
 * The in-flight guard (mechanism 2) on the paths a single-key test does not
 * reach: the batch reads (getMany, getOrSetMany) and the tag and namespace
 * invalidations, whose matching reads are not known until they finish. Each
 * test holds an L2 read (or a loader) open, delivers another instance's
 * invalidation, and checks the value read before it stays out of L1.
 */
import { describe, expect, it, vi } from 'vitest'
import { clock } from '../src/adapter.js'
import { createCache } from '../src/index.js'
import { namespaceTag } from '../src/tags.js'
import { FakeBus, controlledSharedTier, deferred, fakeLocalTier } from './fakes.js'

function twoTierCache() {
  const l1 = fakeLocalTier()
  const l2 = controlledSharedTier()
  const bus = new FakeBus()
  const cache = createCache<string>({ name: 'guard', tiers: [l1, l2], bus, ttl: '60s', onError: () => {} })
  return { cache, l1: l1.bound, l2: l2.bound, bus }
}

const fresh = (value: string, tags?: string[]) => {
  const now = clock()
  return { value, createdAt: now, expiresAt: now + 60_000, ...(tags === undefined ? {} : { tags }) }
}

/** Holds the next L2 read open and resolves once it has reached L2. */
async function holdNextRead(l2: ReturnType<typeof twoTierCache>['l2'], key: string, start: () => Promise<unknown>) {
  const gate = deferred()
  l2.gate = gate
  const read = start()
  await vi.waitFor(() => expect(l2.calls).toContain(`get ${key}`), { timeout: 5_000 })
  return { read, release: () => gate.resolve() }
}

describe('in-flight guard — batch reads', () => {
  it('in-flight guard: an invalidation during a getMany L2 read keeps the old value out of L1', async () => {
    const { cache, l1, l2, bus } = twoTierCache()
    l2.map.set('k', fresh('old'))
    const { read, release } = await holdNextRead(l2, 'k', () => cache.getMany(['k']))
    l2.map.set('k', fresh('new'))
    bus.deliver({ kind: 'key', cache: 'guard', key: 'k' })
    release()
    expect(await read).toEqual(['old']) // may answer its own caller
    expect(l1.get('k')).toBeUndefined()
    expect(await cache.get('k')).toBe('new')
  })

  it('in-flight guard: an invalidation during a getOrSetMany L2 read keeps the old value out of L1', async () => {
    const { cache, l1, l2, bus } = twoTierCache()
    l2.map.set('k', fresh('old'))
    const loader = vi.fn(async (keys: string[]) => keys.map(() => 'loaded'))
    const { read, release } = await holdNextRead(l2, 'k', () => cache.getOrSetMany(['k'], loader))
    l2.map.set('k', fresh('new'))
    bus.deliver({ kind: 'key', cache: 'guard', key: 'k' })
    release()
    expect(await read).toEqual(['old'])
    expect(loader).not.toHaveBeenCalled()
    expect(l1.get('k')).toBeUndefined()
  })

  it('in-flight guard: an invalidation while the getOrSetMany loader runs keeps its value out of L1 and L2', async () => {
    const { cache, l1, l2, bus } = twoTierCache()
    const gate = deferred<string[]>()
    const started = deferred()
    const read = cache.getOrSetMany(['k'], () => {
      started.resolve()
      return gate.promise
    })
    await started.promise
    bus.deliver({ kind: 'key', cache: 'guard', key: 'k' })
    gate.resolve(['computed-before-the-write'])
    expect(await read).toEqual(['computed-before-the-write'])
    expect(l1.get('k')).toBeUndefined()
    expect(l2.map.has('k')).toBe(false)
  })
})

describe('in-flight guard — tags and namespaces', () => {
  it('in-flight guard: invalidateTags elsewhere during an L2 read keeps the tagged value out of L1', async () => {
    const { cache, l1, l2, bus } = twoTierCache()
    l2.map.set('k', fresh('old', ['orders']))
    const { read, release } = await holdNextRead(l2, 'k', () => cache.getOrSet('k', () => 'unused'))
    l2.map.delete('k')
    bus.deliver({ kind: 'tags', cache: 'guard', tags: ['orders'] })
    release()
    expect(await read).toBe('old')
    expect(l1.get('k')).toBeUndefined()
  })

  it('in-flight guard: invalidateTags elsewhere while the factory runs keeps its value out of L1 and L2', async () => {
    const { cache, l1, l2, bus } = twoTierCache()
    const gate = deferred<string>()
    const started = deferred()
    const read = cache.getOrSet(
      'k',
      () => {
        started.resolve()
        return gate.promise
      },
      { tags: ['orders'] },
    )
    await started.promise
    bus.deliver({ kind: 'tags', cache: 'guard', tags: ['orders'] })
    gate.resolve('computed-before-the-invalidation')
    expect(await read).toBe('computed-before-the-invalidation')
    expect(l1.get('k')).toBeUndefined()
    expect(l2.map.has('k')).toBe(false)
  })

  it('in-flight guard: invalidateNamespace elsewhere during an L2 read keeps the namespaced value out of L1', async () => {
    const { cache, l1, l2, bus } = twoTierCache()
    const company = cache.namespace('company:42')
    // Find the stored key name the namespace uses, via a first fill.
    expect(await company.getOrSet('orders', () => 'old')).toBe('old')
    const [storedKey] = [...l2.map.keys()]
    l1.clear()
    const { read, release } = await holdNextRead(l2, storedKey!, () => company.getOrSet('orders', () => 'unused'))
    l2.map.delete(storedKey!)
    bus.deliver({ kind: 'tags', cache: 'guard', tags: [namespaceTag('company:42')] })
    release()
    expect(await read).toBe('old')
    expect(l1.get(storedKey!)).toBeUndefined()
  })

  it('a tag invalidation does not let a load begun before it be joined afterwards', async () => {
    const { cache, l2, bus } = twoTierCache()
    const gate = deferred<string>()
    const first = cache.getOrSet('k', () => gate.promise, { tags: ['orders'] })
    await vi.waitFor(() => expect(l2.calls).toContain('get k'), { timeout: 5_000 })
    bus.deliver({ kind: 'tags', cache: 'guard', tags: ['orders'] })
    const second = cache.getOrSet('k', () => 'after-the-invalidation')
    gate.resolve('before-the-invalidation')
    expect(await first).toBe('before-the-invalidation')
    expect(await second).toBe('after-the-invalidation')
  })
})
