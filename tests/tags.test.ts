/**
 * Tags, namespaces and typed keys across separate processes on a real
 * redis-server: invalidation reaches every instance within the coherence
 * bound, the write path never scans, and clock skew changes nothing.
 */
import { fileURLToPath } from 'node:url'
import { createCache, type BusStatus } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier } from '@tiercache/redis-adapter'
import { Redis } from 'ioredis'
import { describe, expect, it, vi } from 'vitest'
import { addressOf, InstanceProcess, RedisMonitor } from './support/instance.js'
import { useRedisSuite } from './support/redis-suite.js'

const suite = useRedisSuite()
const FIXTURE = fileURLToPath(new URL('./fixtures/instance.mjs', import.meta.url))
const SKEW = fileURLToPath(new URL('./fixtures/skewed-clock.cjs', import.meta.url))
/** The coherence bound (maxStaleness, 1 s by default). */
const BOUND_MS = 1_000

async function processes(count: number, env: Record<string, string> = {}, execArgv: string[] = []): Promise<InstanceProcess[]> {
  const started = await Promise.all(
    Array.from({ length: count }, () => InstanceProcess.start({ REDIS_URL: suite.server.url, CACHE_NAME: 'orders', ...env }, FIXTURE, execArgv)),
  )
  suite.cleanup(() => started.forEach((p) => p.kill()))
  return started
}

/**
 * Returns once every message published on the bus channel so far has reached
 * each of `instances`: a subscriber gets the channel's messages in the order
 * Redis executed their PUBLISHes, so when a marker published now has arrived
 * (a foreign message: counted as dropped, applied nowhere), so has everything
 * before it.
 */
async function barrier(instances: InstanceProcess[]) {
  const dropped = await Promise.all(instances.map(async (i) => (await i.call<BusStatus>('busStatus')).messagesDropped))
  expect(await suite.raw.publish('tiercache:invalidations', 'barrier')).toBeGreaterThanOrEqual(instances.length)
  await Promise.all(
    instances.map((instance, n) =>
      vi.waitFor(async () => expect((await instance.call<BusStatus>('busStatus')).messagesDropped).toBe(dropped[n]! + 1), { timeout: 5_000 }),
    ),
  )
}

/**
 * Puts `expected` in every reader's L1 and proves it is there. A reader may
 * return the value before it for one pub/sub hop after the write resolved
 * (allowed by the bound); once every message is in (the barrier), a read fills
 * L1 and the next is answered from it.
 */
async function prime(readers: InstanceProcess[], key: string, expected: unknown) {
  for (const reader of readers) expect(await reader.call<number>('waitFor', { key, expected, boundMs: BOUND_MS })).toBeGreaterThanOrEqual(0)
  await barrier(readers)
  for (const reader of readers) {
    await vi.waitFor(async () => expect(await reader.call('l1Get', { key })).toEqual({ value: expected, fromL1: true }), { timeout: 5_000 })
  }
}

async function allSee(readers: InstanceProcess[], key: string, expected: unknown) {
  const waited = await Promise.all(readers.map((r) => r.call<number>('waitFor', { key, expected, boundMs: BOUND_MS })))
  expect(waited.every((ms) => ms >= 0)).toBe(true)
}

