// Scenario 7 — Mixed load: 4 processes share one cache (memory + Redis + each
// library's sync), each running 16 concurrent async loops for D seconds over
// 10,000 keys drawn Zipf(0.99): 95% reads via getOrSet (the factory is a fast
// data source: one setImmediate, then a fresh value) and 5% writes via set.
// Writes in one process invalidate (or update) the key in the other three,
// so reads are a mix of memory hits, Redis hits after invalidation, and misses.
// The run starts cold: the first reads of each key fill both tiers.
//
// Harness: the four workers are this file, forked with the 'worker' marker.
// Once all report 'ready' (cache connected), the parent sends one 'go' carrying
// an absolute start and end time (performance.timeOrigin + performance.now(),
// comparable across processes), so all four run over the same window whatever
// the IPC delivery order. Each worker reports its op count, a uniform sample
// (reservoir) of its read latencies, and its factory calls.
//
//   node bench/scenarios/mixed.mjs [--smoke]
import os from 'node:os'
import { CONTESTANTS, createContestant } from '../lib/contestants.mjs'
import { runWorker, Worker } from '../lib/worker.mjs'
import { sleep } from '../lib/stats.mjs'
import { sampleValue, zipf } from '../lib/value.mjs'
import { asEntryPoint } from '../lib/standalone.mjs'

export const id = 'mixed'
export const title = 'Scenario 7 — Mixed load: 4 processes × 16 loops, Zipf(0.99) over 10,000 keys, 95% getOrSet / 5% set'

const WORKERS = 4 // 2 in smoke mode: process start-up is most of a smoke run's time
const LOOPS = 16
const KEYS = 10_000
const ZIPF_S = 0.99
const WRITE_SHARE = 0.05
const RESERVOIR = 100_000 // read latencies kept per worker
const now = () => performance.timeOrigin + performance.now()

export async function run({ redisUrl, smoke }) {
  const seconds = smoke ? 0.5 : 10
  const workers = smoke ? 2 : WORKERS
  // A run tag keeps keys of an earlier run against the same Redis (REDIS_URL) out of this one:
  // every contestant starts cold.
  const runTag = Date.now().toString(36)
  const results = {}
  const rows = []
  for (const name of CONTESTANTS) {
    try {
      const r = await measure({ name, redisUrl, prefix: `${id}-${name}-${runTag}`, seconds, workers })
      results[name] = r
      rows.push([
        name,
        Math.round(r.opsPerSec).toLocaleString('en-US'),
        r.readP50Us.toFixed(0),
        r.readP99Us.toFixed(0),
        r.factoryCalls.toLocaleString('en-US'),
        `${(100 * r.hitRatio).toFixed(2)}%`,
        r.errors === 0 ? 0 : `${r.errors} (${r.firstError})`,
      ])
    } catch (error) {
      results[name] = { error: error.message }
      rows.push([name, `error: ${error.message}`, '', '', '', '', ''])
    }
  }
  return {
    columns: ['contestant', `ops/s (${workers} processes)`, 'read p50 (µs)', 'read p99 (µs)', 'factory calls', 'reads served from cache', 'errors'],
    rows,
    results,
    notes: [
      `${workers} processes × ${LOOPS} concurrent loops, ${seconds} s, cold start; keys Zipf(${ZIPF_S}) over ${KEYS.toLocaleString('en-US')}; ${100 - 100 * WRITE_SHARE}% getOrSet (factory: setImmediate, then a ~200-byte object), ${100 * WRITE_SHARE}% set. Memory + Redis + each library's sync.`,
      `The machine has ${os.availableParallelism()} cores: ${workers} busy workers plus redis-server oversubscribe it, so latencies include waiting for a CPU. That is expected; compare contestants with each other, not with single-process numbers.`,
      "ops/s: the sum over workers of ops / elapsed. Read latency: one getOrSet awaited inside one loop, from a per-worker uniform sample of up to 100k reads, merged weighted by each worker's read count.",
      'Reads served from cache: 1 − factory calls / reads (memory or Redis). cache-manager keeps stale values in its memory store (no sync), which raises its ratio without the values being current.',
    ],
  }
}

