import { createCache } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier } from '@tiercache/redis-adapter'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { RedisServer } from './support/redis-server.js'

/**
 * `getOrSetEntry` on real Redis: the instance that produced a value (its
 * original object) and one that decoded it from Redis (msgpack) describe it
 * with the same ETag and creation time, for every shape the default
 * serializer carries; a write elsewhere changes the ETag everywhere.
 */
let server: RedisServer
beforeAll(async () => {
  server = await RedisServer.start()
})
afterAll(() => server?.stop())

function instance() {
  const bus = redisBus({ redis: server.url })
  const cache = createCache<unknown>({
    name: 'etags',
    tiers: [memoryTier(), redisTier({ redis: server.url })],
    bus,
    ttl: '10m',
    invalidation: { on: ['test.write'] },
  })
  return { cache, bus }
}

describe('getOrSetEntry across instances, on real Redis', () => {
  it('gives the same etag and createdAt on the instance that produced a value and on one that read it from Redis', async () => {
    const a = instance()
    const b = instance()
    await Promise.all([a.bus.ready(), b.bus.ready()])
    const values: Record<string, unknown> = {
      object: { id: 1, name: 'Ada', tags: ['x'], nested: { deep: [1, 2.5, -0, null] } },
      dated: { id: 7, opened: new Date(1_700_000_000_000) },
      collections: { map: new Map([['k', { v: 1 }]]), set: new Set(['a', 'b']), bytes: new Uint8Array([1, 2, 3]), big: 10n ** 20n },
      nullValue: null,
      text: 'plain',
    }
    for (const [key, value] of Object.entries(values)) {
      const produced = await a.cache.getOrSetEntry(key, async () => value)
      const decoded = await b.cache.getOrSetEntry(key, async () => 'not this')
      expect(b.cache.stats().l2Hits).toBeGreaterThan(0)
      expect(decoded.value).not.toBe('not this')
      expect(decoded.etag, key).toBe(produced.etag)
      expect(decoded.createdAt, key).toBe(produced.createdAt)
    }
    const before = await b.cache.getOrSetEntry('object', async () => 'not this')
    await a.cache.set('object', { id: 1, name: 'Ada Lovelace' })
    await vi.waitFor(async () => expect((await b.cache.getOrSetEntry('object', async () => 'x')).etag).not.toBe(before.etag), { timeout: 5_000 })
    expect((await b.cache.getOrSetEntry('object', async () => 'x')).etag).toBe((await a.cache.getOrSetEntry('object', async () => 'x')).etag)
    await Promise.all([a.cache.close(), b.cache.close()])
    await Promise.all([a.bus.close(), b.bus.close()])
  })
})
