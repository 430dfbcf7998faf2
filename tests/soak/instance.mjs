// One instance of the soak (tests/soak/soak.ts): the checker's instance
// (tests/checker/instance.mjs) made long-running. Readers draw keys from a
// zipfian distribution; the writer writes increasing versions of its own keys
// (k % INSTANCES === INDEX, so each key still has a single writer and reads
// can be judged), under tags t<k % 20> (all of them its own), and now and then
// invalidates one of its tags. Operations go into fixed-size typed arrays that
// the parent drains every second, so nothing here grows with the run's length.
import { createCache } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier } from '@tiercache/redis-adapter'
import { Redis } from 'ioredis'

const env = process.env
const index = Number(env.INDEX)
const instances = Number(env.INSTANCES)
const keyCount = Number(env.KEYS)
const maxStaleness = Number(env.MAX_STALENESS)
const readers = Number(env.READERS ?? 2)
const writeIntervalMs = Number(env.WRITE_INTERVAL_MS ?? 20)
const invalidateEveryMs = Number(env.INVALIDATE_EVERY_MS ?? 500)
const TAGS = 20

// Counted, not thrown: the soak's verdict includes these.
const unhandled = { rejections: 0, exceptions: 0, warnings: 0, messages: [] }
const remember = (kind, error) => {
  if (unhandled.messages.length < 10) unhandled.messages.push(`${kind}: ${String(error?.stack ?? error)}`.slice(0, 500))
}
process.on('unhandledRejection', (error) => {
  unhandled.rejections++
  remember('unhandledRejection', error)
})
process.on('uncaughtException', (error) => {
  unhandled.exceptions++
  remember('uncaughtException', error)
})
// Process warnings include MaxListenersExceededWarning, the usual sign of a listener leak.
// Not counted: the cache's own one line per state change (Redis lost, circuit
// opened), which it emits as a process warning when it has no logger.
const STATE_CHANGES = new Set(['TIERCACHE_CONNECTION_LOST', 'TIERCACHE_CIRCUIT_OPEN', 'TIERCACHE_WRITE_QUEUE_COLLAPSED'])
process.on('warning', (warning) => {
  if (STATE_CHANGES.has(warning.code)) return
  unhandled.warnings++
  remember('warning', `${warning.name}: ${warning.message}`)
})
// If the parent dies, do not linger. (After `close` the process must exit on
// its own: the parent waits for that, which catches a handle left open.)
let closing = false
process.on('disconnect', () => {
  if (!closing) process.exit(0)
})

const bus = redisBus({ redis: env.REDIS_URL, maxStaleness, timeout: '500ms' })
let recoveredErrors = 0
/** onError calls by error code (a handful of codes: bounded). */
const errorCodes = {}
const cache = createCache({
  invalidation: { tags: Array.from({ length: TAGS }, (_, i) => `t${i}`), notes: 'soak instance: set, getOrSet and invalidateTags' },
  name: 'soak',
  tiers: [memoryTier(), redisTier({ redis: env.REDIS_URL, timeout: '500ms' })],
  bus,
  ttl: '1h',
  onError: (error) => {
    recoveredErrors++
    errorCodes[error.code] = (errorCodes[error.code] ?? 0) + 1
  },
})
// The source of truth: a separate redis-server that is never restarted.
const db = new Redis(env.DB_URL)

