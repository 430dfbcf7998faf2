// Scenario 5 — Propagation: one process writes key 'k' = 1, 2, … N (2 ms
// apart), another process reads 'k' in a loop with the key in its own memory
// tier. The reader can only see a new version once the library's cross-instance
// sync reached it (or its memory entry expired), so this measures that sync:
// how soon the reader sees each write, and how often it still serves a value
// that was superseded well before the read.
//
// Harness: the scenario's own process is the writer; the reader is this file
// forked with the 'worker' marker. The reader spins on get('k') (one read, then
// setImmediate, so IPC and the library's own I/O still run) and logs every read;
// it runs at a lower CPU priority so that its busy loop cannot starve the writer
// and redis-server of the machine's other core (2 cores), which is what would
// be measured otherwise. Both processes stamp events with
// performance.timeOrigin + performance.now(): wall-clock-anchored, sub-ms, and
// comparable across processes on one machine.
//
// One run's p99 is its 10th-slowest delay of 1000: on 2 shared cores, one
// descheduling of the reader or the writer. So every contestant runs 5
// times, the rounds interleaved (round r starts at contestant r mod n, each
// run ~4 s), and a contestant's p99 is the median of its runs' p99s; a
// moment of load then lands on one run of some contestants, not on all of
// one contestant's runs.
//
//   node bench/scenarios/propagation.mjs [--smoke]
import os from 'node:os'
import { OTHER_CONTESTANTS } from '@tiercache/bench-contestants'
import { TIERCACHE_CARRY, createContestant, labelOf, selectContestants } from '../lib/contestants.mjs'
import { runWorker, sendToParent, Worker } from '../lib/worker.mjs'
import { quantile, sleep } from '../lib/stats.mjs'
import { asEntryPoint } from '../lib/standalone.mjs'

export const id = 'propagation'
export const title = 'Scenario 5 — Propagation: one writer process, one reader process, delay until the reader sees each write'

const GAP_MS = 2 // pause between writes
const STALE_MS = 50 // a read is "stale" if it returned a version superseded more than this long before it started
const TAIL_MS = 300 // the reader keeps reading this long after the last write
const now = () => performance.timeOrigin + performance.now()
const ms2 = (x) => (x === null ? '—' : x.toFixed(2))

