import { createCache } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { RedisServer } from '../../../tests/support/redis-server.js'
import { redisBus, redisTier } from '../src/index.js'

let server: RedisServer
const closers: Array<() => Promise<unknown>> = []

beforeAll(async () => {
  server = await RedisServer.start()
})
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
  server.cli('FLUSHALL')
})
afterAll(() => server.stop())

/** One service instance: its own bus (subscriber connection) and L1, the shared Redis. */
async function instance(options: { trackExternalWrites?: boolean; prefix?: string } = {}) {
  const prefix = options.prefix ?? 'ext'
  const bus = redisBus({ redis: server.url, prefix, trackExternalWrites: options.trackExternalWrites ?? true })
  const users = createCache<string>({ name: 'users', tiers: [memoryTier(), redisTier({ redis: server.url, prefix })], bus, ttl: '1h' })
  const orders = createCache<string>({ name: 'orders', tiers: [memoryTier(), redisTier({ redis: server.url, prefix })], bus, ttl: '1h' })
  closers.push(
    () => bus.close(),
    () => users.close(),
    () => orders.close(),
  )
  await bus.ready()
  return { bus, users, orders }
}

/**
 * Writes through an L2-only cache with no bus, then waits until every given
 * bus has received the tracking message of that write: an L1 filled after
 * that holds the value until the next write. (With tracking on, a write by
 * an instance itself also drops its own L1 copy; see the last test.)
 */
async function seed(url: string, cacheName: string, key: string, value: string, buses: Array<{ status(): { messagesReceived: number } }>) {
  const writer = createCache<string>({ name: cacheName, tiers: [redisTier({ redis: url, prefix: 'ext' })], ttl: '1h' })
  const before = buses.map((bus) => bus.status().messagesReceived)
  await writer.set(key, value)
  await writer.close()
  await vi.waitFor(() => buses.forEach((bus, i) => expect(bus.status().messagesReceived).toBeGreaterThan(before[i]!)))
}

/**
 * Resolves once `bus` has read its subscriber connection past every message
 * Redis queued to it before this call: a marker is published on the bus
 * channel and awaited. Redis queues the CLIENT TRACKING (BCAST) invalidations
 * of a write to the subscriber before it sends the writer its reply (both
 * before it next sleeps, invalidations first), `server.cli` returns only once
 * redis-cli has that reply, and one connection's messages arrive in the order
 * queued: the marker, published after, arrives after them. The marker is not
 * a message of the protocol: it is counted as dropped, which nothing else in
 * these tests is.
 */
async function caughtUp(bus: { status(): { messagesDropped: number } }, prefix = 'ext'): Promise<void> {
  const dropped = bus.status().messagesDropped
  server.cli('PUBLISH', `${prefix}:invalidations`, 'marker: not a bus message')
  await vi.waitFor(() => expect(bus.status().messagesDropped).toBe(dropped + 1))
}

