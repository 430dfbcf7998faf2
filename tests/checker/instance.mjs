// One instance of the coherence checker. It writes (set, delete, tag and
// namespace invalidations, clear) whatever keys the database's writer locks
// give it, reads every key continuously, and logs each operation with
// CLOCK_MONOTONIC timestamps (comparable across processes on one machine).
// Driven over IPC by tests/checker/checker.ts, which judges the logs.
import { createCache } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier } from '@tiercache/redis-adapter'
import { Cluster, Redis } from 'ioredis'

const env = process.env
const index = Number(env.INDEX)
const instances = Number(env.INSTANCES)
const keyCount = Number(env.KEYS)
const maxStaleness = Number(env.MAX_STALENESS)
const readers = Number(env.READERS || 2)
const writeIntervalMs = Number(env.WRITE_INTERVAL_MS ?? 20)
/** Slow keys are written only this often: a lost invalidation of a hot key is soon covered by the next write's; of a slow key it is not. */
const slowWriteMs = Number(env.SLOW_WRITE_MS ?? 2500)
/** How often some instance runs a multi-key invalidation (invalidateTags, a namespace's invalidate, clear). */
const multiIntervalMs = Number(env.MULTI_INTERVAL_MS ?? 700)
/** A key whose designated writer has not taken it this long after it was due may be taken by any instance (the designated one may be frozen). */
const fallbackMs = Number(env.FALLBACK_MS ?? 250)
/** The factory waits this long after reading the database: it widens the race between a fill and a write that a lease must win. */
const factoryDelayMs = Number(env.FACTORY_DELAY_MS ?? 3)
/** How long a writer whose write was rejected waits before it takes another lock. */
const rejectedBackoffMs = Number(env.REJECTED_BACKOFF_MS ?? 1000)
/** In a burst of deletes of a slow key, each follows the previous one within this many ms. */
const deleteBurstGapMs = Number(env.DELETE_BURST_GAP_MS ?? 250)
/** Readers only get (never fill), or one reader per key, refilling it as soon as it is gone: see the checker's \`fillers\` option. */
const getOnly = env.GET_ONLY === '1'
const readerPerKey = env.READER_PER_KEY === '1'
/** Grace and fail-safe on (short TTL, long grace, soft and hard factory timeouts). */
const grace = env.GRACE === '1'
/**
 * A coherence mechanism switched off from the outside, to prove the checker
 * sees it missing: 'liveness' (the bus's trust never lapses), 'gap' (gaps
 * never clear L1), 'bus' (received invalidations are dropped), 'leases' (the
 * shared tier offers no fill leases), 'reuse-bound' (outage reuse, and L1,
 * served for 10 x maxStaleness while the bus is down, not maxStaleness).
 * Otherwise the cache runs with the default onBusDown: 'reuse'.
 */
const switchOff = env.SWITCH_OFF ?? ''

// The key space, shared with checker.ts only through what is logged: key k
// lives in namespace n<k % 2> and carries tag t<k >> 2; it is slow when
// (k >> 1) is odd. So each tag holds hot and slow keys of both namespaces.
const namespaceOf = (k) => `n${k % 2}`
const tagOf = (k) => `t${k >> 2}`
const isSlow = (k) => (k >> 1) % 2 === 1
const namespaces = [...new Set(Array.from({ length: keyCount }, (_, k) => namespaceOf(k)))]
const tags = [...new Set(Array.from({ length: keyCount }, (_, k) => tagOf(k)))]
const keysWhere = (predicate) => Array.from({ length: keyCount }, (_, k) => k).filter(predicate)

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

// --carry-values: values ride with their invalidations, authenticated with a secret every instance shares.
const carryValues = env.CARRY_VALUES === '1' ? { carryValues: { secret: 'checker-secret-shared-by-every-instance' } } : {}
const realBus = redisBus({ redis, maxStaleness, timeout: '500ms', ...carryValues })
/** The bus as the cache sees it: the real one, or one with a mechanism cut out. */
const bus = switchOff === 'liveness' || switchOff === 'gap' || switchOff === 'bus' ? crippledBus(realBus, switchOff) : realBus
const realTier = redisTier({ redis, timeout: '500ms', ...(replicated ? { waitForReplicas: { replicas: 1 } } : {}) })
const tier = switchOff === 'leases' ? leaselessTier(realTier) : realTier