export async function run({ redisUrl, smoke }) {
  const rounds = smoke ? 2 : 5
  const writes = smoke ? 20 : 1000
  // tiercache twice: as every other scenario runs it, and with its bus carrying the values.
  const names = selectContestants(['tiercache', TIERCACHE_CARRY, ...OTHER_CONTESTANTS])
  // A run tag keeps a reader of an earlier run against the same Redis (REDIS_URL) out of this one.
  const runTag = Date.now().toString(36)
  const runs = new Map(names.map((name) => [name, []]))
  const errors = new Map()
  const began = performance.now()
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(round + i) % names.length]
      if (errors.has(name)) continue
      try {
        runs.get(name).push(await measure({ name, redisUrl, prefix: `${id}-${name}-${runTag}-${round}`, writes }))
      } catch (error) {
        errors.set(name, `round ${round + 1}: ${error.message}`)
      }
    }
  }
  const seconds = (performance.now() - began) / 1000

  const results = {}
  const rows = []
  const perRunRows = []
  const readerRows = []
  for (const name of names) {
    if (errors.has(name)) {
      results[name] = { error: errors.get(name) }
      rows.push([labelOf(name), `error: ${errors.get(name)}`, '', '', '', '', '', '', ''])
      continue
    }
    const r = combine(runs.get(name))
    results[name] = r
    const spread = r.p99Spread ? `${ms2(r.p99Spread[0])}–${ms2(r.p99Spread[1])}` : '—'
    rows.push([labelOf(name), `${r.seen} / ${r.writes}`, ms2(r.p50Ms), ms2(r.p99Ms), spread, ms2(r.maxMs), r.reads, r.staleAfter50ms, r.staleInTail])
    perRunRows.push([labelOf(name), ...r.p99Runs.map(ms2)])
    if (r.reader) {
      const { l2Hits, carried } = r.reader
      readerRows.push([labelOf(name), r.seen, l2Hits, ms2(l2Hits / r.writes), carried === null ? '—' : carried])
    }
  }
  const tables = [
    {
      caption: "Each run's delay p99 (ms), in the order the runs were made (round 1 first).",
      columns: ['contestant', ...Array.from({ length: rounds }, (_, i) => `run ${i + 1}`)],
      rows: perRunRows,
    },
  ]
  if (readerRows.length > 0) {
    tables.push({
      caption:
        "tiercache's reader, from its own counters (cache.stats(), bus.status()), summed over the runs: how it got each new version. Without carryValues each write evicts its L1 copy and the next get() reads Redis; with it the bus message puts the new value into L1, and get() has no reason to read Redis.",
      columns: ['contestant', 'versions seen', 'L2 reads (stats().l2Hits)', 'L2 reads per write', 'values taken from the bus (carriedValues.applied)'],
      rows: readerRows,
    })
  }
  return {
    columns: [
      'contestant',
      `versions seen (${rounds} runs)`,
      `delay p50 (ms, median of ${rounds} runs)`,
      `delay p99 (ms, median of ${rounds} runs)`,
      'p99 spread over the runs (ms)',
      'delay max (ms, all runs)',
      'reads',
      `stale reads (> ${STALE_MS} ms)`,
      `… of which in the ${TAIL_MS} ms after the last write`,
    ],
    rows,
    tables,
    results,
    notes: [
      `${rounds} rounds; in each, every contestant makes one run, in rotating order (round r starts at contestant r mod ${names.length}), so the runs of all contestants are interleaved in time (the scenario took ${seconds.toFixed(0)} s). A run: ${writes} sequential writes (set, then ${GAP_MS} ms pause) by one process; another process (niced to 10) reads the key in a loop, its memory tier primed with the key first. Memory + Redis + each library's sync; every run on fresh keys, with a fresh writer and reader.`,
      `p50 and p99: the median of the ${rounds} runs' p50s and p99s (one run's p99 on 2 shared cores is one descheduling); spread: the lowest and highest run p99. Versions seen, reads and stale reads are summed over the runs; max is the highest of any run.`,
      "Delay: from the writer's set() resolving to the end of the reader's first read that returned that version. A version replaced before the reader looked is skipped (not counted in \"versions seen\"). It can be negative: the reader may see a version before the writer's set() has resolved (a library may publish before it awaits its own Redis write, or the writer's event loop was busy when the reply came).",
      `Stale reads: reads that started more than ${STALE_MS} ms after a newer version's set() had resolved, yet returned an older version (or nothing); every such read is counted, over the whole run including the ${TAIL_MS} ms of reading after the last write.`,
      `Reads: every read the reader made, from its 'ready' (200 ms before the first write) to ${TAIL_MS} ms after the last write; a faster get() makes more of them.`,
      "tiercache (carryValues): tiercache with `redisBus({ …, carryValues: { channelProtected: true } })` on both sides: a set() of a small value sends it with its invalidation, and the reader's L1 takes it from the message instead of re-reading Redis (docs/coherence.md). Off by default, so every other scenario runs tiercache without it.",
      'cache-manager has no cross-instance sync: the reader keeps the value in its memory store until the TTL (1 h), so it never sees a write; that is measured, not a failure of the harness.',
    ],
  }
}