describe('external writers (redisBus trackExternalWrites: CLIENT TRACKING BCAST)', () => {
  it('a redis-cli DEL or SET of a cached key, from outside the SDK, evicts the L1 copy on every instance', async () => {
    const a = await instance()
    const b = await instance()
    expect(a.bus.status().externalWrites).toBe('tracked')
    await seed(server.url, 'users', 'u1', 'v1', [a.bus, b.bus])
    expect(await a.users.getOrSet('u1', () => 'unused')).toBe('v1')
    expect(await b.users.getOrSet('u1', () => 'unused')).toBe('v1')
    expect(a.users.stats().l1Entries).toBe(1)
    expect(b.users.stats().l1Entries).toBe(1)

    server.cli('DEL', 'ext:users:u1')
    await vi.waitFor(() => {
      expect(a.users.stats().l1Entries).toBe(0)
      expect(b.users.stats().l1Entries).toBe(0)
    })
    expect(await a.users.get('u1')).toBeUndefined()
    expect(await b.users.get('u1')).toBeUndefined()

    await seed(server.url, 'users', 'u1', 'v2', [a.bus, b.bus])
    expect(await b.users.getOrSet('u1', () => 'unused')).toBe('v2')
    expect(b.users.stats().l1Entries).toBe(1)
    // Another program overwrites the key with bytes that are not an entry: every
    // L1 drops its copy, and the next read treats the foreign bytes as a miss.
    server.cli('SET', 'ext:users:u1', 'written by another program')
    await vi.waitFor(() => expect(b.users.stats().l1Entries).toBe(0))
    expect(await b.users.getOrSet('u1', () => 'recomputed')).toBe('recomputed')
  })

  it('without trackExternalWrites, the same redis-cli DEL leaves every L1 serving the old value (why the mode exists)', async () => {
    const a = await instance({ trackExternalWrites: false })
    expect(a.bus.status().externalWrites).toBeUndefined()
    await a.users.set('u1', 'v1')
    server.cli('DEL', 'ext:users:u1')
    await caughtUp(a.bus) // had the DEL been tracked, its invalidation would have been applied by now
    expect(a.users.stats().l1Entries).toBe(1)
    expect(await a.users.get('u1')).toBe('v1')
  })

  it('an outside write to a cache generation key clears that cache only; FLUSHALL empties every L1', async () => {
    const a = await instance()
    await seed(server.url, 'users', 'u1', 'v1', [a.bus])
    await seed(server.url, 'users', 'u2', 'v2', [a.bus])
    await seed(server.url, 'orders', 'o1', 'order', [a.bus])
    await a.users.getOrSet('u1', () => 'unused')
    await a.users.getOrSet('u2', () => 'unused')
    await a.orders.getOrSet('o1', () => 'unused')
    expect(a.users.stats().l1Entries).toBe(2)
    server.cli('SET', 'ext:users#gen', 'replaced-from-outside')
    await vi.waitFor(() => expect(a.users.stats().l1Entries).toBe(0))
    expect(a.orders.stats().l1Entries).toBe(1)

    expect(await a.users.getOrSet('u1', () => 'refilled')).toBe('refilled') // the old generation's entries are gone
    await vi.waitFor(() => expect(a.users.stats().l1Entries).toBe(0)) // that fill was a write: its own message drops the copy
    expect(await a.users.getOrSet('u1', () => 'unused')).toBe('refilled')
    expect(a.users.stats().l1Entries).toBe(1)
    server.cli('FLUSHALL')
    await vi.waitFor(() => {
      expect(a.users.stats().l1Entries).toBe(0)
      expect(a.orders.stats().l1Entries).toBe(0)
    })
    expect(await a.orders.get('o1')).toBeUndefined()
  })

  it('outside writes to other keys — another prefix, another cache, a lease — leave L1 alone', async () => {
    const a = await instance()
    await seed(server.url, 'users', 'u1', 'v1', [a.bus])
    await seed(server.url, 'orders', 'o1', 'order', [a.bus])
    await a.users.getOrSet('u1', () => 'unused')
    await a.orders.getOrSet('o1', () => 'unused')
    server.cli('SET', 'other:users:u1', 'x') // another deployment's prefix
    server.cli('SET', 'ext:orders:o2', 'x') // another key of another cache
    server.cli('SET', 'ext:users#lease:u1', 'x') // a lease carries no value
    server.cli('SET', 'unrelated', 'x')
    await caughtUp(a.bus) // the tracking messages of the writes above (those under the prefix) have been applied
    expect(a.users.stats().l1Entries).toBe(1)
    expect(a.orders.stats().l1Entries).toBe(1)
    expect(await a.users.get('u1')).toBe('v1')
  })

  it('tracking survives a Redis restart: after the gap, outside writes evict again', async () => {
    const restarted = await RedisServer.start()
    const bus = redisBus({ redis: restarted.url, prefix: 'ext', trackExternalWrites: true })
    const users = createCache<string>({
      name: 'users',
      tiers: [memoryTier(), redisTier({ redis: restarted.url, prefix: 'ext' })],
      bus,
      ttl: '1h',
      onError: () => {},
    })
    closers.push(
      () => restarted.stop(),
      () => bus.close(),
      () => users.close(),
    )
    await bus.ready()
    await restarted.restart()
    await vi.waitFor(() => expect(bus.status().gapsSeen).toBe(1), { timeout: 10_000 })
    await vi.waitFor(() => expect(bus.status().externalWrites).toBe('tracked'))
    await seed(restarted.url, 'users', 'u1', 'v1', [bus])
    expect(await users.getOrSet('u1', () => 'unused')).toBe('v1')
    expect(users.stats().l1Entries).toBe(1)
    restarted.cli('DEL', 'ext:users:u1')
    await vi.waitFor(() => expect(users.stats().l1Entries).toBe(0))
  })

  it("the mode's cost: an instance's own write drops its own L1 copy too, and its next read comes from L2", async () => {
    const a = await instance()
    const before = a.bus.status().messagesReceived
    await a.users.set('u1', 'v1')
    await vi.waitFor(() => expect(a.bus.status().messagesReceived).toBeGreaterThan(before))
    expect(a.users.stats().l1Entries).toBe(0)
    const l2HitsBefore = a.users.stats().l2Hits
    expect(await a.users.get('u1')).toBe('v1')
    expect(a.users.stats().l2Hits).toBe(l2HitsBefore + 1)
  })

  it('where Redis refuses CLIENT TRACKING (an ACL without CLIENT), L1 is never trusted and status says why', async () => {
    server.cli('ACL', 'SETUSER', 'no-client', 'on', '>secret', '~*', '&*', '+@all', '-client')
    const url = server.url.replace('redis://', 'redis://no-client:secret@')
    const bus = redisBus({ redis: url, prefix: 'ext', trackExternalWrites: true, maxStaleness: '200ms' })
    const users = createCache<string>({ name: 'users', tiers: [memoryTier(), redisTier({ redis: url, prefix: 'ext' })], bus, ttl: '1h' })
    closers.push(
      () => bus.close(),
      () => users.close(),
      async () => server.cli('ACL', 'DELUSER', 'no-client'),
    )
    await vi.waitFor(() => expect(bus.status().externalWrites).toMatch(/^not tracked: .*NOPERM|^not tracked: .*permission/i))
    expect(bus.status().trusted).toBe(false)
    await users.set('u1', 'v1')
    const before = users.stats().l2Hits
    expect(await users.get('u1')).toBe('v1') // served, but from L2: an untracked L1 could hold what an outside writer replaced
    expect(users.stats().l2Hits).toBe(before + 1)
  })

  it('rejects a non-boolean trackExternalWrites at construction', () => {
    expect(() => redisBus({ redis: server.url, trackExternalWrites: 'yes' as never })).toThrow(/trackExternalWrites must be true or false/)
  })
})