let recoveredErrors = 0
const cache = createCache({
  invalidation: { notes: 'checker instance', tags, namespaces },
  name: 'checker',
  // With replicas (Sentinel, Cluster), a write resolves only once a replica has it: an acknowledged write survives the failover.
  tiers: [memoryTier(), tier],
  bus,
  ...(switchOff === 'reuse-bound' ? { onBusDown: { serveStale: 10 * maxStaleness } } : {}),
  ...(grace
    ? // Entries go stale within a few reads, so grace (stale-while-revalidate), soft timeouts and fail-safe all serve.
      { ttl: '200ms', grace: '1h', softTimeout: '20ms', hardTimeout: '150ms', failSafeBackoff: '2s' }
    : { ttl: '1h' }),
  onError: () => recoveredErrors++,
})
const handles = namespaces.map((name) => cache.namespace(name))
const handleOf = (k) => handles[k % 2]

// The source of truth: a separate redis-server that no fault touches. The
// writer's versions and locks always go there directly; the factory may
// reach it through a proxy that a fault partitions (DB_FACTORY_URL).
const db = new Redis(env.DB_URL)
const factoryDb = env.DB_FACTORY_URL ? new Redis(env.DB_FACTORY_URL, { maxRetriesPerRequest: null }) : db
factoryDb.on('error', () => {})

const now = () => Number(process.hrtime.bigint()) / 1e6
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
/** Reads: key, start, end, version (-1 absent, -2 error), op (0 get, 1 getOrSet). */
const reads = []
/** Writes, one row per key an operation affected: key, version, start, end, ok (1 resolved, 0 rejected), kind (see KIND). */
const writes = []
const KIND = { set: 0, delete: 1, tags: 2, namespace: 3, clear: 4 }
let running = false
const loops = []

/*
 * Writer locks, in the database. Each key has one writer at a time, so the
 * order of its versions is the order its writes land in (a rejected write
 * keeps its lock until a later write on the same connection resolves, and
 * that one lands after it). Ownership rotates: a key's `turn` moves to the
 * next instance after every operation, so every instance writes every key,
 * the frozen and partitioned ones included. A key whose designated writer
 * has not taken it within `fallback` ms of being due may be taken by anyone.
 */
const ACQUIRE_ONE = `
local me, now, n, fallback, count, offset = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
for j = 0, count - 1 do
  local k = (offset + j) % count
  if redis.call('EXISTS', 'lock:' .. k) == 0 and redis.call('EXISTS', 'want:' .. k) == 0 then
    local due = tonumber(redis.call('HGET', 'state:' .. k, 'due') or '0')
    local turn = tonumber(redis.call('HGET', 'state:' .. k, 'turn') or tostring(k))
    if now >= due and (turn % n == me or now >= due + fallback) then
      redis.call('SET', 'lock:' .. k, me)
      return k
    end
  end
end
return -1`
const RELEASE_ONE = `
local k, nextDue = ARGV[1], ARGV[2]
local turn = tonumber(redis.call('HGET', 'state:' .. k, 'turn') or k)
redis.call('HSET', 'state:' .. k, 'due', nextDue, 'turn', turn + 1)
redis.call('DEL', 'lock:' .. k)
return 1`
// Multi-key operations: one at a time (the 'multi' lock, rotating like a
// key's), and each holds the lock of every key it affects. Keys it could not
// take yet are marked 'want', so single-key writers leave them to it.
const ACQUIRE_MULTI_TURN = `
local me, now, n, fallback = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
if redis.call('EXISTS', 'multi:lock') == 1 then return 0 end
local due = tonumber(redis.call('HGET', 'multi', 'due') or '0')
local turn = tonumber(redis.call('HGET', 'multi', 'turn') or '0')
if now >= due and (turn % n == me or now >= due + fallback) then
  redis.call('SET', 'multi:lock', me)
  return 1
end
return 0`
const ACQUIRE_KEYS = `
local me, held = ARGV[1], 0
for i = 2, #ARGV do
  local owner = redis.call('GET', 'lock:' .. ARGV[i])
  if owner == me then held = held + 1
  elseif not owner then redis.call('SET', 'lock:' .. ARGV[i], me); redis.call('DEL', 'want:' .. ARGV[i]); held = held + 1
  else redis.call('SET', 'want:' .. ARGV[i], me) end
end
return held`
const RELEASE_MULTI = `
local me, nextDue = ARGV[1], ARGV[2]
local turn = tonumber(redis.call('HGET', 'multi', 'turn') or '0')
for i = 3, #ARGV do
  if redis.call('GET', 'lock:' .. ARGV[i]) == me then redis.call('DEL', 'lock:' .. ARGV[i]) end
  if redis.call('GET', 'want:' .. ARGV[i]) == me then redis.call('DEL', 'want:' .. ARGV[i]) end
end
redis.call('HSET', 'multi', 'due', nextDue, 'turn', turn + 1)
redis.call('DEL', 'multi:lock')
return 1`

