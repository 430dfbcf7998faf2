/**
 * Carrying values on the bus (redisBus carryValues; docs/coherence.md,
 * "Carrying values on the bus"), against a real redis-server: each hazard of
 * issue 23 has its test here. Instances are caches with buses of their own in
 * this process (the hazards are about message contents and order, which one
 * Redis decides); tests/carry-values.test.ts runs separate processes.
 */
import { createCache, InvalidOptionError, type Cache } from '@tiercache/core'
import { encodeInvalidations } from '@tiercache/core/adapter'
import { memoryTier } from '@tiercache/memory-adapter'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { RedisServer } from '../../../tests/support/redis-server.js'
import { carryOf } from '../src/carry.js'
import { redisBus, redisTier, type RedisBus } from '../src/index.js'

const SECRET = 'a-secret-of-at-least-16-bytes!!'
const WAIT = { timeout: 10_000, interval: 10 }
const CHANNEL = 'tiercache:invalidations'

let server: RedisServer
let raw: Redis
let listener: Redis
const messages: string[] = []
const closers: Array<() => Promise<unknown>> = []

beforeAll(async () => {
  server = await RedisServer.start()
  raw = new Redis(server.url)
  listener = new Redis(server.url)
  await listener.subscribe(CHANNEL)
  listener.on('message', (_channel: string, message: string) => messages.push(message))
})
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
  await raw.config('SET', 'maxmemory', '0')
  await raw.flushall()
  messages.length = 0
})
afterAll(async () => {
  await Promise.all([raw.quit(), listener.quit()])
  await server.stop()
})

type CarryOption = Parameters<typeof redisBus>[0]['carryValues']

async function instance(carryValues: CarryOption): Promise<{ cache: Cache<string>; bus: RedisBus }> {
  const bus = redisBus({ redis: server.url, ...(carryValues === undefined ? {} : { carryValues }) })
  const cache = createCache<string>({
    name: 'users',
    invalidation: { notes: 'test' },
    tiers: [memoryTier(), redisTier({ redis: server.url })],
    bus,
    ttl: '1h',
    onError: () => {},
  })
  closers.push(
    () => bus.close(),
    () => cache.close(),
  )
  await bus.ready({ timeout: 10_000 })
  return { cache, bus }
}

const l2Calls = (cache: Cache<string>) => cache.stats().l2Latency.count
const carried = (bus: RedisBus) => bus.status().carriedValues ?? { applied: 0, rejected: 0, undecodable: 0 }

/** `reader` holds `key` = `value` in L1 (read through L2), so a later eviction shows. */
async function held(reader: Cache<string>, key: string, value: string): Promise<void> {
  // Until a read is an L1 hit: the write's own message may still evict the copy a first read filled.
  await vi.waitFor(async () => {
    expect(await reader.get(key)).toBe(value)
    const hits = reader.stats().l1Hits
    expect(await reader.get(key)).toBe(value)
    expect(reader.stats().l1Hits).toBe(hits + 1)
  }, WAIT)
}

