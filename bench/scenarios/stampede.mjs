// Scenario 4 — Stampede: 500 concurrent callers of one missing key in each of
// two processes (1000 callers), all released together. The factory takes
// 50 ms and counts its calls. In-process coalescing brings each process down to
// one call; only a lease shared through Redis brings the pair down to one.
//
// Harness: per contestant, two worker processes (this file, forked with the
// 'worker' marker) connect their cache and report 'ready'; the parent then
// sends 'go' to both. Each worker fires its 500 getOrSet calls synchronously on
// 'go' and reports its factory calls, whether every caller got the expected
// value, and the time from 'go' to its last caller's answer. The same two
// workers serve every repetition, each repetition on a fresh key.
//
//   node bench/scenarios/stampede.mjs [--smoke]
import { isDeepStrictEqual } from 'node:util'
import { CONTESTANTS, createContestant } from '../lib/contestants.mjs'
import { runWorker, Worker } from '../lib/worker.mjs'
import { summarize, sleep } from '../lib/stats.mjs'
import { sampleValue } from '../lib/value.mjs'
import { asEntryPoint } from '../lib/standalone.mjs'

export const id = 'stampede'
export const title = 'Scenario 4 — Stampede: 1000 concurrent callers of one missing key, in 2 processes'

const PROCESSES = 2
const CALLERS = 500
const FACTORY_MS = 50
const now = () => performance.timeOrigin + performance.now()
// What the factory of repetition `rep` returns: distinct per repetition, so a
// value left over from an earlier repetition could not pass as correct.
const expectedValue = (rep, key) => ({ ...sampleValue(1000 + rep), key })

export async function run({ redisUrl, smoke }) {
  const reps = smoke ? 1 : 3
  // A run tag keeps keys from an earlier run against the same Redis (REDIS_URL) out of this one.
  const runTag = Date.now().toString(36)
  const results = {}
  const rows = []
  for (const name of CONTESTANTS) {
    try {
      const runs = await measure({ name, redisUrl, prefix: `${id}-${name}`, keyBase: `${id}-${runTag}`, reps })
      const calls = summarize(runs.map((r) => r.factoryCalls))
      const ms = summarize(runs.map((r) => r.ms))
      const allGotValue = runs.every((r) => r.allGotValue)
      results[name] = { factoryCalls: calls.median, factoryCallsMax: calls.max, allGotValue, ms: ms.median, runs }
      const failure = runs.find((r) => r.firstError)?.firstError
      rows.push([name, calls.median, calls.max, allGotValue ? 'yes' : `no${failure ? ` (${failure})` : ''}`, ms.median.toFixed(1)])
    } catch (error) {
      results[name] = { error: error.message }
      rows.push([name, `error: ${error.message}`, '', '', ''])
    }
  }
  return {
    columns: [
      'contestant',
      `factory calls (median of ${reps})`,
      `factory calls (max of ${reps})`,
      `all ${PROCESSES * CALLERS} callers got the value`,
      'go → last answer, ms (slower process, median)',
    ],
    rows,
    results,
    notes: [
      `${PROCESSES} processes × ${CALLERS} concurrent getOrSet calls of one missing key, released by one 'go' message; the factory sleeps ${FACTORY_MS} ms. Lower factory calls is better: 1 means one process computed the value for both, 2 means each process computed it once (in-process coalescing only).`,
      `${reps} repetition(s), each on a fresh key, with the same two worker processes; memory + Redis + each library's sync.`,
      `"go → last answer" is measured inside each worker from its receipt of 'go'; the slower of the two processes is taken, then the median over repetitions. It includes the ${FACTORY_MS} ms factory.`,
    ],
  }
}

/** Runs the repetitions for one contestant; resolves one record per repetition. */
async function measure({ name, redisUrl, prefix, keyBase, reps }) {
  const workers = []
  try {
    for (let i = 0; i < PROCESSES; i++) workers.push(new Worker(import.meta.url, [JSON.stringify({ name, redisUrl, prefix })]))
    await Promise.all(workers.map((w) => w.next('ready', 30_000)))
    const runs = []
    for (let rep = 0; rep < reps; rep++) {
      const key = `${keyBase}-${rep}`
      for (const w of workers) w.send({ type: 'go', key, rep })
      const done = await Promise.all(workers.map((w) => w.next('done', 60_000)))
      runs.push({
        factoryCalls: done.reduce((sum, d) => sum + d.factoryCalls, 0),
        allGotValue: done.every((d) => d.correct === CALLERS),
        ms: Math.max(...done.map((d) => d.ms)),
        perProcess: done.map(({ factoryCalls, correct, errors, ms }) => ({ factoryCalls, correct, errors, ms })),
        firstError: done.find((d) => d.firstError)?.firstError,
      })
      await sleep(50)
    }
    for (const w of workers) w.send({ type: 'exit' })
    await Promise.all(workers.map((w) => w.exited(10_000)))
    return runs
  } finally {
    for (const w of workers) w.kill() // no-op for workers that exited
  }
}

// ---------------------------------------------------------------------------
// Worker process side.

async function workerMain({ name, redisUrl, prefix }) {
  await runWorker(
    () => createContestant(name, { redisUrl, layers: 'l1+l2', prefix }),
    async (cache, inbox) => {
      // One round trip so that the Redis connections are up before 'ready':
      // some libraries connect lazily, which would otherwise land inside the measurement.
      await cache.get(`${prefix}-warm-up`)
      process.send({ type: 'ready' })
      for (;;) {
        const message = await inbox.next()
        if (message.type === 'exit') break
        const { key, rep } = message
        const expected = expectedValue(rep, key)
        let factoryCalls = 0
        const factory = async () => {
          factoryCalls++
          await sleep(FACTORY_MS)
          return expectedValue(rep, key)
        }
        const start = now()
        const calls = []
        for (let i = 0; i < CALLERS; i++) calls.push(cache.getOrSet(key, factory))
        const settled = await Promise.allSettled(calls)
        const ms = now() - start
        let correct = 0
        let errors = 0
        let firstError
        for (const s of settled) {
          if (s.status === 'rejected') {
            errors++
            firstError ??= String(s.reason?.message ?? s.reason)
          } else if (isDeepStrictEqual(s.value, expected)) correct++
          else firstError ??= `unexpected value ${JSON.stringify(s.value)?.slice(0, 60)}`
        }
        process.send({ type: 'done', factoryCalls, correct, errors, firstError, ms })
      }
    },
  )
}

await asEntryPoint(import.meta.url, { id, title, run }, workerMain)
