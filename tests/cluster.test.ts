/**
 * Redis Cluster: the SDK on a 3-primary, 3-replica cluster started here
 * (`redis-server --cluster-enabled yes` + `redis-cli --cluster create`).
 */
import { createCache } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier, type RedisBus } from '@tiercache/redis-adapter'
import type { Cluster } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { ClusterGroup } from './support/redis-cluster.js'

let group: ClusterGroup
const cleanups: Array<() => unknown> = []

beforeAll(async () => {
  group = await ClusterGroup.start()
}, 60_000)
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  await group?.stop()
})

/** A service instance: its own ioredis Cluster, shared by its tier and bus. */
async function instance({ prefix = 'cl', name = 'accounts', client = group.client() }: { prefix?: string; name?: string; client?: Cluster } = {}) {
  const bus = redisBus({ redis: client, prefix, maxStaleness: '1s' })
  const cache = createCache<number>({
    name,
    tiers: [memoryTier(), redisTier({ redis: client, prefix })],
    bus,
    ttl: '1h',
    onError: () => {},
  })
  cleanups.push(
    () => client.disconnect(),
    () => bus.close(),
    () => cache.close(),
  )
  await bus.ready()
  return { cache, bus, client }
}

/** Waits until `bus` has received a message more than it had when `before` was taken. */
async function nextMessage(bus: RedisBus, before: number): Promise<void> {
  await vi.waitFor(() => expect(bus.status().messagesReceived).toBeGreaterThan(before), { timeout: 5_000 })
}

