// Scenario 8 — Redis outage: per contestant, its own redis-server on a free
// port, 2 reader processes (64 closed-loop readers each, Zipf(0.99) over 1,000
// keys, a 2 ms factory standing for the database) and a writer process that
// sets a new version of one of the 50 hottest keys every 100 ms. After a
// warm-up and a reference window, redis-server is SIGKILLed, started again on
// the same port 10 s later (empty: no RDB, no AOF, as in the other scenarios),
// and the run goes on until the contestant has recovered (or 60 s).
//
// The processes are bench/lib/outage-child.mjs; what they share without
// talking (the database's write schedule, the histogram, the buckets) is
// bench/lib/outage-model.mjs; the figures are bench/lib/outage-analysis.mjs.
//
//   node bench/scenarios/outage.mjs [--smoke]
//   pnpm bench -- --only outage
import { fileURLToPath } from 'node:url'
import { BUCKET_MS, createDatabase, now } from '../lib/outage-model.mjs'
import { backToNormal, bucketRange, mergeReaders, phase, rates, WINDOW_BUCKETS, writesBetween } from '../lib/outage-analysis.mjs'
import { outageContestants } from '../lib/outage-contestants.mjs'
import { freePort } from '../lib/redis.mjs'
import { startRedisOn } from '../lib/redis-process.mjs'
import { markdownTable } from '../lib/report.mjs'
import { sleep } from '../lib/stats.mjs'
import { Worker } from '../lib/worker.mjs'

export const id = 'outage'
export const title = 'Scenario 8 — Redis outage: 2 processes × 64 readers under load, redis-server SIGKILLed for 10 s, then restarted empty'

const READERS = 2
const LOOPS = 64
const KEYS = 1000
const ZIPF_S = 0.99
const WRITTEN_KEYS = 50 // the writer updates the 50 hottest keys in turn…
const WRITE_PERIOD_MS = 100 // …one every 100 ms: each is rewritten every 5 s
// The staleness bound reads are judged against. tiercache's is its maxStaleness
// (the Redis bus's default, 1 s: this scenario checks it); the others promise
// none, so they are held to the same 1 s.
const BOUND_MS = 1000
const CHILD = new URL('../lib/outage-child.mjs', import.meta.url)

const TIMINGS = {
  full: { warmMs: 5000, beforeMs: 10_000, outageMs: 10_000, afterMinMs: 10_000, afterMaxMs: 60_000, settleMs: 5000 },
  smoke: { warmMs: 1000, beforeMs: 2000, outageMs: 2000, afterMinMs: 1000, afterMaxMs: 6000, settleMs: 500 },
}

const int = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '—')
const us = (x) => (Number.isFinite(x) ? (x < 10 ? x.toFixed(2) : Math.round(x).toLocaleString('en-US')) : '—')
const ms = (x) => (Number.isFinite(x) ? (x / 1000).toFixed(x < 10_000 ? 1 : 0) : '—')
const share = (n, of) => (n === 0 ? '0' : `${int(n)} (${((100 * n) / Math.max(1, of)).toFixed(n < of / 1000 ? 2 : 1)} %)`)
const secs = (x) => (x === undefined ? 'not seen' : (x / 1000).toFixed(1))

