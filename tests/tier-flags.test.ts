/**
 * Per-call tier flags (issue 19) on a real redis-server: skipL1 and skipL2
 * choose where one call reads a value from and stores it, never which
 * invalidations happen. What L2 holds is checked with a raw client (does
 * the entry exist) and with a second cache that reads past its own L1
 * (`skipL1`); what L1 holds, with reads that skip L2.
 */
import { fileURLToPath } from 'node:url'
import { createCache, type Cache } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier, type RedisBus } from '@tiercache/redis-adapter'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { InstanceProcess } from './support/instance.js'
import { RedisServer } from './support/redis-server.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/tier-flags-instance.mjs', import.meta.url))
const CACHE = 'flags'
/** Hang guard for waits on events (a message arriving): generous, a loaded box is slow, never stuck. */
const GUARD = { timeout: 10_000, interval: 5 }

let server: RedisServer
let raw: Redis
const cleanups: Array<() => unknown> = []

beforeAll(async () => {
  server = await RedisServer.start()
  raw = new Redis(server.url)
})
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  server.cli('FLUSHALL')
})
afterAll(async () => {
  raw.disconnect()
  await server.stop()
})

/** Whether L2 holds an entry for `key` (standalone layout: `<prefix>:<cache>:<key>`, see redis-adapter's keyspace.ts). */
const inL2 = async (key: string) => (await raw.exists(`tiercache:${CACHE}:${key}`)) === 1

/** A cache instance in this process, on its own tier and bus connections. */
async function instance(): Promise<Cache<string> & { readonly bus: RedisBus }> {
  const bus = redisBus({ redis: server.url, maxStaleness: 2_000 })
  const cache = createCache<string>({
    name: CACHE,
    tiers: [memoryTier(), redisTier({ redis: server.url })],
    bus,
    ttl: '1h',
    invalidation: { notes: 'tier-flags test instance' },
    onError: () => {},
  })
  cleanups.push(
    () => bus.close(),
    () => cache.close(),
  )
  await bus.ready()
  return Object.assign(cache, { bus })
}

/** Runs `write` and resolves once `listener` has received an invalidation more than before it (its own, or a later one). */
async function heardBy(listener: { invalidationsReceived(): Promise<number> | number }, write: () => Promise<unknown>): Promise<void> {
  const before = await listener.invalidationsReceived()
  await write()
  await vi.waitFor(async () => expect(await listener.invalidationsReceived()).toBeGreaterThan(before), GUARD)
}
const listening = (cache: Cache<string>) => ({ invalidationsReceived: () => cache.stats().invalidationsReceived })

interface Stats {
  invalidationsReceived: number
}
interface BusStatus {
  messagesDropped: number
}

/**
 * Returns once every message published on the bus channel so far has
 * reached the bus whose status `status` reads (as in coherence.test.ts): a
 * subscriber gets the channel's messages in the order Redis executed their
 * PUBLISHes, so once a marker published now has arrived (a foreign message,
 * counted as dropped), so has everything before it, whether or not a write
 * published anything.
 */
async function barrier(status: () => BusStatus | Promise<BusStatus>): Promise<void> {
  const dropped = (await status()).messagesDropped
  await raw.publish('tiercache:invalidations', 'barrier')
  await vi.waitFor(async () => expect((await status()).messagesDropped).toBe(dropped + 1), GUARD)
}
const processListening = (instance: InstanceProcess) => ({
  invalidationsReceived: async () => (await instance.call<Stats>('stats')).invalidationsReceived,
})

