/**
 * Leases on a real redis-server, edge by edge: released when unused,
 * voided by clear, revoked by writes — for getOrSet and getOrSetMany.
 */
import { createCache, type CacheOptions } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier } from '@tiercache/redis-adapter'
import { describe, expect, it } from 'vitest'
import { useRedisSuite } from './support/redis-suite.js'
import { TcpProxy } from './support/tcp-proxy.js'

const suite = useRedisSuite()

/**
 * A factory the test drives: `started` resolves when the cache calls it (so
 * its lease has been granted), and it returns `value` only once the test
 * calls `finish()`. The test orders its steps by these events, never by how
 * long a factory sleeps.
 */
function heldFactory<T>(value: T) {
  let markStarted!: () => void
  let finish!: () => void
  const started = new Promise<void>((resolve) => (markStarted = resolve))
  const finished = new Promise<void>((resolve) => (finish = resolve))
  const factory = async (): Promise<T> => {
    markStarted()
    await finished
    return value
  }
  return { factory, started, finish }
}

/** Whether Redis holds the fill lease of `key` in the 'leases' cache (layout: packages/redis-adapter/src/keyspace.ts). */
async function leaseHeld(key: string): Promise<boolean> {
  return (await suite.raw.exists(`tiercache:leases#lease:${key}`)) === 1
}

async function instance(options: Partial<CacheOptions> = {}, busUrl = suite.server.url) {
  const bus = redisBus({ redis: busUrl })
  const cache = createCache<unknown>({
    name: 'leases',
    tiers: [memoryTier(), redisTier({ redis: suite.server.url })],
    bus,
    ttl: '1h',
    lockTimeout: '3s',
    onError: () => {},
    ...options,
  })
  suite.cleanup(
    () => bus.close(),
    () => cache.close(),
  )
  await bus.ready()
  return cache
}

describe('leases are given back when unused', () => {
  it('after a failing factory, the next process takes the lease at once instead of waiting lockTimeout', async () => {
    const a = await instance()
    const b = await instance()
    await expect(a.getOrSet('k', async () => Promise.reject(new Error('db down')))).rejects.toThrow('db down')
    expect(await b.getOrSet('k', async () => 'v')).toBe('v')
    expect(b.stats().leaseWaits).toBe(0)
  })

  it('after a value that cannot be encoded, the next process takes the lease at once', async () => {
    const a = await instance()
    const b = await instance()
    class Row {
      id = 1
    }
    await expect(a.getOrSet('k', async () => new Row())).rejects.toMatchObject({ code: 'ERR_SERIALIZATION' })
    expect(await b.getOrSet('k', async () => 'v')).toBe('v')
    expect(b.stats().leaseWaits).toBe(0)
  })

  it('a clear voids the leases taken before it: new callers do not wait for the old holder', async () => {
    const holder = await instance()
    const other = await instance()
    const held = heldFactory('from before the clear')
    const slow = holder.getOrSet('k', held.factory)
    await held.started
    expect(await leaseHeld('k')).toBe(true) // the holder's lease is live until the clear
    await other.clear()
    expect(await other.getOrSet('k', async () => 'after the clear')).toBe('after the clear')
    expect(other.stats().leaseWaits).toBe(0)
    held.finish()
    expect(await slow).toBe('from before the clear')
    expect(await (await instance()).get('k')).toBe('after the clear') // the old holder's fill did not land
  })
})

describe('revoked leases keep stale values out of every tier', () => {
  it('the filler whose lease a delete revoked keeps its value out of its own L1 too', async () => {
    const link = await TcpProxy.start(suite.server.port)
    suite.cleanup(() => link.stop())
    // serve-stale-l1: the filler keeps trusting its L1 although its bus is cut, so only the revoked lease protects it.
    const filler = await instance({ onBusDown: 'serve-stale-l1' }, link.url)
    const deleter = await instance()
    const held = heldFactory('computed before the delete')
    const filling = filler.getOrSet('k', held.factory)
    await held.started
    expect(await leaseHeld('k')).toBe(true)
    link.partition()
    await deleter.delete('k')
    held.finish()
    expect(await filling).toBe('computed before the delete')
    expect(await suite.raw.exists('tiercache:leases:k')).toBe(0)
    expect(await filler.get('k')).toBeUndefined()
    link.heal()
  })

  it('getOrSetMany: a delete issued while the loader runs leaves no stale value anywhere', async () => {
    const link = await TcpProxy.start(suite.server.port)
    suite.cleanup(() => link.stop())
    const filler = await instance({ onBusDown: 'serve-stale-l1' }, link.url)
    const deleter = await instance()
    const held = heldFactory(['loaded a', 'loaded b'])
    const loading = filler.getOrSetMany(['a', 'b'], async (keys) => {
      expect(keys).toEqual(['a', 'b'])
      return held.factory()
    })
    await held.started
    expect([await leaseHeld('a'), await leaseHeld('b')]).toEqual([true, true])
    link.partition()
    await deleter.delete('a')
    held.finish()
    expect(await loading).toEqual(['loaded a', 'loaded b'])
    expect(await suite.raw.exists('tiercache:leases:a')).toBe(0) // revoked: not written
    expect(await suite.raw.exists('tiercache:leases:b')).toBe(1) // untouched: written
    expect(await filler.get('a')).toBeUndefined()
    expect(await deleter.get('a')).toBeUndefined()
    link.heal()
  })

  it('a fill begun before a tag invalidation does not land after it', async () => {
    const link = await TcpProxy.start(suite.server.port)
    suite.cleanup(() => link.stop())
    const filler = await instance({ onBusDown: 'serve-stale-l1' }, link.url)
    const writer = await instance()
    const held = heldFactory('read from the database before the update')
    const filling = filler.getOrSet('k', held.factory, { tags: ['company:42'] })
    await held.started
    expect(await leaseHeld('k')).toBe(true)
    link.partition() // the filler will not hear the invalidation: only the lease can stop its fill
    await writer.invalidateTags(['company:42'])
    held.finish()
    expect(await filling).toBe('read from the database before the update')
    expect(await suite.raw.exists('tiercache:leases:k')).toBe(0)
    expect(await writer.get('k')).toBeUndefined()
    link.heal()
  })
})
