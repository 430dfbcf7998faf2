/**
 * refreshAhead (issue 19) on a real redis-server, in three separate Node
 * processes reading one hot key: after warm-up no read waits for the
 * factory, and the key is refreshed once per refresh interval across all
 * processes (one refresher, under the lease Redis grants for a fresh entry
 * that is due), not once per process. A failing refresh keeps the current
 * value until its TTL, then grace and fail-safe rules apply.
 *
 * Both are counts over what each process recorded (every read's start and
 * the version it got, every factory call's start, end and version), checked
 * against durations the processes measured; nothing here asserts how long
 * anything took.
 */
import { fileURLToPath } from 'node:url'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { InstanceProcess } from './support/instance.js'
import { RedisServer } from './support/redis-server.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/refresh-ahead-instance.mjs', import.meta.url))
const PROCESSES = 3
/**
 * The TTL: long enough that a refresh started at 80 % of it (factory 20 ms,
 * three round trips) lands well before the value expires even on a loaded
 * 2-core box (the 200 ms before expiry are the whole margin), short enough
 * that 5 TTLs take 5 s.
 */
const TTL_MS = 1_000
const REFRESH_AHEAD = 0.8
const FACTORY_MS = 20
/** Hang guard of a run inside each process (it ends on its own far sooner). */
const GUARD_MS = 30_000

interface FactoryCall {
  start: number
  end: number
  version: number
  ok: boolean
}
interface RunReport {
  reads: Float64Array
  calls: FactoryCall[]
  errors: string[]
  errorCount: number
  guardHit: boolean
  stats: { refreshAheadHits: number; refreshesStarted: number; refreshesSucceeded: number; refreshesFailed: number; staleServed: number; failSafe: number }
}
interface Read {
  process: number
  start: number
  version: number
}

let server: RedisServer
let instances: InstanceProcess[] = []

beforeAll(async () => {
  server = await RedisServer.start()
})
afterEach(async () => {
  for (const instance of instances) {
    const health = await instance.call<{ unhandledRejections: number }>('health')
    expect(health.unhandledRejections).toBe(0)
  }
  await Promise.all(instances.map((instance) => instance.close()))
  instances = []
  server.cli('FLUSHALL')
})
afterAll(() => server.stop())

async function startInstances(env: Record<string, string>): Promise<InstanceProcess[]> {
  instances = await Promise.all(
    Array.from({ length: PROCESSES }, () =>
      InstanceProcess.start(
        {
          REDIS_URL: server.url,
          CACHE_NAME: 'ahead',
          KEY: 'hot',
          TTL: `${TTL_MS}ms`,
          REFRESH_AHEAD: String(REFRESH_AHEAD),
          FACTORY_MS: String(FACTORY_MS),
          ...env,
        },
        FIXTURE,
      ),
    ),
  )
  return instances
}

/** Every process's reads, in order, as { process, start, version }. */
function readsOf(reports: RunReport[]): Read[][] {
  return reports.map((report, process) => {
    const reads: Read[] = []
    for (let i = 0; i < report.reads.length; i += 2) reads.push({ process, start: report.reads[i]!, version: report.reads[i + 1]! })
    return reads
  })
}

/** The factory call that produced each version (versions come from one Redis counter: unique across processes). */
function producersOf(reports: RunReport[]): Map<number, FactoryCall & { process: number }> {
  const producers = new Map<number, FactoryCall & { process: number }>()
  reports.forEach((report, process) => {
    for (const call of report.calls) {
      expect(producers.has(call.version), `version ${call.version} produced twice`).toBe(false)
      producers.set(call.version, { ...call, process })
    }
  })
  return producers
}

const sum = (reports: RunReport[], counter: keyof RunReport['stats']) => reports.reduce((total, report) => total + report.stats[counter], 0)

