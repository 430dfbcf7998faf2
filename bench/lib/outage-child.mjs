// One process of the outage scenario (bench/scenarios/outage.mjs forks it):
//   node lib/outage-child.mjs worker '<json>'   role 'reader' or 'writer'
//
// A reader runs `loops` closed-loop readers: getOrSet of a Zipf-drawn key,
// whose factory (the "database") sleeps 2 ms and returns the version the
// database holds at that moment; then one setImmediate, as a request handler
// would yield to I/O. Every read is counted in the time bucket of its start:
// latency histogram, factory calls, errors, stale reads. The writer sets new
// versions on the hottest keys on the database's schedule and reports each
// write's completion, which the parent forwards to the readers (the stale-read
// check needs to know which writes had completed before a read began).
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { BINS, BUCKET_MS, binOf, createDatabase, makeValue, now } from './outage-model.mjs'
import { createOutageContestant } from './outage-contestants.mjs'
import { runWorker, sendToParent } from './worker.mjs'
import { zipf } from './value.mjs'

const immediate = () => new Promise((resolve) => setImmediate(resolve))
/** process.send, unless the parent has already let this process go (a late write or read may still resolve). */
const tell = (m) => process.connected && process.send(m)
const message = (error) => String(error?.message ?? error).split('\n')[0]

async function readerMain({ name, redisUrl, prefix, index, keys, loops }) {
  const me = `w${index}`
  await runWorker(
    () => createOutageContestant(name, { redisUrl, layers: 'l1+l2', prefix }),
    async (cache, inbox) => {
      let db = createDatabase({ writesFrom: Number.POSITIVE_INFINITY, periodMs: 1, writtenKeys: 0 }) // before 'go': every key at version 0
      let buckets = 0
      let startAt = Number.POSITIVE_INFINITY
      const bucketOf = (t) => (t < startAt ? -1 : Math.min(buckets - 1, Math.floor((t - startAt) / BUCKET_MS)))
      let factory = new Uint32Array(0)
      const factories = Array.from({ length: keys }, (_, key) => async () => {
        const b = bucketOf(now())
        if (b >= 0) factory[b]++
        await sleep(2)
        const t = now()
        return makeValue(key, db.versionAt(key, t), me, t)
      })

      // Every key in this process's memory tier (and in Redis) before the clock starts.
      let next = 0
      await Promise.all(
        Array.from({ length: loops }, async () => {
          while (next < keys) {
            const key = next++
            await cache.getOrSet(`k${key}`, factories[key])
          }
        }),
      )
      process.send({ type: 'ready' })
      const go = await inbox.next()
      const { plan } = go
      db = createDatabase(plan)
      buckets = plan.buckets
      startAt = plan.startAt
      factory = new Uint32Array(buckets)
      const reads = new Uint32Array(buckets)
      const errors = new Uint32Array(buckets)
      const stale = new Uint32Array(buckets)
      const behind = new Uint32Array(buckets)
      const maxUs = new Float64Array(buckets)
      const histogram = new Uint32Array(buckets * BINS)
      const completed = new Map() // key -> [version, completedAt, …] of the writes reported done
      const foreign = [] // end, producedAt of reads that returned another process's value produced after the planned kill
      let firstError
      let restartedAt
      let sharedAt
      let noticeLagMax = 0
      let running = true
      let unfinished = 0
      const inFlight = new Float64Array(loops)

      const sawShared = (end) => {
        if (sharedAt !== undefined && sharedAt <= end) return
        sharedAt = end
        tell({ type: 'shared', at: end })
      }
      const record = (key, start, end, value, error) => {
        const b = bucketOf(start)
        if (b < 0) return
        if (error !== undefined || typeof value?.version !== 'number') {
          errors[b]++
          firstError ??= error === undefined ? `resolved ${JSON.stringify(value)}` : message(error)
          return
        }
        const us = (end - start) * 1000
        reads[b]++
        histogram[b * BINS + binOf(us)]++
        if (us > maxUs[b]) maxUs[b] = us
        const version = value.version
        if (version < db.versionAt(key, start)) {
          // Older than the database: stale if a write of a newer version had completed more than the bound before the read began.
          const before = start - plan.boundMs
          if (version < db.versionAt(key, before)) behind[b]++
          const list = completed.get(key)
          let newest = -1
          if (list) for (let i = 0; i < list.length; i += 2) if (list[i + 1] < before && list[i] > newest) newest = list[i]
          if (newest > version) stale[b]++
        }
        if (value.by !== me && value.at >= plan.plannedKillAt) {
          if (restartedAt === undefined) {
            if (foreign.length < 200_000) foreign.push(end, value.at)
          } else if (value.at >= restartedAt) sawShared(end)
        }
      }

      const loop = async (slot) => {
        const nextKey = zipf(keys, plan.zipfS)
        while (running) {
          const key = nextKey()
          const start = now()
          inFlight[slot] = start
          let value
          let error
          try {
            value = await cache.getOrSet(`k${key}`, factories[key])
          } catch (caught) {
            error = caught ?? new Error('rejected with nothing')
          }
          inFlight[slot] = 0
          if (!running) return // stopped while this read was in flight: counted as unfinished
          record(key, start, now(), value, error)
          await immediate()
        }
      }

      // Completed buckets, every 500 ms, so that the parent can tell when the run has recovered.
      let sent = 0
      const tick = setInterval(() => {
        const upTo = Math.min(buckets, Math.max(0, Math.floor((now() - startAt) / BUCKET_MS)))
        if (upTo <= sent) return
        process.send({
          type: 'tick',
          from: sent,
          reads: [...reads.subarray(sent, upTo)],
          factory: [...factory.subarray(sent, upTo)],
          errors: [...errors.subarray(sent, upTo)],
        })
        sent = upTo
      }, 500)

      const wait = startAt - now()
      if (wait > 0) await sleep(wait)
      // Not awaited: a read blocked on a dead connection must not hold up the report (it counts as unfinished).
      for (let slot = 0; slot < loops; slot++) loop(slot)
      for (;;) {
        const m = await inbox.next()
        if (m.type === 'wrote') {
          let list = completed.get(m.key)
          if (!list) completed.set(m.key, (list = []))
          list.push(m.version, m.completedAt)
          noticeLagMax = Math.max(noticeLagMax, now() - m.completedAt)
        } else if (m.type === 'restarted') {
          restartedAt = m.at
          for (let i = 0; i < foreign.length; i += 2) if (foreign[i + 1] >= restartedAt) sawShared(foreign[i])
          foreign.length = 0
        } else if (m.type === 'stop') break
      }
      running = false
      clearInterval(tick)
      const stoppedAt = now()
      // Reads still waiting when the run ends count with the time they had waited so far.
      for (const start of inFlight) {
        if (start === 0) continue
        const b = bucketOf(start)
        if (b < 0) continue
        unfinished++
        const us = (stoppedAt - start) * 1000
        histogram[b * BINS + binOf(us)]++
        if (us > maxUs[b]) maxUs[b] = us
      }
      const stats = cache.cache?.stats?.()
      await sendToParent({ type: 'done', reads, factory, errors, stale, behind, maxUs, histogram, firstError, unfinished, sharedAt, noticeLagMax, stats })
      await inbox.next() // 'exit'; loops still blocked on a dead connection are not waited for
    },
  )
}

