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
//   node bench/scenarios/propagation.mjs [--smoke]
import os from 'node:os'
import { CONTESTANTS, createContestant } from '../lib/contestants.mjs'
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
  const writes = smoke ? 50 : 1000
  // A run tag keeps a reader of an earlier run against the same Redis (REDIS_URL) out of this one.
  const runTag = Date.now().toString(36)
  const results = {}
  const rows = []
  for (const name of CONTESTANTS) {
    try {
      const r = await measure({ name, redisUrl, prefix: `${id}-${name}-${runTag}`, writes })
      results[name] = r
      rows.push([name, `${r.seen} / ${r.writes}`, ms2(r.p50Ms), ms2(r.p99Ms), ms2(r.maxMs), r.reads, r.staleAfter50ms, r.staleInTail])
    } catch (error) {
      results[name] = { error: error.message }
      rows.push([name, `error: ${error.message}`, '', '', '', '', '', ''])
    }
  }
  return {
    columns: [
      'contestant',
      'versions seen',
      'delay p50 (ms)',
      'delay p99 (ms)',
      'delay max (ms)',
      'reads',
      `stale reads (> ${STALE_MS} ms)`,
      `… of which in the ${TAIL_MS} ms after the last write`,
    ],
    rows,
    results,
    notes: [
      `${writes} sequential writes (set, then ${GAP_MS} ms pause) by one process; another process (niced to 10) reads the key in a loop, its memory tier primed with the key first. Memory + Redis + each library's sync.`,
      "Delay: from the writer's set() resolving to the end of the reader's first read that returned that version. A version replaced before the reader looked is skipped (not counted in \"versions seen\"). It can be negative: the reader may see a version before the writer's set() has resolved (a library may publish before it awaits its own Redis write, or the writer's event loop was busy when the reply came).",
      `Stale reads: reads that started more than ${STALE_MS} ms after a newer version's set() had resolved, yet returned an older version (or nothing); every such read is counted, over the whole run including the ${TAIL_MS} ms of reading after the last write.`,
      `Reads: every read the reader made, from its 'ready' (200 ms before the first write) to ${TAIL_MS} ms after the last write; a faster get() makes more of them.`,
      'cache-manager has no cross-instance sync: the reader keeps the value in its memory store until the TTL (1 h), so it never sees a write; that is measured, not a failure of the harness.',
    ],
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
    reader = new Worker(import.meta.url, [JSON.stringify({ name, redisUrl, prefix })])
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
    return analyse(resolvedAt, log)
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

/** Growable typed-array log of reads: three numbers per read, no per-read objects. */
class ReadLog {
  count = 0
  starts = new Float64Array(1 << 16)
  ends = new Float64Array(1 << 16)
  versions = new Int32Array(1 << 16)
  add(start, end, version) {
    if (this.count === this.starts.length) {
      const grow = (old) => {
        const next = new old.constructor(old.length * 2)
        next.set(old)
        return next
      }
      this.starts = grow(this.starts)
      this.ends = grow(this.ends)
      this.versions = grow(this.versions)
    }
    this.starts[this.count] = start
    this.ends[this.count] = end
    this.versions[this.count] = version
    this.count++
  }
  /** The filled part, for process.send (advanced serialization clones typed arrays). */
  toMessage() {
    const n = this.count
    return { type: 'log', count: n, starts: this.starts.slice(0, n), ends: this.ends.slice(0, n), versions: this.versions.slice(0, n) }
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
      process.send({ type: 'ready' })
      while (running) {
        const start = now()
        const value = await cache.get('k')
        log.add(start, now(), typeof value === 'number' ? value : -1)
        await yieldToLoop()
      }
      // Wait until the (large) log is written to the channel: disconnecting right
      // after send() could drop what is still queued.
      await sendToParent(log.toMessage())
    },
  )
}

await asEntryPoint(import.meta.url, { id, title, run }, readerMain)
