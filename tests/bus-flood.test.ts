/**
 * Hostile bus traffic: 100 000 junk messages flood the invalidation channel of
 * two live instances (a real redis-server, the buses' own subscriber
 * connections). Every junk message is dropped and counted, the caches keep
 * serving from L1 and L2 throughout, a real invalidation afterwards still
 * reaches the other instance, and the heap is where it was.
 */
import { createCache, type Cache } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier, type RedisBus } from '@tiercache/redis-adapter'
import { Redis } from 'ioredis'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { RedisServer } from './support/redis-server.js'

const PREFIX = 'flood'
const CHANNEL = `${PREFIX}:invalidations`
const JUNK = 100_000
/** Over the decoder's MAX_MESSAGE_BYTES (1 MiB). */
const OVERSIZED_BYTES = 2 * 1024 * 1024
/** Messages in flight at most: publishing waits for the chunk before last to be received, so Redis's pub/sub output buffer limit (8 MB soft) is never the subject. */
const CHUNK_MESSAGES = 1_000
const CHUNK_BYTES = 2 * 1024 * 1024

let server: RedisServer
const cleanups: Array<() => unknown> = []

beforeAll(async () => {
  server = await RedisServer.start()
}, 30_000)
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  await server?.stop()
})

interface Instance {
  cache: Cache<number>
  bus: RedisBus
}

/** A service instance. maxStaleness is long so that L1 stays trusted while its probes queue behind the flood: what is measured is whether L1 is served, not how fresh its proof is. */
async function instance(): Promise<Instance> {
  const bus = redisBus({ redis: server.url, prefix: PREFIX, maxStaleness: '60s' })
  const cache = createCache<number>({
    name: 'accounts',
    tiers: [memoryTier(), redisTier({ redis: server.url, prefix: PREFIX })],
    bus,
    ttl: '1h',
    onError: () => {},
  })
  cleanups.push(
    () => bus.close(),
    () => cache.close(),
  )
  await bus.ready()
  return { cache, bus }
}

/** mulberry32: the same junk on every run. */
function prng(seed: number): () => number {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * Junk that each count exactly one drop (a rejected message, or a v1 batch
 * of one malformed entry). Several name the live cache and key ('accounts',
 * 'hot'): if any were taken for an invalidation, the other instance's L1
 * copy would go.
 */
const WRONG_VERSIONS = ['0', '2', '3', '99', '-1', '1.5', '"1"', 'null', 'true', '[1]', '{}'].map((v) => `{"v":${v},"i":[["attacker","k","accounts","hot"]]}`)
const WRONG_SHAPES = [
  'null',
  '[]',
  '{}',
  '42',
  '"hot"',
  'true',
  '{"v":1}',
  '{"i":[["attacker","k","accounts","hot"]]}',
  '{"v":1,"i":{}}',
  '{"v":1,"i":"hot"}',
  '{"v":1,"i":[5]}',
  '{"v":1,"i":[["attacker","k","accounts"]]}',
  '{"v":1,"i":[["attacker","t","accounts",[]]]}',
  '{"v":1,"i":[["attacker","k","accounts","hot","extra"]]}',
  '{"v":1,"i":[["attacker","c","accounts","hot"]]}',
  '{"v":1,"i":[["attacker","k","accounts",7]]}',
  '{"v":1,"i":[[1,"k","accounts","hot"]]}',
  '{"v":1,"i":[["attacker","x","accounts","hot"]]}',
  '{"v":1,"i":[null]}',
  '{"__proto__":{"v":1,"i":[["attacker","k","accounts","hot"]]}}',
  '{"constructor":{"prototype":{"polluted":true}},"v":2}',
  '{"v":1,"i":[["attacker","k","accounts","hot"]],"x":[[[[1]]]]}',
  '{"v":1,"i":[["attacker","k","accounts","hot"]]',
  '{"v":1,"i":[["attacker","k","accounts","hot"]]}}',
]

type Kind = 'random bytes' | 'unknown version' | 'wrong shape' | 'deep nesting' | 'oversized'

/** The junk message at `index` (and its kind): generated on the fly, so the flood itself does not sit on the heap. */
function junk(index: number, random: () => number): { message: Buffer | string; kind: Kind } {
  // Three oversized messages: a well-formed invalidation of 'hot', padded over the limit.
  if (index % 33_333 === 16_000) {
    const head = '{"v":1,"i":[["attacker","k","accounts","hot"]],"pad":"'
    return { message: `${head + 'x'.repeat(OVERSIZED_BYTES - head.length - 2)}"}`, kind: 'oversized' }
  }
  // Fifty deeply nested arrays, 64-512 KiB: JSON.parse alone would take tens to hundreds of ms on each.
  if (index % 2_000 === 1_000) return { message: '['.repeat((64 + Math.floor(random() * 448)) * 1024), kind: 'deep nesting' }
  const roll = random()
  if (roll < 0.4) {
    const bytes = Buffer.allocUnsafe(Math.floor(random() * 300))
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256)
    return { message: bytes, kind: 'random bytes' }
  }
  if (roll < 0.55) return { message: WRONG_VERSIONS[Math.floor(random() * WRONG_VERSIONS.length)]!, kind: 'unknown version' }
  return { message: WRONG_SHAPES[Math.floor(random() * WRONG_SHAPES.length)]!, kind: 'wrong shape' }
}