async function writerMain({ name, redisUrl, prefix }) {
  await runWorker(
    () => createOutageContestant(name, { redisUrl, layers: 'l1+l2', prefix }),
    async (cache, inbox) => {
      process.send({ type: 'ready' })
      const { plan } = await inbox.next()
      const db = createDatabase(plan)
      let stopped = false
      const stop = inbox.next().then(() => (stopped = true)) // 'stop'
      let pending = 0
      // Writes go out on the database's schedule whether or not the previous one
      // finished: independent requests, each awaiting its own write.
      for (let version = 1; !stopped; version++) {
        const at = db.committedAt(version)
        const wait = at - now()
        if (wait > 0) await Promise.race([sleep(wait), stop])
        if (stopped) break
        const key = db.keyOf(version)
        pending++
        Promise.resolve()
          .then(() => cache.set(`k${key}`, makeValue(key, version, 'writer', at)))
          .then(
            () => {
              pending--
              tell({ type: 'wrote', key, version, completedAt: now() })
            },
            (error) => {
              pending--
              tell({ type: 'write-failed', key, version, failedAt: now(), message: message(error) })
            },
          )
      }
      await sendToParent({ type: 'done', pending })
      await inbox.next() // 'exit'
    },
  )
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] === 'worker') {
  const options = JSON.parse(process.argv[3])
  await (options.role === 'writer' ? writerMain(options) : readerMain(options))
}
