/**
 * Rule 7 on a real redis-server: grace, fail-safe and a hanging factory
 * while the reading instance is silently partitioned (through a TCP proxy)
 * from Redis and from its database. Grace may answer with the old value, but
 * never later than maxStaleness after a newer write resolved elsewhere: the
 * partition never closes a gap, so the bound must be checked when a value is
 * served, not when a gap opens or closes.
 */
import { createCache } from '@tiercache/core'
import { clock } from '@tiercache/core/adapter'
import { memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier } from '@tiercache/redis-adapter'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { RedisServer } from './support/redis-server.js'
import { TcpProxy } from './support/tcp-proxy.js'

let server: RedisServer
beforeAll(async () => {
  server = await RedisServer.start()
})
afterAll(() => server.stop())

const MAX_STALENESS_MS = 1_000
/** Reads observed after the bound has passed: enough to catch a value held by a backoff or a hanging refresh. */
const READS_PAST_BOUND = 12

describe('rule 7 — grace and fail-safe during a silent partition', () => {
  it('grace + fail-safe + a hanging factory: no read of the old value begins later than maxStaleness after the newer write resolved', async () => {
    const link = await TcpProxy.start(server.port)
    let readerDatabaseUp = true
    let database = 'v1'
    // The reader's database is behind the same partition: its factory hangs until hardTimeout.
    const readerFactory = () => (readerDatabaseUp ? Promise.resolve(database) : new Promise<string>(() => {}))
    const options = { ttl: '50ms', grace: '1h', failSafeBackoff: '1h', softTimeout: '20ms', hardTimeout: '150ms', invalidation: { on: ['set'] } }

    const readerBus = redisBus({ redis: link.url, maxStaleness: MAX_STALENESS_MS })
    const reader = createCache<string>({
      name: 'grace',
      tiers: [memoryTier(), redisTier({ redis: link.url, timeout: '100ms' })],
      bus: readerBus,
      onError: () => {},
      ...options,
    })
    const writerBus = redisBus({ redis: server.url, maxStaleness: MAX_STALENESS_MS })
    const writer = createCache<string>({
      name: 'grace',
      tiers: [memoryTier(), redisTier({ redis: server.url })],
      bus: writerBus,
      onError: () => {},
      ...options,
    })
    try {
      await Promise.all([readerBus.ready(), writerBus.ready()])
      expect(await reader.getOrSet('k', readerFactory)).toBe('v1')
      // Past its 50 ms TTL, within grace: what the reader may answer stale with.
      const storedAt = clock()
      await vi.waitFor(() => expect(clock()).toBeGreaterThan(storedAt + 60), { timeout: 5_000, interval: 10 })

      link.partition()
      readerDatabaseUp = false
      // While liveness still holds, grace answers with v1 and the refresh hangs, then fails safe.
      expect(await reader.getOrSet('k', readerFactory)).toBe('v1')

      database = 'v2'
      await writer.set('k', 'v2') // its invalidation is stuck in the partition
      const writeResolvedAt = clock()

      const reads: Array<{ start: number; value: string }> = []
      while (reads.filter((r) => r.start > writeResolvedAt + MAX_STALENESS_MS).length < READS_PAST_BOUND) {
        const start = clock()
        // Two callers at once: the second joins the first one's load.
        const values = await Promise.all([0, 1].map(() => reader.getOrSet('k', readerFactory).catch((error: Error) => `error: ${error.name}`)))
        for (const value of values) reads.push({ start, value })
      }
      const lateOld = reads.filter((r) => r.value === 'v1' && r.start >= writeResolvedAt + MAX_STALENESS_MS)
      expect(lateOld).toEqual([])
      // The scenario served stale values (grace and fail-safe were in play), just never past the bound.
      expect(reader.stats().staleServed + reader.stats().failSafe).toBeGreaterThan(0)
      expect(reads.some((r) => r.value === 'v2')).toBe(false) // nothing newer could reach the reader

      // Recovery: the partition heals, the reader converges on v2.
      link.heal()
      readerDatabaseUp = true
      await vi.waitFor(async () => expect(await reader.getOrSet('k', readerFactory)).toBe('v2'), { timeout: 10_000, interval: 50 })
    } finally {
      link.heal()
      await reader.close()
      await writer.close()
      await readerBus.close()
      await writerBus.close()
      await link.stop()
    }
  })
})
