/**
 * Hostile L2 content on a real redis-server: entries written by another
 * program or corrupted in Redis read as misses, are counted, never throw into
 * the caller, and are overwritten by the next fill.
 */
import { createCache } from '@tiercache/core'
import fc from 'fast-check'
import { Redis } from 'ioredis'
import { Packr } from 'msgpackr'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RedisServer } from '../../../tests/support/redis-server.js'
import { redisTier } from '../src/index.js'

let server: RedisServer
let raw: Redis

beforeAll(async () => {
  server = await RedisServer.start()
  raw = new Redis(server.url)
})
afterAll(async () => {
  raw.disconnect()
  await server.stop()
})

const packr = new Packr({ moreTypes: true })

/**
 * What another program might leave under an entry key. `generation` is the
 * cache's current one: an entry under any other is not live and is never
 * decoded at all; these are the bytes that get as far as the decoder.
 */
const hostileBytes = (generation: string) =>
  fc.oneof(
    fc.uint8Array({ maxLength: 200 }).map((bytes) => Buffer.from(bytes)),
    // our header over a foreign body, or a body truncated mid-value
    fc.tuple(fc.anything(), fc.nat({ max: 40 })).map(([value, cut]) => {
      const body = packr.pack([1, Date.now(), 0, value])
      return Buffer.concat([Buffer.from(`${generation},9999999999999,0:`), body.subarray(0, Math.max(0, body.length - 1 - cut))])
    }),
    // a future format version, or a plain msgpack value with no envelope
    fc.anything().map((value) => Buffer.concat([Buffer.from(`${generation},9999999999999,0:`), packr.pack([2, Date.now(), 0, value])])),
    fc.anything().map((value) => Buffer.from(packr.pack(value))),
  )

describe('hostile entries in Redis', () => {
  it('2 000 corrupted entries: each reads as a miss (counted, no throw), and the next fill replaces it', async () => {
    const cache = createCache<string>({ name: 'victims', tiers: [redisTier({ redis: server.url, prefix: 'h' })], ttl: '1h', invalidation: { ttlOnly: true } })
    await cache.set('seed', 'x') // creates the cache's generation
    const generation = (await raw.get('h:victims#gen'))!
    let n = 0
    await fc.assert(
      fc.asyncProperty(hostileBytes(generation), fc.boolean(), async (bytes, withExpiry) => {
        const key = `k${n++}`
        if (withExpiry) await raw.set(`h:victims:${key}`, bytes, 'PX', 60_000)
        else await raw.set(`h:victims:${key}`, bytes)
        expect(await cache.get(key)).toBeUndefined()
        expect(await cache.getOrSet(key, () => 'fresh')).toBe('fresh')
        // What Redis holds now is ours again: another instance reads it.
        expect(await cache.get(key)).toBe('fresh')
      }),
      { numRuns: 2_000 },
    )
    // Entries under the current generation that do not decode are counted (random bytes, and entries without an
    // expiry, which were never ours, are not live and not decoded): about a quarter of the cases.
    expect(cache.stats().l2CorruptEntries).toBeGreaterThan(200)
    expect(cache.stats().l2CorruptEntries).toBeLessThanOrEqual(2_000)
    // And exactly: one truncated entry of the current generation is one count.
    const counted = cache.stats().l2CorruptEntries
    await raw.set(
      'h:victims:truncated',
      Buffer.concat([Buffer.from(`${generation},9999999999999,0:`), packr.pack([1, Date.now(), 0, 'a long enough value']).subarray(0, 8)]),
      'PX',
      60_000,
    )
    expect(await cache.get('truncated')).toBeUndefined()
    expect(cache.stats().l2CorruptEntries).toBe(counted + 1)
    expect(cache.stats().factoryErrors).toBe(0)
    await cache.close()
  }, 60_000)
})
