// Measurements whose subjects share the machine's load: on 2 shared cores
// the load moves by 2x within seconds, so a subject measured for 2 s, then
// the next one for 2 s, compares two moments of the machine, not two
// subjects. Here every subject runs in short slices, in rotating order, all
// through the measurement; ratios are taken between slices that ran next to
// each other.
import { quantile } from './stats.mjs'

const sorted = (values) => Float64Array.from(values).sort()

/**
 * One caller, each call awaited and timed on its own (ns). `subjects`:
 * [{ name, fn(i) }]. The run is `segments` segments; in each, the subjects
 * take turns doing `block` calls (the first of each turn rotating), until
 * every subject has made `calls / segments` calls. Returns, per subject name:
 * { p50, p99 } over all its calls, `segmentP50s` (one per segment), so
 * that a ratio can be taken per segment: both sides of each ratio ran
 * interleaved within the same few hundred milliseconds; and `cpuUsPerCall`,
 * this process's CPU time per call (process.cpuUsage around each turn).
 */
export async function latencyInterleaved(subjects, { calls, block = 32, segments = 5, warmup = 2_000, keys }) {
  for (let j = 0; j < warmup; j++) for (const s of subjects) await s.fn(j % keys)
  const perSegment = Math.ceil(calls / segments / block) * block
  const all = new Map(subjects.map((s) => [s.name, new Float64Array(perSegment * segments)]))
  const segmentP50s = new Map(subjects.map((s) => [s.name, []]))
  const cpuUs = new Map(subjects.map((s) => [s.name, 0]))
  let turn = 0
  for (let segment = 0; segment < segments; segment++) {
    const start = segment * perSegment
    for (let done = 0; done < perSegment; done += block, turn++) {
      for (let k = 0; k < subjects.length; k++) {
        const { name, fn } = subjects[(k + turn) % subjects.length]
        const samples = all.get(name)
        const cpu0 = process.cpuUsage()
        for (let j = start + done; j < start + done + block; j++) {
          const t = process.hrtime.bigint()
          await fn(j % keys)
          samples[j] = Number(process.hrtime.bigint() - t)
        }
        const cpu = process.cpuUsage(cpu0)
        cpuUs.set(name, cpuUs.get(name) + cpu.user + cpu.system)
      }
    }
    for (const s of subjects) segmentP50s.get(s.name).push(quantile(sorted(all.get(s.name).subarray(start, start + perSegment)), 0.5))
  }
  return new Map(
    subjects.map((s) => {
      const everything = sorted(all.get(s.name))
      const calls = everything.length
      return [
        s.name,
        {
          p50: quantile(everything, 0.5),
          p99: quantile(everything, 0.99),
          segmentP50s: segmentP50s.get(s.name),
          calls,
          cpuUsPerCall: cpuUs.get(s.name) / calls,
        },
      ]
    }),
  )
}

/**
 * Calls too short to time one by one (an L1 hit: ~10 ns to ~10 µs): each
 * subject in turn times a batch of calls (`sync` ones called, the others
 * awaited), the batch sized in the warm-up to last about `batchMs`; `turns`
 * turns in rotating order. Returns, per subject name, the ns per call of
 * each turn (`perTurn`, so that a ratio can be taken per turn, between
 * batches run within a millisecond of each other) and their median (`ns`).
 */
export async function batchesInterleaved(subjects, { turns, batchMs = 0.5, warmupMs = 200 }) {
  const time = async ({ fn, sync }, calls) => {
    const t = process.hrtime.bigint()
    if (sync) for (let j = 0; j < calls; j++) fn()
    else for (let j = 0; j < calls; j++) await fn()
    return Number(process.hrtime.bigint() - t)
  }
  const batch = new Map()
  for (const s of subjects) {
    let calls = 16
    let spent = 0
    const deadline = performance.now() + warmupMs
    while (performance.now() < deadline) {
      spent = await time(s, calls)
      await new Promise((resolve) => setImmediate(resolve))
      if (spent < batchMs * 5e5) calls *= 2
    }
    batch.set(s.name, Math.max(1, Math.round((calls * batchMs * 1e6) / Math.max(spent, 1))))
  }
  const perTurn = new Map(subjects.map((s) => [s.name, new Float64Array(turns)]))
  for (let turn = 0; turn < turns; turn++) {
    for (let k = 0; k < subjects.length; k++) {
      const s = subjects[(k + turn) % subjects.length]
      const calls = batch.get(s.name)
      perTurn.get(s.name)[turn] = (await time(s, calls)) / calls
      // Untimed: let I/O run between batches, as a service does between
      // requests. Awaited calls alone never leave the microtask queue, so the
      // bus could not read its liveness replies: after maxStaleness tiercache's
      // L1 would stop being trusted and the batches would time the
      // outage-reuse path instead of the L1 hit (bench/l1-age.mjs --no-yield).
      await new Promise((resolve) => setImmediate(resolve))
    }
  }
  return new Map(subjects.map((s) => [s.name, { perTurn: [...perTurn.get(s.name)], ns: quantile(sorted(perTurn.get(s.name)), 0.5), batch: batch.get(s.name) }]))
}

/** ops/s of `callers` concurrent loops (each awaiting its call, then the next) for `ms` ms, and the ops done. */
export async function closedLoops(fn, { callers, ms, keys }) {
  let ops = 0
  let running = true
  const loop = async (_, caller) => {
    for (let i = caller; running; i += callers) {
      await fn(i % keys)
      ops++
    }
  }
  const started = performance.now()
  const loops = Array.from({ length: callers }, loop)
  setTimeout(() => (running = false), ms)
  await Promise.all(loops)
  return { ops, opsPerSec: ops / ((performance.now() - started) / 1000) }
}

/**
 * `callers` closed loops per subject, `rounds` rounds of one `windowMs`
 * window per subject in rotating order (after one unrecorded warm-up window
 * each). Per subject and round: ops/s, this process's CPU µs per op
 * (process.cpuUsage) and, if `serverCpuSeconds` is given (an async function
 * returning the server's used CPU in seconds), the server's CPU µs per op.
 * CPU per op does not depend on the share of the cores the process got,
 * so it stays put when the machine's load moves.
 */
export async function throughputRounds(subjects, { rounds, windowMs, callers, keys, serverCpuSeconds }) {
  for (const s of subjects) await closedLoops(s.fn, { callers, ms: Math.min(windowMs, 300), keys })
  const out = new Map(subjects.map((s) => [s.name, { opsPerSec: [], cpuUsPerOp: [], serverCpuUsPerOp: [] }]))
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < subjects.length; k++) {
      const { name, fn } = subjects[(k + round) % subjects.length]
      const server0 = serverCpuSeconds ? await serverCpuSeconds() : 0
      const cpu0 = process.cpuUsage()
      const { ops, opsPerSec } = await closedLoops(fn, { callers, ms: windowMs, keys })
      const cpu = process.cpuUsage(cpu0)
      const server1 = serverCpuSeconds ? await serverCpuSeconds() : 0
      const record = out.get(name)
      record.opsPerSec.push(opsPerSec)
      record.cpuUsPerOp.push((cpu.user + cpu.system) / ops)
      if (serverCpuSeconds) record.serverCpuUsPerOp.push(((server1 - server0) * 1e6) / ops)
    }
  }
  return out
}

/** Per-round ratios a[i] / b[i] (both measured in round i). */
export const pairedRatios = (a, b) => a.map((x, i) => x / b[i])
