/**
 * Redis outages under load, in separate processes: Redis is killed in the
 * middle of steady getOrSet traffic and brought back. No call may hang, fail
 * or leave an unhandled rejection, and service resumes by itself.
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

const now = () => Number(process.hrtime.bigint()) / 1e6
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const quantile = (sorted: number[], q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0

describe('Redis outage under load (2 processes, default options: 1 s timeouts)', () => {
  it('Redis killed mid-load: every getOrSet answers (factory fallback), none hangs, no unhandled rejection; service resumes', async () => {
    instances = await Promise.all([0, 1].map(() => InstanceProcess.start({ REDIS_URL: server.url, CACHE_NAME: 'outage' })))
    const loads = instances.map((instance) => instance.call<Float64Array>('load', { durationMs: 9_000, concurrency: 20, keys: 50 }))
    await sleep(1_500)
    const down = now()
    await server.kill()
    await sleep(2_500)
    await server.restart()
    const up = now()
    const logs = await Promise.all(loads)

    const phases = { before: [] as number[], outage: [] as number[], after: [] as number[] }
    let failures = 0
    for (const log of logs) {
      for (let i = 0; i < log.length; i += 3) {
        const start = log[i]!
        const latency = log[i + 1]!
        if (log[i + 2] === 0) failures++
        ;(start < down ? phases.before : start < up ? phases.outage : phases.after).push(latency)
      }
    }
    for (const list of Object.values(phases)) list.sort((a, b) => a - b)
    const line = (name: string, list: number[]) =>
      `${name}: ${list.length} calls, p50 ${quantile(list, 0.5).toFixed(2)} ms, p99 ${quantile(list, 0.99).toFixed(2)} ms, max ${(list.at(-1) ?? 0).toFixed(2)} ms`
    console.info(['getOrSet latency around a Redis outage', line('before', phases.before), line('outage', phases.outage), line('after', phases.after)].join('\n'))

    expect(failures).toBe(0)
    expect(phases.outage.length).toBeGreaterThan(100)
    // Hang check, not a speed check: no call waited past twice the 1 s command timeout.
    expect(phases.outage.at(-1)!).toBeLessThan(2_000)
    expect(phases.after.at(-1)!).toBeLessThan(2_000)

    const health = await Promise.all(instances.map((i) => i.call<{ unhandledRejections: number; bus: { trusted: boolean; gapsSeen: number }; cache: { circuitOpenings: number } }>('health')))
    for (const h of health) {
      expect(h.unhandledRejections).toBe(0)
      expect(h.cache.circuitOpenings).toBeGreaterThanOrEqual(1)
      expect(h.bus.gapsSeen).toBeGreaterThanOrEqual(1)
      expect(h.bus.trusted).toBe(true) // resumed by itself
    }
    // L2 takes writes again: once the breaker's cool-down has passed, the next miss probes Redis and closes it.
    const raw = new Redis(server.url)
    for (const [i, instance] of instances.entries()) {
      await vi.waitFor(
        async () => {
          const key = `after-outage:${i}:${Math.random()}`
          await instance.call('getOrSet', { key, value: 'v' })
          expect(await raw.exists(`tiercache:outage:${key}`)).toBe(1)
        },
        { timeout: 5_000, interval: 200 },
      )
    }
    raw.disconnect()
  }, 60_000)
})