export async function run({ smoke }) {
  const timings = smoke ? TIMINGS.smoke : TIMINGS.full
  const runTag = Date.now().toString(36)
  const results = {}
  const rows = []
  const extra = []
  for (const name of outageContestants()) {
    process.stderr.write(`   ${name}… `)
    try {
      const r = await measure({ name, prefix: `${id}-${name}-${runTag}`, timings })
      results[name] = r
      const { before: b, during: d, after: a, writes: w, writesAfter: wa } = r
      rows.push([
        name,
        `${int(b.readsPerSec)} → ${int(d.readsPerSec)}`,
        `${us(b.p50Us)} → ${us(d.p50Us)}`,
        `${us(b.p99Us)} → ${us(d.p99Us)}`,
        `${ms(b.maxUs)} → ${ms(d.maxUs)}`,
        `${int(b.factoryPerSec)} / ${int(d.factoryPerSec)} / ${int(a.factoryPerSec)}`,
        `${int(d.errors)} / ${int(a.errors)}`,
        `${w.ok} / ${w.failed} / ${w.late + w.pending}`,
        `${wa.ok} / ${wa.failed} / ${wa.late + wa.pending}`,
        `${share(d.stale, d.reads)} / ${share(a.stale, a.reads)}`,
        `${share(d.behind, d.reads)} / ${share(a.behind, a.reads)}`,
        secs(r.sharedAfterMs),
        secs(r.writesOkAfterMs),
        secs(r.lastStaleAfterMs),
        secs(r.normalAfterMs),
      ])
      extra.push(describe(name, r))
      process.stderr.write('done\n')
    } catch (error) {
      results[name] = { error: error.message }
      rows.push([name, `error: ${error.message}`, ...Array(14).fill('')])
      process.stderr.write(`FAILED: ${error.message}\n`)
    }
  }
  return {
    columns: [
      'contestant',
      'reads/s before → during',
      'read p50 µs before → during',
      'read p99 µs before → during',
      'read max ms before → during',
      'factory calls/s before / during / after',
      'read errors during / after',
      'writes in the outage: ok / failed / hung past restart',
      'writes after restart: ok / failed / hung',
      `stale reads (> ${BOUND_MS} ms) during / after`,
      `reads > ${BOUND_MS} ms behind the database during / after`,
      'shared again after restart (s)',
      'writes succeed again after restart (s)',
      'last stale read after restart (s)',
      'back to normal after restart (s)',
    ],
    rows,
    results,
    notes: [
      `Per contestant: its own redis-server; ${READERS} reader processes × ${LOOPS} closed-loop readers (getOrSet, then one setImmediate) over ${KEYS.toLocaleString('en-US')} keys drawn Zipf(${ZIPF_S}), all keys loaded before the clock starts; the factory sleeps 2 ms and returns the version the "database" holds; a writer process sets the next version of one of the ${WRITTEN_KEYS} hottest keys every ${WRITE_PERIOD_MS} ms, on the database's schedule, without waiting for the previous write. ${timings.warmMs / 1000} s warm-up, ${timings.beforeMs / 1000} s "before", SIGKILL, ${timings.outageMs / 1000} s "during", restart on the same port (empty), then "after" until both recovery times are seen and ${timings.settleMs / 1000} s more (at least ${timings.afterMinMs / 1000} s, at most ${timings.afterMaxMs / 1000} s).`,
      `Phases are by the read's start, in ${BUCKET_MS} ms buckets: "during" is from the SIGKILL to the restarted server's first PING answer. Latency is getOrSet's own, from a histogram of every read (bins ~4 % wide); a read still waiting when the run ends counts with the time it had waited. Factory calls/s: both processes together, by the call's start.`,
      `Stale: a read that returned a version older than the newest one whose write (the writer's set) had resolved more than ${BOUND_MS} ms before the read began. A write that failed or had not resolved does not count against anyone. Behind the database: a read that returned a version older than the one the database held ${BOUND_MS} ms before the read began, whatever happened to the write.`,
      `Shared again: from the restart to the end of the first read that returned a value produced after the restart by another process (the other reader's factory or the writer): the first value that went through Redis (L2, or cacheable's sync, which carries values). Writes succeed again: from the restart to the resolution of the first write the database committed after it. Last stale read: from the restart to the end of the last ${BUCKET_MS} ms bucket holding a stale read (0: none after the restart). Hung: resolved only after the restart (after the stop, for writes after the restart) or never. Back to normal: from the restart to the start of the first 1 s window (${BUCKET_MS} ms steps) in which both processes together made at most 2× the pre-outage factory calls/s + 10, at least half the pre-outage reads/s, and no read failed.`,
      ...extra,
    ],
  }
}

/** From the restart to the end of the last bucket with a stale read in it; 0 if none after the restart. */
function lastStale(merged, from, to, startAt, restartedAt) {
  for (let b = to - 1; b >= from; b--) if (merged.stale[b] > 0) return Math.max(0, startAt + (b + 1) * BUCKET_MS - restartedAt)
  return 0
}

/** The longest a write took to resolve or fail, from its commit in the database, ms. */
function longestWrite(outcomes, db) {
  let longest = 0
  for (const [version, o] of outcomes) longest = Math.max(longest, (o.completedAt ?? o.failedAt) - db.committedAt(version))
  return longest
}

/** To a process that may have died meanwhile (its death is reported by the run loop). */
function post(worker, message) {
  if (worker.child.connected) worker.send(message)
}

