/**
 * Redis outages under load, in separate processes: Redis is killed in the
 * middle of steady getOrSet traffic and brought back. No call may hang, fail
 * or leave an unhandled rejection, and service resumes by itself. While
 * Redis is down its tier is known down: nothing is sent to it (no call waits
 * on a timeout), writes reject with WriteFailedError saying nothing reached
 * Redis, and reads are answered by the factory and by outage reuse.
 *
 * Every phase ends on events (calls answered, the breaker opening), never on
 * the clock, and the traffic is paused at each phase boundary: paused, no
 * call is in flight, so the counters read there belong to that phase's calls.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { Redis } from 'ioredis'
import { InstanceProcess } from './support/instance.js'
import { RedisServer } from './support/redis-server.js'

let server: RedisServer
let instances: InstanceProcess[] = []

beforeAll(async () => {
  server = await RedisServer.start()
})
afterAll(async () => {
  for (const instance of instances) instance.kill()
  await server.stop()
})

interface Progress {
  completed: number
  failures: number
  inFlight: number
}
interface Health {
  unhandledRejections: number
  bus: { trusted: boolean; gapsSeen: number }
  cache: {
    circuitOpenings: number
    circuit: string
    l2Hits: number
    l2Latency: { count: number }
    l2CallsSkipped: number
    outageReuses: number
    factoryCalls: number
  }
}

/** Calls each instance answers in a phase before the test moves on. */
const CALLS_PER_PHASE = 200

const health = () => Promise.all(instances.map((i) => i.call<Health>('health')))
const pause = () => Promise.all(instances.map((i) => i.call<Progress>('pauseLoad')))
const resume = () => Promise.all(instances.map((i) => i.call('resumeLoad')))

/** Resumes the traffic and waits until every instance has answered `CALLS_PER_PHASE` more calls (and `also` holds). */
async function runPhase(from: Progress[], also: (h: Health, i: number) => void = () => {}) {
  await resume()
  await vi.waitFor(
    async () => {
      const progress = await Promise.all(instances.map((i) => i.call<Progress>('loadProgress')))
      progress.forEach((p, i) => expect(p.completed).toBeGreaterThanOrEqual(from[i]!.completed + CALLS_PER_PHASE))
      ;(await health()).forEach(also)
    },
    { timeout: 30_000, interval: 50 },
  )
}

describe('Redis outage under load (2 processes, default options: 1 s timeouts)', () => {
  it('Redis killed mid-load: every getOrSet answers (factory fallback), none hangs, no unhandled rejection; service resumes', async () => {
    instances = await Promise.all([0, 1].map(() => InstanceProcess.start({ REDIS_URL: server.url, CACHE_NAME: 'outage' })))
    for (const instance of instances) await instance.call('startLoad', { concurrency: 20, keys: 50 })
    const start = await pause() // each phase begins from a pause

    // Before: the traffic runs on Redis.
    await runPhase(start)
    const up = await pause()
    const beforeKill = await health()
    for (const h of beforeKill) expect(h.cache.l2Latency.count).toBeGreaterThan(0)

    // Redis dies. Every call still answers (the factory), and the tier is found down and skipped.
    await server.kill()
    await runPhase(up, (h, i) => expect(h.cache.l2CallsSkipped).toBeGreaterThan(beforeKill[i]!.cache.l2CallsSkipped))
    // None hangs: pausing waits for every call in flight, and they all answer with Redis still down
    // (a call waiting for Redis to come back would keep this pause from resolving).
    const opened = await pause()
    const atOpen = await health()

    // Known down, the tier is sent nothing at all: no call waits on Redis, no request probes it (the
    // breaker's probe runs in the background, and not while the connection is known down). Every
    // call of this phase was answered by the factory or by outage reuse, none by Redis.
    await runPhase(opened)
    const down = await pause()
    const atEnd = await health()
    atEnd.forEach((h, i) => {
      const before = atOpen[i]!.cache
      expect(h.cache.l2Latency.count).toBe(before.l2Latency.count) // not one L2 command sent
      expect(h.cache.l2Hits).toBe(before.l2Hits) // nothing came from Redis while it was down
      // Outage reuse shielded the factory: values loaded in the outage answered again within maxStaleness.
      expect(h.cache.outageReuses).toBeGreaterThan(before.outageReuses)
      expect(h.cache.factoryCalls - before.factoryCalls).toBeLessThan(CALLS_PER_PHASE)
    })
    // A write fails fast and says what happened: nothing reached Redis (WriteFailedError), no hang.
    for (const instance of instances) {
      await expect(instance.call('delete', { key: 'load:0' })).rejects.toThrow(/did not reach the shared tier/)
    }

    // Redis is back: service resumes by itself (a gap closed, every L1 emptied, then trusted again).
    await server.restart()
    await runPhase(down, (h) => {
      expect(h.bus.gapsSeen).toBeGreaterThanOrEqual(1)
      expect(h.bus.trusted).toBe(true)
    })
    // L2 takes writes again once the tier's connection is back (and, had the breaker opened, once its
    // background probe closed it).
    const raw = new Redis(server.url)
    for (const [i, instance] of instances.entries()) {
      await vi.waitFor(
        async () => {
          const key = `after-outage:${i}:${Math.random()}`
          await instance.call('getOrSet', { key, value: 'v' })
          expect(await raw.exists(`tiercache:outage:${key}`)).toBe(1)
        },
        { timeout: 15_000, interval: 200 },
      )
    }
    raw.disconnect()
    for (const h of await health()) expect(h.cache.circuit).toBe('closed')

    const stopped = await Promise.all(instances.map((i) => i.call<Progress>('stopLoad')))
    console.info(`getOrSet calls answered around a Redis outage, per instance: ${stopped.map((p) => p.completed).join(', ')}`)
    for (const p of stopped) {
      expect(p.failures).toBe(0) // every call of every phase answered
      expect(p.inFlight).toBe(0)
    }
    for (const h of await health()) expect(h.unhandledRejections).toBe(0)
  }, 120_000)
})
