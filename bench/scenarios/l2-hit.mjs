// Scenario 2 — L2 hit: every read goes to Redis (each contestant with its
// memory tier switched off), next to raw ioredis GET + msgpackr decode.
// One caller: per-op latency from mitata (each sample one awaited call).
// 64 callers: 64 async loops sharing one client for a fixed time; ops/s.
// Reads cycle over KEYS keys so that concurrent callers ask for different keys:
// a cache that coalesces concurrent reads of one key would otherwise measure
// its coalescing, not its L2 path.
import { Redis } from 'ioredis'
import { do_not_optimize, measure } from 'mitata'
import { Packr } from 'msgpackr'
import { CONTESTANTS, createContestant } from '../lib/contestants.mjs'
import { summarize } from '../lib/stats.mjs'
import { sampleValue } from '../lib/value.mjs'
import { asEntryPoint } from '../lib/standalone.mjs'

export const id = 'l2-hit'
export const title = 'Scenario 2 — L2 hit: getOrSet served from Redis (memory tier off)'

const CALLERS = 64
const KEYS = 1024
const us = (ns) => `${(ns / 1000).toFixed(1)} µs`
const kops = (n) => `${(n / 1000).toFixed(1)}k/s`

/** ops/s of `callers` concurrent loops calling fn for `ms` milliseconds. */
async function throughput(fn, callers, ms) {
  let ops = 0
  let running = true
  const loop = async (_, caller) => {
    for (let i = caller; running; i += callers) {
      do_not_optimize(await fn(i % KEYS))
      ops++
    }
  }
  const start = performance.now()
  const loops = Array.from({ length: callers }, loop)
  setTimeout(() => (running = false), ms)
  await Promise.all(loops)
  return ops / ((performance.now() - start) / 1000)
}

export async function run({ redisUrl, smoke }) {
  const rounds = smoke ? 1 : 5
  const latencyOptions = smoke ? { min_cpu_time: 5e6, max_samples: 20 } : { min_cpu_time: 300e6 }
  const throughputMs = smoke ? 100 : 2000
  const packr = new Packr({ moreTypes: true })
  const plain = new Redis(redisUrl)
  const pipelined = new Redis(redisUrl, { enableAutoPipelining: true })
  for (let i = 0; i < KEYS; i++) await plain.set(`raw:${i}`, packr.pack(sampleValue(i)))
  const failIfCalled = async () => {
    throw new Error('factory called on an L2 hit')
  }

  const subjects = [
    { name: 'ioredis GET + msgpackr decode', baseline: 'latency', fn: async (i) => packr.unpack(await plain.getBuffer(`raw:${i}`)) },
    { name: 'ioredis GET + decode, auto-pipelined', baseline: 'throughput', fn: async (i) => packr.unpack(await pipelined.getBuffer(`raw:${i}`)) },
  ]
  const contestants = []
  for (const name of CONTESTANTS) {
    const contestant = await createContestant(name, { redisUrl, layers: 'l2', prefix: `${id}-${name}` })
    for (let i = 0; i < KEYS; i++) await contestant.set(String(i), sampleValue(i))
    contestants.push(contestant)
    subjects.push({ name: `${contestant.name} ${contestant.version}`, contestant: name, fn: (i) => contestant.getOrSet(String(i), failIfCalled) })
  }

  const latency = new Map(subjects.map((s) => [s.name, []]))
  const latencyP99 = new Map(subjects.map((s) => [s.name, []]))
  const rate = new Map(subjects.map((s) => [s.name, []]))
  for (let round = 0; round < rounds; round++) {
    const order = subjects.map((_, i) => subjects[(i + round) % subjects.length])
    for (const subject of order) {
      let i = 0
      const stats = await measure(async () => do_not_optimize(await subject.fn(i++ % KEYS)), latencyOptions)
      latency.get(subject.name).push(stats.p50)
      latencyP99.get(subject.name).push(stats.p99)
      rate.get(subject.name).push(await throughput(subject.fn, CALLERS, throughputMs))
    }
  }
  for (const c of contestants) await c.close()
  plain.disconnect()
  pipelined.disconnect()

  const latencyBase = summarize(latency.get(subjects[0].name)).median
  const plainRate = summarize(rate.get(subjects[0].name)).median
  const pipelinedRate = summarize(rate.get(subjects[1].name)).median
  const results = { latencyBaselineNs: latencyBase, plainRate, pipelinedRate }
  const rows = subjects.map((subject) => {
    const l = summarize(latency.get(subject.name))
    const p99 = summarize(latencyP99.get(subject.name))
    const r = summarize(rate.get(subject.name))
    if (subject.contestant) {
      results[subject.contestant] = {
        ns: l.median,
        latencyRatio: l.median / latencyBase,
        opsPerSec: r.median,
        vsPlain: r.median / plainRate,
        vsPipelined: r.median / pipelinedRate,
      }
    }
    const name = subject.baseline ? `**${subject.name}** (${subject.baseline} baseline)` : subject.name
    return [
      name,
      us(l.median),
      `${us(l.min)} – ${us(l.max)}`,
      us(p99.median),
      `${(l.median / latencyBase).toFixed(2)}x`,
      kops(r.median),
      `${kops(r.min)} – ${kops(r.max)}`,
      `${(r.median / pipelinedRate).toFixed(2)}x`,
    ]
  })
  return {
    columns: ['subject', '1 caller p50', 'p50 spread', '1 caller p99', 'p50 vs GET+decode', `${CALLERS} callers`, 'ops/s spread', 'vs auto-pipelined'],
    rows,
    results,
    notes: [
      `Medians of ${rounds} rounds in rotating order; one caller from mitata samples, ${CALLERS} callers = ${CALLERS} async loops on one client for ${throughputMs} ms.`,
      'Contestants run Redis only (tiercache: redisTier with no memoryTier; BentoCache: an L2-only store; cacheable: a Redis Keyv as primary; cache-manager: one Redis store), so every getOrSet is an L2 hit.',
    ],
  }
}

await asEntryPoint(import.meta.url, { id, title, run })
