/**
 * Leases (coherence mechanism 4) across separate processes on a real
 * redis-server: distributed single-flight, and no stale sets.
 */
import { describe, expect, it, vi } from 'vitest'
import { InstanceProcess } from './support/instance.js'
import { useRedisSuite } from './support/redis-suite.js'
import { TcpProxy } from './support/tcp-proxy.js'

const suite = useRedisSuite()

/**
 * Factory durations, in the fixture's `factoryMs`, that mean "until the test
 * says so". The fixture's factories are `setTimeout(resolve, factoryMs)`;
 * this code, preloaded into each instance process, holds every timer of
 * exactly HELD_MS until the process gets SIGUSR2 (`release()`), then runs
 * them (and runs any armed later at once). So a test orders its steps by
 * events it chose, never by how long a factory takes on a loaded machine.
 */
const HELD_MS = 987_654
const HOLD_TIMERS = `
import { promisify } from 'node:util'
const held = []
let released = false
process.on('SIGUSR2', () => {
  released = true
  for (const run of held.splice(0)) run()
})
const realSetTimeout = globalThis.setTimeout
const setTimeoutHolding = (callback, ms, ...args) => {
  if (ms !== ${HELD_MS}) return realSetTimeout(callback, ms, ...args)
  if (released) return realSetTimeout(callback, 0, ...args)
  held.push(() => callback(...args))
  return realSetTimeout(() => {}, 0)
}
setTimeoutHolding[promisify.custom] = realSetTimeout[promisify.custom]
globalThis.setTimeout = setTimeoutHolding
`
const HOLDING = ['--import', `data:text/javascript,${encodeURIComponent(HOLD_TIMERS)}`]

/** Lets every held factory of these processes finish. */
function release(...instances: InstanceProcess[]): void {
  for (const instance of instances) instance.signal('SIGUSR2')
}

async function processes(count: number, env: Record<string, string> = {}): Promise<InstanceProcess[]> {
  const started = await Promise.all(
    Array.from({ length: count }, () => InstanceProcess.start({ REDIS_URL: suite.server.url, CACHE_NAME: 'stampede', ...env }, undefined, HOLDING)),
  )
  suite.cleanup(() => started.forEach((p) => p.kill()))
  return started
}

type Factories = { started: number; finished: number }
type Health = { cache: { leaseWaits: number } }

/** Factory runs (started, finished) and lease waits, summed over the processes. */
async function totals(instances: InstanceProcess[]): Promise<{ started: number; finished: number; leaseWaits: number }> {
  const sum = { started: 0, finished: 0, leaseWaits: 0 }
  for (const instance of instances) {
    const factories = await instance.call<Factories>('factories')
    const health = await instance.call<Health>('health')
    sum.started += factories.started
    sum.finished += factories.finished
    sum.leaseWaits += health.cache.leaseWaits
  }
  return sum
}

