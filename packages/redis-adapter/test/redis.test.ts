import { createCache, InvalidOptionError, SerializationError, TierError, WriteFailedError, type TierCacheError } from '@tiercache/core'
import { clock } from '@tiercache/core/adapter'
import { memoryTier } from '@tiercache/memory-adapter'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { once } from 'node:events'
import type { Socket } from 'node:net'
import { Redis } from 'ioredis'
import { Packr } from 'msgpackr'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { RedisServer } from '../../../tests/support/redis-server.js'
import { redisBus, redisTier } from '../src/index.js'
import { addressOf, Monitor } from './support-monitor.js'

let server: RedisServer
let raw: Redis
let monitor: Monitor
const closers: Array<() => Promise<unknown>> = []

beforeAll(async () => {
  server = await RedisServer.start()
  // Started before any connection exists, and confirmed: every command of every test is recorded.
  monitor = await Monitor.start(server.port)
  raw = new Redis(server.url)
})
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
  await raw.flushall()
})
afterAll(async () => {
  monitor.close()
  raw.disconnect()
  await server.stop()
})

/** A service instance (L1, the Redis tier, a bus), its bus proven ready: L1 is trusted from the start. */
async function instance(name = 'users', extra: { prefix?: string; onError?: (e: TierCacheError) => void; redis?: Redis } = {}) {
  const redis = extra.redis ?? server.url
  const bus = redisBus({ redis, prefix: extra.prefix })
  const cache = createCache<unknown>({
    name,
    tiers: [memoryTier(), redisTier({ redis, prefix: extra.prefix })],
    bus,
    ttl: '1h',
    onError: extra.onError ?? (() => {}),
  })
  closers.push(
    () => bus.close(),
    () => cache.close(),
  )
  await bus.ready()
  return { cache, bus }
}

let namedInstances = 0
/**
 * An instance whose tier and bus publish on a command connection of its own,
 * named by CLIENT SETNAME, so that MONITOR lines can be told apart by
 * connection: other instances' commands and every bus's SUBSCRIBE and
 * liveness PINGs come from other connections.
 */
async function namedInstance(name = 'users') {
  const connectionName = `test-instance-${++namedInstances}`
  const client = new Redis(server.url, { connectionName })
  closers.push(() => client.quit()) // pushed first: closed after the cache and bus that use it
  const { cache, bus } = await instance(name, { redis: client })
  await client.ping() // the name is set in the handshake, before the first command is answered
  return { cache, bus, client, address: await addressOf(raw, connectionName) }
}

/** A monitored EVALSHA as its name and the keys it touches (EVALSHA <sha> <numkeys> <keys...> <args...>); other commands whole. */
function withKeys({ args }: { args: readonly string[] }): string[] {
  if (args[0] === 'mget') return [...args]
  if (args[0] === 'evalsha') return ['evalsha', ...args.slice(3, 3 + Number(args[2]))]
  return [...args]
}

