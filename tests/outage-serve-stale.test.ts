/**
 * `onBusDown: { serveStale }` on a real redis-server: the opt-in breach of
 * the default bound. While the reading instance is silently partitioned
 * (TCP proxy) from Redis, it serves the value its L1 held from before the
 * partition past maxStaleness after a newer write resolved elsewhere — what
 * the user chose — but never at or past verifiedAt + serveStale: no probe
 * sent after the partition began can be answered, so verifiedAt is at most
 * the partition's start, and every read of the old value must begin before
 * partition + serveStale. Then the value stops being served.
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
const SERVE_STALE_MS = 2_000
/** Reads observed past the serveStale bound, to show the old value has stopped. */
const READS_PAST_BOUND = 20

describe('onBusDown: { serveStale } during a silent partition', () => {
  it('serves the pre-partition L1 value past maxStaleness after a newer write, never at or past partition + serveStale; then stops', async () => {
    const link = await TcpProxy.start(server.port)
    const options = { ttl: '1h', onError: () => {}, invalidation: { on: ['set'] } }
    // The bus gives up a silent link after 3 x maxStaleness (3 s): later than serveStale, so the bound ends the serving.
    const readerBus = redisBus({ redis: link.url, maxStaleness: MAX_STALENESS_MS })
    const reader = createCache<string>({
      name: 'serve-stale',
      tiers: [memoryTier(), redisTier({ redis: link.url, timeout: '100ms' })],
      bus: readerBus,
      onBusDown: { serveStale: `${SERVE_STALE_MS}ms` },
      ...options,
    })
    const writerBus = redisBus({ redis: server.url, maxStaleness: MAX_STALENESS_MS })
    const writer = createCache<string>({ name: 'serve-stale', tiers: [memoryTier(), redisTier({ redis: server.url })], bus: writerBus, ...options })
    try {
      await Promise.all([readerBus.ready(), writerBus.ready()])
      expect(await reader.getOrSet('k', async () => 'v1')).toBe('v1')
      // The reader holds v1 in a trusted L1.
      await vi.waitFor(
        async () => {
          const hits = reader.stats().l1Hits
          expect(await reader.get('k')).toBe('v1')
          expect(reader.stats().l1Hits).toBe(hits + 1)
        },
        { timeout: 10_000, interval: 10 },
      )

      link.partition()
      // No probe sent from here on can be answered: verifiedAt <= partitionedAt.
      const partitionedAt = clock()
      await writer.set('k', 'v2') // resolves; its invalidation is stuck in the partition
      const writeResolvedAt = clock()

      const reads: Array<{ start: number; value: string | undefined }> = []
      while (reads.filter((r) => r.start >= partitionedAt + SERVE_STALE_MS).length < READS_PAST_BOUND) {
        const start = clock()
        reads.push({ start, value: await reader.get('k') })
        await new Promise((resolve) => setTimeout(resolve, 1))
      }
      const old = reads.filter((r) => r.value === 'v1')
      const lastOld = Math.max(...old.map((r) => r.start))
      console.info(
        `serveStale ${SERVE_STALE_MS} ms: v1 served in ${old.length} of ${reads.length} reads, the last one ${(lastOld - writeResolvedAt).toFixed(0)} ms after v2 was written (maxStaleness ${MAX_STALENESS_MS} ms)`,
      )
      // The opt-in breach: the old value answered later than maxStaleness after the newer write resolved ...
      expect(old.some((r) => r.start >= writeResolvedAt + MAX_STALENESS_MS)).toBe(true)
      // ... but within its own bound: no read of it began at or past verifiedAt + serveStale.
      expect(old.filter((r) => r.start >= partitionedAt + SERVE_STALE_MS)).toEqual([])
      // Nothing newer could reach the reader; past the bound it answers nothing (L2 is cut off too).
      expect(reads.some((r) => r.value === 'v2')).toBe(false)
      expect(reads.filter((r) => r.start >= partitionedAt + SERVE_STALE_MS).every((r) => r.value === undefined)).toBe(true)

      // The partition heals: the reader converges on v2.
      link.heal()
      await vi.waitFor(async () => expect(await reader.get('k')).toBe('v2'), { timeout: 15_000, interval: 20 })
    } finally {
      link.heal()
      await reader.close()
      await writer.close()
      await readerBus.close()
      await writerBus.close()
      await link.stop()
    }
  }, 60_000)
})
