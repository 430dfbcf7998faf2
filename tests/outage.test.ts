/**
 * Redis outages under load, in separate processes: Redis is killed in the
 * middle of steady getOrSet traffic and brought back. No call may hang, fail
 * or leave an unhandled rejection, and service resumes by itself.
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
  cache: { circuitOpenings: number; circuit: string; l2Hits: number; l2Latency: { count: number } }
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

    // Redis dies. Every call still answers (the factory), and the breaker opens.
    await server.kill()
    await runPhase(up, (h, i) => expect(h.cache.circuitOpenings).toBeGreaterThan(beforeKill[i]!.cache.circuitOpenings))
    // None hangs: pausing waits for every call in flight, and they all answer with Redis still down
    // (a call waiting for Redis to come back would keep this pause from resolving).
    const opened = await pause()
    const atOpen = await health()

    // With the breaker open, a call does not wait on Redis at all: the only calls that try it are
    // half-open probes, one per cool-down, and each (failing) opens the breaker again. So every L2
    // attempt of this phase is matched by one opening; every other call went straight to the factory.
    await runPhase(opened)
    const down = await pause()
    const atEnd = await health()
    atEnd.forEach((h, i) => {
      const attempts = h.cache.l2Latency.count - atOpen[i]!.cache.l2Latency.count
      expect(attempts).toBe(h.cache.circuitOpenings - atOpen[i]!.cache.circuitOpenings)
      // Probes are one per cool-down (2 s), not one per call: a breaker that let every call probe would match too.
      expect(attempts).toBeLessThan(CALLS_PER_PHASE)
      expect(h.cache.l2Hits).toBe(atOpen[i]!.cache.l2Hits) // nothing came from Redis while it was down
    })

    // Redis is back: service resumes by itself (a gap closed, every L1 emptied, then trusted again).
    await server.restart()
    await runPhase(down, (h) => {
      expect(h.bus.gapsSeen).toBeGreaterThanOrEqual(1)
      expect(h.bus.trusted).toBe(true)
    })
    // L2 takes writes again: once the breaker's cool-down has passed, the next miss probes Redis and closes
    // it. (The traffic alone may never probe: its 50 keys can all be back in L1 before the cool-down ends.)
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