describe('Redis Cluster', () => {
  it('keys of one cache spread over every primary, and every operation works without a CROSSSLOT error', async () => {
    const a = await instance({ prefix: 'spread' })
    const keys = Array.from({ length: 200 }, (_, i) => `user:${i}`)
    await Promise.all(keys.map((key, i) => a.cache.set(key, i, { tags: [`team:${i % 5}`] })))
    for (const port of group.primaryPorts()) {
      expect(Number(group.server(port).cli('DBSIZE'))).toBeGreaterThan(20)
    }
    // getMany, tags, delete and clear across groups, read from L2 by an instance
    // without an L1 (what reaches its L1 is the next tests' subject).
    const b = await instance({ prefix: 'spread' })
    const l2Only = createCache<number>({ name: 'accounts', tiers: [redisTier({ redis: b.client, prefix: 'spread' })], ttl: '1h' })
    cleanups.push(() => l2Only.close())
    expect(await l2Only.getMany(keys.slice(0, 50))).toEqual(keys.slice(0, 50).map((_, i) => i))
    await a.cache.invalidateTags(['team:0'])
    expect(await l2Only.get('user:0')).toBeUndefined()
    expect(await l2Only.get('user:5')).toBeUndefined()
    expect(await l2Only.get('user:1')).toBe(1)
    await a.cache.delete('user:1')
    expect(await l2Only.get('user:1')).toBeUndefined()
    await a.cache.clear()
    expect(await l2Only.getMany(keys.slice(0, 50))).toEqual(keys.slice(0, 50).map(() => undefined))
    // The fill path (leases) across groups.
    expect(await Promise.all(keys.map((key, i) => b.cache.getOrSet(key, () => i * 2)))).toEqual(keys.map((_, i) => i * 2))
    expect(await a.cache.get('user:7')).toBe(14)
  }, 30_000)

  it('invalidations travel over sharded pub/sub: one subscriber per primary, shard channels only, and a write on one instance evicts the other L1', async () => {
    const a = await instance({ prefix: 'shard' })
    const b = await instance({ prefix: 'shard' })
    expect(b.bus.status().shards).toBe(3)
    for (const port of group.primaryPorts()) {
      const server = group.server(port)
      expect(server.cli('PUBSUB', 'CHANNELS')).toBe('') // no classic channel anywhere
      expect(server.cli('PUBSUB', 'SHARDCHANNELS', 'shard:invalidations*').split('\n').length).toBeGreaterThan(5)
    }
    for (const key of ['k1', 'k2', 'k3', 'k4', 'k5', 'k6']) {
      const before = b.bus.status().messagesReceived
      await a.cache.set(key, 1)
      await nextMessage(b.bus, before)
      expect(await b.cache.getOrSet(key, () => -1)).toBe(1)
      const again = b.bus.status().messagesReceived
      await a.cache.set(key, 2)
      await nextMessage(b.bus, again)
      expect(await b.cache.get(key)).toBe(2)
    }
    expect(a.bus.status().messagesPublishedAtomically).toBeGreaterThan(0)
  }, 30_000)

  it('a clear and a tag invalidation reach every instance, from every group', async () => {
    const a = await instance({ prefix: 'groups' })
    const b = await instance({ prefix: 'groups' })
    const keys = Array.from({ length: 64 }, (_, i) => `k${i}`)
    await Promise.all(keys.map((key, i) => a.cache.set(key, i, { tags: ['all'] })))
    // Until the writes' messages have all arrived, the in-flight guard keeps some reads out of b's L1: read until all are in.
    await vi.waitFor(async () => {
      expect(await Promise.all(keys.map((key) => b.cache.getOrSet(key, () => -1)))).toEqual(keys.map((_, i) => i))
      expect(b.cache.stats().l1Entries).toBe(64)
    })
    await a.cache.invalidateTags(['all'])
    await vi.waitFor(() => expect(b.cache.stats().l1Entries).toBe(0))
    expect(await Promise.all(keys.map((key) => b.cache.getOrSet(key, () => -1)))).toEqual(keys.map(() => -1))
    await a.cache.clear()
    await vi.waitFor(() => expect(b.cache.stats().l1Entries).toBe(0))
  }, 30_000)

  it('a clear is written in every group, each with its own message: an instance receives one per group', async () => {
    const a = await instance({ prefix: 'clear' })
    const b = await instance({ prefix: 'clear' })
    const before = b.bus.status().messagesReceived
    await a.cache.clear()
    // One per group: an instance that refilled from a group not yet cleared gets that group's message after its refill.
    await vi.waitFor(() => expect(b.bus.status().messagesReceived - before).toBeGreaterThanOrEqual(64), { timeout: 5_000 })
    // Then no more: a marker on each group's channel, published after the clear resolved, reaches b after
    // that group's message (a shard delivers its channels' messages in the order it executed the publishes);
    // foreign, each is counted as received and dropped.
    const dropped = b.bus.status().messagesDropped
    const groups = Array.from({ length: 64 }, (_, n) => `clear:invalidations{clear/${n}}`)
    const reached = await Promise.all(groups.map((channel) => a.client.spublish(channel, 'barrier')))
    expect(reached.every((subscribers) => Number(subscribers) >= 2)).toBe(true) // a and b listen on every group's channel
    await vi.waitFor(() => expect(b.bus.status().messagesDropped).toBe(dropped + 64), { timeout: 5_000 })
    expect(b.bus.status().messagesReceived - before).toBe(64 + 64)
  })

  it('liveness is per shard: killing the subscribers on one primary only opens a gap, and every L1 is emptied when it closes', async () => {
    const a = await instance({ prefix: 'liveness' })
    const b = await instance({ prefix: 'liveness' })
    const before = b.bus.status().messagesReceived
    await a.cache.set('kept', 1)
    await nextMessage(b.bus, before)
    expect(await b.cache.getOrSet('kept', () => -1)).toBe(1)
    expect(b.cache.stats().l1Entries).toBe(1)
    const gaps = b.bus.status().gapsSeen
    const [first] = group.primaryPorts()
    group.server(first!).cli('CLIENT', 'KILL', 'TYPE', 'pubsub')
    await vi.waitFor(() => expect(b.bus.status().gapsSeen).toBe(gaps + 1), { timeout: 10_000 })
    expect(b.cache.stats().l1Entries).toBe(0)
    expect(b.bus.status().shards).toBe(3)
  })

  it('resharding: when the slot of a group channel moves to another primary, the bus follows it (a gap), and writes in that group reach the other instance', async () => {
    const a = await instance({ prefix: 'reshard' })
    const b = await instance({ prefix: 'reshard' })
    // Find a key and its group: the slot of the group's channel is the slot of its keys.
    const key = 'moving'
    const first = b.bus.status().messagesReceived
    await a.cache.set(key, 1)
    await nextMessage(b.bus, first)
    expect(await b.cache.getOrSet(key, () => -1)).toBe(1)
    const entryGroup = await groupOf(a.client, key, 'reshard')
    const slot = Number(group.servers[0]!.cli('CLUSTER', 'KEYSLOT', `reshard:invalidations${entryGroup}`))
    const from = group.primaryOfSlot(slot)
    const to = group.primaryPorts().find((port) => port !== from)!
    const gaps = b.bus.status().gapsSeen
    group.moveSlot(slot, to)
    // The coherence bound holds across the move: a write that resolved more
    // than maxStaleness (1 s) ago is what b reads. (The old node unsubscribes
    // b from the moved channel; without following that at once, b would keep
    // trusting a subscription that no longer carries the group's messages
    // until its next periodic look at the slot map, 5 s later.)
    await a.cache.set(key, 2)
    await new Promise((resolve) => setTimeout(resolve, 1_100))
    expect(await b.cache.get(key)).toBe(2)
    await vi.waitFor(
      () => {
        expect(b.bus.status().gapsSeen).toBeGreaterThan(gaps)
        expect(b.bus.status().trusted).toBe(true)
      },
      { timeout: 10_000 },
    )
    for (let version = 3; version <= 6; version++) {
      const before = b.bus.status().messagesReceived
      await a.cache.set(key, version)
      await nextMessage(b.bus, before)
      expect(await b.cache.getOrSet(key, () => -1)).toBe(version)
    }
  })

  it('waitForReplicas on Cluster: WAIT goes to the slot of the write; a write no replica can acknowledge rejects', async () => {
    const client = group.client()
    cleanups.push(() => client.disconnect())
    const replicated = createCache<number>({
      name: 'waits',
      tiers: [redisTier({ redis: client, prefix: 'wait', waitForReplicas: { replicas: 1, timeout: '400ms' } })],
      ttl: '1h',
    })
    const impossible = createCache<number>({
      name: 'waits',
      tiers: [redisTier({ redis: client, prefix: 'wait', waitForReplicas: { replicas: 2, timeout: '100ms' } })],
      ttl: '1h',
    })
    cleanups.push(
      () => replicated.close(),
      () => impossible.close(),
    )
    await Promise.all(Array.from({ length: 20 }, (_, i) => replicated.set(`k${i}`, i)))
    await expect(impossible.set('k1', 1)).rejects.toMatchObject({
      name: 'WriteFailedError',
      message: expect.stringMatching(/may not have reached the shared tier .*reached 1 of 2 replica/),
      cause: { name: 'TierError' },
    })
  })

  it('a bus without a Redis tier publishes on its own (SPUBLISH through the Cluster, outside any write script), and other instances evict', async () => {
    const caches = [group.client(), group.client()].map((client) => {
      const bus = redisBus({ redis: client, prefix: 'l1only' })
      const cache = createCache<number>({ name: 'local', tiers: [memoryTier()], bus, ttl: '1h' })
      cleanups.push(
        () => client.disconnect(),
        () => bus.close(),
        () => cache.close(),
      )
      return { cache, bus }
    })
    const [a, b] = caches as [(typeof caches)[0], (typeof caches)[0]]
    await Promise.all([a.bus.ready(), b.bus.ready()])
    const echo = b.bus.status().messagesReceived
    await b.cache.set('x', 1)
    await nextMessage(b.bus, echo) // b's own message comes back too (and is ignored)
    expect(await b.cache.get('x')).toBe(1)
    const before = b.bus.status().messagesReceived
    await a.cache.set('x', 2)
    await nextMessage(b.bus, before)
    expect(await b.cache.get('x')).toBeUndefined()
    expect(a.bus.status().messagesPublished).toBe(1)
  })

  it('seed nodes instead of a client: the tier and bus share one Cluster per list, so write and publish are one script', async () => {
    const seeds = group.nodes.slice(0, 2).map(({ port }) => `redis://127.0.0.1:${port}`)
    const bus = redisBus({ redis: seeds, prefix: 'seeds' })
    const cache = createCache<number>({ name: 'seeded', tiers: [memoryTier(), redisTier({ redis: seeds, prefix: 'seeds' })], bus, ttl: '1h' })
    await bus.ready()
    await cache.set('x', 1)
    expect(await cache.get('x')).toBe(1)
    expect(bus.status().messagesPublishedAtomically).toBeGreaterThan(0) // same Cluster: write and publish in one script
    await cache.close()
    await bus.close()
  })

  it('a primary is killed: a replica takes over, the bus sees a gap, empties every L1, and writes flow again', async () => {
    const a = await instance({ prefix: 'failover' })
    const b = await instance({ prefix: 'failover' })
    const key = 'balance'
    const first = b.bus.status().messagesReceived
    await a.cache.set(key, 1)
    await nextMessage(b.bus, first)
    expect(await b.cache.getOrSet(key, () => -1)).toBe(1)
    expect(b.cache.stats().l1Entries).toBe(1)

    const owner = group.primaryOf(`failover:accounts:${await groupOf(a.client, key, 'failover')}${key}`)
    await group.failover(owner)

    await vi.waitFor(
      () => {
        expect(a.bus.status().gapsSeen).toBeGreaterThanOrEqual(1)
        expect(b.bus.status().gapsSeen).toBeGreaterThanOrEqual(1)
        expect(b.bus.status().trusted).toBe(true)
      },
      { timeout: 20_000 },
    )
    expect(b.cache.stats().l1Entries).toBe(0)

    await vi.waitFor(() => a.cache.set(key, 2), { timeout: 10_000 })
    for (let version = 2; version <= 10; version++) {
      const before = b.bus.status().messagesReceived
      await a.cache.set(key, version)
      await nextMessage(b.bus, before)
      expect(await b.cache.getOrSet(key, () => -1)).toBe(version)
    }
    await group.restart(owner)
  }, 90_000)

  it('rejects trackExternalWrites on Cluster with a typed error', () => {
    expect(() => redisBus({ redis: group.nodes, trackExternalWrites: true })).toThrow(/not supported on Redis Cluster/)
  })
})

/** The hash-tag group of `key` in cache 'accounts', as the tier computes it, found from where the entry landed. */
async function groupOf(client: Cluster, key: string, prefix: string): Promise<string> {
  for (let n = 0; n < 64; n++) {
    const group = `{${prefix}/${n}}`
    if ((await client.exists(`${prefix}:accounts:${group}${key}`)) === 1) return group
  }
  throw new Error(`no entry for ${key}`)
}
