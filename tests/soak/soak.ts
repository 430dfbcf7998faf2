/**
 * The soak: the coherence checker's workload (tests/checker) run for minutes
 * instead of seconds, to find what only time finds — memory that grows,
 * errors that escape, a bus that stops recovering after the n-th restart.
 *
 * N instance processes (tests/soak/instance.mjs) read zipfian keys, write
 * versions of their own keys under tags and invalidate those tags, while the
 * cache's redis-server is killed and restarted every `restartEveryMs`. The
 * parent drains each process's operations every second and judges them as it
 * goes (the checker's instances keep every operation to the end, which would
 * grow the very heap measured here), and at ~10 points asks each process for
 * its memory after a full GC.
 */
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'
import { InstanceProcess } from '../support/instance.js'
import { RedisServer } from '../support/redis-server.js'

export interface SoakOptions {
  durationMs: number
  /** A kill + restart of the cache's redis-server every this often (none in the last 3 s: recovery must show). */
  restartEveryMs: number
  instances?: number
  keys?: number
  maxStalenessMs?: number
  /** Memory points across the run (the first at 1/points of it, after the warm-up; the last at the end). */
  points?: number
  log?: (line: string) => void
}

export interface MemoryPoint {
  /** Fraction of the run. */
  at: number
  seconds: number
  /** Per process, after a full GC, in bytes. */
  heapUsed: number[]
  rss: number[]
}

export interface ProcessReport {
  instance: number
  reads: number
  /** Reads that returned a value (judged against the contract). */
  hits: number
  misses: number
  failedReads: number
  writes: number
  failedWrites: number
  invalidations: { ok: number; failed: number }
  /** Errors the cache recovered from (createCache's onError), and how many of each code. */
  recoveredErrors: number
  errorCodes: Record<string, number>
  gapsSeen: number
  unhandled: { rejections: number; exceptions: number; warnings: number; messages: string[] }
  /** Log records lost because the parent did not drain in time (should be 0). */
  dropped: number
  /** Hits and resolved writes after the last restart was back up: the process survived every restart. */
  afterLastRestart: { hits: number; writes: number }
  /** Largest raw (no forced GC) sample of the run, in bytes. */
  peak: { heapUsed: number; rss: number }
  exitedOnClose: boolean
}

export interface Violation {
  instance: number
  key: number
  start: number
  version: number
  shouldBeAtLeast: number
}

export interface SoakReport {
  durationMs: number
  restarts: number
  reads: number
  writes: number
  violations: number
  /** The first violations (at most 20). */
  violationSamples: Violation[]
  /** Largest time a read was behind: its start minus the resolve time of the first write newer than what it returned. */
  maxStalenessMs: number
  processes: ProcessReport[]
  memory: MemoryPoint[]
  /** Per process: heapUsed and rss (after GC) from the point nearest 20 % of the run to the end. */
  growth: Array<{ heapMB: number; heapPct: number; rssMB: number; rssPct: number }>
  options: Required<Omit<SoakOptions, 'log'>>
}

interface Drain {
  time: number
  reads: Float64Array
  writes: Float64Array
  dropped: number
  memory: { rss: number; heapUsed: number; gc: boolean }
}
interface Stopped {
  last: Drain
  bus: { gapsSeen: number }
  recoveredErrors: number
  errorCodes: Record<string, number>
  invalidations: { ok: number; failed: number }
  unhandled: ProcessReport['unhandled']
}

const INSTANCE_FIXTURE = fileURLToPath(new URL('./instance.mjs', import.meta.url))
const now = () => Number(process.hrtime.bigint()) / 1e6
const RESTART_DOWN_MS = 300 // as the checker's 'redis-restart'
const DRAIN_EVERY_MS = 1_000

/** Rejects if `promise` does not settle in time: a wedged child fails the soak instead of hanging it. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms)))
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

/**
 * The checker's rule (tests/checker/checker.ts, `analyse`), applied
 * incrementally: a read is a violation if it returned a version older than
 * one whose write had resolved more than maxStaleness before the read began.
 * Each key has one writer, writing one version at a time, so its resolved
 * writes arrive in order and both versions and resolve times increase.
 */
export class Judge {
  readonly #writes = new Map<number, { versions: number[]; ends: number[] }>()
  readonly violations: Violation[] = []
  violationCount = 0
  maxStalenessMs = 0
  readonly #bound: number

  constructor(maxStalenessMs: number) {
    this.#bound = maxStalenessMs
  }