/** One contestant: redis-server, the writer and the readers, the outage, the figures. */
async function measure({ name, prefix, timings }) {
  const port = await freePort()
  let redis = await startRedisOn(port)
  const options = { name, redisUrl: redis.url, prefix }
  const workers = []
  try {
    const writer = new Worker(CHILD, [JSON.stringify({ ...options, role: 'writer' })], { serialization: 'advanced' })
    workers.push(writer)
    const readers = []
    for (let index = 0; index < READERS; index++) {
      readers.push(new Worker(CHILD, [JSON.stringify({ ...options, role: 'reader', index, keys: KEYS, loops: LOOPS })], { serialization: 'advanced' }))
    }
    workers.push(...readers)
    // A process that died (a library's unhandled error) must fail this contestant's run, not the scenario.
    for (const [i, w] of workers.entries()) {
      w.role = i === 0 ? 'writer' : `reader ${i - 1}`
      w.child.on('error', () => {})
      w.child.on('message', (m) => m.type === 'error' && (w.failure = m.message))
    }
    await Promise.all(workers.map((w) => w.next('ready', 60_000)))

    const startAt = now() + 200
    const plannedKillAt = startAt + timings.warmMs + timings.beforeMs
    const buckets = Math.ceil((timings.warmMs + timings.beforeMs + timings.outageMs + timings.afterMaxMs + 15_000) / BUCKET_MS)
    const plan = {
      startAt,
      writesFrom: startAt + 1000,
      periodMs: WRITE_PERIOD_MS,
      writtenKeys: WRITTEN_KEYS,
      plannedKillAt,
      buckets,
      boundMs: BOUND_MS,
      zipfS: ZIPF_S,
    }
    const db = createDatabase(plan)

    // The writer's outcomes, forwarded to the readers as they come; the readers' live counts.
    const outcomes = new Map()
    writer.child.on('message', (m) => {
      if (m.type === 'wrote') {
        outcomes.set(m.version, { completedAt: m.completedAt })
        for (const r of readers) post(r, m)
      } else if (m.type === 'write-failed') outcomes.set(m.version, { failedAt: m.failedAt, message: m.message })
    })
    const live = { reads: new Float64Array(buckets), factory: new Float64Array(buckets), errors: new Float64Array(buckets) }
    const known = readers.map(() => 0)
    let sharedAt
    readers.forEach((r, i) =>
      r.child.on('message', (m) => {
        if (m.type === 'shared') sharedAt = Math.min(sharedAt ?? m.at, m.at)
        if (m.type !== 'tick') return
        for (const field of ['reads', 'factory', 'errors']) m[field].forEach((count, j) => (live[field][m.from + j] += count))
        known[i] = m.from + m.reads.length
      }),
    )

    for (const w of workers) post(w, { type: 'go', plan })
    await sleep(plannedKillAt - now())
    const killedAt = now()
    await redis.kill('SIGKILL')
    await sleep(killedAt + timings.outageMs - now())
    redis = await startRedisOn(port)
    const restartedAt = redis.answeredAt
    for (const r of readers) post(r, { type: 'restarted', at: restartedAt })

    // Run until recovered (both times seen, then settleMs more), within [afterMinMs, afterMaxMs].
    const before = rates(live, bucketRange(startAt, startAt + timings.warmMs, killedAt))
    const [restartBucket] = bucketRange(startAt, restartedAt, restartedAt)
    for (;;) {
      await sleep(250)
      const t = now()
      const gone = workers.find((w) => w.gone)
      if (gone) throw new Error(`the ${gone.role} process ended early (${gone.gone})${gone.failure ? `: ${gone.failure}` : ''}`)
      if (t >= restartedAt + timings.afterMaxMs) break
      const normal = backToNormal(live, before, restartBucket, Math.min(...known))
      if (t < restartedAt + timings.afterMinMs || sharedAt === undefined || normal === undefined) continue
      const normalWindowEnd = startAt + (normal + WINDOW_BUCKETS) * BUCKET_MS
      if (t >= Math.max(sharedAt, normalWindowEnd) + timings.settleMs) break
    }

    const stoppedAt = now()
    for (const w of workers) post(w, { type: 'stop' })
    const done = await Promise.all(readers.map((r) => r.next('done', 30_000)))
    const writerDone = await writer.next('done', 30_000)
    for (const w of workers) post(w, { type: 'exit' })
    // A library that cannot close its connections does not hold up the run: noted, then killed.
    const lingering = []
    await Promise.all(workers.map((w) => w.exited(10_000).catch(() => lingering.push(w.role))))

    const merged = mergeReaders(done, buckets)
    const measuredBefore = phase(merged, bucketRange(startAt, startAt + timings.warmMs, killedAt))
    const endBucket = Math.floor((stoppedAt - startAt) / BUCKET_MS) // buckets before it are complete
    const normal = backToNormal(merged, measuredBefore, restartBucket, endBucket)
    // Writes committed after the restart, up to 1 s before the stop: each had at least 1 s to resolve.
    const writesAfter = writesBetween(outcomes, db, restartedAt, stoppedAt - 1000, stoppedAt)
    const shared = done.map((d) => d.sharedAt).filter((x) => x !== undefined)
    return {
      before: measuredBefore,
      during: phase(merged, bucketRange(startAt, killedAt, restartedAt)),
      after: phase(merged, [restartBucket, endBucket]),
      afterSeconds: (stoppedAt - restartedAt) / 1000,
      writes: writesBetween(outcomes, db, killedAt, restartedAt),
      writesAfter,
      writesOkAfterMs: writesAfter.firstOkAt === undefined ? undefined : writesAfter.firstOkAt - restartedAt,
      writesPendingAtEnd: writerDone.pending,
      longestWriteMs: longestWrite(outcomes, db),
      lastStaleAfterMs: lastStale(merged, restartBucket, endBucket, startAt, restartedAt),
      sharedAfterMs: shared.length > 0 ? Math.min(...shared) - restartedAt : undefined,
      normalAfterMs: normal === undefined ? undefined : Math.max(0, startAt + normal * BUCKET_MS - restartedAt),
      firstReadError: done.find((d) => d.firstError)?.firstError,
      unfinished: done.reduce((sum, d) => sum + d.unfinished, 0),
      noticeLagMaxMs: Math.max(...done.map((d) => d.noticeLagMax)),
      stats: done.map((d) => d.stats).filter(Boolean),
      lingering,
    }
  } finally {
    for (const w of workers) w.kill() // no-op for those that exited
    await redis.kill('SIGTERM')
  }
}