/**
 * Runs one write until it resolves: bumps the affected keys' versions in the
 * database (the application's write), then issues the cache operation. A
 * rejected attempt is logged and retried with new versions, still under the
 * locks, so no other writer's version can land before it.
 */
/** A write was rejected since the writer loop last looked: it backs off before taking another lock. */
let rejectedSince = false

async function write(kind, keys, operation) {
  for (;;) {
    const versions = await Promise.all(keys.map((k) => db.incr(`version:${k}`)))
    const start = now()
    let ok = 1
    try {
      await operation(versions)
    } catch {
      ok = 0
    }
    const end = now()
    keys.forEach((k, i) => writes.push(k, versions[i], start, end, ok, kind))
    // Once the run is over nobody else writes: a write that cannot resolve then must not hold up the stop.
    if (ok === 1 || !running) return
    rejectedSince = true
    await sleep(writeIntervalMs)
  }
}

async function writeOne(k) {
  const handle = handleOf(k)
  const key = `k${k}`
  if (Math.random() < (isSlow(k) ? 0.5 : 0.75)) {
    await write(KIND.set, [k], ([version]) => handle.set(key, version, { tags: [tagOf(k)] }))
    return
  }
  await write(KIND.delete, [k], () => handle.delete(key))
  // A slow key is deleted in a burst (a row updated several times in a row):
  // each delete may come while a fill caused by the previous one is running,
  // up to a slow link's round trips later. A fill whose instance has not
  // heard of the newer delete yet when it stores is kept out of L2 only by
  // its lease, which that delete revoked.
  if (isSlow(k)) {
    for (let more = 1 + Math.floor(Math.random() * 3); more > 0; more--) {
      await sleep(Math.random() * deleteBurstGapMs)
      await write(KIND.delete, [k], () => handle.delete(key))
    }
  }
}

async function writeMulti() {
  const choice = Math.random()
  if (choice < 0.45) {
    const tag = tags[Math.floor(Math.random() * tags.length)]
    const keys = keysWhere((k) => tagOf(k) === tag)
    await withKeys(keys, () => write(KIND.tags, keys, () => cache.invalidateTags([tag])))
  } else if (choice < 0.8) {
    const which = Math.floor(Math.random() * handles.length)
    const keys = keysWhere((k) => k % 2 === which)
    await withKeys(keys, () => write(KIND.namespace, keys, () => handles[which].invalidate()))
  } else {
    const keys = keysWhere(() => true)
    await withKeys(keys, () => write(KIND.clear, keys, () => cache.clear()))
  }
}

async function withKeys(keys, body) {
  try {
    let held = await db.eval(ACQUIRE_KEYS, 0, index, ...keys)
    while (held < keys.length && running) {
      await sleep(2)
      held = await db.eval(ACQUIRE_KEYS, 0, index, ...keys)
    }
    if (held === keys.length) await body()
  } finally {
    await db.eval(RELEASE_MULTI, 0, index, now() + multiIntervalMs, ...keys)
  }
}

async function writerLoop() {
  while (running) {
    // A writer whose writes are failing (its link is cut, slow, or its circuit
    // open) holds each lock until a retry resolves; it then lets the others
    // write a while before it takes another, as a well-behaved client would.
    if (rejectedSince) {
      rejectedSince = false
      await sleep(rejectedBackoffMs)
      continue
    }
    if ((await db.eval(ACQUIRE_MULTI_TURN, 0, index, now(), instances, fallbackMs)) === 1) {
      await writeMulti()
      continue
    }
    const k = await db.eval(ACQUIRE_ONE, 0, index, now(), instances, fallbackMs, keyCount, Math.floor(Math.random() * keyCount))
    if (k < 0) {
      await sleep(2)
      continue
    }
    try {
      await writeOne(k)
    } finally {
      await db.eval(RELEASE_ONE, 0, k, now() + (isSlow(k) ? slowWriteMs : 0))
    }
    await sleep(writeIntervalMs)
  }
}