  addWrite(key: number, version: number, end: number): void {
    let list = this.#writes.get(key)
    if (list === undefined) this.#writes.set(key, (list = { versions: [], ends: [] }))
    if (list.ends.length > 0 && end < list.ends.at(-1)!) throw new Error(`writes of key ${key} out of order`)
    list.versions.push(version)
    list.ends.push(end)
  }

  /** Judges one read that returned `version` (>= 0). Only call once every write resolved before `start` is added. */
  judge(instance: number, key: number, start: number, version: number): void {
    const list = this.#writes.get(key)
    if (list === undefined) return
    const bound = lastAtOrBefore(list.ends, start - this.#bound)
    if (bound >= 0 && version < list.versions[bound]!) {
      this.violationCount++
      if (this.violations.length < 20) this.violations.push({ instance, key, start, version, shouldBeAtLeast: list.versions[bound]! })
    }
    const latest = lastAtOrBefore(list.ends, start)
    if (latest >= 0 && list.versions[latest]! > version) {
      const firstNewer = lastAtOrBefore(list.versions, version) + 1
      this.maxStalenessMs = Math.max(this.maxStalenessMs, start - list.ends[firstNewer]!)
    }
  }
}

/** Index of the last element of the ascending `list` that is <= `value`, or -1. */
function lastAtOrBefore(list: number[], value: number): number {
  let lo = 0
  let hi = list.length - 1
  let found = -1
  while (lo <= hi) {
    const mid = (lo + hi) >> 1
    if (list[mid]! <= value) {
      found = mid
      lo = mid + 1
    } else hi = mid - 1
  }
  return found
}

export async function runSoak(options: SoakOptions): Promise<SoakReport> {
  const config = {
    durationMs: options.durationMs,
    restartEveryMs: options.restartEveryMs,
    instances: options.instances ?? 4,
    keys: options.keys ?? 1_000,
    maxStalenessMs: options.maxStalenessMs ?? 1_000,
    points: options.points ?? 10,
  }
  const log = options.log ?? (() => {})
  const judge = new Judge(config.maxStalenessMs)
  const redis = await RedisServer.start()
  let database: RedisServer | undefined
  const processes: InstanceProcess[] = []
  const stopping = new AbortController() // cuts the restart loop's wait short on failure
  let restartLoop: Promise<void> = Promise.resolve()
  try {
    database = await RedisServer.start()
    for (let i = 0; i < config.instances; i++) {
      processes.push(
        await InstanceProcess.start(
          {
            REDIS_URL: redis.url,
            DB_URL: database.url,
            INDEX: String(i),
            INSTANCES: String(config.instances),
            KEYS: String(config.keys),
            MAX_STALENESS: String(config.maxStalenessMs),
          },
          INSTANCE_FIXTURE,
          ['--expose-gc'],
        ),
      )
    }
    log(
      `soak: ${config.instances} processes, ${config.keys} zipfian keys, ${config.durationMs / 1000} s, a Redis restart every ${config.restartEveryMs / 1000} s`,
    )

    const seconds = Math.ceil(config.durationMs / 1000) + 60
    const stats = processes.map((_, instance) => ({
      instance,
      reads: 0,
      hits: 0,
      misses: 0,
      failedReads: 0,
      writes: 0,
      failedWrites: 0,
      dropped: 0,
      peak: { heapUsed: 0, rss: 0 },
      // Per second of the run: hits and resolved writes (to tell what happened after the last restart).
      hitsAt: new Uint32Array(seconds),
      writesAt: new Uint32Array(seconds),
    }))
    /** Reads drained in the previous round: judged one round late, once every write that could bound them is in. */
    let pending: Float64Array[] = processes.map(() => new Float64Array(0))
    const memory: MemoryPoint[] = []
    const restarts: Array<{ killedAt: number; upAt: number }> = []

    const startedAt = now()
    const second = (time: number) => Math.max(0, Math.min(seconds - 1, Math.floor((time - startedAt) / 1000)))
    const judgeReads = (instance: number, reads: Float64Array) => {
      const s = stats[instance]!
      for (let i = 0; i < reads.length; i += 4) {
        const key = reads[i]!
        const start = reads[i + 1]!
        const version = reads[i + 2]!
        s.reads++
        if (version === -2) s.failedReads++
        else if (version === -1) s.misses++
        else {
          s.hits++
          s.hitsAt[second(start)]!++
          judge.judge(instance, key, start, version)
        }
      }
    }
    const collect = (round: Drain[], at?: number) => {
      round.forEach((drain, instance) => {
        const s = stats[instance]!
        for (let i = 0; i < drain.writes.length; i += 4) {
          if (drain.writes[i + 3] === 1) {
            s.writes++
            s.writesAt[second(drain.writes[i + 2]!)]!++
            judge.addWrite(drain.writes[i]!, drain.writes[i + 1]!, drain.writes[i + 2]!)
          } else s.failedWrites++
        }
        s.dropped = drain.dropped
        s.peak.heapUsed = Math.max(s.peak.heapUsed, drain.memory.heapUsed)
        s.peak.rss = Math.max(s.peak.rss, drain.memory.rss)
      })
      // The previous round's reads all began before its drains, so before this round was asked for;
      // this round holds every write resolved before then. A write still missing resolved after those
      // reads began, so it can neither bound them nor be newer than what they saw.
      pending.forEach((reads, instance) => judgeReads(instance, reads))
      pending = round.map((drain) => drain.reads)
      if (at !== undefined) {
        memory.push({
          at,
          seconds: (Math.min(...round.map((d) => d.time)) - startedAt) / 1000,
          heapUsed: round.map((d) => d.memory.heapUsed),
          rss: round.map((d) => d.memory.rss),
        })
      }
    }
    await Promise.all(processes.map((p) => p.call('start')))
    let restartError: unknown
    restartLoop = (async () => {
      try {
        for (let k = 1; k * config.restartEveryMs <= config.durationMs - 3_000; k++) {
          const wait = startedAt + k * config.restartEveryMs - now()
          if (wait > 0) await sleep(wait, undefined, { signal: stopping.signal })
          const killedAt = now()
          await redis.kill()
          await sleep(RESTART_DOWN_MS)
          await redis.restart()
          restarts.push({ killedAt, upAt: now() })
          log(`  redis restart ${restarts.length} at ${((killedAt - startedAt) / 1000).toFixed(1)} s`)
        }
      } catch (error) {
        if (!stopping.signal.aborted) restartError = error
      }
    })()

    // Drain every second; at each memory point, with a full GC first. The last point ends the run.
    const drainAll = (gc: boolean) => Promise.all(processes.map((p) => within(p.call<Drain>('drain', { gc }), 30_000, 'drain')))
    for (let point = 1; point <= config.points; ) {
      if (restartError !== undefined) throw restartError
      const roundStart = now()
      const at = point / config.points
      const gc = roundStart - startedAt >= at * config.durationMs
      collect(await drainAll(gc), gc ? at : undefined)
      if (gc) {
        const last = memory.at(-1)!
        log(`  ${(at * 100).toFixed(0)} %: heapUsed ${last.heapUsed.map(mb).join(' / ')} MB, rss ${last.rss.map(mb).join(' / ')} MB`)
        point++
      }
      await sleep(Math.max(0, roundStart + DRAIN_EVERY_MS - now()))
    }
    await restartLoop
    if (restartError !== undefined) throw restartError
    const durationMs = now() - startedAt

    const stopped = await Promise.all(processes.map((p) => within(p.call<Stopped>('stop'), 30_000, 'stop')))
    collect(stopped.map((s) => s.last))
    pending.forEach((reads, instance) => judgeReads(instance, reads)) // every write is in now
    // Each process must exit on its own after close: one that cannot has a handle left open.
    const exited = await Promise.all(
      processes.map((p) =>
        within(p.close(), 10_000, 'close').then(
          () => true,
          () => false,
        ),
      ),
    )

    const lastUp = restarts.at(-1)?.upAt ?? startedAt
    const afterSecond = Math.ceil((lastUp - startedAt) / 1000)
    const sumFrom = (counts: Uint32Array) => counts.subarray(afterSecond).reduce((a, b) => a + b, 0)
    const reports: ProcessReport[] = stats.map((s, i) => ({
      instance: s.instance,
      reads: s.reads,
      hits: s.hits,
      misses: s.misses,
      failedReads: s.failedReads,
      writes: s.writes,
      failedWrites: s.failedWrites,
      invalidations: stopped[i]!.invalidations,
      recoveredErrors: stopped[i]!.recoveredErrors,
      errorCodes: stopped[i]!.errorCodes,
      gapsSeen: stopped[i]!.bus.gapsSeen,
      unhandled: stopped[i]!.unhandled,
      dropped: s.dropped,
      afterLastRestart: { hits: sumFrom(s.hitsAt), writes: sumFrom(s.writesAt) },
      peak: s.peak,
      exitedOnClose: exited[i]!,
    }))
    // Flatness from the point nearest 20 % (after the warm-up) to the end.
    const from = memory.reduce((best, p) => (Math.abs(p.at - 0.2) < Math.abs(best.at - 0.2) ? p : best), memory[0]!)
    const end = memory.at(-1)!
    const growth = processes.map((_, i) => ({
      heapMB: (end.heapUsed[i]! - from.heapUsed[i]!) / 2 ** 20,
      heapPct: ((end.heapUsed[i]! - from.heapUsed[i]!) / from.heapUsed[i]!) * 100,
      rssMB: (end.rss[i]! - from.rss[i]!) / 2 ** 20,
      rssPct: ((end.rss[i]! - from.rss[i]!) / from.rss[i]!) * 100,
    }))
    return {
      durationMs,
      restarts: restarts.length,
      reads: reports.reduce((a, r) => a + r.reads, 0),
      writes: reports.reduce((a, r) => a + r.writes, 0),
      violations: judge.violationCount,
      violationSamples: judge.violations,
      maxStalenessMs: judge.maxStalenessMs,
      processes: reports,
      memory,
      growth,
      options: config,
    }
  } finally {
    stopping.abort()
    await restartLoop
    for (const p of processes) p.kill()
    await redis.stop()
    await database?.stop()
  }
}

const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1)
const signed = (n: number, digits = 1) => `${n >= 0 ? '+' : ''}${n.toFixed(digits)}`

