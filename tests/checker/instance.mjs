// One instance of the coherence checker: writes increasing versions of its
// own keys and reads every key continuously, logging each operation with
// CLOCK_MONOTONIC timestamps (comparable across processes on one machine).
// Driven over IPC by tests/checker/checker.ts.
import { createCache } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier } from '@tiercache/redis-adapter'
import { Cluster, Redis } from 'ioredis'

const env = process.env
const index = Number(env.INDEX)
const instances = Number(env.INSTANCES)
const keyCount = Number(env.KEYS)
const maxStaleness = Number(env.MAX_STALENESS)
const readers = Number(env.READERS ?? 2)
const writeIntervalMs = Number(env.WRITE_INTERVAL_MS ?? 20)

// Standalone: a URL. Sentinel: one client through the sentinels, following
// failovers at once (failoverDetector), shared by the tier and the bus.
// Cluster: one ioredis Cluster, shared by the tier and the bus.
const redis = env.SENTINELS
  ? new Redis({ ...JSON.parse(env.SENTINELS), failoverDetector: true, maxRetriesPerRequest: 1 })
  : env.CLUSTER_NODES
    ? new Cluster(JSON.parse(env.CLUSTER_NODES), { redisOptions: { maxRetriesPerRequest: 1 } })
    : env.REDIS_URL
if (typeof redis !== 'string') redis.on('error', () => {})
const replicated = env.SENTINELS !== undefined || env.CLUSTER_NODES !== undefined
const bus = redisBus({ redis, maxStaleness, timeout: '500ms' })
let recoveredErrors = 0
const cache = createCache({
  invalidation: { notes: 'test instance: writes through set/delete/clear/invalidateTags' },
  name: 'checker',
  // With replicas (Sentinel, Cluster), a write resolves only once a replica has it: an acknowledged write survives the failover.
  tiers: [memoryTier(), redisTier({ redis, timeout: '500ms', ...(replicated ? { waitForReplicas: { replicas: 1 } } : {}) })],
  bus,
  ttl: '1h',
  onError: () => recoveredErrors++,
})
// The source of truth: a separate redis-server that no fault touches.
const db = new Redis(env.DB_URL)

const now = () => Number(process.hrtime.bigint()) / 1e6
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
/** Reads: key, start, end, version (-1 absent, -2 error), op (0 get, 1 getOrSet). */
const reads = []
/** Writes: key, version, start, end, ok (1 resolved, 0 rejected). */
const writes = []
let running = false
const loops = []

/**
 * Even keys are written every few ms; odd keys only every SLOW_WRITE_MS. A
 * lost invalidation of a hot key is soon covered by the next write's; of a
 * slow key it is not, which is what makes a missing mechanism visible.
 */
const slowWriteMs = Number(env.SLOW_WRITE_MS ?? 2500)

async function writerLoop() {
  const mine = []
  for (let k = 0; k < keyCount; k++) if (k % instances === index) mine.push(k)
  const lastWrite = new Map()
  let turn = 0
  while (running) {
    const k = mine[turn++ % mine.length]
    if (k % 2 === 1 && now() - (lastWrite.get(k) ?? 0) < slowWriteMs) {
      await sleep(0)
      continue
    }
    lastWrite.set(k, now())
    const version = await db.incr(`version:${k}`)
    const start = now()
    let ok = 1
    try {
      await cache.set(`k${k}`, version)
    } catch {
      ok = 0
    }
    writes.push(k, version, start, now(), ok)
    await sleep(writeIntervalMs)
  }
}

async function readerLoop(seed) {
  let i = seed
  while (running) {
    const k = Math.floor(Math.random() * keyCount)
    const op = i++ % 2
    const start = now()
    let version
    try {
      const value =
        op === 0
          ? await cache.get(`k${k}`)
          : await cache.getOrSet(`k${k}`, async () => Number((await db.get(`version:${k}`)) ?? 0))
      version = typeof value === 'number' ? value : -1
    } catch {
      version = -2
    }
    reads.push(k, start, now(), version, op)
    await sleep(0)
  }
}

const operations = {
  start: () => {
    running = true
    loops.push(writerLoop())
    for (let r = 0; r < readers; r++) loops.push(readerLoop(r))
  },
  stop: async () => {
    running = false
    await Promise.all(loops)
    return {
      reads: Float64Array.from(reads),
      writes: Float64Array.from(writes),
      bus: bus.status(),
      recoveredErrors,
    }
  },
  close: async () => {
    await cache.close()
    await bus.close()
    if (typeof redis !== 'string') redis.disconnect()
    db.disconnect()
    setImmediate(() => process.disconnect())
  },
}

process.on('message', async ({ id, op }) => {
  try {
    process.send({ id, ok: true, result: await operations[op]() })
  } catch (error) {
    process.send({ id, ok: false, error: { message: String(error?.stack ?? error) } })
  }
})

await db.ping()
await bus.ready()
process.send({ ready: true })