describe('carryValues', () => {
  it("a carried value lands in the reader's L1: its next read makes no L2 call", async () => {
    const writer = await instance({ secret: SECRET })
    const reader = await instance({ secret: SECRET })
    await writer.cache.set('k', 'v1')
    await held(reader.cache, 'k', 'v1')
    await writer.cache.set('k', 'v2')
    await vi.waitFor(() => expect(carried(reader.bus).applied).toBe(1), WAIT)
    const calls = l2Calls(reader.cache)
    const hits = reader.cache.stats().l1Hits
    expect(await reader.cache.get('k')).toBe('v2')
    expect(l2Calls(reader.cache)).toBe(calls)
    expect(reader.cache.stats().l1Hits).toBe(hits + 1)
    // The message is today's v1 message with the value in an extra field.
    const message = JSON.parse(messages.at(-1)!)
    expect(message.v).toBe(1)
    expect(message.i).toEqual([[expect.any(String), 'k', 'users', 'k']])
    expect(message.x).toHaveLength(1)
  })

  it('a message always evicts: a wrong secret on the reader evicts only (counted), never a wrong value', async () => {
    const writer = await instance({ secret: SECRET })
    const reader = await instance({ secret: 'another-secret-16-bytes-or-more' })
    await writer.cache.set('k', 'v1')
    await held(reader.cache, 'k', 'v1')
    const rejected = carried(reader.bus).rejected
    await writer.cache.set('k', 'v2')
    await vi.waitFor(() => expect(carried(reader.bus).rejected).toBe(rejected + 1), WAIT)
    const calls = l2Calls(reader.cache)
    expect(await reader.cache.get('k')).toBe('v2')
    expect(l2Calls(reader.cache)).toBe(calls + 1) // evicted: read again from L2
    expect(carried(reader.bus).applied).toBe(0)
  })

  it('a message always evicts: a missing MAC, an undecodable value and a forged one evict only', async () => {
    const writer = await instance({ secret: SECRET })
    const reader = await instance({ secret: SECRET })
    await writer.cache.set('k', 'v1')
    await held(reader.cache, 'k', 'v1')
    const plain = encodeInvalidations([{ origin: 'forger', invalidation: { kind: 'key', cache: 'users', key: 'k' } }])
    const [seconds] = await raw.time()
    const forged = `${plain.slice(0, -1)},"x":[[0,"${Buffer.from('not msgpack').toString('base64')}",60000,60000,"",""]],"n":${Number(seconds) * 1000}}`
    const rejected = carried(reader.bus).rejected
    await raw.publish(CHANNEL, forged)
    await vi.waitFor(() => expect(carried(reader.bus).rejected).toBe(rejected + 1), WAIT)
    const calls = l2Calls(reader.cache)
    expect(await reader.cache.get('k')).toBe('v1') // evicted, read again from L2
    expect(l2Calls(reader.cache)).toBe(calls + 1)
  })

  it('a message always evicts: an undecodable value on a channel declared protected evicts only', async () => {
    const writer = await instance({ channelProtected: true })
    const reader = await instance({ channelProtected: true })
    await writer.cache.set('k', 'v1')
    await held(reader.cache, 'k', 'v1') // (its read also samples the server clock carried values are converted with)
    const plain = encodeInvalidations([{ origin: 'other', invalidation: { kind: 'key', cache: 'users', key: 'k' } }])
    const [seconds] = await raw.time()
    await raw.publish(
      CHANNEL,
      `${plain.slice(0, -1)},"x":[[0,"${Buffer.from('not msgpack').toString('base64')}",60000,60000,"",""]],"n":${Number(seconds) * 1000}}`,
    )
    await vi.waitFor(() => expect(carried(reader.bus).undecodable).toBe(1), WAIT)
    const calls = l2Calls(reader.cache)
    expect(await reader.cache.get('k')).toBe('v1')
    expect(l2Calls(reader.cache)).toBe(calls + 1)
  })

  it('an instance with the option off (the current format) evicts on a carrying message', async () => {
    const writer = await instance({ secret: SECRET })
    const reader = await instance(undefined)
    await writer.cache.set('k', 'v1')
    await held(reader.cache, 'k', 'v1')
    const received = reader.bus.status().messagesReceived
    await writer.cache.set('k', 'v2')
    await vi.waitFor(() => expect(reader.bus.status().messagesReceived).toBe(received + 1), WAIT)
    expect(JSON.parse(messages.at(-1)!).x).toHaveLength(1) // it was a carrying message
    expect(reader.bus.status().messagesDropped).toBe(0)
    const calls = l2Calls(reader.cache)
    expect(await reader.cache.get('k')).toBe('v2')
    expect(l2Calls(reader.cache)).toBe(calls + 1)
    expect(reader.bus.status().carriedValues).toBeUndefined()
  })

  it('oversize values go plain: the key is evicted and re-read', async () => {
    const writer = await instance({ secret: SECRET, maxBytes: 64 })
    const reader = await instance({ secret: SECRET, maxBytes: 64 })
    await writer.cache.set('k', 'v1')
    await held(reader.cache, 'k', 'v1')
    const big = 'x'.repeat(200)
    await writer.cache.set('k', big)
    await vi.waitFor(() => expect(messages.some((m) => m.includes('"k","users","k"') && !m.includes('"x"'))).toBe(true), WAIT)
    expect(await reader.cache.get('k')).toBe(big)
    expect(carried(reader.bus).applied).toBe(0)
  })

  it('a batch over the per-message budget carries what fits (64 KiB) and sends the rest plain', async () => {
    const writer = await instance({ secret: SECRET, maxBytes: 65_536 })
    const reader = await instance({ secret: SECRET, maxBytes: 65_536 })
    const value = 'y'.repeat(30_000)
    await reader.cache.get('absent') // samples the server clock
    await Promise.all([0, 1, 2, 3].map((i) => writer.cache.set(`k${i}`, `${value}${i}`))) // one tick: one batch
    await vi.waitFor(() => expect(carried(reader.bus).applied).toBeGreaterThan(0), WAIT)
    const message = JSON.parse(messages.at(-1)!)
    expect(message.i).toHaveLength(4)
    expect(message.x).toHaveLength(2) // 2 × ~30 KB fit, the third would pass 64 KiB
    for (const i of [0, 1, 2, 3]) expect(await reader.cache.get(`k${i}`)).toBe(`${value}${i}`)
  })

  it('a failed write (SET refused with OOM under noeviction) sends no value, and still evicts', async () => {
    const writer = await instance({ secret: SECRET })
    const reader = await instance({ secret: SECRET })
    await writer.cache.set('k', 'v1')
    await held(reader.cache, 'k', 'v1')
    await raw.config('SET', 'maxmemory-policy', 'noeviction')
    await raw.config('SET', 'maxmemory', '1')
    const before = messages.length
    const applied = carried(reader.bus).applied
    await expect(writer.cache.set('k', 'v2')).rejects.toThrow(/OOM/)
    await raw.config('SET', 'maxmemory', '0')
    await vi.waitFor(() => expect(messages.length).toBeGreaterThan(before), WAIT)
    // The script's own message (plain: its SET failed), then the write path's invalidation after the failure.
    for (const message of messages.slice(before)) expect(JSON.parse(message).x).toBeUndefined()
    expect(carried(reader.bus).applied).toBe(applied)
    expect(await reader.cache.get('k')).toBeUndefined() // evicted, and the failed set removed the older entry
  })

  it('a fill whose lease was revoked sends no value (fills publish nothing; the set that revoked it carries its own)', async () => {
    const writer = await instance({ secret: SECRET })
    const filler = await instance({ secret: SECRET })
    const reader = await instance({ secret: SECRET })
    await reader.cache.get('absent') // samples the server clock
    let release: ((value: string) => void) | undefined
    const filling = filler.cache.getOrSet('k', () => new Promise<string>((resolve) => (release = resolve)))
    await vi.waitFor(() => expect(release).toBeDefined(), WAIT) // the factory runs: the filler holds the lease
    const applied = carried(reader.bus).applied
    await writer.cache.set('k', 'new') // revokes the lease
    await vi.waitFor(() => expect(carried(reader.bus).applied).toBe(applied + 1), WAIT)
    const before = messages.length
    release!('old')
    expect(await filling).toBe('old')
    await writer.cache.set('other', 'x') // a later message: everything published before it has arrived
    await vi.waitFor(() => expect(messages.length).toBeGreaterThan(before), WAIT)
    expect(messages.slice(before).map((m) => JSON.parse(m).i.map((i: unknown[]) => i[3]))).toEqual([['other']])
    expect(await reader.cache.get('k')).toBe('new')
    expect(await filler.cache.get('k')).toBe('new')
  })

  it('no carried value enters an instance whose own write of the key has not come back over the subscription yet', async () => {
    const writer = await instance({ channelProtected: true })
    const reader = await instance({ channelProtected: true })
    await writer.cache.set('k', 'v1')
    await held(reader.cache, 'k', 'v1')
    // As the write batcher does before the reader's write script is sent: its own invalidation of k is registered.
    const membership = reader.bus.join({ instanceId: reader.cache.instanceId, cacheName: 'users', onInvalidation: () => {}, onGap: () => {} })
    const own = [{ origin: reader.cache.instanceId, invalidation: { kind: 'key' as const, cache: 'users', key: 'k' } }]
    carryOf(membership.route)!.own.register(own)
    // A carrying message for k arrives before the reader's own message: evict only.
    const applied = carried(reader.bus).applied
    await writer.cache.set('k', 'v2')
    await vi.waitFor(() => expect(reader.bus.status().messagesReceived).toBeGreaterThan(0), WAIT)
    await writer.cache.set('fence', 'x') // the message above has arrived once this one has
    await vi.waitFor(async () => expect(await reader.cache.get('fence')).toBe('x'), WAIT)
    const calls = l2Calls(reader.cache)
    expect(await reader.cache.get('k')).toBe('v2')
    expect(l2Calls(reader.cache)).toBe(calls + 1) // not taken from the message: read from L2
    // The reader's own message comes back: carried values are taken again.
    await raw.publish(CHANNEL, encodeInvalidations(own))
    const afterEcho = carried(reader.bus).applied
    await writer.cache.set('k', 'v3')
    await vi.waitFor(() => expect(carried(reader.bus).applied).toBe(afterEcho + 1), WAIT)
    expect(await reader.cache.get('k')).toBe('v3')
    expect(applied).toBeGreaterThanOrEqual(0)
    membership.leave()
  })
})

describe('carryValues options', () => {
  it('refuses to turn on without a secret or channelProtected, and says why', () => {
    expect(() => redisBus({ redis: server.url, carryValues: {} })).toThrow(InvalidOptionError)
    expect(() => redisBus({ redis: server.url, carryValues: {} })).toThrow(/authenticated|ACL-protected/)
    expect(() => redisBus({ redis: server.url, carryValues: { secret: 'short' } })).toThrow(/at least 16 bytes/)
    expect(() => redisBus({ redis: server.url, carryValues: { secret: SECRET, maxBytes: 0 } })).toThrow(/maxBytes/)
    expect(() => redisBus({ redis: server.url, carryValues: { channelProtected: false as unknown as true } })).toThrow(/channelProtected/)
    expect(() => redisBus({ redis: [{ host: '127.0.0.1', port: 1 }], carryValues: { secret: SECRET } })).toThrow(/Cluster/)
  })
})