/** One contestant's runs as one result: medians of the run quantiles, sums of the counts. */
function combine(runs) {
  const sum = (key) => runs.reduce((total, r) => total + r[key], 0)
  // A run that saw no version has no delay quantiles: it sorts as the slowest (it never caught up).
  const medianOf = (key) => {
    const values = runs.map((r) => r[key] ?? Number.POSITIVE_INFINITY).sort((a, b) => a - b)
    const m = quantile(values, 0.5)
    return Number.isFinite(m) ? m : null
  }
  const p99Runs = runs.map((r) => r.p99Ms)
  const measured = p99Runs.filter((x) => x !== null)
  const maxes = runs.map((r) => r.maxMs).filter((x) => x !== null)
  const readers = runs.map((r) => r.reader).filter(Boolean)
  return {
    p50Ms: medianOf('p50Ms'),
    p99Ms: medianOf('p99Ms'),
    p99Runs,
    p99Spread: measured.length > 0 ? [Math.min(...measured), Math.max(...measured)] : null,
    maxMs: maxes.length > 0 ? Math.max(...maxes) : null,
    seen: sum('seen'),
    writes: sum('writes'),
    staleAfter50ms: sum('staleAfter50ms'),
    staleInTail: sum('staleInTail'),
    reads: sum('reads'),
    misses: sum('misses'),
    runs: runs.length,
    reader:
      readers.length === runs.length
        ? {
            l2Hits: readers.reduce((t, c) => t + c.l2Hits, 0),
            carried: readers.every((c) => c.carried) ? readers.reduce((t, c) => t + c.carried.applied, 0) : null,
          }
        : undefined,
  }
}

/** One writer (this process) and one reader child for one contestant. */
async function measure({ name, redisUrl, prefix, writes }) {
  const writer = await createContestant(name, { redisUrl, layers: 'l1+l2', prefix })
  let reader
  try {
    // resolvedAt[v]: when set('k', v) resolved in the writer. Writes are sequential, so it increases with v.
    const resolvedAt = new Float64Array(writes + 1)
    await writer.set('k', 0)
    resolvedAt[0] = now()
    // 'advanced': the log's typed arrays cross as typed arrays (JSON would send them as objects with one key per read).
    reader = new Worker(import.meta.url, [JSON.stringify({ name, redisUrl, prefix })], { serialization: 'advanced' })
    try {
      os.setPriority(reader.child.pid, 10)
    } catch {
      // not permitted here: measure as is
    }
    await reader.next('ready', 30_000) // the reader holds version 0 in memory and is spinning
    await sleep(200)

    for (let version = 1; version <= writes; version++) {
      await writer.set('k', version)
      resolvedAt[version] = now()
      await sleep(GAP_MS)
    }
    await sleep(TAIL_MS)
    reader.send({ type: 'stop' })
    const log = await reader.next('log', 30_000)
    await reader.exited(10_000)
    return { ...analyse(resolvedAt, log), reader: log.counters ?? undefined }
  } finally {
    reader?.kill() // no-op once it exited
    await writer.close()
  }
}

/**
 * The reader sends every read as (start, end, version), in the order it made
 * them (one read at a time, so starts increase). Logging every read rather
 * than runs of equal versions keeps the count exact and costs 20 bytes a read
 * (a full run makes well under a million). Both measures then take one pass:
 * - delay: for each version, the end of the first read that returned it, minus
 *   when its write resolved;
 * - staleness: a read that started at t is stale if the newest version whose
 *   write resolved before t − STALE_MS is newer than what it returned. Since
 *   resolve times increase with the version, that newest version only moves
 *   forward as t does: one pointer walks along resolvedAt.
 */
function analyse(resolvedAt, { starts, ends, versions, count }) {
  const writes = resolvedAt.length - 1
  const lastWrite = resolvedAt[writes]
  const firstSeen = new Float64Array(writes + 1).fill(Number.NaN)
  let current = -1 // newest version resolved more than STALE_MS before the read started
  let stale = 0
  let staleInTail = 0
  let misses = 0
  for (let i = 0; i < count; i++) {
    const t = starts[i]
    const v = versions[i] // -1: the read found nothing
    while (current < writes && resolvedAt[current + 1] < t - STALE_MS) current++
    if (v < current) {
      stale++
      if (t > lastWrite) staleInTail++
    }
    if (v < 0) misses++
    else if (v <= writes && Number.isNaN(firstSeen[v])) firstSeen[v] = ends[i]
  }
  const delays = []
  for (let v = 1; v <= writes; v++) if (!Number.isNaN(firstSeen[v])) delays.push(firstSeen[v] - resolvedAt[v])
  delays.sort((a, b) => a - b)
  const q = (p) => (delays.length > 0 ? quantile(delays, p) : null)
  return {
    p50Ms: q(0.5),
    p99Ms: q(0.99),
    maxMs: delays.length > 0 ? delays.at(-1) : null,
    minMs: delays.length > 0 ? delays[0] : null,
    seen: delays.length,
    writes,
    staleAfter50ms: stale,
    staleInTail,
    reads: count,
    misses,
  }
}

