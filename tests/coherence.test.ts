/**
 * The coherence mechanisms, each proven on a real redis-server with a real
 * fault, each by a test that fails when its mechanism is switched off.
 */
import { createCache, PublishError, TierError, type Cache } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier, type RedisBus } from '@tiercache/redis-adapter'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { InstanceProcess } from './support/instance.js'
import { RedisServer } from './support/redis-server.js'
import { TcpProxy } from './support/tcp-proxy.js'

let server: RedisServer
const cleanups: Array<() => unknown> = []

beforeAll(async () => {
  server = await RedisServer.start()
})
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  server.cli('FLUSHALL')
})
afterAll(() => server.stop())

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** A cache instance in this process, with its tier and its bus each on its own URL (a proxy or the server). */
async function instance(options: { tierUrl?: string; busUrl?: string; maxStaleness?: number; tierTimeout?: string } = {}) {
  const bus = redisBus({ redis: options.busUrl ?? server.url, maxStaleness: options.maxStaleness ?? 1_000 })
  const cache = createCache<string>({
    name: 'coherence',
    tiers: [memoryTier(), redisTier({ redis: options.tierUrl ?? server.url, timeout: options.tierTimeout ?? '1s' })],
    bus,
    ttl: '1h',
    onError: () => {},
  })
  cleanups.push(() => bus.close(), () => cache.close())
  await bus.ready()
  return { cache, bus }
}

async function proxy(): Promise<TcpProxy> {
  const p = await TcpProxy.start(server.port)
  cleanups.push(() => p.stop())
  return p
}

/**
 * Puts `value` in the reader's L1 (which then holds it for the 1 h TTL), and
 * proves it is there: after L2 loses the key, the reader still returns it.
 */
async function primeL1(reader: { cache: Cache<string>; bus: RedisBus }, writer: Cache<string>, key: string, value: string) {
  const received = reader.bus.status().messagesReceived
  await writer.set(key, value)
  // Wait for the write's own invalidation, or it could land during the read below and (rightly) stop the fill.
  await vi.waitFor(() => expect(reader.bus.status().messagesReceived).toBeGreaterThan(received), { timeout: 5_000 })
  expect(await reader.cache.getOrSet(key, () => 'unused')).toBe(value)
  const raw = new Redis(server.url)
  await raw.del(`tiercache:coherence:${key}`)
  raw.disconnect()
  expect(await reader.cache.get(key)).toBe(value)
}

describe('mechanism 1 — atomic write+publish', () => {
  it('the write and its invalidation run as one script: no separate PUBLISH is sent', async () => {
    const { cache } = await instance()
    await cache.set('warm', 'x') // loads the script on the connection
    const monitor = await new Redis(server.url, { lazyConnect: true }).monitor()
    const sent: string[] = []
    const inScript: string[] = []
    monitor.on('monitor', (_t: string, args: string[], source: string) =>
      (source.includes('lua') ? inScript : sent).push(String(args[0]).toLowerCase()),
    )
    await sleep(30)
    await cache.set('k', 'v')
    await sleep(30)
    monitor.disconnect()
    expect(sent).toEqual(['evalsha'])
    expect(inScript).toEqual(['time', 'get', 'set', 'del', 'publish']) // del: the set revokes the key's fill lease
  })

  it('atomic write+publish: a writer killed after its write reached Redis still evicts every other L1', async () => {
    const link = await proxy()
    const reader = await instance()
    // The writer is a separate process whose tier and bus share one connection through the proxy.
    const writer = await InstanceProcess.start({ REDIS_URL: link.url, CACHE_NAME: 'coherence' })
    cleanups.push(() => writer.kill())
    await writer.call('set', { key: 'k', value: 'v1' })
    expect(await reader.cache.getOrSet('k', () => 'unused')).toBe('v1')
    // Requests reach Redis; replies never come back. The writer issues v2, then dies before learning anything.
    link.holdReplies()
    await writer.call('startSet', { key: 'k', value: 'v2' })
    await vi.waitFor(async () => expect(await reader.bus.status().messagesReceived).toBeGreaterThanOrEqual(2), { timeout: 5_000 })
    writer.kill()
    // L2 has v2 (the write landed), and its message came with it: the reader's L1 copy is gone.
    expect(await reader.cache.get('k')).toBe('v2')
  })
})