describe('a write that skips L2, across processes', () => {
  it('A and B hold v1 in L1; A sets v2 with skipL2: B never reads v1 again (the L2 copy is gone and B heard of it)', async () => {
    const [a, b] = await Promise.all([InstanceProcess.start({ REDIS_URL: server.url }, FIXTURE), InstanceProcess.start({ REDIS_URL: server.url }, FIXTURE)])
    cleanups.push(
      () => a.kill(),
      () => b.kill(),
    )
    // v1 in L2 and in both L1s. B waits for A's invalidation first, or it could land during B's read and (rightly) stop the fill.
    await heardBy(processListening(b), () => a.call('set', { key: 'k', value: 'v1' }))
    expect(await b.call('getOrSet', { key: 'k', value: 'unused' })).toEqual({ value: 'v1', factoryRan: false })
    expect(await a.call('l1Get', { key: 'k' })).toEqual({ value: 'v1', fromL1: true })
    expect(await b.call('l1Get', { key: 'k' })).toEqual({ value: 'v1', fromL1: true })

    const received = (await b.call<Stats>('stats')).invalidationsReceived
    await a.call('set', { key: 'k', value: 'v2', options: { skipL2: true } })
    await barrier(() => b.call<BusStatus>('busStatus'))
    // Every message published before the barrier has reached B: its next read is a miss — never v1.
    expect(await b.call('get', { key: 'k' })).toBeUndefined()
    // L2 no longer has v1 (and never had v2), and B heard of the write: its one message.
    expect(await inL2('k')).toBe(false)
    expect((await b.call<Stats>('stats')).invalidationsReceived).toBe(received + 1)
    // With a factory, B gets its factory's value.
    expect(await b.call('getOrSet', { key: 'k', value: 'from-db' })).toEqual({ value: 'from-db', factoryRan: true })
    // A keeps v2 in its own L1 only.
    expect(await a.call('l1Get', { key: 'k' })).toEqual({ value: 'v2', fromL1: true })
    for (const instance of [a, b]) expect(await instance.call('health')).toEqual({ unhandledRejections: 0 })
  })
})