describe('redisTier on a real redis-server', () => {
  it('stores an entry under <prefix>:<cache>:<key> with a PX expiry from the TTL', async () => {
    const { cache } = await instance()
    await cache.set('user:1', { id: 1 }, { ttl: '90s' })
    const pttl = await raw.pttl('tiercache:users:user:1')
    expect(pttl).toBeGreaterThan(80_000)
    expect(pttl).toBeLessThanOrEqual(90_000)
  })

  it('an L2 hit is one round trip: one MGET of the entry and its generation, no script, no other command', async () => {
    const writer = await instance()
    await writer.cache.set('k', 'v')
    const reader = await namedInstance()
    await reader.cache.get('warm-up') // the first read goes through the script: it brings the server-clock sample
    const { sent, inScripts } = await monitor.during(reader.client, reader.address, async () => {
      expect(await reader.cache.get('k')).toBe('v')
    })
    expect(sent.map(({ args }) => args)).toEqual([['mget', 'tiercache:users:k', 'tiercache:users#gen']])
    expect(inScripts).toEqual([])
  })

  it('fast read path: misses, tagged entries and stale entries on the fill path go through the script; a miss-heavy load goes there directly', async () => {
    const { cache } = await instance()
    await cache.get('warm-up')
    await cache.set('tagged', 'T', { tags: ['t1'] })
    await cache.set('stale', 'S', { ttl: '50ms', grace: '1h' })
    await new Promise((resolve) => setTimeout(resolve, 80)) // for 'stale' to outlive its TTL: what is awaited is time itself
    const reader = await namedInstance()
    await reader.cache.get('warm-up') // brings the reader's connection its server-clock sample: the fast path needs one
    // ioredis sends a script's first call on a connection as EVAL: let the write script's go out before the window.
    await reader.cache.set('warm-up-write', 'x') // a plain write: no fill-path read, so no share of script reads yet
    const first = await monitor.during(reader.client, reader.address, async () => {
      expect(await reader.cache.getOrSet('tagged', () => 'factory')).toBe('T')
      expect(await reader.cache.getOrSet('stale', () => 'refreshed', { refreshStale: 'wait' })).toBe('refreshed')
    })
    expect(first.sent.map(withKeys)).toEqual([
      // A tagged entry needs its tag versions checked in Redis: MGET, then the read script.
      ['mget', 'tiercache:users:tagged', 'tiercache:users#gen'],
      ['evalsha', 'tiercache:users:tagged', 'tiercache:users#gen', 'tiercache:users#lease:tagged'],
      // A stale entry on the fill path needs the lease for its refresh: MGET, then the read script...
      ['mget', 'tiercache:users:stale', 'tiercache:users#gen'],
      ['evalsha', 'tiercache:users:stale', 'tiercache:users#gen', 'tiercache:users#lease:stale'],
      // ...then the refresh's write script.
      ['evalsha', 'tiercache:users:stale', 'tiercache:users#gen', 'tiercache:users#lease:stale'],
    ])
    // Misses: once most fill-path reads have needed the script (a share decaying by 1/8 per read,
    // over one half), they skip the MGET they would only repeat there. Two script reads above and
    // four more misses through MGET pass one half: from the fifth miss on, reads go to the script directly.
    const misses = await monitor.during(reader.client, reader.address, async () => {
      for (let i = 0; i < 12; i++) expect(await reader.cache.getOrSet(`miss-${i}`, () => i)).toBe(i)
    })
    const expected: string[][] = []
    for (let i = 0; i < 12; i++) {
      const keys = [`tiercache:users:miss-${i}`, 'tiercache:users#gen', `tiercache:users#lease:miss-${i}`]
      if (i < 4) expected.push(['mget', keys[0]!, keys[1]!])
      expected.push(['evalsha', ...keys], ['evalsha', ...keys]) // the read that takes the lease, the fill's write
    }
    expect(misses.sent.map(withKeys)).toEqual(expected)
  })

  it('getMany: one read script for the keys L1 lacks; getOrSetMany: pipelined lease reads, one loader call, one write script', async () => {
    const writer = await instance()
    await Promise.all(['a', 'b', 'c'].map((key) => writer.cache.set(key, key.toUpperCase())))
    const reader = await namedInstance()
    await reader.cache.get('warm-up')
    await reader.cache.getOrSet('warm-up-write', () => 'x') // loads the scripts on the connection
    await reader.cache.getMany(['warm-up-1', 'warm-up-2'])
    const loads: string[][] = []
    const { sent } = await monitor.during(reader.client, reader.address, async () => {
      expect(await reader.cache.getMany(['a', 'b', 'c', 'd'])).toEqual(['A', 'B', 'C', undefined])
      const loaded = await reader.cache.getOrSetMany(['a', 'x1', 'x2', 'x3'], async (missing) => {
        loads.push([...missing])
        return missing.map((key) => `loaded ${key}`)
      })
      expect(loaded).toEqual(['A', 'loaded x1', 'loaded x2', 'loaded x3'])
    })
    const leased = ['x1', 'x2', 'x3'].flatMap((key) => [`tiercache:users:${key}`, 'tiercache:users#gen', `tiercache:users#lease:${key}`])
    expect(sent.map(withKeys)).toEqual([
      // getMany: one read script for the four keys.
      ['evalsha', 'tiercache:users#gen', 'tiercache:users:a', 'tiercache:users:b', 'tiercache:users:c', 'tiercache:users:d'],
      // getOrSetMany: 'a' from L1; x1-x3 in one MGET (the fast path, batched per tick), then, as
      // misses, in one read script that takes their leases, one loader call, one write script for the fills.
      ['mget', 'tiercache:users:x1', 'tiercache:users:x2', 'tiercache:users:x3', 'tiercache:users#gen'],
      ['evalsha', ...leased],
      ['evalsha', ...leased],
    ])
    expect(loads).toEqual([['x1', 'x2', 'x3']])
    expect(await (await instance()).cache.get('x2')).toBe('loaded x2')
  })

  it('clear is O(1): one script that bumps one generation key and publishes; older entries read as misses', async () => {
    const { cache, client, address } = await namedInstance()
    for (let i = 0; i < 50; i++) await cache.set(`k${i}`, i)
    const { sent, inScripts } = await monitor.during(client, address, () => cache.clear())
    expect(sent.map(withKeys)).toEqual([['evalsha', 'tiercache:users#gen', 'tiercache:users#gen', 'tiercache:users#gen']])
    expect(inScripts.map(({ args }) => args.slice(0, 2).join(' '))).toEqual(['time', 'set tiercache:users#gen', 'publish tiercache:invalidations'])
    const fresh = await instance()
    expect(await fresh.cache.get('k1')).toBeUndefined()
    expect(await fresh.cache.getOrSet('k1', () => 'refilled')).toBe('refilled')
  })

  /** Writes raw bytes under the cache's current generation header, as another program could. */
  async function writeRaw(cache: { set(key: string, value: unknown): Promise<void> }, key: string, payload: Buffer, ttlMs?: number) {
    await cache.set('seed-generation', 1)
    const generation = await raw.get('tiercache:users#gen')
    const bytes = Buffer.concat([Buffer.from(`${generation},${Date.now() + 60_000},0:`), payload])
    if (ttlMs === undefined) await raw.set(`tiercache:users:${key}`, bytes)
    else await raw.set(`tiercache:users:${key}`, bytes, 'PX', ttlMs)
  }

  const packr = new Packr({ moreTypes: true })
  it.each([
    ['random bytes', Buffer.from([0xde, 0xad, 0xbe, 0xef, 0x00, 0xff]), 60_000],
    ['an empty payload', Buffer.alloc(0), 60_000],
    ['a truncated envelope', packr.pack([1, Date.now(), 'x'.repeat(50)]).subarray(0, 20), 60_000],
    ['an unknown envelope version', packr.pack([99, Date.now(), 'v']), 60_000],
    ['a bare map with __proto__ keys', packr.pack(JSON.parse('{"__proto__":{"polluted":true}}')), 60_000],
    ['a valid entry with no expiry', packr.pack([1, Date.now(), 0, 'immortal']), undefined],
  ])('hostile L2 content (%s) reads as a miss and is replaced by the next fill', async (_label, payload, ttlMs) => {
    const { cache } = await instance()
    await writeRaw(cache, 'hostile', payload, ttlMs)
    expect(await cache.get('hostile')).toBeUndefined()
    expect(await cache.getOrSet('hostile', () => 'rebuilt')).toBe('rebuilt')
    // The fill replaced the bytes in Redis: another instance reads the rebuilt value.
    const other = await instance()
    expect(await other.cache.get('hostile')).toBe('rebuilt')
    expect(await raw.pttl('tiercache:users:hostile')).toBeGreaterThan(0)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('an envelope carrying __proto__ keys decodes without polluting any prototype', async () => {
    const { cache } = await instance()
    const hostile = JSON.parse('{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}')
    await writeRaw(cache, 'proto', packr.pack([1, Date.now(), 0, hostile]), 60_000)
    const value = (await cache.get('proto')) as Record<string, unknown>
    expect(Object.getPrototypeOf(value)).toBe(Object.prototype)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(value.polluted).toBeUndefined()
  })

  it('a lost generation key never brings cleared entries back', async () => {
    const { cache } = await instance()
    await cache.set('a', 'before-clear')
    await cache.clear()
    await raw.del('tiercache:users#gen') // evicted, or purged by an operator's pattern delete
    const fresh = await instance()
    expect(await fresh.cache.get('a')).toBeUndefined()
    await fresh.cache.set('b', 'after')
    expect(await fresh.cache.get('a')).toBeUndefined()
    expect(await (await instance()).cache.get('b')).toBe('after')
  })

  it('one failing operation in a write batch fails alone, and the batch still publishes', async () => {
    const a = await instance()
    const b = await instance()
    await Promise.all([a.bus.ready(), b.bus.ready()])
    await a.cache.set('good', 'v1')
    expect(await b.cache.get('good')).toBe('v1')
    await raw.hset('tiercache:users:wrongtype', 'field', 'x') // a key of the wrong type
    const received = b.bus.status().messagesReceived
    // Both writes go out in the same tick, so in the same script call.
    const direct = redisTier({ redis: server.url }).bind({ cacheName: 'users' })
    closers.push(() => direct.close())
    const results = await Promise.allSettled([
      direct.set('wrongtype', { value: 'fill', createdAt: 0, expiresAt: clock() + 60_000 }, { ifAbsent: true }),
      a.cache.set('good', 'v2'),
    ])
    expect(results[0]!.status).toBe('rejected')
    expect(String((results[0] as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/)
    expect(results[1]!.status).toBe('fulfilled')
    await vi.waitFor(() => expect(b.bus.status().messagesReceived).toBeGreaterThan(received), { timeout: 5_000 })
    expect(await b.cache.get('good')).toBe('v2')
  })

  it('rejects unencodable and oversized values with SerializationError before any write', async () => {
    const bus = redisBus({ redis: server.url })
    const cache = createCache<unknown>({
      name: 'strict',
      tiers: [memoryTier(), redisTier({ redis: server.url, maxValueBytes: 1_000 })],
      bus,
    })
    closers.push(
      () => bus.close(),
      () => cache.close(),
    )
    const circular: Record<string, unknown> = {}
    circular.self = circular
    class User {
      #secret = 1
      get id() {
        return this.#secret
      }
    }
    const unawaited = Promise.resolve(1)
    unawaited.catch(() => {})
    for (const bad of [{ fn: () => 1 }, { s: Symbol('x') }, circular, { big: 'x'.repeat(2_000) }, unawaited, new User(), { m: new WeakMap() }]) {
      const error = await cache.set('bad', bad).catch((e: unknown) => e)
      expect(error).toBeInstanceOf(SerializationError)
      expect((error as Error).message).toContain('cache "strict"')
      expect((error as Error).message).toContain('key "bad"')
    }
    expect(await raw.exists('tiercache:strict:bad')).toBe(0)
    expect(await cache.get('bad')).toBeUndefined()
  })

  it('two deployment prefixes on one Redis never see each other', async () => {
    const blue = await instance('users', { prefix: 'blue' })
    const green = await instance('users', { prefix: 'green' })
    await blue.cache.set('k', 'blue-value')
    expect(await green.cache.get('k')).toBeUndefined()
    await green.cache.set('k', 'green-value')
    expect(await blue.cache.get('k')).toBe('blue-value')
  })

  it('rejects bad options at construction', () => {
    expect(() => redisTier({ redis: 'localhost:6379' })).toThrow(InvalidOptionError)
    expect(() => redisTier({ redis: server.url, prefix: 'a:b' })).toThrow(/prefix/)
    expect(() => redisTier({ redis: server.url, timeout: '1 second' })).toThrow(/timeout/)
    expect(() => redisTier({ redis: server.url, tiemout: 5 } as never)).toThrow(/unknown option "tiemout"/)
    expect(() => redisBus({ redis: 42 as never })).toThrow(InvalidOptionError)
  })

  it('accepts an ioredis client the caller owns, and leaves it open on close', async () => {
    const client = new Redis(server.url)
    const bus = redisBus({ redis: client })
    const cache = createCache({ name: 'owned', tiers: [redisTier({ redis: client })], bus })
    await cache.set('k', 1)
    expect(await cache.get('k')).toBe(1)
    await cache.close()
    await bus.close()
    expect(await client.ping()).toBe('PONG')
    client.disconnect()
  })
})

describe('redisBus', () => {
  it('a write on one instance evicts the L1 copy on another instance', async () => {
    const a = await instance()
    const b = await instance()
    await Promise.all([a.bus.ready(), b.bus.ready()])
    await a.cache.set('k', 'v1')
    expect(await b.cache.get('k')).toBe('v1') // now in b's L1
    await a.cache.set('k', 'v2')
    await vi.waitFor(() => expect(b.bus.status().messagesReceived).toBeGreaterThanOrEqual(2), { timeout: 5_000 })
    expect(await b.cache.get('k')).toBe('v2')
  })

  it('no self-echo: the writer keeps its fresh L1 entry when its own message comes back', async () => {
    const a = await instance()
    await a.bus.ready()
    await a.cache.set('k', 'mine')
    await vi.waitFor(() => expect(a.bus.status().messagesReceived).toBe(1), { timeout: 5_000 })
    await raw.del('tiercache:users:k') // if the echo had evicted L1, the next get would miss
    expect(await a.cache.get('k')).toBe('mine')
  })

  it('bus state changes are published on the tiercache:bus diagnostics channel', async () => {
    const events: unknown[] = []
    const listener = (event: unknown) => events.push(event)
    subscribe('tiercache:bus', listener)
    try {
      const a = await instance()
      await a.bus.ready()
      await raw.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
      await vi.waitFor(() => expect(a.bus.status().gapsSeen).toBe(1), { timeout: 5_000 })
      const mine = events.filter((e) => (e as { channel: string }).channel === 'tiercache:invalidations')
      expect(mine.map((e) => (e as { state: string }).state)).toEqual(['gap-opened', 'gap-closed']) // start-up is not a gap
    } finally {
      unsubscribe('tiercache:bus', listener)
    }
  })

  it('malformed messages on the channel are dropped and counted, never thrown', async () => {
    const a = await instance()
    await a.bus.ready()
    const garbage = ['not json', '{"v":9,"i":[]}', '{"v":1,"i":[["o","x"]]}', Buffer.from([0xff, 0x00, 0xfe])]
    for (const message of garbage) await raw.publish('tiercache:invalidations', message)
    await vi.waitFor(() => expect(a.bus.status().messagesReceived).toBe(4), { timeout: 5_000 })
    expect(a.bus.status().messagesDropped).toBe(4)
    await a.cache.set('still', 'works')
    expect(await a.cache.get('still')).toBe('works')
  })

  it('many caches share one bus subscription and one command connection', async () => {
    // Only this test's connections are counted: Redis numbers connections in the order they
    // are accepted, so those opened from here on have ids above every id listed now.
    const idsBefore = clientList(await raw.call('CLIENT', 'LIST')).map((client) => Number(client.id))
    const lastIdBefore = Math.max(...idsBefore)
    const bus = redisBus({ redis: server.url, prefix: 'shared' })
    const caches = ['a', 'b', 'c', 'd'].map((name) => createCache({ name, tiers: [memoryTier(), redisTier({ redis: server.url, prefix: 'shared' })], bus }))
    closers.push(() => bus.close(), ...caches.map((c) => () => c.close()))
    await bus.ready()
    await Promise.all(caches.map((c) => c.set('k', 1)))
    expect(await Promise.all(caches.map((c) => c.get('k')))).toEqual([1, 1, 1, 1])
    const opened = clientList(await raw.call('CLIENT', 'LIST')).filter((client) => Number(client.id) > lastIdBefore)
    // One command connection for this URL (every cache's tier and the bus's publishing), one subscriber.
    expect(opened.map((client) => client.name).sort()).toEqual(['tiercache', 'tiercache:bus'])
    expect(bus.status().members).toBe(4)
  })
})

/** CLIENT LIST as records of its fields. */
function clientList(reply: unknown): Array<Record<string, string>> {
  return String(reply)
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) =>
      Object.fromEntries(
        line
          .trim()
          .split(' ')
          .map((field) => [field.slice(0, field.indexOf('=')), field.slice(field.indexOf('=') + 1)]),
      ),
    )
}

/** Runs `open`, and returns with its result every TCP client socket opened meanwhile, each with a promise of its close. */
async function socketsOpenedBy<T>(open: () => Promise<T>): Promise<{ opened: T; sockets: Array<{ socket: Socket; closed: Promise<unknown> }> }> {
  const sockets: Array<{ socket: Socket; closed: Promise<unknown> }> = []
  const onSocket = (message: unknown) => {
    const { socket } = message as { socket: Socket }
    sockets.push({ socket, closed: once(socket, 'close') })
  }
  subscribe('net.client.socket', onSocket)
  try {
    return { opened: await open(), sockets }
  } finally {
    unsubscribe('net.client.socket', onSocket)
  }
}

describe('failure behaviour', () => {
  it('with Redis gone, getOrSet falls back to the factory after the timeout and set rejects with TierError', async () => {
    const down = await RedisServer.start()
    const errors: TierCacheError[] = []
    const bus = redisBus({ redis: down.url, timeout: '300ms' })
    const cache = createCache<string>({
      name: 'outage',
      tiers: [memoryTier(), redisTier({ redis: down.url, timeout: '300ms' })],
      bus,
      onError: (e) => errors.push(e),
    })
    closers.push(
      () => bus.close(),
      () => cache.close(),
    )
    await cache.set('k', 'before')
    await down.kill()
    expect(await cache.getOrSet('other', () => 'from-factory')).toBe('from-factory')
    expect(errors.some((e) => e instanceof TierError && e.key === 'other')).toBe(true)
    const error = await cache.set('k', 'during').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(WriteFailedError)
    expect((error as Error).cause).toBeInstanceOf(TierError)
    // An uncertain write drops the local copy rather than serve what may be stale.
    expect(await cache.getOrSet('k', () => 'recomputed')).toBe('recomputed')
    await down.stop()
  })

  it('a paused Redis (SIGSTOP: sockets open, nothing answered): a call gives up at the tier timeout with a TierError naming cache and key', async () => {
    const frozen = await RedisServer.start()
    const errors: TierCacheError[] = []
    const cache = createCache<string>({
      name: 'frozen',
      tiers: [memoryTier(), redisTier({ redis: frozen.url, timeout: '200ms' })],
      onError: (e) => errors.push(e),
    })
    closers.push(
      () => cache.close(),
      () => frozen.stop(),
    )
    await cache.set('k', 'before')
    frozen.pause()
    try {
      const error = await cache.set('k', 'during').catch((e: unknown) => e)
      expect(error).toBeInstanceOf(WriteFailedError)
      expect((error as WriteFailedError).message).toMatch(/may not have reached the shared tier .*timed out after 200 ms/)
      expect((error as WriteFailedError).key).toBe('k')
      expect((error as TierError).cache).toBe('frozen')
      expect(await cache.getOrSet('other', () => 'from-factory')).toBe('from-factory')
      expect(errors.some((e) => e instanceof TierError && e.key === 'other')).toBe(true)
    } finally {
      frozen.resume()
    }
  })

  it('closing a bus and a tier while Redis is paused finishes, and leaves no unhandled rejection behind', async () => {
    const frozen = await RedisServer.start()
    closers.push(() => frozen.stop())
    // The sockets this test's bus and tier open: whatever is still queued on one fails when it
    // closes, so a stray rejection can only come from a socket's close, and is known by then.
    const {
      opened: { bus, cache },
      sockets,
    } = await socketsOpenedBy(async () => {
      const bus = redisBus({ redis: frozen.url })
      const cache = createCache<string>({ name: 'closing', tiers: [memoryTier(), redisTier({ redis: frozen.url })], bus })
      await bus.ready()
      await cache.set('k', 'v')
      return { bus, cache }
    })
    const unhandled: unknown[] = []
    const onUnhandled = (reason: unknown) => unhandled.push(reason)
    process.on('unhandledRejection', onUnhandled)
    try {
      // The bus's subscriber and the command connection the bus and the tier share.
      expect(sockets.map(({ socket }) => socket.remotePort)).toEqual([frozen.port, frozen.port])
      frozen.pause()
      try {
        await cache.close()
        await bus.close() // QUIT gets no answer: given up after a bound, then the socket is dropped
        // ioredis ends a dropped socket at once and destroys it after its disconnect timeout
        // if the server never answers the FIN; the close fails what was still queued on it.
        await Promise.all(sockets.map(({ closed }) => closed))
        // Unhandled rejections are reported once the microtasks of the task that caused them have
        // run, before the next task: a stray rejection from a close is reported by now.
        await new Promise((resolve) => setImmediate(resolve))
        expect(unhandled).toEqual([])
      } finally {
        frozen.resume()
      }
    } finally {
      process.off('unhandledRejection', onUnhandled)
    }
  })

  it('waitForReplicas: with no replica to acknowledge it, a write rejects with a WriteFailedError naming the replicas, and the local copy is dropped', async () => {
    const cache = createCache<string>({
      name: 'durable',
      tiers: [memoryTier(), redisTier({ redis: server.url, waitForReplicas: { replicas: 1, timeout: '50ms' } })],
      onError: () => {},
    })
    closers.push(() => cache.close())
    const error = await cache.set('k', 'v').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(WriteFailedError)
    expect((error as WriteFailedError).cause).toBeInstanceOf(TierError)
    expect((error as WriteFailedError).message).toMatch(/reached 0 of 1 replica/)
    expect(cache.stats().l1Entries).toBe(0)
    expect(() => redisTier({ redis: server.url, waitForReplicas: { replicas: 0 } })).toThrow(/replicas must be a positive integer/)
    expect(() => redisTier({ redis: server.url, timeout: '1s', waitForReplicas: { replicas: 1, timeout: '2s' } })).toThrow(/shorter than the tier's timeout/)
  })

  it('a bus created while Redis is down subscribes once Redis is up, and only then trusts L1', async () => {
    const late = await RedisServer.start()
    await late.kill()
    const bus = redisBus({ redis: late.url })
    const reader = createCache<string>({ name: 'late', tiers: [memoryTier(), redisTier({ redis: late.url })], bus, onError: () => {} })
    closers.push(
      () => bus.close(),
      () => reader.close(),
      () => late.stop(),
    )
    await new Promise((resolve) => setTimeout(resolve, 200))
    expect(bus.status().connected).toBe(false)
    expect(bus.status().trusted).toBe(false)
    await late.restart()
    await bus.ready()
    expect(bus.status().trusted).toBe(true)
    const writerBus = redisBus({ redis: late.url })
    const writer = createCache<string>({ name: 'late', tiers: [memoryTier(), redisTier({ redis: late.url })], bus: writerBus })
    closers.push(
      () => writerBus.close(),
      () => writer.close(),
    )
    await writer.set('k', 'v1')
    await vi.waitFor(() => expect(bus.status().messagesReceived).toBe(1), { timeout: 5_000 })
    expect(await reader.get('k')).toBe('v1')
    await writer.set('k', 'v2')
    await vi.waitFor(() => expect(bus.status().messagesReceived).toBe(2), { timeout: 5_000 })
    expect(await reader.get('k')).toBe('v2')
  })
})
