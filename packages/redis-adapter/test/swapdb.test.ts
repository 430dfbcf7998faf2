import { createCache } from '@tiercache/core'
import { clock } from '@tiercache/core/adapter'
import { memoryTier } from '@tiercache/memory-adapter'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { RedisServer } from '../../../tests/support/redis-server.js'
import { redisBus, redisTier } from '../src/index.js'

/**
 * trackExternalWrites, hole 3 of issue 16: Redis's tracking reports key
 * writes and a null message for a flush, but nothing for SWAPDB, so without
 * the dataset identity every L1 copy outlived a swap for its whole TTL.
 */

const PREFIX = 'swap'
const MAX_STALENESS_MS = 1_000
/** Bounds the waits for a gap to open and close (a few probes); generous for a loaded machine. */
const WAIT = { timeout: 10_000, interval: 20 }
/** The bus's dataset identity key: its name is part of the layout users see (and grant in ACLs). */
const IDENTITY = `${PREFIX}:#dataset-identity`
const TOKEN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/

let server: RedisServer
/**
 * The outside party, on databases 0 and 1. Async clients rather than
 * redis-cli: a spawnSync blocks the event loop, and with it the probes, long
 * enough on a loaded machine to let trust lapse between two reads.
 */
let db0: Redis
let db1: Redis
const closers: Array<() => Promise<unknown>> = []

beforeAll(async () => {
  server = await RedisServer.start()
  db0 = new Redis(server.url)
  db1 = new Redis(`${server.url}/1`)
})
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
  await db0.flushall()
})
afterAll(async () => {
  await Promise.all([db0.quit(), db1.quit()])
  await server.stop()
})

/** Writes `key` = `value` through an L2-only cache with no bus, in database `db` (no identity key is created there). */
async function seed(db: number, key: string, value: string): Promise<void> {
  const writer = createCache<string>({ name: 'users', tiers: [redisTier({ redis: `${server.url}/${db}`, prefix: PREFIX })], ttl: '1h' })
  await writer.set(key, value)
  await writer.close()
}

/**
 * One service instance on database 0: its own bus and L1. Each gets its own
 * command connection (a client it owns), so instances racing to re-create the
 * identity do so over separate connections, as separate processes would.
 */
async function instance() {
  const redis = new Redis(server.url, { maxRetriesPerRequest: 1 })
  const bus = redisBus({ redis, prefix: PREFIX, trackExternalWrites: true, maxStaleness: MAX_STALENESS_MS })
  const users = createCache<string>({ name: 'users', tiers: [memoryTier(), redisTier({ redis, prefix: PREFIX })], bus, ttl: '1h' })
  // A bare member, to read the bus's liveness (verifiedAt) directly.
  const watch = bus.join({ instanceId: `watch-${Math.random()}`, cacheName: 'watch', onInvalidation() {}, onGap() {} })
  closers.push(
    () => redis.quit(),
    () => bus.close(),
    () => users.close(),
    async () => watch.leave(),
  )
  await bus.ready()
  return { bus, users, trust: watch.trust }
}

/** Reads `key` twice: from L2 (filling L1), then as an L1 hit, proof that L1 holds it and is trusted. */
async function primeL1(users: Awaited<ReturnType<typeof instance>>['users'], key: string, expected: string) {
  expect(await users.get(key)).toBe(expected) // L2 hit, fills L1
  const l1Hits = users.stats().l1Hits
  expect(await users.get(key)).toBe(expected)
  expect(users.stats().l1Hits).toBe(l1Hits + 1)
}

interface Read {
  at: number
  value: string | undefined
}

/**
 * Reads `key` until it returns `until` (or, past any bound, gives up so the
 * assertion below shows the stale reads rather than a test timeout). Yields
 * to the event loop between reads, so probes and messages are handled.
 */
async function readUntil(users: Awaited<ReturnType<typeof instance>>['users'], key: string, until: string | undefined, since: number): Promise<Read[]> {
  const reads: Read[] = []
  const giveUpAt = since + 10 * MAX_STALENESS_MS
  for (;;) {
    const value = await users.get(key)
    const at = clock()
    reads.push({ at, value })
    if (value === until || at > giveUpAt) return reads
    await new Promise((resolve) => setImmediate(resolve))
  }
}

/**
 * The contract: no read returned `stale` at or after `resolvedAt + maxStaleness`.
 * Summarised (how many, the first), so a failure prints a short diff.
 */
function staleReadsPastTheBound(reads: Read[], stale: string, resolvedAt: number): { count: number; first: Read | undefined } {
  const late = reads.filter((read) => read.value === stale && read.at >= resolvedAt + MAX_STALENESS_MS)
  return { count: late.length, first: late[0] }
}
const NONE = { count: 0, first: undefined }

