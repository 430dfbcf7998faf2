import type { BusStatus } from '@tiercache/core'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { InstanceProcess } from './support/instance.js'
import { RedisServer } from './support/redis-server.js'

/**
 * Separate Node processes sharing one real redis-server: the product's
 * situation. Each reader holds the key in its own L1 (TTL 1 h) before the
 * write, so it can only see the new value if the invalidation reached it.
 */
const READERS = 3
/** The coherence bound (maxStaleness, default 1 s); without faults the hop is sub-millisecond. */
const BOUND_MS = 1_000

let server: RedisServer
let writer: InstanceProcess
let readers: InstanceProcess[]

beforeAll(async () => {
  server = await RedisServer.start()
  const env = { REDIS_URL: server.url, CACHE_NAME: 'multi' }
  const started = await Promise.all(Array.from({ length: READERS + 1 }, () => InstanceProcess.start(env)))
  writer = started[0]!
  readers = started.slice(1)
})

afterAll(async () => {
  for (const instance of [writer, ...readers]) instance?.kill()
  await server?.stop()
})

/**
 * Returns once every message published on the bus channel so far has reached
 * each of `instances`: a subscriber gets the channel's messages in the order
 * Redis executed their PUBLISHes, so when a marker published now has arrived
 * (a foreign message: counted as dropped, applied nowhere), so has everything
 * before it.
 */
async function barrier(instances: InstanceProcess[]) {
  const dropped = await Promise.all(instances.map(async (i) => (await i.call<BusStatus>('busStatus')).messagesDropped))
  expect(Number(server.cli('PUBLISH', 'tiercache:invalidations', 'barrier'))).toBeGreaterThanOrEqual(instances.length)
  await Promise.all(
    instances.map((instance, n) =>
      vi.waitFor(async () => expect((await instance.call<BusStatus>('busStatus')).messagesDropped).toBe(dropped[n]! + 1), { timeout: 5_000 }),
    ),
  )
}

/**
 * Puts `expected` in each reader's L1 and proves it is there, so that a later
 * read of the new value can only come from an invalidation reaching it. A
 * reader may still return the value before it for one pub/sub hop after the
 * write resolved (the contract allows up to the bound), so this waits for it
 * rather than expecting it at once; once every message is in (the barrier), a
 * read fills L1 (if the reads above did not) and the next is answered from it.
 */
async function primeAll(instances: InstanceProcess[], key: string, expected: unknown) {
  for (const instance of instances) {
    expect(await instance.call<number>('waitFor', { key, expected, boundMs: BOUND_MS })).toBeGreaterThanOrEqual(0)
  }
  await barrier(instances)
  for (const instance of instances) {
    await vi.waitFor(async () => expect(await instance.call('l1Get', { key })).toEqual({ value: expected, fromL1: true }), { timeout: 5_000 })
  }
}

describe(`${READERS + 1} instance processes on one redis-server`, () => {
  it('after set resolves on one instance, every other instance reads the new value (not its L1 copy)', async () => {
    const delays: number[] = []
    for (let round = 1; round <= 20; round++) {
      const key = `user:${round % 4}`
      const previous = { round: round - 1 }
      await writer.call('set', { key, value: previous })
      await primeAll(readers, key, previous) // each reader now holds `previous` in L1
      const next = { round }
      await writer.call('set', { key, value: next })
      const waited = await Promise.all(readers.map((r) => r.call<number>('waitFor', { key, expected: next, boundMs: BOUND_MS })))
      expect(waited.every((ms) => ms >= 0)).toBe(true)
      delays.push(...waited)
    }
    delays.sort((a, b) => a - b)
    console.info(
      `multi-process propagation (poll after set resolved), ms: p50 ${delays[Math.floor(delays.length / 2)]!.toFixed(3)} max ${delays.at(-1)!.toFixed(3)}`,
    )
  })

  it('after delete resolves, no instance returns the deleted value', async () => {
    await writer.call('set', { key: 'gone', value: 'here' })
    await primeAll(readers, 'gone', 'here')
    await writer.call('delete', { key: 'gone' })
    const waited = await Promise.all(readers.map((r) => r.call<number>('waitFor', { key: 'gone', expected: undefined, boundMs: BOUND_MS })))
    expect(waited.every((ms) => ms >= 0)).toBe(true)
  })

  it('after clear resolves on a reader, every instance drops every key of the cache', async () => {
    await writer.call('set', { key: 'a', value: 1 })
    await writer.call('set', { key: 'b', value: 2 })
    await primeAll(readers, 'a', 1)
    await primeAll(readers, 'b', 2)
    await readers[0]!.call('clear')
    for (const instance of [writer, ...readers]) {
      for (const key of ['a', 'b']) {
        expect(await instance.call<number>('waitFor', { key, expected: undefined, boundMs: BOUND_MS })).toBeGreaterThanOrEqual(0)
      }
    }
  })

  it('values written in one process decode in a fresh process: Date, Map, Set, BigInt, undefined', async () => {
    const value = {
      date: new Date('2026-11-24T10:00:00.123Z'),
      map: new Map<unknown, unknown>([
        ['k', { n: 1 }],
        [7, 'seven'],
      ]),
      set: new Set([1, 'two']),
      big: 12345678901234567890n,
      nothing: undefined,
      nested: [{ at: new Date(0) }, null],
    }
    await writer.call('set', { key: 'typed', value })
    const fresh = await InstanceProcess.start({ REDIS_URL: server.url, CACHE_NAME: 'multi' })
    try {
      const read = (await fresh.call('get', { key: 'typed' })) as typeof value
      expect(read).toEqual(value)
      expect(read.date).toBeInstanceOf(Date)
      expect(read.map).toBeInstanceOf(Map)
      expect(read.set).toBeInstanceOf(Set)
      expect(typeof read.big).toBe('bigint')
      expect(Object.hasOwn(read, 'nothing')).toBe(true)
    } finally {
      fresh.kill()
    }
  })

  it('a createCache that throws leaves no open handles: the process exits on its own', async () => {
    const { execFile } = await import('node:child_process')
    const fixture = new URL('./fixtures/failed-create.mjs', import.meta.url).pathname
    const result = await new Promise<{ code: number | null; stdout: string }>((resolve) => {
      const child = execFile(process.execPath, [fixture], { env: { ...process.env, REDIS_URL: server.url }, timeout: 10_000 }, (error, stdout) =>
        resolve({ code: error === null ? 0 : (child.exitCode ?? -1), stdout }),
      )
    })
    expect(result.stdout.trim()).toBe('ERR_INVALID_OPTION,ERR_INVALID_OPTION')
    expect(result.code).toBe(0)
  })

  it('close() leaves no open handles: the process exits on its own', async () => {
    const instance = await InstanceProcess.start({ REDIS_URL: server.url, CACHE_NAME: 'multi' })
    await instance.call('set', { key: 'x', value: 1 })
    await instance.call('get', { key: 'x' })
    const exit = await Promise.race([instance.close(), new Promise<string>((resolve) => setTimeout(() => resolve('still running after 10 s'), 10_000).unref())])
    if (exit !== 0) instance.kill()
    expect(exit).toBe(0)
  })
})