function collectGarbage(): () => void {
  const gc = (globalThis as { gc?: () => void }).gc
  if (gc !== undefined) return gc
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

const MB = 1024 * 1024

describe('a flood of junk on the bus channel', () => {
  it(`${JUNK} junk messages (random bytes, unknown versions, wrong shapes, deep nesting, 2 MiB) are dropped and counted; L1 and L2 keep serving; coherence and the heap hold`, async () => {
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    cleanups.push(() => process.off('unhandledRejection', onUnhandled))

    const a = await instance()
    const b = await instance()
    const buses = [a.bus, b.bus]
    const publisher = new Redis(server.url)
    publisher.on('error', () => {})
    cleanups.push(() => publisher.disconnect())

    // 'hot' in both L1s; 'cold:*' in L2 only, for B's L2 reads during the flood.
    const COLD = 300
    await a.cache.set('hot', 1)
    for (let i = 0; i < COLD; i++) await a.cache.set(`cold:${i}`, i)
    const published = () => buses.reduce((sum, bus) => sum + bus.status().messagesPublished + bus.status().messagesPublishedAtomically, 0)
    await vi.waitFor(() => buses.forEach((bus) => expect(bus.status().messagesReceived).toBe(published())), { timeout: 10_000 })
    expect(await b.cache.getOrSet('hot', () => -1)).toBe(1)
    expect(await b.cache.get('hot')).toBe(1)
    expect(b.cache.stats().l1Hits).toBeGreaterThan(0) // trusted and serving from L1 before the flood

    const gc = collectGarbage()
    gc()
    const heapBefore = process.memoryUsage().heapUsed
    const before = buses.map((bus) => bus.status())
    const statsBefore = b.cache.stats()
    const delay = monitorEventLoopDelay({ resolution: 10 })
    delay.enable()
    const startedAt = performance.now()

    const random = prng(0x7ce)
    const kinds = new Map<Kind, number>()
    let sent = 0
    let hotReads = 0
    let coldReads = 0
    let chunkEnds: number[] = []
    const received = () => Math.min(...buses.map((bus, i) => bus.status().messagesReceived - before[i]!.messagesReceived))
    while (sent < JUNK) {
      const pipeline = publisher.pipeline()
      let count = 0
      let bytes = 0
      while (sent + count < JUNK && count < CHUNK_MESSAGES && bytes < CHUNK_BYTES) {
        const { message, kind } = junk(sent + count, random)
        kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
        pipeline.publish(CHANNEL, message)
        bytes += typeof message === 'string' ? Buffer.byteLength(message) : message.length
        count++
      }
      sent += count
      chunkEnds.push(sent)
      // While the chunk goes out and the buses work through the previous one, the cache serves: an L1 hit and an L2 read.
      const cold = coldReads++ % COLD
      const [replies, hot, fromL2] = await Promise.all([pipeline.exec(), b.cache.get('hot'), b.cache.get(`cold:${cold}`)])
      hotReads++
      expect(hot).toBe(1)
      expect(fromL2).toBe(cold)
      expect(replies?.every(([error]) => error === null)).toBe(true)
      // At most two chunks in flight.
      if (chunkEnds.length >= 2) {
        const previous = chunkEnds.at(-2)!
        await vi.waitFor(() => expect(received()).toBeGreaterThanOrEqual(previous), { timeout: 30_000, interval: 2 })
        chunkEnds = chunkEnds.slice(-1)
      }
    }
    await vi.waitFor(() => expect(received()).toBe(JUNK), { timeout: 30_000, interval: 5 })
    const floodMs = performance.now() - startedAt
    delay.disable()

    // Every junk message was received and dropped, by both buses; no gap, no invalidation applied.
    for (const [i, bus] of buses.entries()) {
      const status = bus.status()
      expect(status.messagesReceived - before[i]!.messagesReceived).toBe(JUNK)
      expect(status.messagesDropped - before[i]!.messagesDropped).toBe(JUNK)
      expect(status.gapsSeen).toBe(before[i]!.gapsSeen)
      expect(status.connected).toBe(true)
    }
    const statsAfter = b.cache.stats()
    expect(statsAfter.invalidationsReceived).toBe(statsBefore.invalidationsReceived)
    // Each 'hot' read during the flood was an L1 hit, each 'cold' read an L2 hit.
    expect(statsAfter.l1Hits - statsBefore.l1Hits).toBe(hotReads)
    expect(statsAfter.l2Hits - statsBefore.l2Hits).toBe(coldReads)
    expect(await b.cache.get('hot')).toBe(1)

    gc()
    const heapAfter = process.memoryUsage().heapUsed
    console.log(
      `bus flood: ${JUNK} messages (${[...kinds].map(([kind, n]) => `${n} ${kind}`).join(', ')}) in ${Math.round(floodMs)} ms; ` +
        `event loop delay p50 ${(delay.percentile(50) / 1e6).toFixed(1)} ms, p99 ${(delay.percentile(99) / 1e6).toFixed(1)} ms, max ${(delay.max / 1e6).toFixed(1)} ms; ` +
        `${hotReads} L1 hits and ${coldReads} L2 reads served during it; heap ${(heapBefore / MB).toFixed(1)} -> ${(heapAfter / MB).toFixed(1)} MB`,
    )
    expect(heapAfter - heapBefore).toBeLessThan(50 * MB)

    // Coherence intact: a real write on A still evicts B's L1 copy.
    const receivedBefore = b.bus.status().messagesReceived
    const entriesBefore = b.cache.stats().l1Entries
    await a.cache.set('hot', 2)
    await vi.waitFor(() => expect(b.bus.status().messagesReceived).toBeGreaterThan(receivedBefore), { timeout: 5_000 })
    expect(b.cache.stats().invalidationsReceived).toBe(statsBefore.invalidationsReceived + 1)
    expect(b.cache.stats().l1Entries).toBe(entriesBefore - 1)
    expect(await b.cache.get('hot')).toBe(2)
    expect(b.bus.status().messagesDropped - before[1]!.messagesDropped).toBe(JUNK)

    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(unhandled).toEqual([])
  }, 180_000)
})