describe('each method with each flag, on real Redis', () => {
  /**
   * Two caches, `a` under test and `probe`; L1 and L2 of `a` made to
   * disagree: L2 has 'in-l2' for k (and 'l2-value' for only-l2), a's L1
   * has 'in-l1' for k (from a getOrSet that skipped L2).
   */
  async function disagreeing() {
    const a = await instance()
    const probe = await instance()
    await heardBy(listening(a), () => probe.set('k', 'in-l2'))
    await heardBy(listening(a), () => probe.set('only-l2', 'l2-value'))
    expect(await a.getOrSet('k', async () => 'in-l1', { skipL2: true })).toBe('in-l1')
    expect(await probe.get('k', { skipL1: true })).toBe('in-l2') // L2 untouched by that getOrSet
    return { a, probe }
  }

  it('get: skipL1 reads L2 and does not fill L1; skipL2 reads L1 only', async () => {
    const { a } = await disagreeing()
    expect(await a.get('k')).toBe('in-l1')
    expect(await a.get('k', { skipL1: true })).toBe('in-l2')
    expect(await a.get('k', { skipL2: true })).toBe('in-l1') // still: the skipL1 read filled nothing
    expect(await a.get('only-l2', { skipL2: true })).toBeUndefined()
    expect(await a.get('only-l2', { skipL1: true })).toBe('l2-value')
    expect(await a.get('only-l2', { skipL2: true })).toBeUndefined() // not filled
    expect(await a.get('only-l2', { skipL1: true, skipL2: true })).toBeUndefined()
    // Without flags the L2 read fills L1, as always.
    expect(await a.get('only-l2')).toBe('l2-value')
    expect(await a.get('only-l2', { skipL2: true })).toBe('l2-value')
  })

  it('getMany: skipL1 reads L2 and does not fill L1; skipL2 reads L1 only', async () => {
    const { a } = await disagreeing()
    expect(await a.getMany(['k', 'only-l2'], { skipL1: true })).toEqual(['in-l2', 'l2-value'])
    expect(await a.getMany(['k', 'only-l2'], { skipL2: true })).toEqual(['in-l1', undefined]) // the skipL1 read filled nothing
    expect(await a.getMany(['k', 'only-l2'])).toEqual(['in-l1', 'l2-value'])
    expect(await a.getMany(['k', 'only-l2'], { skipL2: true })).toEqual(['in-l1', 'l2-value'])
  })

  it('getOrSet: skipL1 reads and stores past L1; skipL2 reads and stores past L2; both: stored nowhere', async () => {
    const { a, probe } = await disagreeing()
    const unused = vi.fn(async () => 'unused')
    // skipL1: L2's value, without the factory, and L1 keeps its own.
    expect(await a.getOrSet('k', unused, { skipL1: true })).toBe('in-l2')
    expect(unused).not.toHaveBeenCalled()
    expect(await a.get('k', { skipL2: true })).toBe('in-l1')
    // skipL1 on a miss: the factory's value goes to L2, not to L1.
    expect(await a.getOrSet('new', async () => 'db', { skipL1: true })).toBe('db')
    expect(await probe.get('new', { skipL1: true })).toBe('db')
    expect(await a.get('new', { skipL2: true })).toBeUndefined()
    // skipL2: L2's value is not read; the factory's value goes to L1, not to L2.
    expect(await a.getOrSet('only-l2', async () => 'db', { skipL2: true })).toBe('db')
    expect(await probe.get('only-l2', { skipL1: true })).toBe('l2-value')
    expect(await a.get('only-l2', { skipL2: true })).toBe('db')
    expect(await a.getOrSet('l1-only', async () => 'db', { skipL2: true })).toBe('db')
    expect(await inL2('l1-only')).toBe(false)
    // Both: the factory's value, kept in neither tier.
    expect(await a.getOrSet('nowhere', async () => 'db', { skipL1: true, skipL2: true })).toBe('db')
    expect(await inL2('nowhere')).toBe(false)
    expect(await a.get('nowhere', { skipL2: true })).toBeUndefined()
  })

  it('set with skipL1: the value goes to L2, the writer drops its own L1 copy, and the invalidation is published', async () => {
    const a = await instance()
    const probe = await instance()
    await heardBy(listening(probe), () => a.set('k', 'old'))
    expect(await probe.get('k')).toBe('old') // probe holds it in L1
    expect(await a.get('k', { skipL2: true })).toBe('old') // so does the writer
    await heardBy(listening(probe), () => a.set('k', 'new', { skipL1: true }))
    expect(await a.get('k', { skipL2: true })).toBeUndefined()
    expect(await probe.get('k', { skipL1: true })).toBe('new')
    expect(await probe.get('k')).toBe('new') // its L1 copy of 'old' was dropped
  })

  it('set with skipL2: the value stays in the writer’s L1, the L2 copy is deleted, and the invalidation is published', async () => {
    const a = await instance()
    const probe = await instance()
    await heardBy(listening(probe), () => a.set('k', 'old'))
    expect(await probe.get('k')).toBe('old') // probe holds it in L1
    const received = probe.stats().invalidationsReceived
    await a.set('k', 'new', { skipL2: true })
    await barrier(() => probe.bus.status())
    expect(await probe.get('k')).toBeUndefined() // neither its L1 copy nor L2 has 'old'
    expect(await inL2('k')).toBe(false)
    expect(probe.stats().invalidationsReceived).toBe(received + 1)
    expect(await a.get('k', { skipL2: true })).toBe('new')
  })

  it.each([{ skipL1: true }, { skipL2: true }, { skipL1: true, skipL2: true }])(
    'delete with %o removes the key from every tier, on every instance',
    async (flags) => {
      const a = await instance()
      const probe = await instance()
      await heardBy(listening(probe), () => a.set('k', 'v'))
      expect(await probe.get('k')).toBe('v') // in probe's L1, a's L1 and L2
      await heardBy(listening(probe), () => a.delete('k', flags))
      expect(await inL2('k')).toBe(false)
      expect(await a.get('k', { skipL2: true })).toBeUndefined()
      expect(await probe.get('k')).toBeUndefined()
    },
  )
})