describe('trackExternalWrites: a dataset replaced without a tracking message (dataset identity)', () => {
  it.each([
    ['that has no identity key', false],
    ['that carries another identity', true],
  ])('SWAPDB with a database %s: L1 stops serving the old value within maxStaleness', async (_, otherIdentity) => {
    await seed(1, 'u1', 'v2')
    if (otherIdentity) {
      // A bus that once ran on database 1 left its own token there.
      const other = redisBus({ redis: `${server.url}/1`, prefix: PREFIX, trackExternalWrites: true })
      await other.ready()
      await other.close()
    }
    await seed(0, 'u1', 'v1')
    const a = await instance()
    const before = await db0.get(IDENTITY)
    expect(before).toMatch(TOKEN)
    const swappedIn = await db1.get(IDENTITY)
    if (otherIdentity) expect(swappedIn).toMatch(TOKEN)
    else expect(swappedIn).toBeNull()
    expect(swappedIn).not.toBe(before)
    await primeL1(a.users, 'u1', 'v1')

    expect(await db0.swapdb(0, 1)).toBe('OK')
    const swapResolvedAt = clock()
    const reads = await readUntil(a.users, 'u1', 'v2', swapResolvedAt)

    expect(staleReadsPastTheBound(reads, 'v1', swapResolvedAt)).toEqual(NONE)
    expect(reads.at(-1)!.value).toBe('v2')
    expect(reads.every((read) => read.value === 'v1' || read.value === 'v2')).toBe(true)
    // The swap was a gap: closed once the identity found in database 0 is accepted, L1 trusted again.
    await vi.waitFor(() => expect(a.bus.status()).toMatchObject({ gapsSeen: 1, trusted: true, externalWrites: 'tracked' }), WAIT)
    await primeL1(a.users, 'u1', 'v2')
    // Database 0 now carries the token swapped in, or a new one where none came: never the old one.
    const after = await db0.get(IDENTITY)
    expect(after).toMatch(TOKEN)
    if (otherIdentity) expect(after).toBe(swappedIn)
    expect(after).not.toBe(before)
    expect(await db1.get(IDENTITY)).toBe(before) // the old dataset, token and all, is in database 1
  })

  it('FLUSHDB still empties every L1 (tracking sends null), and the identity is re-created', async () => {
    await seed(0, 'u1', 'v1')
    const a = await instance()
    const before = await db0.get(IDENTITY)
    await primeL1(a.users, 'u1', 'v1')

    expect(await db0.flushdb()).toBe('OK')
    const flushResolvedAt = clock()
    const reads = await readUntil(a.users, 'u1', undefined, flushResolvedAt)

    expect(staleReadsPastTheBound(reads, 'v1', flushResolvedAt)).toEqual(NONE)
    expect(reads.at(-1)!.value).toBeUndefined()
    await vi.waitFor(() => expect(a.bus.status()).toMatchObject({ gapsSeen: 1, trusted: true, externalWrites: 'tracked' }), WAIT)
    expect(await db0.get(IDENTITY)).toMatch(TOKEN)
    expect(await db0.get(IDENTITY)).not.toBe(before)
    await seed(0, 'u1', 'v3')
    await vi.waitFor(async () => expect(await a.users.get('u1')).toBe('v3'), WAIT)
    await primeL1(a.users, 'u1', 'v3')
  })

  it('a lost identity key (DEL from outside, or evicted) is a gap on every instance, not a stale read; racing instances converge on one new token', async () => {
    await seed(0, 'u1', 'v1')
    const instances = [await instance(), await instance(), await instance()]
    const before = await db0.get(IDENTITY)
    for (const { users } of instances) await primeL1(users, 'u1', 'v1')

    expect(await db0.del(IDENTITY)).toBe(1)
    await vi.waitFor(() => {
      for (const { bus } of instances) expect(bus.status()).toMatchObject({ gapsSeen: 1, trusted: true, externalWrites: 'tracked' })
    }, WAIT)
    // The gap emptied every L1 (nothing was read since), though the data had not changed: the price of failing closed.
    for (const { users } of instances) expect(users.stats().l1Entries).toBe(0)

    // One new token, accepted by all: a probe of each instance sent after this
    // point is answered (its identity read matched), and no further gap opened.
    const token = await db0.get(IDENTITY)
    expect(token).toMatch(TOKEN)
    expect(token).not.toBe(before)
    const settledAt = clock()
    await vi.waitFor(() => {
      for (const { trust } of instances) expect(trust.verifiedAt).toBeGreaterThan(settledAt)
    }, WAIT)
    for (const { bus } of instances) expect(bus.status().gapsSeen).toBe(1)
    expect(await db0.get(IDENTITY)).toBe(token)
    for (const { users } of instances) await primeL1(users, 'u1', 'v1')
  })

  it('where the identity cannot be re-created (noeviction, memory full), L1 stays untrusted and status says why', async () => {
    await seed(0, 'u1', 'v1')
    const a = await instance()
    await primeL1(a.users, 'u1', 'v1')
    await db0.config('SET', 'maxmemory-policy', 'noeviction')
    await db0.config('SET', 'maxmemory', '1')
    try {
      expect(await db0.del(IDENTITY)).toBe(1) // DEL is allowed over maxmemory; the SET NX that would re-create it is not
      await vi.waitFor(
        () =>
          expect(a.bus.status()).toMatchObject({
            trusted: false,
            externalWrites: expect.stringMatching(/^not tracked: dataset identity swap:#dataset-identity: OOM/),
          }),
        WAIT,
      )
      const l2Hits = a.users.stats().l2Hits
      expect(await a.users.get('u1')).toBe('v1') // not served from L1: the read went to L2
      expect(a.users.stats().l2Hits).toBe(l2Hits + 1)
    } finally {
      await db0.config('SET', 'maxmemory', '0')
    }
    await vi.waitFor(() => expect(a.bus.status()).toMatchObject({ gapsSeen: 1, trusted: true, externalWrites: 'tracked' }), WAIT)
    expect(await db0.get(IDENTITY)).toMatch(TOKEN)
  })

  it('without trackExternalWrites no identity key is written (the mode owns it)', async () => {
    const bus = redisBus({ redis: server.url, prefix: PREFIX })
    closers.push(() => bus.close())
    await bus.ready()
    expect(await db0.exists(IDENTITY)).toBe(0)
  })
})
