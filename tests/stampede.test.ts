/**
 * Leases (coherence mechanism 4) across separate processes on a real
 * redis-server: distributed single-flight, and no stale sets.
 */
import { describe, expect, it, vi } from 'vitest'
import { InstanceProcess } from './support/instance.js'
import { useRedisSuite } from './support/redis-suite.js'
import { TcpProxy } from './support/tcp-proxy.js'

const suite = useRedisSuite()

async function processes(count: number, env: Record<string, string> = {}): Promise<InstanceProcess[]> {
  const started = await Promise.all(
    Array.from({ length: count }, () => InstanceProcess.start({ REDIS_URL: suite.server.url, CACHE_NAME: 'stampede', ...env })),
  )
  suite.cleanup(() => started.forEach((p) => p.kill()))
  return started
}

describe('stampede protection across processes (leases)', () => {
  it('2 processes x 500 concurrent getOrSet of one missing key, 100 ms factory: the factory runs once in total', async () => {
    const [a, b] = await processes(2)
    const args = { keys: ['cold'], perKey: 500, factoryMs: 100 }
    const calls = await Promise.all([a!.call<number>('stampede', args), b!.call<number>('stampede', args)])
    console.info(`stampede, 2 processes x 500 callers, 1 key: factory calls per process ${calls.join(' + ')}`)
    expect(calls[0]! + calls[1]!).toBe(1)
  })

  it('1000 distinct cold keys requested concurrently by 2 processes: each factory runs once', async () => {
    const [a, b] = await processes(2)
    const keys = Array.from({ length: 1_000 }, (_, i) => `cold:${i}`)
    const args = { keys, perKey: 1, factoryMs: 100 }
    const calls = await Promise.all([a!.call<number>('stampede', args), b!.call<number>('stampede', args)])
    console.info(`stampede, 2 processes, 1000 keys: factory calls per process ${calls.join(' + ')}`)
    expect(calls[0]! + calls[1]!).toBe(1_000)
  })
})

describe('leases against stale sets', () => {
  it('leases: a delete issued while a slow factory runs leaves no stale value anywhere', async () => {
    // The filler's bus is cut off, so its in-flight guard never hears of the
    // delete: only the revoked lease can keep its value out of L2.
    const link = await TcpProxy.start(suite.server.port)
    suite.cleanup(() => link.stop())
    const [filler] = await processes(1, { BUS_URL: link.url })
    const [deleter] = await processes(1)
    const filling = filler!.call('slowGetOrSet', { key: 'k', value: 'computed-before-the-delete', factoryMs: 300 })
    await new Promise((resolve) => setTimeout(resolve, 100))
    link.partition()
    await deleter!.call('delete', { key: 'k' })
    expect(await filling).toBe('computed-before-the-delete') // the caller still gets its answer
    expect(await suite.raw.exists('tiercache:stampede:k')).toBe(0) // but L2 did not take it
    expect(await deleter!.call('get', { key: 'k' })).toBeUndefined()
    link.heal()
  })
})

describe('grace across processes', () => {
  it('a stale entry answers every caller at once, and one process refreshes it for all', async () => {
    const [a, b] = await processes(2, { TTL: '300ms', GRACE: '10m' })
    await a!.call('set', { key: 'k', value: 'value of k' })
    await new Promise((resolve) => setTimeout(resolve, 400)) // past its TTL, within grace
    const args = { keys: ['k'], perKey: 200, factoryMs: 1_000 }
    await Promise.all([a!.call('stampede', args), b!.call('stampede', args)])
    // Every caller has its answer (the stale value) while the one refresh is still running…
    const during = await Promise.all([a!.call<{ started: number; finished: number }>('factories'), b!.call<{ started: number; finished: number }>('factories')])
    expect(during[0]!.started + during[1]!.started).toBe(1)
    expect(during[0]!.finished + during[1]!.finished).toBe(0)
    // …which then lands in L2 for everyone (fresh for 300 ms, kept for 10 min of grace).
    await vi.waitFor(async () => {
      const after = await Promise.all([a!.call<{ finished: number }>('factories'), b!.call<{ finished: number }>('factories')])
      expect(after[0]!.finished + after[1]!.finished).toBe(1)
    }, { timeout: 5_000 })
    expect(await suite.raw.pttl('tiercache:stampede:k')).toBeGreaterThan(60_000)
  })
})