/** The report as markdown tables. */
export function formatSoakReport(report: SoakReport): string {
  const { options, processes } = report
  const lines = [
    `${options.instances} processes, ${options.keys} zipfian keys, maxStaleness ${options.maxStalenessMs} ms, ` +
      `${(report.durationMs / 1000).toFixed(1)} s, ${report.restarts} Redis restarts (kill, ${RESTART_DOWN_MS} ms down, restart; every ${options.restartEveryMs / 1000} s)`,
    '',
    '| reads | writes (resolved) | violations | max staleness (ms) |',
    '| ---: | ---: | ---: | ---: |',
    `| ${report.reads} | ${report.writes} | ${report.violations} | ${report.maxStalenessMs.toFixed(2)} |`,
    '',
    '| process | reads (hits / misses / failed) | writes (failed) | invalidateTags (failed) | onError (recovered) | bus gaps | unhandled rejections / exceptions / warnings | after last restart: hits / writes | exited on close |',
    '| ---: | --- | --- | --- | ---: | ---: | --- | --- | --- |',
  ]
  for (const p of processes) {
    lines.push(
      `| ${p.instance} | ${p.reads} (${p.hits} / ${p.misses} / ${p.failedReads}) | ${p.writes} (${p.failedWrites}) | ${p.invalidations.ok} (${p.invalidations.failed}) | ` +
        `${p.recoveredErrors} | ${p.gapsSeen} | ${p.unhandled.rejections} / ${p.unhandled.exceptions} / ${p.unhandled.warnings} | ` +
        `${p.afterLastRestart.hits} / ${p.afterLastRestart.writes} | ${p.exitedOnClose ? 'yes' : 'NO'} |`,
    )
  }
  const ids = processes.map((p) => p.instance)
  lines.push(
    '',
    'Memory after a full GC, MB (heapUsed / rss), per process:',
    '',
    `| at | t (s) | ${ids.map((i) => `process ${i}`).join(' | ')} |`,
    `| ---: | ---: | ${ids.map(() => '---:').join(' | ')} |`,
  )
  for (const point of report.memory) {
    lines.push(
      `| ${(point.at * 100).toFixed(0)} % | ${point.seconds.toFixed(0)} | ${ids.map((i) => `${mb(point.heapUsed[i]!)} / ${mb(point.rss[i]!)}`).join(' | ')} |`,
    )
  }
  lines.push(
    `| peak (no GC) | | ${processes.map((p) => `${mb(p.peak.heapUsed)} / ${mb(p.peak.rss)}`).join(' | ')} |`,
    `| growth 20 % → end | | ${report.growth.map((g) => `${signed(g.heapMB)} MB (${signed(g.heapPct, 0)} %) / ${signed(g.rssMB)} MB (${signed(g.rssPct, 0)} %)`).join(' | ')} |`,
  )
  lines.push(
    '',
    `onError by code: ${processes
      .map(
        (p) =>
          `process ${p.instance}: ${
            Object.entries(p.errorCodes)
              .map(([code, n]) => `${code} ${n}`)
              .join(', ') || 'none'
          }`,
      )
      .join('; ')}`,
  )
  const messages = processes.flatMap((p) => p.unhandled.messages.map((m) => `- process ${p.instance}: ${m.split('\n')[0]}`))
  if (messages.length > 0) lines.push('', 'Unhandled errors and warnings (first of each process):', '', ...messages)
  if (processes.some((p) => p.dropped > 0)) lines.push('', `Log records dropped (parent too slow): ${processes.map((p) => p.dropped).join(', ')}`)
  return lines.join('\n')
}