const now = () => Number(process.hrtime.bigint()) / 1e6
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Zipf(s = 1) over n ranks: a sampler by binary search of the cumulative distribution. */
function zipf(n) {
  const cdf = new Float64Array(n)
  let sum = 0
  for (let i = 0; i < n; i++) cdf[i] = sum += 1 / (i + 1)
  for (let i = 0; i < n; i++) cdf[i] /= sum
  return () => {
    const u = Math.random()
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (cdf[mid] < u) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}
const readKey = zipf(keyCount)
// Rank r of this instance's keys is key r * instances + index: its hot keys are written most.
const ownRank = zipf(Math.ceil((keyCount - index) / instances))
const tagOf = (k) => `t${k % TAGS}`
const ownTags = []
for (let t = 0; t < TAGS; t++) if (t % instances === index) ownTags.push(`t${t}`) // t % 4 === k % 4 when TAGS % instances === 0

/**
 * A fixed-capacity log of 4-number records. The parent drains it every
 * second; should it not (a stalled parent), records are dropped and counted
 * rather than the process growing.
 */
function log(capacity) {
  const data = new Float64Array(4 * capacity)
  let length = 0
  return {
    dropped: 0,
    push(a, b, c, d) {
      if (length === capacity) return void this.dropped++
      const at = 4 * length++
      data[at] = a
      data[at + 1] = b
      data[at + 2] = c
      data[at + 3] = d
    },
    drain() {
      const out = data.slice(0, 4 * length)
      length = 0
      return out
    },
  }
}
/** Reads: key, start, version (-1 absent, -2 error), op (0 get, 1 getOrSet). */
const reads = log(100_000)
/** Writes: key, version, end, ok (1 resolved, 0 rejected). */
const writes = log(10_000)
const invalidations = { ok: 0, failed: 0 }
let running = false
const loops = []

async function writerLoop() {
  let lastInvalidation = now()
  while (running) {
    const k = ownRank() * instances + index
    const version = await db.incr(`version:${k}`)
    let ok = 1
    try {
      await cache.set(`k${k}`, version, { tags: [tagOf(k)] })
    } catch {
      ok = 0
    }
    writes.push(k, version, now(), ok)
    if (now() - lastInvalidation >= invalidateEveryMs) {
      lastInvalidation = now()
      try {
        await cache.invalidateTags([ownTags[Math.floor(Math.random() * ownTags.length)]])
        invalidations.ok++
      } catch {
        invalidations.failed++
      }
    }
    await sleep(writeIntervalMs)
  }
}

async function readerLoop(seed) {
  let i = seed
  while (running) {
    const k = readKey()
    const op = i++ % 2
    const start = now()
    let version
    try {
      const value =
        op === 0 ? await cache.get(`k${k}`) : await cache.getOrSet(`k${k}`, async () => Number((await db.get(`version:${k}`)) ?? 0), { tags: [tagOf(k)] })
      version = typeof value === 'number' ? value : -1
    } catch {
      version = -2
    }
    reads.push(k, start, version, op)
    await sleep(0)
  }
}

/** What the parent collects every second: the operations since the last drain and a memory sample. */
function drain(gc) {
  // A full collection first, when asked: heapUsed is then the live heap, comparable across the run.
  if (gc) globalThis.gc?.()
  const { rss, heapUsed } = process.memoryUsage()
  return {
    time: now(),
    reads: reads.drain(),
    writes: writes.drain(),
    dropped: reads.dropped + writes.dropped,
    memory: { rss, heapUsed, gc: gc && typeof globalThis.gc === 'function' },
  }
}

const operations = {
  start: () => {
    running = true
    loops.push(writerLoop())
    for (let r = 0; r < readers; r++) loops.push(readerLoop(r))
  },
  drain: ({ gc }) => drain(gc === true),
  stop: async () => {
    running = false
    await Promise.all(loops)
    return {
      last: drain(true),
      bus: bus.status(),
      recoveredErrors,
      errorCodes,
      invalidations,
      unhandled,
    }
  },
  close: async () => {
    closing = true
    await cache.close()
    await bus.close()
    db.disconnect()
    setImmediate(() => process.disconnect())
  },
}

process.on('message', async ({ id, op, args }) => {
  try {
    process.send({ id, ok: true, result: await operations[op](args ?? {}) })
  } catch (error) {
    process.send({ id, ok: false, error: { message: String(error?.stack ?? error) } })
  }
})

await db.ping()
await bus.ready()
process.send({ ready: true })
