/**
 * Write recovery (opt-in `writeRecovery`, issue 18) on a real redis-server,
 * in separate processes. Redis runs with an append-only file (fsync always),
 * so a kill loses nothing it acknowledged: what is missing after the restart
 * was removed by a replay, not by the kill.
 *
 * - A delete that fails in the outage rejects with `queued: true`, and is
 *   replayed before the instance that issued it serves from L1 again.
 * - A queued set replays as a delete: it never overwrites a newer value
 *   another instance wrote meanwhile, whichever lands first.
 * - The queue is bounded: past `maxQueued` it collapses into one clear() of
 *   the cache (fails closed), replayed the same way.
 */
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { InstanceProcess } from './support/instance.js'
import { RedisServer } from './support/redis-server.js'
import { TcpProxy } from './support/tcp-proxy.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/outage-instance.mjs', import.meta.url))
/** Hang guards for waits on events: generous, a loaded 2-core box is slow, never stuck. */
const GUARD = { timeout: 30_000, interval: 20 }

interface WriteResult {
  ok: boolean
  error?: { name: string; code: string; queued: boolean; cause: string | undefined; message: string }
}
interface Stats {
  writesQueued: number
  writesReplayed: number
  writeQueueCollapses: number
  l1Hits: number
}

let server: RedisServer
let instances: InstanceProcess[] = []

beforeAll(async () => {
  server = await RedisServer.start(['--appendonly', 'yes', '--appendfsync', 'always'])
})
afterEach(() => {
  for (const instance of instances) instance.kill()
  instances = []
})
afterAll(() => server.stop())

async function start(...envs: Array<Record<string, string>>): Promise<InstanceProcess[]> {
  instances = await Promise.all(envs.map((env) => InstanceProcess.start({ REDIS_URL: server.url, CACHE_NAME: 'wr', MAX_STALENESS: '1000', ...env }, FIXTURE)))
  return instances
}

const stats = (instance: InstanceProcess) => instance.call<Stats>('stats')
const trusted = async (instance: InstanceProcess) => (await instance.call<{ bus: { trusted: boolean } }>('health')).bus.trusted

/** A write that must resolve: retried until it does (after a restart, the writer's connection may still be coming back). */
async function write(instance: InstanceProcess, op: 'set' | 'delete', args: Record<string, unknown>): Promise<void> {
  await vi.waitFor(async () => expect(await instance.call<WriteResult>(op, args)).toEqual({ ok: true }), GUARD)
}

/** Redis's own copy of an entry, read past every cache: null when the key is absent. */
async function rawEntry(key: string): Promise<Buffer | null> {
  const raw = new Redis(server.url, { maxRetriesPerRequest: 1 })
  try {
    return await raw.getBuffer(`tiercache:wr:${key}`)
  } finally {
    raw.disconnect()
  }
}

/** The rejection a write gets in the outage with writeRecovery on: WriteFailedError, queued, the tier's error as its cause. */
function expectQueued(result: WriteResult): void {
  expect(result).toMatchObject({ ok: false, error: { name: 'WriteFailedError', code: 'ERR_WRITE_FAILED', queued: true } })
  expect(result.error!.cause).toMatch(/^ERR_/)
}