describe('mechanism 2 — in-flight guard', () => {
  it('in-flight guard: an invalidation during an L2 read keeps the stale value out of L1', async () => {
    const link = await proxy()
    // The reader's L2 connection goes through the proxy; its bus does not.
    const reader = await instance({ tierUrl: link.url })
    const writer = await instance()
    await writer.cache.set('k', 'old')
    link.holdReplies() // the read reaches Redis and reads "old"; its reply is held
    const read = reader.cache.get('k')
    await sleep(50)
    await writer.cache.set('k', 'new') // its invalidation reaches the reader while the read is held
    await vi.waitFor(() => expect(reader.bus.status().messagesReceived).toBeGreaterThanOrEqual(2), { timeout: 5_000 })
    link.heal()
    expect(await read).toBe('old') // the read may answer its own caller with what it got
    expect(await reader.cache.get('k')).toBe('new') // but it did not put "old" in L1
  })
})

describe('mechanism 3 — liveness', () => {
  it('liveness: when the subscription stops answering, reads bypass L1 within maxStaleness', async () => {
    const link = await proxy()
    // The reader's bus goes through the proxy; its L2 connection does not.
    const reader = await instance({ busUrl: link.url, maxStaleness: 300 })
    const writer = await instance()
    await primeL1(reader, writer.cache, 'k', 'v1')
    link.partition() // silent: the reader's subscriber socket stays open, nothing arrives
    await writer.cache.set('k', 'v2') // its invalidation is stuck in the partition
    await sleep(450)
    expect(reader.bus.status().trusted).toBe(false)
    expect(await reader.cache.get('k')).toBe('v2') // from L2, not the stale L1 copy
  })

  it('liveness: after a broken subscription every L1 on the bus is cleared before it is trusted again', async () => {
    const link = await proxy()
    const reader = await instance({ busUrl: link.url })
    const writer = await instance()
    await primeL1(reader, writer.cache, 'k', 'v1')
    link.partition()
    await writer.cache.set('k', 'v2') // this message will be lost with the connection
    link.cut()
    link.heal() // new connections are proxied again
    await vi.waitFor(() => expect(reader.bus.status().gapsSeen).toBe(1), { timeout: 5_000 })
    expect(reader.bus.status().trusted).toBe(true)
    expect(await reader.cache.get('k')).toBe('v2')
  })

  it('liveness: a half-dead subscriber connection is replaced, and the gap is closed', async () => {
    const link = await proxy()
    const reader = await instance({ busUrl: link.url, maxStaleness: 200 })
    const writer = await instance()
    await primeL1(reader, writer.cache, 'k', 'v1')
    link.partition()
    await writer.cache.set('k', 'v2')
    await sleep(1_000) // past 3 x maxStaleness (600 ms) without an answer: the bus reconnects by itself
    link.heal()
    await vi.waitFor(() => expect(reader.bus.status().gapsSeen).toBeGreaterThanOrEqual(1), { timeout: 5_000 })
    expect(await reader.cache.get('k')).toBe('v2')
  })
})

describe('mechanism 4 — publish failure', () => {
  it('publish failure: when the invalidation cannot be published, set rejects with PublishError', async () => {
    const link = await proxy()
    // Tier and bus on different connections (no atomic path); the bus's is partitioned.
    const writer = await instance({ busUrl: link.url })
    await writer.cache.set('k', 'v1')
    link.partition()
    const error = await writer.cache.set('k', 'v2').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(PublishError)
    expect((error as PublishError).message).toContain('key "k"')
  })

  it('an unconfirmed atomic write rejects with TierError and the writer drops its own copy', async () => {
    const link = await proxy()
    const writer = await instance({ tierUrl: link.url, busUrl: link.url, tierTimeout: '300ms' })
    await writer.cache.set('k', 'v1')
    link.partition()
    const error = await writer.cache.set('k', 'v2').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TierError)
    link.heal()
    // Whether v2 landed or not, the writer does not keep serving v1 from L1 as if nothing happened.
    expect(await writer.cache.get('k')).toBe('v2')
  })
})

describe('mechanism 5 — coalescing', () => {
  it('invalidations issued in one tick travel as one message, handled in one pass', async () => {
    const reader = await instance()
    const writer = await instance()
    const keys = Array.from({ length: 100 }, (_, i) => `k${i}`)
    await Promise.all(keys.map((key) => writer.cache.set(key, 'v1')))
    for (const key of keys) expect(await reader.cache.get(key)).toBe('v1')
    const before = reader.bus.status().messagesReceived
    await Promise.all(keys.map((key) => writer.cache.set(key, 'v2')))
    await vi.waitFor(() => expect(reader.bus.status().messagesReceived).toBe(before + 1), { timeout: 5_000 })
    for (const key of keys) expect(await reader.cache.get(key)).toBe('v2')
  })
})