/** `only`: the one key this reader reads (a reader per key), or undefined: any key, at random. */
async function readerLoop(seed, only) {
  let i = seed
  while (running) {
    const k = only ?? Math.floor(Math.random() * keyCount)
    const op = getOnly ? 0 : i++ % 2
    const handle = handleOf(k)
    const start = now()
    let version
    try {
      const value =
        op === 0
          ? await handle.get(`k${k}`)
          : await handle.getOrSet(
              `k${k}`,
              async () => {
                const v = Number((await factoryDb.get(`version:${k}`)) ?? 0)
                if (factoryDelayMs > 0) await sleep(factoryDelayMs)
                return v
              },
              { tags: [tagOf(k)] },
            )
      version = typeof value === 'number' ? value : -1
    } catch {
      version = -2
    }
    reads.push(k, start, now(), version, op)
    await sleep(0)
  }
}

/**
 * The bus with one mechanism cut out, for the suite's proof that the checker
 * sees it missing: the cache gets a membership whose trust never lapses
 * (liveness), a member whose gaps are ignored (gap handling), or a member
 * that never hears other instances (the bus).
 */
function crippledBus(inner, off) {
  return {
    join(member) {
      const membership = inner.join({
        instanceId: member.instanceId,
        cacheName: member.cacheName,
        onInvalidation: off === 'bus' ? () => {} : (invalidation) => member.onInvalidation(invalidation),
        onGap: off === 'gap' ? () => {} : () => member.onGap(),
      })
      if (off !== 'liveness') return membership
      return {
        publish: (invalidations) => membership.publish(invalidations),
        leave: () => membership.leave(),
        trust: { verifiedAt: Number.POSITIVE_INFINITY },
        maxStalenessMs: membership.maxStalenessMs,
        route: membership.route,
        deployment: membership.deployment,
      }
    },
    status: () => inner.status(),
    ready: () => inner.ready(),
    close: () => inner.close(),
  }
}

/** The Redis tier without fill leases: a fill after a miss then lands whenever L2 holds no fresh entry. */
function leaselessTier(inner) {
  return new Proxy(inner, {
    get(target, property) {
      const value = Reflect.get(target, property, target)
      if (property !== 'bind') return typeof value === 'function' ? value.bind(target) : value
      return (scope) =>
        new Proxy(target.bind(scope), {
          get(bound, name) {
            if (name === 'readForFill' || name === 'releaseLease') return undefined
            const member = Reflect.get(bound, name, bound)
            return typeof member === 'function' ? member.bind(bound) : member
          },
        })
    },
  })
}

function drain() {
  const drained = { reads: Float64Array.from(reads), writes: Float64Array.from(writes) }
  reads.length = 0
  writes.length = 0
  return drained
}

const operations = {
  start: () => {
    running = true
    loops.push(writerLoop())
    if (readerPerKey) for (let k = 0; k < keyCount; k++) loops.push(readerLoop(k, k))
    else for (let r = 0; r < readers; r++) loops.push(readerLoop(r))
  },
  // The rows logged since the last drain (the checker judges runs as they go).
  drain: () => drain(),
  stop: async () => {
    running = false
    await Promise.all(loops)
    const stats = cache.stats()
    return {
      ...drain(),
      bus: realBus.status(),
      recoveredErrors,
      stats: {
        l1Hits: stats.l1Hits,
        l2Hits: stats.l2Hits,
        factoryCalls: stats.factoryCalls,
        factoryErrors: stats.factoryErrors,
        staleServed: stats.staleServed,
        failSafe: stats.failSafe,
        leaseWaits: stats.leaseWaits,
        // Outage reuse (onBusDown 'reuse', the default, not overridden here): lookups answered while L1 was untrusted.
        outageReuses: stats.outageReuses,
        l2CallsSkipped: stats.l2CallsSkipped,
      },
    }
  },
  close: async () => {
    await cache.close()
    await realBus.close()
    if (typeof redis !== 'string') redis.disconnect()
    db.disconnect()
    if (factoryDb !== db) factoryDb.disconnect()
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
await realBus.ready()
process.send({ ready: true })