describe('refreshAhead across processes on real Redis', () => {
  it('after warm-up no read waits for a factory, and the key is refreshed once per interval across all processes', async () => {
    await startInstances({})
    // Every process starts reading at once: the first read of each is its warm-up.
    const reports = await Promise.all(instances.map((instance) => instance.call<RunReport>('run', { durationMs: 5 * TTL_MS, guardMs: GUARD_MS })))
    const reads = readsOf(reports)
    const producers = producersOf(reports)
    for (const report of reports) {
      expect(report.errors).toEqual([])
      expect(report.guardHit).toBe(false)
    }

    // A read waited for a factory if it began before the call that produced
    // its value had finished: before that end the value existed nowhere, so
    // the read can only have had it by waiting (for this process's own
    // factory, or polling for another process's lease holder). Core's clock
    // is epoch-scale in every process, so a producer in another process is
    // compared on the same scale.
    const afterWarmup = reads.flatMap((own) => own.slice(1))
    expect(afterWarmup.length).toBeGreaterThan(PROCESSES * 100) // a hot key: 5 s of reads 1 ms apart (thousands when idle, far fewer on a loaded box)
    const unproduced = afterWarmup.filter((read) => !producers.has(read.version))
    expect(unproduced).toEqual([])
    const waited = afterWarmup.filter((read) => read.start < producers.get(read.version)!.end)
    expect(waited, `${waited.length} reads after warm-up waited for a factory (first: ${JSON.stringify(waited.slice(0, 5))})`).toEqual([])

    // Each process sees versions in order (its L1 is refreshed forward, never back).
    for (const own of reads) {
      const backwards = own.filter((read, i) => i > 0 && read.version < own[i - 1]!.version)
      expect(backwards).toEqual([])
    }

    // One refresh per interval across ALL processes. A refresh of a value
    // starts only once Redis finds it due, i.e. at least 0.8 TTL after the
    // call that produced it began, so consecutive factory calls, whichever
    // process runs them, are 0.8 TTL apart: over a span D from the first
    // call's start, at most floor(D / (0.8 TTL)) + 1 calls. The warm-up needs
    // no slack of its own: the three first reads race for the key's lease and
    // the losers wait for the winner's value (one call, counted in the + 1).
    // D runs to the last read or factory start in any process (a refresh
    // starts just after the read that triggers it).
    const calls = [...producers.values()]
    const first = Math.min(...calls.map((call) => call.start))
    const last = Math.max(...calls.map((call) => call.start), ...afterWarmup.map((read) => read.start))
    const spanMs = last - first
    const allowed = Math.ceil(spanMs / (REFRESH_AHEAD * TTL_MS)) + 1
    const perProcess = reports.map((report) => report.calls.length)
    expect(
      calls.length,
      `${calls.length} factory calls (per process ${perProcess.join(', ')}) over ${spanMs.toFixed(0)} ms: at most ${allowed}`,
    ).toBeLessThanOrEqual(allowed)
    // The refreshes ran, ahead of expiry (a value lives one TTL: 5 TTLs of reads that never waited needed several).
    expect(sum(reports, 'refreshesSucceeded')).toBeGreaterThanOrEqual(3)
    expect(sum(reports, 'refreshAheadHits')).toBeGreaterThan(0)
    expect(sum(reports, 'refreshesFailed')).toBe(0)
  })

  it('a failing refresh keeps the current value until its TTL, then its grace; then reads fail with the factory error', async () => {
    const graceMs = TTL_MS
    await startInstances({ FAIL_AFTER_WARMUP: '1', GRACE: `${graceMs}ms` })
    // Each process reads until three reads have failed: past the value's TTL and grace.
    const reports = await Promise.all(instances.map((instance) => instance.call<RunReport>('run', { stopAfterErrors: 3, guardMs: GUARD_MS })))
    const reads = readsOf(reports)
    const producers = producersOf(reports)
    const warmup = producers.get(1)!
    expect(warmup.ok).toBe(true)
    // Every later call failed: the refreshes, and the loads once the value was gone.
    expect([...producers.values()].filter((call) => call.ok)).toHaveLength(1)
    const expiresAt = warmup.end + TTL_MS // at the earliest: the entry's TTL is counted from after the call ended

    reports.forEach((report, process) => {
      expect(report.guardHit, `process ${process} never saw its reads fail`).toBe(false)
      expect(report.errorCount).toBe(3)
      for (const message of report.errors) expect(message).toMatch(/source down/)
      const own = reads[process]!
      const firstFailure = own.findIndex((read) => Number.isNaN(read.version))
      // Until it first failed, every read had the warm-up value, at once (it was produced before they began)...
      expect(own.slice(0, firstFailure).filter((read) => read.version !== 1)).toEqual([])
      expect(own.slice(1, firstFailure).filter((read) => read.start < warmup.end)).toEqual([])
      // ...through the whole TTL: no read failed while the value was fresh...
      expect(own[firstFailure]!.start).toBeGreaterThanOrEqual(expiresAt)
      // ...and on within its grace (fail-safe and stale-while-revalidate), past the TTL.
      expect(own.slice(0, firstFailure).filter((read) => read.start > expiresAt).length).toBeGreaterThan(0)
      // After the first failure the value is gone for good: nothing serves it again.
      expect(own.slice(firstFailure).filter((read) => !Number.isNaN(read.version))).toEqual([])
    })
    expect(sum(reports, 'refreshesFailed')).toBeGreaterThan(0)
    expect(sum(reports, 'refreshesSucceeded')).toBe(0)
  })
})