describe('tags and namespaces across processes', () => {
  it('invalidateTags on one instance: every instance stops serving the tagged entries within the bound', async () => {
    const [writer, ...readers] = await processes(3)
    await writer!.call('set', { key: 'order:1', value: 'o1', tags: ['company:42'] })
    await writer!.call('set', { key: 'order:2', value: 'o2', tags: ['company:42'] })
    await writer!.call('set', { key: 'order:3', value: 'o3', tags: ['company:7'] })
    for (const key of ['order:1', 'order:2', 'order:3']) await prime(readers, key, `o${key.at(-1)}`)
    await readers[0]!.call('invalidateTags', { tags: ['company:42'] })
    await allSee([writer!, ...readers], 'order:1', undefined)
    await allSee([writer!, ...readers], 'order:2', undefined)
    for (const instance of [writer!, ...readers]) expect(await instance.call('get', { key: 'order:3' })).toBe('o3')
  })

  it("the seed case: company:{id}:orders:page:{n}; an order update drops every page of that company's orders everywhere", async () => {
    const [api, ...workers] = await processes(3)
    const page = (companyId: number, n: number) => api!.call<string>('orderPage', { companyId, page: n })
    const pages = await Promise.all([page(42, 1), page(42, 2), page(42, 3), page(7, 1)])
    // Every process builds the same key from the same parameters.
    expect(await workers[0]!.call('orderPage', { companyId: 42, page: 2 })).toBe(pages[1])
    for (const [i, key] of pages.entries()) await api!.call('set', { key, value: `page ${i}` })
    for (const [i, key] of pages.entries()) await prime(workers, key, `page ${i}`)
    await workers[1]!.call('invalidateNamespace', { namespace: 'company:42:orders' })
    for (const key of pages.slice(0, 3)) await allSee([api!, ...workers], key, undefined)
    for (const instance of [api!, ...workers]) expect(await instance.call('get', { key: pages[3] })).toBe('page 3')
  })

  it('no SCAN or KEYS on the write path: invalidating 1000 tagged entries is one script deleting one version key', async () => {
    // The writer runs in this process, its tier and bus on one named connection
    // (what a shared URL gives them), so MONITOR output can be cut down to what
    // that connection sent: the bus's SUBSCRIBE and liveness PINGs (its own
    // subscriber connection) and every other client stay out.
    const connection = new Redis(suite.server.url, { connectionName: 'tags:writer' })
    suite.cleanup(() => connection.disconnect())
    const bus = redisBus({ redis: connection })
    const writer = createCache<number>({
      name: 'orders',
      tiers: [memoryTier(), redisTier({ redis: connection })],
      bus,
      ttl: '1h',
      invalidation: { notes: 'test writer: invalidates by tag' },
      onError: () => {},
    })
    suite.cleanup(
      () => bus.close(),
      () => writer.close(),
    )
    await bus.ready()
    for (let i = 0; i < 1_000; i++) await writer.set(`row:${i}`, i, { tags: ['bulk'] })
    const address = await addressOf(suite.raw, 'tags:writer')
    const monitor = await RedisMonitor.start(suite.server.port)
    suite.cleanup(() => monitor.stop())
    const atomically = bus.status().messagesPublishedAtomically
    await writer.invalidateTags(['bulk'])
    // The end of the window: a marker on the same connection, executed after the invalidation's script.
    await connection.echo('tags:end')
    const end = await monitor.until((command) => command.source === address && command.args[0] === 'echo')
    const window = monitor.commands.slice(0, end)
    expect(window.filter((command) => command.source === address).map((command) => command.args[0])).toEqual(['evalsha'])
    // Inside that one script (only this connection runs scripts): no scan of any kind, and the only
    // deletion is the tag's version key; the 1000 entries are untouched (they read as misses).
    const inScript = window.filter((command) => command.source === 'lua').map((command) => command.args)
    // (What else the script does with the cache's bookkeeping keys is not this test's subject.)
    const names = inScript.map(([name]) => name!)
    expect(names.filter((name) => ['scan', 'keys', 'unlink', 'smembers', 'sscan', 'hscan', 'zscan'].includes(name))).toEqual([])
    expect(inScript.filter(([name]) => name === 'del')).toEqual([['del', 'tiercache:orders#tag:bulk']])
    expect(inScript.filter(([name]) => name === 'publish').map(([, channel]) => channel)).toEqual(['tiercache:invalidations'])
    expect(inScript.every((args) => !args.some((arg) => arg.startsWith('tiercache:orders:row:')))).toBe(true) // no entry is touched
    expect(bus.status().messagesPublishedAtomically).toBe(atomically + 1) // the message went out inside the script,
    expect(bus.status().messagesPublished).toBe(0) // never on its own
    expect(await writer.get('row:999')).toBeUndefined()
    expect(await suite.raw.exists('tiercache:orders:row:999')).toBe(1)
    const info = (await suite.raw.info('commandstats')) as string
    expect(info).not.toMatch(/cmdstat_(scan|keys):/)
  })

  it('a tag version key lives only as long as the entries written under it, and invalidation removes it', async () => {
    const [writer] = await processes(1)
    await writer!.call('set', { key: 'short', value: 1, tags: ['t'], ttl: '2s' })
    const pttl = await suite.raw.pttl('tiercache:orders#tag:t')
    expect(pttl).toBeGreaterThan(0)
    expect(pttl).toBeLessThanOrEqual(2_000)
    await writer!.call('set', { key: 'long', value: 2, tags: ['t'], ttl: '1h' })
    expect(await suite.raw.pttl('tiercache:orders#tag:t')).toBeGreaterThan(3_000_000) // extended to cover the longer entry
    await writer!.call('invalidateTags', { tags: ['t'] })
    expect(await suite.raw.exists('tiercache:orders#tag:t')).toBe(0)
  })

  it('many tags in one invalidation go as one operation: the message never precedes its tags', async () => {
    const [writer, reader] = await processes(2)
    const tags = Array.from({ length: 600 }, (_, i) => `tag:${i}`)
    for (let i = 0; i < 20; i++) await writer!.call('set', { key: `k${i}`, value: i, tags: [tags[i * 30]!] })
    await writer!.call('invalidateTags', { tags })
    for (let i = 0; i < 20; i++) expect(await reader!.call('get', { key: `k${i}` })).toBeUndefined()
  })

  it.each([[30_000], [-30_000]])('a clock %i ms off on one instance changes nothing: TTLs, tags and namespaces hold', async (offset) => {
    const [skewed] = await processes(1, { CLOCK_OFFSET_MS: String(offset) }, ['--require', SKEW])
    const [normal] = await processes(1)
    expect(Math.abs((await skewed!.call<number>('clockNow')) - Date.now() - offset)).toBeLessThan(1_000)
    // Written by the skewed instance, read by the normal one: the TTL is what was asked, not shifted by 30 s.
    await skewed!.call('set', { key: 'k', value: 'v1', tags: ['t'], ttl: '10s' })
    const pttl = await suite.raw.pttl('tiercache:orders:k')
    expect(pttl).toBeGreaterThan(8_000)
    expect(pttl).toBeLessThanOrEqual(10_000)
    expect(await normal!.call('get', { key: 'k' })).toBe('v1')
    await prime([skewed!], 'k', 'v1')
    // Invalidations are versions, not timestamps: the skewed instance drops its copy like any other.
    await normal!.call('invalidateTags', { tags: ['t'] })
    await allSee([skewed!, normal!], 'k', undefined)
    // And an entry the normal instance writes is neither stale nor immortal on the skewed one.
    await normal!.call('set', { key: 'k2', value: 'v2', tags: ['t'], ttl: '10s' })
    expect(await skewed!.call('get', { key: 'k2' })).toBe('v2')
    await skewed!.call('invalidateNamespace', { namespace: 'unrelated' })
    expect(await skewed!.call('get', { key: 'k2' })).toBe('v2')
  })
})