/** `count` workers over one window for one contestant; resolves the merged results. */
async function measure({ name, redisUrl, prefix, seconds, workers: count }) {
  const workers = []
  try {
    for (let i = 0; i < count; i++) workers.push(new Worker(import.meta.url, [JSON.stringify({ name, redisUrl, prefix })], { serialization: 'advanced' }))
    await Promise.all(workers.map((w) => w.next('ready', 30_000)))
    // Start a little in the future so that the 'go' message has reached every worker by then.
    const startAt = now() + 100
    const endAt = startAt + seconds * 1000
    for (const w of workers) w.send({ type: 'go', startAt, endAt })
    const done = await Promise.all(workers.map((w) => w.next('done', seconds * 1000 + 60_000)))
    for (const w of workers) w.send({ type: 'exit' })
    await Promise.all(workers.map((w) => w.exited(10_000)))

    const reads = done.reduce((sum, d) => sum + d.reads, 0)
    const factoryCalls = done.reduce((sum, d) => sum + d.factoryCalls, 0)
    const errors = done.reduce((sum, d) => sum + d.errors, 0)
    const latencies = weightedQuantiles(done, [0.5, 0.99])
    return {
      opsPerSec: done.reduce((sum, d) => sum + d.ops / (d.elapsedMs / 1000), 0),
      readP50Us: latencies[0],
      readP99Us: latencies[1],
      factoryCalls,
      hitRatio: reads > 0 ? 1 - factoryCalls / reads : 0,
      ops: done.reduce((sum, d) => sum + d.ops, 0),
      reads,
      writes: done.reduce((sum, d) => sum + d.writes, 0),
      errors,
      firstError: done.find((d) => d.firstError)?.firstError,
    }
  } finally {
    for (const w of workers) w.kill() // no-op for workers that exited
  }
}

/**
 * Quantiles of the read latency over all workers. Each worker's reservoir is a
 * uniform sample of its own reads, but the workers made different numbers of
 * reads, so a sample from worker i stands for reads_i / samples_i reads.
 */
function weightedQuantiles(done, ps) {
  const values = []
  const weights = []
  for (const d of done) {
    const weight = d.reads / Math.max(1, d.samples.length)
    for (const v of d.samples) {
      values.push(v)
      weights.push(weight)
    }
  }
  if (values.length === 0) return ps.map(() => Number.NaN)
  const order = Uint32Array.from(values.keys()).sort((a, b) => values[a] - values[b])
  const total = weights.reduce((sum, w) => sum + w, 0)
  return ps.map((p) => {
    let cumulative = 0
    for (const i of order) {
      cumulative += weights[i]
      if (cumulative >= p * total) return values[i]
    }
    return values[order.at(-1)]
  })
}

// ---------------------------------------------------------------------------
// Worker process side.

async function workerMain({ name, redisUrl, prefix }) {
  await runWorker(
    () => createContestant(name, { redisUrl, layers: 'l1+l2', prefix }),
    async (cache, inbox) => {
      await cache.get(`${prefix}-warm-up`) // connections up before 'ready' (some libraries connect lazily)
      const nextKey = zipf(KEYS, ZIPF_S)
      process.send({ type: 'ready' })
      const { startAt, endAt } = await inbox.next()
      const wait = startAt - now()
      if (wait > 0) await sleep(wait)

      // Counters shared by the loops (one thread: no races).
      let ops = 0
      let reads = 0
      let writes = 0
      let factoryCalls = 0
      let errors = 0
      let firstError
      const samples = new Float64Array(RESERVOIR)
      const keep = (us) => {
        // Reservoir sampling (algorithm R): every read ends up in the sample with equal probability.
        if (reads < RESERVOIR) samples[reads] = us
        else {
          const j = Math.floor(Math.random() * (reads + 1))
          if (j < RESERVOIR) samples[j] = us
        }
        reads++
      }
      const immediate = () => new Promise((resolve) => setImmediate(resolve))

      const loop = async () => {
        for (;;) {
          const start = performance.now()
          if (performance.timeOrigin + start >= endAt) return
          const n = nextKey()
          const key = `k${n}`
          try {
            if (Math.random() < WRITE_SHARE) {
              await cache.set(key, sampleValue(n))
              writes++
            } else {
              await cache.getOrSet(key, async () => {
                factoryCalls++
                await immediate()
                return sampleValue(n)
              })
              keep((performance.now() - start) * 1000)
            }
            ops++
          } catch (error) {
            errors++
            firstError ??= String(error?.message ?? error)
            await immediate() // a failing call may fail synchronously fast: do not spin the loop on it
          }
        }
      }
      const began = now()
      await Promise.all(Array.from({ length: LOOPS }, loop))
      const elapsedMs = now() - began
      process.send({
        type: 'done',
        ops,
        reads,
        writes,
        factoryCalls,
        errors,
        firstError,
        elapsedMs,
        samples: samples.slice(0, Math.min(reads, RESERVOIR)),
      })
      await inbox.next() // 'exit': close only once every worker is done, so no close lands inside another's window
    },
  )
}

await asEntryPoint(import.meta.url, { id, title, run }, workerMain)