describe('stampede protection across processes (leases)', () => {
  it('2 processes x 500 concurrent getOrSet of one missing key: the factory runs once in total', async () => {
    const both = await processes(2)
    const [a, b] = both
    const args = { keys: ['cold'], perKey: 500, factoryMs: HELD_MS }
    const calling = Promise.all([a!.call<number>('stampede', args), b!.call<number>('stampede', args)])
    calling.catch(() => {}) // awaited below; if the test fails first, its processes are killed and this rejects
    // Both processes are in the stampede at once: one runs the factory (held),
    // the other found its lease and waits for its value. Without leases both would run it.
    await vi.waitFor(async () => expect(await totals(both)).toEqual({ started: 1, finished: 0, leaseWaits: 1 }), { timeout: 10_000 })
    release(a!, b!)
    const calls = await calling
    console.info(`stampede, 2 processes x 500 callers, 1 key: factory calls per process ${calls.join(' + ')}`)
    expect(calls[0]! + calls[1]!).toBe(1)
    expect(await totals(both)).toEqual({ started: 1, finished: 1, leaseWaits: 1 })
  })

  it('1000 distinct cold keys requested by 2 processes at once, in rounds of 100: each factory runs once', async () => {
    // Not held: a waiter that waits past lockTimeout (5 s) rightly runs its own
    // factory. And in rounds: 1000 lease reads at once from each process, on one
    // loaded CPU, take longer than the tier's 1 s timeout, and the circuit
    // breaker then (rightly) sends both processes to their factories. What is
    // tested is the lease per key, not Redis under a burst the fixture's
    // timeouts are not set for.
    const both = await processes(2)
    const [a, b] = both
    let callsA = 0
    let callsB = 0
    for (let round = 0; round < 10; round++) {
      const keys = Array.from({ length: 100 }, (_, i) => `cold:${round * 100 + i}`)
      const args = { keys, perKey: 1, factoryMs: 100 }
      const [inA, inB] = await Promise.all([a!.call<number>('stampede', args), b!.call<number>('stampede', args)])
      callsA += inA
      callsB += inB
    }
    console.info(`stampede, 2 processes, 1000 keys: factory calls per process ${callsA} + ${callsB}`)
    expect(callsA + callsB).toBe(1_000)
    // Each key: one factory in one process; the other process read the value
    // from L2, after waiting on the lease if it came while the factory ran.
    const health = await Promise.all(both.map((p) => p.call<{ cache: { l2Hits: number; leaseWaits: number } }>('health')))
    expect(health[0]!.cache.l2Hits + health[1]!.cache.l2Hits).toBe(1_000)
    // The processes did contend (else this would pass without leases): some key was leased by one while the other wanted it.
    expect(health[0]!.cache.leaseWaits + health[1]!.cache.leaseWaits).toBeGreaterThan(0)
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
    const filling = filler!.call('slowGetOrSet', { key: 'k', value: 'computed-before-the-delete', factoryMs: HELD_MS })
    filling.catch(() => {}) // awaited below; if the test fails first, its processes are killed and this rejects
    // The filler holds the key's lease (layout: packages/redis-adapter/src/keyspace.ts) and its factory is held.
    await vi.waitFor(async () => expect(await suite.raw.exists('tiercache:stampede#lease:k')).toBe(1), { timeout: 10_000 })
    link.partition()
    await deleter!.call('delete', { key: 'k' })
    release(filler!)
    expect(await filling).toBe('computed-before-the-delete') // the caller still gets its answer
    expect(await suite.raw.exists('tiercache:stampede:k')).toBe(0) // but L2 did not take it
    expect(await deleter!.call('get', { key: 'k' })).toBeUndefined()
    link.heal()
  })
})

describe('grace across processes', () => {
  it('a stale entry answers every caller at once, and one process refreshes it for all', async () => {
    const GRACE_MS = 600_000
    const both = await processes(2, { TTL: '300ms', GRACE: '10m' })
    const [a, b] = both
    await a!.call('set', { key: 'k', value: 'value of k' })
    // Past its TTL, within grace, as Redis keeps it: only the grace part of its life is left.
    await vi.waitFor(async () => expect(await suite.raw.pttl('tiercache:stampede:k')).toBeLessThan(GRACE_MS), { timeout: 10_000, interval: 20 })
    const stale = await suite.raw.getBuffer('tiercache:stampede:k')
    const args = { keys: ['k'], perKey: 200, factoryMs: HELD_MS }
    await Promise.all([a!.call('stampede', args), b!.call('stampede', args)])
    // Every caller has its answer (the stale value) while the one refresh is held:
    // one process took the lease and runs it, the other left it to that one.
    await vi.waitFor(async () => expect(await totals(both)).toEqual({ started: 1, finished: 0, leaseWaits: 0 }), { timeout: 10_000 })
    expect(await suite.raw.getBuffer('tiercache:stampede:k')).toEqual(stale)
    release(a!, b!)
    // The refresh then lands in L2 for everyone (a new entry: new createdAt and
    // freshness), fresh for 300 ms and kept for 10 min of grace.
    await vi.waitFor(async () => expect(await suite.raw.getBuffer('tiercache:stampede:k')).not.toEqual(stale), { timeout: 10_000 })
    const pttl = await suite.raw.pttl('tiercache:stampede:k')
    expect(pttl).toBeGreaterThan(GRACE_MS - 60_000)
    expect(pttl).toBeLessThanOrEqual(GRACE_MS + 300)
    await vi.waitFor(async () => expect(await totals(both)).toEqual({ started: 1, finished: 1, leaseWaits: 0 }), { timeout: 5_000 })
  })
})