describe('write recovery on real Redis (writeRecovery on instance A)', () => {
  it('a delete in the outage rejects with queued: true; once Redis is back the key is gone from Redis before A serves from L1 again', async () => {
    // A's tier reaches Redis through a proxy, its bus directly: after the restart its bus is trusted
    // while its tier is still cut off, so the delete waits in the queue for as long as the test needs.
    const link = await TcpProxy.start(server.port)
    try {
      const [a, b] = await start({ REDIS_URL: link.url, BUS_URL: server.url, WRITE_RECOVERY: JSON.stringify({ retryEvery: '50ms' }) }, {})
      await write(a!, 'set', { key: 'doomed', value: 'v' })
      await write(a!, 'set', { key: 'witness', value: 'w' })
      await vi.waitFor(async () => expect(await b!.call('get', { key: 'doomed' })).toBe('v'), GUARD)
      await vi.waitFor(async () => expect(await a!.call('l1Get', { key: 'witness' })).toEqual({ value: 'w', fromL1: true }), GUARD)

      await server.kill()
      const rejected = await a!.call<WriteResult>('delete', { key: 'doomed' })
      expectQueued(rejected)
      expect((await stats(a!)).writesQueued).toBe(1)
      // A does not serve the deleted value meanwhile, nor go to L2 for it.
      expect(await a!.call('get', { key: 'doomed' })).toBeUndefined()

      link.partition()
      await server.restart()
      // A's bus is back and proven; its tier is not, so the delete is still queued. A does not serve
      // from L1 meanwhile: L1 holds what these reads load (reused within maxStaleness), never trusted.
      await vi.waitFor(async () => expect(await trusted(a!)).toBe(true), GUARD)
      const held = await a!.call<{ l1Hits: number; outageReuses: number; whileBusTrusted: number; writesQueued: number }>('readsNow', {
        key: 'loaded',
        reads: 200,
      })
      expect(held).toMatchObject({ l1Hits: 0, writesQueued: 1 })
      // Most began with the bus trusted (a loaded machine may let trust lapse now and then): without the
      // queue's hold on L1, each of those after the first load would have been an L1 hit.
      expect(held.whileBusTrusted).toBeGreaterThan(100)
      expect(held.outageReuses).toBeGreaterThan(0)

      // A reads the witness until L1 answers, and reports the queue as it stood at that read.
      const firstHit = a!.call<{ value: string; writesQueued: number; writesReplayed: number }>('firstL1Hit', { key: 'witness' })
      link.heal()
      const hit = await withGuard(firstHit, 'A serving from L1 again')
      expect(hit).toMatchObject({ value: 'w', writesQueued: 0, writesReplayed: 1 })
      // The replay reached Redis: the key is gone, and the witness (never deleted) survived the kill.
      expect(await rawEntry('doomed')).toBeNull()
      expect(await rawEntry('witness')).not.toBeNull()
      // B converges too (its L2 read no longer finds the key).
      await vi.waitFor(async () => expect(await b!.call('get', { key: 'doomed' })).toBeUndefined(), GUARD)
    } finally {
      await link.stop()
    }
  }, 120_000)

  it('a queued set never overwrites a newer value: B’s write before A’s replay, or racing it, leaves Redis holding the newer value or nothing, never the old one', async () => {
    // A reaches Redis through a proxy, so some rounds can hold its replay back until B has written.
    const link = await TcpProxy.start(server.port)
    try {
      const [a, b] = await start({ REDIS_URL: link.url, WRITE_RECOVERY: JSON.stringify({ retryEvery: '20ms' }) }, {})
      const outcomes: string[] = []
      for (let round = 0; round < 6; round++) {
        const key = `race:${round}`
        // Even rounds: B's write lands first for sure (A is cut off until it has), then the replay.
        // Odd rounds: both go as soon as their connections are back, B a little later each time.
        const ordered = round % 2 === 0
        await write(b!, 'set', { key, value: 'base' })
        await server.kill()
        expectQueued(await a!.call<WriteResult>('set', { key, value: 'old-from-A' }))
        if (ordered) link.partition()
        await server.restart()
        if (!ordered) await new Promise((resolve) => setTimeout(resolve, 20 * round))
        await write(b!, 'set', { key, value: 'newer-from-B' })
        if (ordered) {
          expect((await stats(a!)).writesQueued, `round ${round}: the replay went first`).toBe(1)
          link.heal()
        }
        await vi.waitFor(async () => expect((await stats(a!)).writesQueued).toBe(0), GUARD)

        const stored = await rawEntry(key)
        expect(stored?.includes('old-from-A') ?? false, `round ${round}: Redis holds A's old value`).toBe(false)
        if (ordered) expect(stored, `round ${round}: the replay (a delete) came after B's write`).toBeNull()
        else if (stored !== null) expect(stored.includes('newer-from-B'), `round ${round}`).toBe(true)
        outcomes.push(stored === null ? 'deleted' : 'newer')
        // Neither instance serves the old value once both buses are trusted again.
        await vi.waitFor(async () => expect((await Promise.all([a!, b!].map(trusted))).every(Boolean)).toBe(true), GUARD)
        for (const instance of [a!, b!]) expect([undefined, 'newer-from-B'], `round ${round}`).toContain(await instance.call('get', { key }))
      }
      console.info(`queued set of A vs B's newer write, per round (even: B first): ${outcomes.join(', ')}`)
      expect((await stats(a!)).writesReplayed).toBe(6)
    } finally {
      await link.stop()
    }
  }, 120_000)

  it('the queue is bounded: maxQueued 3 and 5 failed deletes collapse into one clear(), which empties the cache (and only it) once Redis is back', async () => {
    const [a, b, neighbour] = await start({ WRITE_RECOVERY: JSON.stringify({ maxQueued: 3, retryEvery: '50ms' }) }, {}, { CACHE_NAME: 'wr-neighbour' })
    const keys = Array.from({ length: 10 }, (_, i) => `c:${i}`)
    for (const key of keys) await write(b!, 'set', { key, value: `value of ${key}` })
    await write(neighbour!, 'set', { key: 'n', value: 'kept' })

    await server.kill()
    for (const key of keys.slice(0, 5)) expectQueued(await a!.call<WriteResult>('delete', { key }))
    // Three queued, the fourth collapsed them into one clear, the fifth queued behind it.
    expect(await stats(a!)).toMatchObject({ writeQueueCollapses: 1, writesQueued: 2 })

    await server.restart()
    await vi.waitFor(async () => expect((await stats(a!)).writesQueued).toBe(0), GUARD)
    expect(await stats(a!)).toMatchObject({ writeQueueCollapses: 1, writesReplayed: 2 })
    // Every key of the cache is gone, the five never deleted included; Redis kept them through the kill
    // (the neighbour cache's key is still there), so the clear did it.
    for (const instance of [a!, b!]) {
      await vi.waitFor(async () => {
        for (const key of keys) expect(await instance.call('get', { key }), key).toBeUndefined()
      }, GUARD)
    }
    expect(await rawEntry('c:9')).not.toBeNull() // the entry is still stored: clear() retires it by generation
    await vi.waitFor(async () => expect(await neighbour!.call('get', { key: 'n' })).toBe('kept'), GUARD)
  }, 120_000)
})

function withGuard<T>(promise: Promise<T>, what: string, ms = 30_000): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const guard = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`hang guard: ${what} did not happen within ${ms} ms`)), ms)
  })
  return Promise.race([promise, guard]).finally(() => clearTimeout(timer))
}