// ---------------------------------------------------------------------------
// Reader process side.

/**
 * Every read the reader made: three numbers per read (no per-read objects),
 * in fixed chunks of typed arrays. Chunks, not one array grown by doubling:
 * copying a doubled array of half a million
 * reads stalled the reader mid-run (the longest delays, 49 and 70 ms, came
 * from the contestant that reads fastest, whose log crossed that size).
 * A new chunk is one small allocation; they are joined after the run.
 */
const CHUNK = 1 << 16
class ReadLog {
  count = 0
  #chunks = []
  #starts
  #ends
  #versions
  #at = CHUNK
  add(start, end, version) {
    if (this.#at === CHUNK) {
      this.#starts = new Float64Array(CHUNK)
      this.#ends = new Float64Array(CHUNK)
      this.#versions = new Int32Array(CHUNK)
      this.#chunks.push([this.#starts, this.#ends, this.#versions])
      this.#at = 0
    }
    this.#starts[this.#at] = start
    this.#ends[this.#at] = end
    this.#versions[this.#at] = version
    this.#at++
    this.count++
  }
  /** The filled part, for process.send (advanced serialization clones typed arrays). */
  toMessage() {
    const n = this.count
    const join = (column, Type) => {
      const all = new Type(n)
      this.#chunks.forEach((chunk, i) => all.set(chunk[column].subarray(0, Math.min(CHUNK, n - i * CHUNK)), i * CHUNK))
      return all
    }
    return { type: 'log', count: n, starts: join(0, Float64Array), ends: join(1, Float64Array), versions: join(2, Int32Array) }
  }
}

async function readerMain({ name, redisUrl, prefix }) {
  await runWorker(
    () => createContestant(name, { redisUrl, layers: 'l1+l2', prefix }),
    async (cache, inbox) => {
      let running = true
      inbox.next().then(() => (running = false)) // the only message the reader gets: 'stop'
      // Put the key into this process's memory tier. getOrSet, not get: cache-manager's
      // get() reads its stores in turn but does not copy an L2 hit into memory (its
      // wrap() does), and without a memory copy its reader would just be reading Redis.
      const primed = await cache.getOrSet('k', async () => 0)
      if (primed !== 0) throw new Error(`reader primed with ${JSON.stringify(primed)}, expected 0`)
      const log = new ReadLog()
      const yieldToLoop = () => new Promise((resolve) => setImmediate(resolve))
      // tiercache reports how it got each version (L2 reads, values from the bus), counted from here on.
      const before = cache.counters?.()
      process.send({ type: 'ready' })
      while (running) {
        const start = now()
        const value = await cache.get('k')
        log.add(start, now(), typeof value === 'number' ? value : -1)
        await yieldToLoop()
      }
      // Wait until the (large) log is written to the channel: disconnecting right
      // after send() could drop what is still queued.
      const after = cache.counters?.()
      const counters = after && {
        l2Hits: after.l2Hits - before.l2Hits,
        carried: after.carried && { applied: after.carried.applied - before.carried.applied, rejected: after.carried.rejected - before.carried.rejected },
      }
      await sendToParent({ ...log.toMessage(), counters })
    },
  )
}

await asEntryPoint(import.meta.url, { id, title, run }, readerMain)
