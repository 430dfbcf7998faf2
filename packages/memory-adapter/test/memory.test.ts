import { createCache, InvalidOptionError, SerializationError } from '@tiercache/core'
import { describe, expect, it } from 'vitest'
import { memoryBus, memoryStore, memoryTier } from '../src/index.js'

/** Three caches sharing one store and one bus behave as three instances of a service. */
function threeInstances() {
  const store = memoryStore()
  const bus = memoryBus()
  const instances = [0, 1, 2].map(() =>
    createCache<{ version: number }>({ name: 'users', tiers: [memoryTier(), store], bus, ttl: '1h' }),
  )
  return { store, bus, instances }
}

describe('in-process instances over memoryStore + memoryBus', () => {
  it('a write on one instance evicts the L1 copy on every other instance before it resolves', async () => {
    const { instances } = threeInstances()
    const [a, b, c] = instances as [typeof instances[0], typeof instances[0], typeof instances[0]]
    await a.set('u1', { version: 1 })
    // b and c read through the shared store into their own L1.
    expect(await b.getOrSet('u1', () => ({ version: -1 }))).toEqual({ version: 1 })
    expect(await c.getOrSet('u1', () => ({ version: -1 }))).toEqual({ version: 1 })
    await a.set('u1', { version: 2 })
    expect(await b.get('u1')).toEqual({ version: 2 })
    expect(await c.get('u1')).toEqual({ version: 2 })
    await b.delete('u1')
    expect(await a.get('u1')).toBeUndefined()
    expect(await c.get('u1')).toBeUndefined()
  })

  it('clear on one instance empties that cache everywhere, and leaves other caches alone', async () => {
    const { store, bus, instances } = threeInstances()
    const other = createCache({ name: 'orders', tiers: [memoryTier(), store], bus })
    await other.set('o1', 'order')
    await instances[0]!.set('u1', { version: 1 })
    await instances[1]!.get('u1')
    await instances[2]!.clear()
    expect(await instances[0]!.get('u1')).toBeUndefined()
    expect(await instances[1]!.get('u1')).toBeUndefined()
    expect(await other.get('o1')).toBe('order')
  })

  it('getOrSet runs the factory once across instances when the value is already in the store', async () => {
    const { instances } = threeInstances()
    let calls = 0
    const factory = () => ({ version: ++calls })
    await instances[0]!.getOrSet('u1', factory)
    await instances[1]!.getOrSet('u1', factory)
    await instances[2]!.getOrSet('u1', factory)
    expect(calls).toBe(1)
  })

  it('without the bus, another instance keeps serving its stale L1 copy (why the bus exists)', async () => {
    const store = memoryStore()
    const a = createCache({ name: 'nobus', tiers: [memoryTier(), store], ttl: '1h' })
    const b = createCache({ name: 'nobus', tiers: [memoryTier(), store], ttl: '1h' })
    await a.set('k', 1)
    expect(await b.get('k')).toBe(1)
    await a.set('k', 2)
    expect(await b.get('k')).toBe(1)
  })

  it('a function value is rejected by the store with SerializationError naming cache and key; nothing lands', async () => {
    const { instances } = threeInstances()
    const error = await instances[0]!.set('bad', { version: 1, fn: () => 1 } as never).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(SerializationError)
    expect((error as Error).message).toContain('cache "users"')
    expect((error as Error).message).toContain('key "bad"')
    expect(await instances[0]!.get('bad')).toBeUndefined()
  })

  it('bus status counts members and messages; a closed cache leaves the bus', async () => {
    const { bus, instances } = threeInstances()
    expect(bus.status().members).toBe(3)
    await instances[0]!.set('k', { version: 1 })
    expect(bus.status().messagesPublished).toBe(1)
    await instances[0]!.close()
    expect(bus.status().members).toBe(2)
  })
})

describe('memoryTier', () => {
  it('evicts the least recently used entry beyond maxEntries', async () => {
    const cache = createCache({ name: 'lru', tiers: [memoryTier({ maxEntries: 2 })] })
    await cache.set('a', 1)
    await cache.set('b', 2)
    await cache.get('a')
    await cache.set('c', 3)
    expect(await cache.get('b')).toBeUndefined()
    expect(await cache.get('a')).toBe(1)
    expect(await cache.get('c')).toBe(3)
  })

  it('one memoryTier serves one cache: binding it twice is an error', () => {
    const tier = memoryTier()
    createCache({ name: 'first', tiers: [tier] })
    expect(() => createCache({ name: 'second', tiers: [tier] })).toThrow(/already serves cache "first"/)
  })

  it.each([[0], [-1], [1.5], [Number.NaN]])('maxEntries %s is rejected', (maxEntries) => {
    expect(() => memoryTier({ maxEntries })).toThrow(InvalidOptionError)
  })

  it('L1 holds values by reference (documented): the same object comes back', async () => {
    const cache = createCache<{ n: number }>({ name: 'ref', tiers: [memoryTier()] })
    const value = { n: 1 }
    await cache.set('k', value)
    expect(await cache.get('k')).toBe(value)
  })
})
