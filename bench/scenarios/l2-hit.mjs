// Scenario 2 — L2 hit: every read goes to Redis (each contestant with its
// memory tier switched off), next to raw ioredis GET + msgpackr decode.
// Reads cycle over KEYS keys so that concurrent callers ask for different keys:
// a cache that coalesces concurrent reads of one key would otherwise measure
// its coalescing, not its L2 path.
//
// The two figures are ratios to a baseline measured in the same process,
// interleaved with the subject (bench/lib/interleave.mjs), because on 2
// shared cores the machine's load moves by 2x within seconds:
// - one caller: each call awaited and timed on its own; the subjects take
//   turns of 32 calls all through the run; p50 of every call, and the ratio
//   to GET + decode per segment (5 segments), so its spread is shown;
// - 64 callers: 64 closed loops on one client, 500 ms windows in rotating
//   order; ops/s, and the ratio to auto-pipelined ioredis 6 per round (the two
//   windows ran next to each other), plus CPU µs per op of this process and of
//   redis-server, which do not depend on the share of the cores a window got.
// The baselines are what their users run: a default ioredis client
// (`new Redis(url)`), and the same with `enableAutoPipelining: true`, in
// ioredis 6 (this package's) and ioredis 5 (the one @tiercache/bench-contestants
// installs for BentoCache), each `getBuffer` + `Packr({ moreTypes: true }).unpack`,
// the serializer tiercache's Redis tier uses.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { Redis } from 'ioredis'
import { Packr } from 'msgpackr'
import { CONTESTANTS, createContestant } from '../lib/contestants.mjs'
import { latencyInterleaved, pairedRatios, throughputRounds } from '../lib/interleave.mjs'
import { summarize } from '../lib/stats.mjs'
import { sampleValue } from '../lib/value.mjs'
import { asEntryPoint } from '../lib/standalone.mjs'

export const id = 'l2-hit'
export const title = 'Scenario 2 — L2 hit: getOrSet served from Redis (memory tier off)'

const CALLERS = 64
const KEYS = 1024
const us = (ns) => `${(ns / 1000).toFixed(1)} µs`
const kops = (n) => `${(n / 1000).toFixed(1)}k/s`
const x = (r) => `${r.toFixed(2)}x`
const range = (s, f) => `${f(s.min)} – ${f(s.max)}`

const contestantsPackage = new URL('../contestants/index.mjs', import.meta.url)
const ioredis5 = createRequire(contestantsPackage)('ioredis')
const ioredis5Version = JSON.parse(readFileSync(new URL('./node_modules/ioredis/package.json', contestantsPackage), 'utf8')).version
const ioredis6Version = JSON.parse(readFileSync(new URL('../node_modules/ioredis/package.json', import.meta.url), 'utf8')).version

