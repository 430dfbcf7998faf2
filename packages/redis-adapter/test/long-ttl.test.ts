/**
 * TTLs past the 24.8-day timer bound (issue 21), end to end on a real
 * redis-server: a value set with ttl '400d' (grace '30d') is stored with
 * PX to the end of its grace and a header that says fresh for 400 days by
 * Redis's clock, and another instance reads it back (fast path and, tagged,
 * the script path) with that expiry. The in-process memoryStore (L2) and
 * memoryTier (L1) are checked the same way. Expiry is read from what the
 * tiers hold, never waited for.
 */
import { createCache } from '@tiercache/core'
import { memoryStore, memoryTier } from '@tiercache/memory-adapter'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { RedisServer } from '../../../tests/support/redis-server.js'
import { redisTier } from '../src/index.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR

let server: RedisServer
let raw: Redis
const closers: Array<() => Promise<unknown>> = []

beforeAll(async () => {
  server = await RedisServer.start()
  raw = new Redis(server.url)
})
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
  await raw.flushall()
})
afterAll(async () => {
  raw.disconnect()
  await server.stop()
})

/** One service instance: its own L1, the shared Redis tier, no bus (TTL-only data). */
function instance() {
  const cache = createCache<string>({
    name: 'yearly',
    tiers: [memoryTier(), redisTier({ redis: server.url, prefix: 'lt' })],
    ttl: '400d',
    grace: '30d',
    invalidation: { ttlOnly: true },
  })
  closers.push(() => cache.close())
  return cache
}

/** Redis's own clock, in ms. */
async function serverNow(): Promise<number> {
  const [seconds, micros] = await raw.time()
  return Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)
}

/** How long Redis keeps `key` (PTTL), and how long its header says it is fresh for, both by Redis's clock. */
async function storedLife(key: string): Promise<{ keptMs: number; freshMs: number }> {
  const stored = await raw.getBuffer(key)
  if (stored === null) throw new Error(`${key} is not in Redis`)
  const freshUntil = Number(stored.subarray(0, stored.indexOf(':')).toString('latin1').split(',')[1])
  return { keptMs: await raw.pttl(key), freshMs: freshUntil - (await serverNow()) }
}

describe('a 400-day TTL through the Redis tier', () => {
  it.each([
    ['untagged (fast read path)', undefined],
    ['tagged (read script)', ['t']],
  ])('%s: stored for 430 days, fresh for 400, read back by another instance with that expiry', async (_path, tags) => {
    const writer = instance()
    await writer.set('k', 'v', tags === undefined ? undefined : { tags })

    const { keptMs, freshMs } = await storedLife('lt:yearly:k')
    // Upper bounds exact; the lower ones leave an hour for a slow machine between the write and these reads.
    expect(keptMs).toBeLessThanOrEqual(430 * DAY)
    expect(keptMs).toBeGreaterThan(430 * DAY - HOUR)
    expect(freshMs).toBeLessThanOrEqual(400 * DAY)
    expect(freshMs).toBeGreaterThan(400 * DAY - HOUR)

    const reader = instance()
    const before = Date.now()
    const entry = await reader.getOrSetEntry('k', async () => 'factory')
    expect(entry.value).toBe('v')
    expect(reader.stats().factoryCalls).toBe(0)
    expect(entry.expiresAt - before).toBeLessThanOrEqual(400 * DAY + 1)
    expect(entry.expiresAt - before).toBeGreaterThan(400 * DAY - HOUR)
    // Now in the reader's L1 too, with the same expiry.
    expect(await reader.get('k')).toBe('v')
    expect(reader.stats().l1Hits).toBe(1)
  })

  it("a factory's setTtl('365d') and a per-call compound ttl reach Redis", async () => {
    const cache = instance()
    await cache.getOrSet('chosen', async (ctx) => {
      ctx.setTtl('365d')
      return 'v'
    })
    await cache.set('compound', 'v', { ttl: '100d12h' })
    const chosen = await storedLife('lt:yearly:chosen')
    expect(chosen.freshMs).toBeLessThanOrEqual(365 * DAY)
    expect(chosen.freshMs).toBeGreaterThan(365 * DAY - HOUR)
    const compound = await storedLife('lt:yearly:compound')
    expect(compound.freshMs).toBeLessThanOrEqual(100 * DAY + 12 * HOUR)
    expect(compound.freshMs).toBeGreaterThan(100 * DAY + 11 * HOUR)
  })
})

describe('a 400-day TTL through the memory adapter (memoryTier + memoryStore)', () => {
  it('another cache on the same store reads it back with that expiry', async () => {
    const store = memoryStore()
    const make = () => {
      const cache = createCache<string>({ name: 'yearly', tiers: [memoryTier(), store], ttl: '400d', invalidation: { ttlOnly: true } })
      closers.push(() => cache.close())
      return cache
    }
    const before = Date.now()
    await make().set('k', 'v')
    const after = Date.now()
    const entry = await make().getOrSetEntry('k', async () => 'factory')
    expect(entry.value).toBe('v')
    // The store keeps expiries on core's monotonic clock, described here on the wall clock: an hour either way for the two to drift apart.
    expect(entry.expiresAt).toBeGreaterThan(before + 400 * DAY - HOUR)
    expect(entry.expiresAt).toBeLessThan(after + 400 * DAY + HOUR)
  })
})