/** One note per contestant: what the table cannot show (errors' text, tiercache's own counters, leftovers). */
function describe(name, r) {
  const parts = [`${r.afterSeconds.toFixed(0)} s measured after the restart`, `longest write ${(r.longestWriteMs / 1000).toFixed(1)} s`]
  if (r.firstReadError) parts.push(`first read error: \`${r.firstReadError}\``)
  const clip = (text) => (text.length > 240 ? `${text.slice(0, 240)}…` : text)
  if (r.writes.firstError) parts.push(`first write error in the outage: \`${clip(r.writes.firstError)}\``)
  if (r.writesAfter.firstError) parts.push(`first write error after the restart: \`${clip(r.writesAfter.firstError)}\``)
  if (r.writes.pending > 0) parts.push(`${r.writes.pending} of the outage's writes never resolved`)
  if (r.writesAfter.pending > 0) parts.push(`${r.writesAfter.pending} writes made after the restart never resolved`)
  if (r.unfinished > 0) parts.push(`${r.unfinished} reads still waiting at the end`)
  if (r.lingering.length > 0) parts.push(`did not exit within 10 s of close (killed): ${r.lingering.join(', ')}`)
  // A reader judges a read when it ends, against the writes it has heard of: a notice later than the bound could miss a stale read.
  if (r.noticeLagMaxMs >= BOUND_MS) parts.push(`write notices reached a reader up to ${Math.round(r.noticeLagMaxMs)} ms late: stale counts may be low`)
  for (const [i, s] of r.stats.entries()) {
    parts.push(
      `reader ${i}: l2Hits ${s.l2Hits}, outageReuses ${s.outageReuses}, l2CallsSkipped ${s.l2CallsSkipped}, circuitOpenings ${s.circuitOpenings}, factoryCalls ${s.factoryCalls ?? '—'}`,
    )
  }
  return `${name}: ${parts.join('; ')}.`
}

// Run on its own (`node bench/scenarios/outage.mjs [--smoke]`): no shared redis-server to
// start, unlike the other scenarios' entry point (lib/standalone.mjs): every contestant gets its own.
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const result = await run({ smoke: process.argv.includes('--smoke') })
  console.log(`### ${title}\n\n${markdownTable(result.columns, result.rows)}\n`)
  for (const note of result.notes) console.log(`- ${note}`)
}