export async function run({ redisUrl, smoke }) {
  const lone = smoke ? { calls: 320, segments: 2, warmup: 50 } : { calls: 16_000, segments: 5, warmup: 2_000 }
  const loops = smoke ? { rounds: 2, windowMs: 60 } : { rounds: 10, windowMs: 500 }
  const packr = new Packr({ moreTypes: true })
  const plain = new Redis(redisUrl)
  const pipelined = new Redis(redisUrl, { enableAutoPipelining: true })
  const pipelined5 = new ioredis5.Redis(redisUrl, { enableAutoPipelining: true })
  const probe = new Redis(redisUrl)
  const serverCpuSeconds = async () => {
    const info = await probe.info('cpu')
    return Number(/used_cpu_user:(\S+)/.exec(info)[1]) + Number(/used_cpu_sys:(\S+)/.exec(info)[1])
  }
  for (let i = 0; i < KEYS; i++) await plain.set(`raw:${i}`, packr.pack(sampleValue(i)))
  const failIfCalled = async () => {
    throw new Error('factory called on an L2 hit')
  }

  const latencyBaseline = `ioredis ${ioredis6Version} GET + msgpackr decode`
  const throughputBaseline = `ioredis ${ioredis6Version} GET + decode, auto-pipelined`
  const subjects = [
    { name: latencyBaseline, baseline: 'latency', fn: async (i) => packr.unpack(await plain.getBuffer(`raw:${i}`)) },
    { name: throughputBaseline, baseline: 'throughput', fn: async (i) => packr.unpack(await pipelined.getBuffer(`raw:${i}`)) },
    { name: `ioredis ${ioredis5Version} GET + decode, auto-pipelined`, fn: async (i) => packr.unpack(await pipelined5.getBuffer(`raw:${i}`)) },
  ]
  const contestants = []
  for (const name of CONTESTANTS) {
    const contestant = await createContestant(name, { redisUrl, layers: 'l2', prefix: `${id}-${name}` })
    for (let i = 0; i < KEYS; i++) await contestant.set(String(i), sampleValue(i))
    contestants.push(contestant)
    subjects.push({ name: `${contestant.name} ${contestant.version}`, contestant: name, fn: (i) => contestant.getOrSet(String(i), failIfCalled) })
  }

  const latency = await latencyInterleaved(subjects, { ...lone, keys: KEYS })
  const rate = await throughputRounds(subjects, { ...loops, callers: CALLERS, keys: KEYS, serverCpuSeconds })
  for (const c of contestants) await c.close()
  for (const client of [plain, pipelined, pipelined5, probe]) client.disconnect()

  const base = latency.get(latencyBaseline)
  const pipelinedRates = rate.get(throughputBaseline).opsPerSec
  const plainRate = summarize(rate.get(latencyBaseline).opsPerSec).median
  const pipelinedRate = summarize(pipelinedRates).median
  const pipelinedCpuUsPerOp = summarize(rate.get(throughputBaseline).cpuUsPerOp).median
  const results = { latencyBaselineNs: base.p50, latencyBaselineCpuUs: base.cpuUsPerCall, plainRate, pipelinedRate, pipelinedCpuUsPerOp }
  const rows = subjects.map((subject) => {
    const l = latency.get(subject.name)
    const ratios = summarize(pairedRatios(l.segmentP50s, base.segmentP50s))
    const r = rate.get(subject.name)
    const ops = summarize(r.opsPerSec)
    const vsPipelined = summarize(pairedRatios(r.opsPerSec, pipelinedRates))
    const cpu = summarize(r.cpuUsPerOp).median
    const serverCpu = summarize(r.serverCpuUsPerOp).median
    if (subject.contestant) {
      results[subject.contestant] = {
        ns: l.p50,
        latencyRatio: ratios.median,
        latencyRatioSpread: [ratios.min, ratios.max],
        addedNs: l.p50 - base.p50,
        cpuUsPerCall: l.cpuUsPerCall,
        opsPerSec: ops.median,
        vsPlain: ops.median / plainRate,
        vsPipelined: vsPipelined.median,
        vsPipelinedSpread: [vsPipelined.min, vsPipelined.max],
        cpuUsPerOp: cpu,
        serverCpuUsPerOp: serverCpu,
      }
    }
    const name = subject.baseline ? `**${subject.name}** (${subject.baseline} baseline)` : subject.name
    return [
      name,
      us(l.p50),
      us(l.p99),
      subject === subjects[0] ? '1.00x' : `${x(ratios.median)} (${range(ratios, x)}), ${l.p50 >= base.p50 ? '+' : '−'}${us(Math.abs(l.p50 - base.p50))}`,
      `${l.cpuUsPerCall.toFixed(1)} µs`,
      `${kops(ops.median)} (${range(ops, kops)})`,
      `${x(vsPipelined.median)} (${range(vsPipelined, x)})`,
      `${cpu.toFixed(1)} µs`,
      `${serverCpu.toFixed(1)} µs`,
    ]
  })
  return {
    columns: [
      'subject',
      '1 caller p50',
      '1 caller p99',
      'p50 vs GET+decode (spread), difference',
      'client CPU/call, 1 caller',
      `${CALLERS} callers (spread)`,
      'vs auto-pipelined (spread)',
      `client CPU/op, ${CALLERS} callers`,
      `redis-server CPU/op, ${CALLERS} callers`,
    ],
    rows,
    results,
    notes: [
      `One caller: ${lone.calls} awaited calls per subject, each timed on its own, the subjects taking turns of 32 calls all through the run (after ${lone.warmup} warm-up calls each); p50 and p99 over all calls. The ratio is the median over ${lone.segments} segments of the run of (p50 / GET + decode's p50 in the same segment), with the segments' min – max, and the difference of the two p50s. Client CPU/call: this process's CPU time over the subject's turns, per call.`,
      `${CALLERS} callers: ${CALLERS} async loops on one client, each awaiting its call then making the next; ${loops.rounds} rounds of one ${loops.windowMs} ms window per subject in rotating order. ops/s: median and min – max of the windows. "vs auto-pipelined": the median of the per-round ratios to auto-pipelined ioredis ${ioredis6Version} (windows next to each other). CPU/op: this process's CPU time (process.cpuUsage) and redis-server's (INFO cpu) per op, medians of the windows; unlike ops/s they do not depend on the share of the 2 cores a window got.`,
      'Contestants run Redis only (tiercache: redisTier with no memoryTier; BentoCache: an L2-only store; cacheable: a Redis Keyv as primary; cache-manager: one Redis store), so every getOrSet is an L2 hit.',
    ],
  }
}

await asEntryPoint(import.meta.url, { id, title, run })
