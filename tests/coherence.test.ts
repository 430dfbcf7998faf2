/**
 * The coherence mechanisms, each proven on a real redis-server with a real
 * fault, each by a test that fails when its mechanism is switched off.
 */
import { createCache, PublishError, TierError, WriteFailedError, type Cache } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier, type RedisBus } from '@tiercache/redis-adapter'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { addressOf, InstanceProcess, RedisMonitor } from './support/instance.js'
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

/**
 * A cache instance in this process, with its tier and its bus each on its own
 * URL (a proxy or the server) or on a client of the test's (see namedClient).
 */
async function instance(options: { tier?: string | Redis; bus?: string | Redis; maxStaleness?: number; tierTimeout?: string } = {}) {
  const bus = redisBus({ redis: options.bus ?? server.url, maxStaleness: options.maxStaleness ?? 1_000 })
  const cache = createCache<string>({
    name: 'coherence',
    tiers: [memoryTier(), redisTier({ redis: options.tier ?? server.url, timeout: options.tierTimeout ?? '1s' })],
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

/**
 * A connection of the test's own, named, so that MONITOR output can be cut
 * down to what it sent (a tier or bus given a client uses it as is).
 */
async function namedClient(url: string, name: string): Promise<{ client: Redis; address: string }> {
  const client = new Redis(url, { connectionName: name })
  cleanups.push(() => client.disconnect())
  return { client, address: await addressOf(client, name) }
}

async function monitor(): Promise<RedisMonitor> {
  const started = await RedisMonitor.start(server.port)
  cleanups.push(() => started.stop())
  return started
}

/**
 * Returns once every message published on the bus channel so far has reached
 * `bus`: a subscriber gets the channel's messages in the order Redis executed
 * their PUBLISHes, so when a marker published now has arrived (a foreign
 * message: counted in messagesReceived and messagesDropped, applied nowhere),
 * so has everything before it.
 */
async function barrier(bus: RedisBus): Promise<void> {
  const dropped = bus.status().messagesDropped
  server.cli('PUBLISH', 'tiercache:invalidations', 'barrier')
  await vi.waitFor(() => expect(bus.status().messagesDropped).toBe(dropped + 1), { timeout: 5_000 })
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
async function primeL1(reader: { cache: Cache<string>; bus: RedisBus }, write: () => Promise<unknown>, key: string, value: string) {
  const received = reader.bus.status().messagesReceived
  await write()
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
    // Tier and bus share one named connection (what a shared URL gives them):
    // MONITOR output is cut down to what that connection sent, so the bus's
    // SUBSCRIBE and liveness PINGs (its own subscriber connection) stay out.
    const writer = await namedClient(server.url, 'coherence:writer')
    const { cache, bus } = await instance({ tier: writer.client, bus: writer.client })
    await cache.set('warm', 'x') // loads the script on the connection
    const atomically = bus.status().messagesPublishedAtomically
    const seen = await monitor()
    await cache.set('k', 'v')
    // The end of the window: a marker on the same connection, executed after the set's script.
    await writer.client.echo('coherence:end')
    const end = await seen.until((command) => command.source === writer.address && command.args[0] === 'echo')
    const window = seen.commands.slice(0, end)
    expect(window.filter((command) => command.source === writer.address).map((command) => command.args[0])).toEqual(['evalsha'])
    // Inside the script (only this connection runs scripts): del revokes the key's fill lease, publish carries the invalidation.
    const inScript = window.filter((command) => command.source === 'lua')
    expect(inScript.map((command) => command.args[0])).toEqual(['time', 'get', 'set', 'del', 'publish'])
    expect(inScript.find((command) => command.args[0] === 'set')!.args[1]).toBe('tiercache:coherence:k')
    expect(inScript.find((command) => command.args[0] === 'publish')!.args[1]).toBe('tiercache:invalidations')
    expect(bus.status().messagesPublishedAtomically).toBe(atomically + 1)
    expect(bus.status().messagesPublished).toBe(0) // never a separate publish
  })

  it('atomic write+publish: a writer killed after its write reached Redis still evicts every other L1', async () => {
    const link = await proxy()
    const reader = await instance()
    // The writer is a separate process whose tier and bus share one connection through the proxy.
    const writer = await InstanceProcess.start({ REDIS_URL: link.url, CACHE_NAME: 'coherence' })
    cleanups.push(() => writer.kill())
    // The reader holds v1 in L1, proven: it serves v1 after L2 lost it.
    await primeL1(reader, () => writer.call('set', { key: 'k', value: 'v1' }), 'k', 'v1')
    const received = reader.bus.status().messagesReceived
    const raw = new Redis(server.url)
    cleanups.push(() => raw.disconnect())
    // Requests reach Redis; replies never come back. The writer issues v2, then dies before learning anything.
    link.holdReplies()
    await writer.call('startSet', { key: 'k', value: 'v2' })
    // The write has landed (primeL1 removed the key from L2; v2 put it back)...
    await vi.waitFor(async () => expect(await raw.exists('tiercache:coherence:k')).toBe(1), { timeout: 5_000, interval: 5 })
    // ...and the writer dies at once: long before its own 1 s timeout could make it publish the invalidation
    // of an unconfirmed write by other means. The only message left to tell the reader is the write script's own.
    writer.kill()
    await vi.waitFor(() => expect(reader.bus.status().messagesReceived).toBeGreaterThan(received), { timeout: 5_000 })
    // L2 has v2, and its message came with it: the reader's L1 copy is gone.
    expect(await reader.cache.get('k')).toBe('v2')
    await barrier(reader.bus)
    expect(reader.bus.status().messagesReceived).toBe(received + 2) // the write's one message, then the marker
  })
})

describe('mechanism 2 — in-flight guard', () => {
  it('in-flight guard: an invalidation during an L2 read keeps the stale value out of L1', async () => {
    const link = await proxy()
    // The reader's L2 connection goes through the proxy (named, to find its reads in MONITOR); its bus does not.
    const readerTier = await namedClient(link.url, 'coherence:reader-tier')
    const reader = await instance({ tier: readerTier.client, tierTimeout: '10s' }) // the held read must not time out
    const writer = await instance()
    await writer.cache.set('k', 'old')
    await barrier(reader.bus) // the message of "old" is in: the next one the reader gets is that of "new"
    const seen = await monitor()
    link.holdReplies() // the read reaches Redis and reads "old"; its reply is held
    const read = reader.cache.get('k')
    // Redis has executed the read (it read "old") before the write below is even sent.
    await seen.until((command) => command.source === readerTier.address && command.args.includes('tiercache:coherence:k'))
    const received = reader.bus.status().messagesReceived
    await writer.cache.set('k', 'new') // its invalidation reaches the reader while the read is held
    await vi.waitFor(() => expect(reader.bus.status().messagesReceived).toBeGreaterThan(received), { timeout: 5_000 })
    link.heal()
    expect(await read).toBe('old') // the read may answer its own caller with what it got
    expect(reader.cache.stats().l1Entries).toBe(0) // but it did not put "old" in L1
    expect(await reader.cache.get('k')).toBe('new')
    // And L1 is in use here (the guard, not distrust, kept "old" out): the read above filled it, the next one hits it.
    const l1Hits = reader.cache.stats().l1Hits
    expect(await reader.cache.get('k')).toBe('new')
    expect(reader.cache.stats().l1Hits).toBe(l1Hits + 1)
  })
})

describe('mechanism 3 — liveness', () => {
  it('liveness: when the subscription stops answering, reads bypass L1 within maxStaleness', async () => {
    const link = await proxy()
    // The reader's bus goes through the proxy; its L2 connection does not.
    const reader = await instance({ bus: link.url, maxStaleness: 300 })
    const writer = await instance()
    await primeL1(reader, () => writer.cache.set('k', 'v1'), 'k', 'v1')
    link.partition() // silent: the reader's subscriber socket stays open, nothing arrives
    await writer.cache.set('k', 'v2') // its invalidation is stuck in the partition
    await sleep(450)
    expect(reader.bus.status().trusted).toBe(false)
    expect(await reader.cache.get('k')).toBe('v2') // from L2, not the stale L1 copy
  })

  it('liveness: after a broken subscription every L1 on the bus is cleared before it is trusted again', async () => {
    const link = await proxy()
    const reader = await instance({ bus: link.url })
    const writer = await instance()
    await primeL1(reader, () => writer.cache.set('k', 'v1'), 'k', 'v1')
    link.partition()
    await writer.cache.set('k', 'v2') // this message will be lost with the connection
    link.cut()
    link.heal() // new connections are proxied again
    await vi.waitFor(() => expect(reader.bus.status().gapsSeen).toBeGreaterThanOrEqual(1), { timeout: 5_000 })
    expect(reader.bus.status().trusted).toBe(true)
    expect(await reader.cache.get('k')).toBe('v2')
    expect(reader.bus.status().gapsSeen).toBe(1) // one break, one gap
  })

  it('liveness: a half-dead subscriber connection is replaced, and the gap is closed', async () => {
    const link = await proxy()
    const reader = await instance({ bus: link.url, maxStaleness: 200 })
    const writer = await instance()
    await primeL1(reader, () => writer.cache.set('k', 'v1'), 'k', 'v1')
    link.partition()
    await writer.cache.set('k', 'v2')
    // Past 3 x maxStaleness (600 ms) without an answer the bus drops the connection and reconnects by
    // itself; the new connection cannot get ready through the partition, so the bus reads as not connected.
    await vi.waitFor(() => expect(reader.bus.status().connected).toBe(false), { timeout: 5_000 })
    link.heal()
    await vi.waitFor(() => expect(reader.bus.status().gapsSeen).toBeGreaterThanOrEqual(1), { timeout: 5_000 })
    expect(await reader.cache.get('k')).toBe('v2')
  })
})

describe('mechanism 4 — publish failure', () => {
  it('publish failure: when the invalidation cannot be published, set rejects with PublishError', async () => {
    const link = await proxy()
    // Tier and bus on different connections (no atomic path); the bus's is partitioned.
    const writer = await instance({ bus: link.url })
    await writer.cache.set('k', 'v1')
    link.partition()
    const error = await writer.cache.set('k', 'v2').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(PublishError)
    expect((error as PublishError).message).toContain('key "k"')
  })

  it('an unconfirmed atomic write rejects with WriteFailedError (cause: the TierError) and the writer drops its own copy', async () => {
    const link = await proxy()
    const writer = await instance({ tier: link.url, bus: link.url, tierTimeout: '300ms' })
    await writer.cache.set('k', 'v1')
    link.partition()
    const error = await writer.cache.set('k', 'v2').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(WriteFailedError)
    expect(error).toMatchObject({ queued: false, key: 'k', message: expect.stringMatching(/may not have reached the shared tier/) })
    expect((error as Error).cause).toBeInstanceOf(TierError)
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
    await barrier(reader.bus) // the v1 writes' message is in: it cannot evict what the reader fills next
    for (const key of keys) expect(await reader.cache.get(key)).toBe('v1')
    // Every key is in the reader's L1: a second pass is 100 L1 hits.
    const l1Hits = reader.cache.stats().l1Hits
    for (const key of keys) expect(await reader.cache.get(key)).toBe('v1')
    expect(reader.cache.stats().l1Hits).toBe(l1Hits + 100)
    const before = reader.bus.status().messagesReceived
    const published = writer.bus.status().messagesPublishedAtomically
    await Promise.all(keys.map((key) => writer.cache.set(key, 'v2')))
    expect(writer.bus.status().messagesPublishedAtomically).toBe(published + 1)
    await vi.waitFor(() => expect(reader.bus.status().messagesReceived).toBeGreaterThan(before), { timeout: 5_000 })
    await barrier(reader.bus)
    expect(reader.bus.status().messagesReceived).toBe(before + 2) // the 100 writes' one message, then the marker
    for (const key of keys) expect(await reader.cache.get(key)).toBe('v2')
  })
})
