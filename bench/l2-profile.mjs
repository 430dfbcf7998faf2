// One L2 read path under a CPU profile, on its own redis-server (issue 23:
// where tiercache's time goes next to raw ioredis). The profiler runs only
// while the callers do (not during start-up and loading); the summary is self
// time per op, by category and by function (bench/lib/cpuprofile-summary.mjs):
//
//   node bench/l2-profile.mjs <subject> [callers] [ms] [--out file.cpuprofile] [--alloc]
//   node bench/l2-profile.mjs tiercache 64 6000
//   node bench/l2-profile.mjs both 1 6000
//
// --alloc: instead of the CPU profile, V8's sampling heap profiler with the
// objects later collected included (every allocation, sampled every 4 KiB):
// bytes allocated per op, by the function that allocated them.
//
// Subjects: tiercache (redisTier only, getOrSet), auto (ioredis 6 with
// enableAutoPipelining, getBuffer + msgpackr unpack), plain (the same without
// auto-pipelining), and `both`: plain and tiercache in one process, one
// caller, taking turns of 32 calls (the summary then splits each sample by the
// subject on its stack; ops are calls per subject). Callers: closed loops,
// each awaiting its call then making the next.
import { writeFileSync } from 'node:fs'
import { Session } from 'node:inspector/promises'
import { Redis } from 'ioredis'
import { Packr } from 'msgpackr'
import { createCache } from '@tiercache/core'
import { redisTier } from '@tiercache/redis-adapter'
import { summarizeAllocations, summarizeProfile } from './lib/cpuprofile-summary.mjs'
import { startRedis } from './lib/redis.mjs'
import { sampleValue } from './lib/value.mjs'

const args = process.argv.slice(2)
const out = args.includes('--out') ? args.splice(args.indexOf('--out'), 2)[1] : undefined
const alloc = args.includes('--alloc') ? args.splice(args.indexOf('--alloc'), 1).length > 0 : false
const [subject = 'tiercache', callersArg = '64', msArg = '6000'] = args
if (!['tiercache', 'auto', 'plain', 'both'].includes(subject)) throw new Error(`unknown subject ${subject}: tiercache, auto, plain or both`)
const callers = Number(callersArg)
/** How long run() lasts: 1 s of warm-up first (JIT), then the measured `ms`. */
const duration = { ms: Number(msArg) }
const KEYS = 1024
const packr = new Packr({ moreTypes: true })
const redis = await startRedis()
const closers = []

async function plainGetDecode(client, i) {
  return packr.unpack(await client.getBuffer(`raw:${i}`))
}

async function rawClient(autoPipelining) {
  const client = new Redis(redis.url, { enableAutoPipelining: autoPipelining })
  for (let i = 0; i < KEYS; i++) await client.set(`raw:${i}`, packr.pack(sampleValue(i)))
  closers.push(async () => client.disconnect())
  return (i) => plainGetDecode(client, i)
}

async function tiercacheHit() {
  const cache = createCache({ name: 'profile', tiers: [redisTier({ redis: redis.url, prefix: 'profile' })], ttl: '1h', invalidation: { notes: 'benchmark' } })
  for (let i = 0; i < KEYS; i++) await cache.set(String(i), sampleValue(i))
  const failIfCalled = async () => {
    throw new Error('factory called on an L2 hit')
  }
  closers.push(() => cache.close())
  return function tiercacheGetOrSet(i) {
    return cache.getOrSet(String(i), failIfCalled)
  }
}

async function closedLoops(fn) {
  let ops = 0
  let running = true
  setTimeout(() => (running = false), duration.ms)
  await Promise.all(
    Array.from({ length: callers }, async (_, caller) => {
      for (let i = caller; running; i += callers) {
        await fn(i % KEYS)
        ops++
      }
    }),
  )
  return ops
}

try {
  let run
  if (subject === 'both') {
    const subjects = [await rawClient(false), await tiercacheHit()]
    run = async () => {
      const deadline = performance.now() + duration.ms
      let calls = 0
      for (let turn = 0; performance.now() < deadline; turn++) {
        for (let k = 0; k < 2; k++) for (let j = 0; j < 32; j++) await subjects[(k + turn) % 2]((turn * 32 + j) % KEYS)
        calls += 32
      }
      return calls
    }
  } else {
    const fn = subject === 'tiercache' ? await tiercacheHit() : await rawClient(subject === 'auto')
    run = () => closedLoops(fn)
  }
  const measuredMs = duration.ms
  duration.ms = Math.min(1000, measuredMs) // warm-up (JIT), not profiled
  await run()
  duration.ms = measuredMs
  const session = new Session()
  session.connect()
  if (alloc) {
    await session.post('HeapProfiler.startSampling', { samplingInterval: 4096, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true })
  } else {
    await session.post('Profiler.enable')
    await session.post('Profiler.start')
  }
  const cpu0 = process.cpuUsage()
  const started = performance.now()
  const ops = await run()
  const cpu = process.cpuUsage(cpu0)
  const seconds = (performance.now() - started) / 1000
  const { profile } = await session.post(alloc ? 'HeapProfiler.stopSampling' : 'Profiler.stop')
  session.disconnect()
  if (out !== undefined) writeFileSync(out, JSON.stringify(profile))
  console.log(
    JSON.stringify({
      subject,
      callers: subject === 'both' ? 1 : callers,
      ops,
      opsPerSec: Math.round(ops / seconds),
      cpuUsPerOp: +((cpu.user + cpu.system) / ops).toFixed(2),
    }),
  )
  console.log((alloc ? summarizeAllocations(profile, ops) : summarizeProfile(profile, ops, { bySubject: subject === 'both' })).join('\n'))
} finally {
  for (const close of closers) await close()
  await redis.stop()
}
