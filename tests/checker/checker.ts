/**
 * The coherence checker: N instance processes share one redis-server; each
 * writes increasing versions of its own keys and reads every key without
 * pause, while faults are injected. Every operation is logged with
 * CLOCK_MONOTONIC timestamps; afterwards each read is judged against the
 * contract:
 *
 *   a read is a violation if it returned a version older than one whose
 *   write had resolved more than maxStaleness before the read began.
 *
 * Each key has a single writer (the instance `key % N`), which writes one
 * version at a time, so "newer version" and "later resolved write" agree.
 * The factory reads a second redis-server (the "database") that no fault
 * touches.
 */
import { fileURLToPath } from 'node:url'
import { InstanceProcess } from '../support/instance.js'
import { RedisServer } from '../support/redis-server.js'
import { ClusterGroup } from '../support/redis-cluster.js'
import { SentinelGroup } from '../support/redis-sentinel.js'
import { TcpProxy } from '../support/tcp-proxy.js'

export const FAULTS = ['pubsub-kill', 'redis-restart', 'redis-pause', 'instance-stop', 'partition'] as const
/** Faults of the Sentinel topology: a failover to the replica (and, next time, back). */
export const SENTINEL_FAULTS = ['failover'] as const
/**
 * Faults of the Cluster topology: every shard's subscriber connections
 * killed (messages published before the resubscribe are lost), and a primary
 * killed, one of its replicas taking over (the old one rejoins as a replica).
 */
export const CLUSTER_FAULTS = ['shard-pubsub-kill', 'primary-kill'] as const
export type FaultName = (typeof FAULTS)[number] | (typeof SENTINEL_FAULTS)[number] | (typeof CLUSTER_FAULTS)[number]
export type WindowName = 'no fault' | FaultName

export interface CheckerOptions {
  /** Total run time. Split into windows: one fault-free window and one per fault, repeated `cycles` times. */
  durationMs: number
  cycles?: number
  instances?: number
  keys?: number
  maxStalenessMs?: number
  faults?: readonly FaultName[]
  /**
   * 'standalone' (default): one redis-server, the last instance behind a TCP
   * proxy. 'sentinel': 1 primary, 1 replica and 3 sentinels; every instance
   * connects through the sentinels; faults default to SENTINEL_FAULTS.
   * 'cluster': 3 primaries and 3 replicas; every instance on an ioredis
   * Cluster; faults default to CLUSTER_FAULTS.
   */
  topology?: 'standalone' | 'sentinel' | 'cluster'
  log?: (line: string) => void
}

export interface FaultRow {
  window: WindowName
  injections: number
  reads: number
  writes: number
  violations: number
  /** Largest time a read was behind: its start minus the resolve time of the first write newer than what it returned. */
  maxStalenessMs: number
  /** Write resolved → start of the first read, on another instance, that returned it or newer. */
  propagation: { p50: number; p99: number; max: number; samples: number }
}

export interface CheckerReport {
  rows: FaultRow[]
  total: FaultRow
  violations: Array<{ instance: number; key: number; start: number; version: number; shouldBeAtLeast: number }>
  gapsSeen: number[]
  durationMs: number
  options: Required<Omit<CheckerOptions, 'log'>>
}

/** The Redis a run's instances share, and how to break it. */
interface Topology {
  envOf(instance: number): Record<string, string>
  describe: string
  inject(fault: FaultName, processes: InstanceProcess[]): Promise<void>
  stop(): Promise<void>
}

async function standaloneTopology(instances: number): Promise<Topology> {
  const redis = await RedisServer.start()
  // The last instance reaches Redis through a proxy, which partitions it silently.
  const proxy = await TcpProxy.start(redis.port)
  return {
    envOf: (i) => ({ REDIS_URL: i === instances - 1 ? proxy.url : redis.url }),
    describe: `instance ${instances - 1} behind a TCP proxy`,
    inject: (fault, processes) => inject(fault, { redis, proxy, processes }),
    stop: async () => {
      await proxy.stop()
      await redis.stop()
    },
  }
}

async function sentinelTopology(): Promise<Topology> {
  const group = await SentinelGroup.start()
  return {
    envOf: () => ({ SENTINELS: JSON.stringify(group.clientOptions()) }),
    describe: 'every instance through 3 sentinels (1 primary, 1 replica)',
    inject: async (fault) => {
      if (fault !== 'failover') throw new Error(`fault ${fault} is not one of the Sentinel topology's`)
      await group.failover()
    },
    stop: () => group.stop(),
  }
}

async function clusterTopology(): Promise<Topology> {
  const group = await ClusterGroup.start()
  let victim = 0
  return {
    envOf: () => ({ CLUSTER_NODES: JSON.stringify(group.nodes) }),
    describe: 'every instance on a Redis Cluster (3 primaries, 3 replicas)',
    inject: async (fault) => {
      if (fault === 'shard-pubsub-kill') {
        // A kill every 50 ms for 2 s: the bus resubscribes within milliseconds,
        // so only a stream of kills loses enough messages to matter.
        const primaries = group.primaryPorts()
        for (let i = 0; i < 40; i++) {
          for (const port of primaries) group.server(port).cli('CLIENT', 'KILL', 'TYPE', 'pubsub')
          await sleep(50)
        }
        return
      }
      if (fault !== 'primary-kill') throw new Error(`fault ${fault} is not one of the Cluster topology's`)
      const primaries = group.primaryPorts()
      const { from } = await group.failover(primaries[victim++ % primaries.length]!)
      // Back as a replica of its successor, so the next cycle can kill a primary again.
      await group.restart(from)
    },
    stop: () => group.stop(),
  }
}

const INSTANCE_FIXTURE = fileURLToPath(new URL('./instance.mjs', import.meta.url))
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const now = () => Number(process.hrtime.bigint()) / 1e6

/** How long each fault is held before recovery. */
const HOLD_MS: Record<(typeof FAULTS)[number], number> = {
  'pubsub-kill': 0,
  'redis-restart': 300,
  'redis-pause': 1_500,
  'instance-stop': 2_000,
  partition: 3_000,
}

interface Read {
  instance: number
  key: number
  start: number
  version: number
}
interface Write {
  instance: number
  key: number
  version: number
  end: number
}

export async function runChecker(options: CheckerOptions): Promise<CheckerReport> {
  const config = {
    durationMs: options.durationMs,
    cycles: options.cycles ?? 1,
    instances: options.instances ?? 4,
    keys: options.keys ?? 16,
    maxStalenessMs: options.maxStalenessMs ?? 1_000,
    topology: options.topology ?? 'standalone',
    faults: options.faults ?? (options.topology === 'sentinel' ? SENTINEL_FAULTS : options.topology === 'cluster' ? CLUSTER_FAULTS : FAULTS),
  }
  const log = options.log ?? (() => {})
  const topology =
    config.topology === 'sentinel'
      ? await sentinelTopology()
      : config.topology === 'cluster'
        ? await clusterTopology()
        : await standaloneTopology(config.instances)
  const database = await RedisServer.start()
  const processes: InstanceProcess[] = []
  try {
    for (let i = 0; i < config.instances; i++) {
      processes.push(
        await InstanceProcess.start(
          {
            ...topology.envOf(i),
            DB_URL: database.url,
            INDEX: String(i),
            INSTANCES: String(config.instances),
            KEYS: String(config.keys),
            MAX_STALENESS: String(config.maxStalenessMs),
          },
          INSTANCE_FIXTURE,
        ),
      )
    }
    log(`checker: ${config.instances} instances (${topology.describe}), ${config.keys} keys, maxStaleness ${config.maxStalenessMs} ms`)

    const plan: WindowName[] = []
    for (let c = 0; c < config.cycles; c++) plan.push('no fault', ...config.faults)
    const windowMs = config.durationMs / plan.length
    const windows: Array<{ name: WindowName; start: number; end: number }> = []
    const injections = new Map<WindowName, number>()

    const startedAt = now()
    await Promise.all(processes.map((p) => p.call('start')))
    for (const name of plan) {
      const start = now()
      if (name !== 'no fault') {
        await sleep(windowMs * 0.15)
        log(`  ${name}`)
        await topology.inject(name, processes)
        injections.set(name, (injections.get(name) ?? 0) + 1)
      }
      const remaining = start + windowMs - now()
      if (remaining > 0) await sleep(remaining)
      windows.push({ name, start, end: now() })
    }
    const results = await Promise.all(
      processes.map((p) =>
        p.call<{ reads: Float64Array; writes: Float64Array; bus: { gapsSeen: number }; recoveredErrors: number }>('stop'),
      ),
    )
    const durationMs = now() - startedAt
    await Promise.all(processes.map((p) => p.close()))

    const reads: Read[] = []
    const writes: Write[] = []
    results.forEach((result, instance) => {
      for (let i = 0; i < result.reads.length; i += 5) {
        reads.push({ instance, key: result.reads[i]!, start: result.reads[i + 1]!, version: result.reads[i + 3]! })
      }
      for (let i = 0; i < result.writes.length; i += 5) {
        if (result.writes[i + 4] === 1) {
          writes.push({ instance, key: result.writes[i]!, version: result.writes[i + 1]!, end: result.writes[i + 3]! })
        }
      }
    })
    const analysis = analyse(reads, writes, windows, injections, config.maxStalenessMs)
    return {
      ...analysis,
      gapsSeen: results.map((r) => r.bus.gapsSeen),
      durationMs,
      options: config,
    }
  } finally {
    for (const p of processes) p.kill()
    await topology.stop()
    await database.stop()
  }
}

async function inject(
  fault: FaultName,
  { redis, proxy, processes }: { redis: RedisServer; proxy: TcpProxy; processes: InstanceProcess[] },
): Promise<void> {
  switch (fault) {
    case 'pubsub-kill':
      // Several kills in a row: each opens a reconnect gap in which messages are lost.
      for (let i = 0; i < 5; i++) {
        redis.cli('CLIENT', 'KILL', 'TYPE', 'pubsub')
        await sleep(300)
      }
      return
    case 'redis-restart':
      await redis.kill()
      await sleep(HOLD_MS[fault])
      await redis.restart()
      return
    case 'redis-pause':
      redis.pause()
      await sleep(HOLD_MS[fault])
      redis.resume()
      return
    case 'instance-stop': {
      const victim = processes[1 % processes.length]!
      victim.signal('SIGSTOP')
      await sleep(HOLD_MS[fault])
      victim.signal('SIGCONT')
      return
    }
    case 'partition':
      proxy.partition()
      await sleep(HOLD_MS[fault])
      proxy.heal()
      return
    case 'failover':
      throw new Error('a failover needs the Sentinel topology')
    case 'primary-kill':
    case 'shard-pubsub-kill':
      throw new Error(`${fault} needs the Cluster topology`)
  }
}

function analyse(
  reads: Read[],
  writes: Write[],
  windows: Array<{ name: WindowName; start: number; end: number }>,
  injections: Map<WindowName, number>,
  maxStalenessMs: number,
): Pick<CheckerReport, 'rows' | 'total' | 'violations'> {
  // Per key: resolved writes in resolve order (a key's single writer writes one version at a time).
  const byKey = new Map<number, Write[]>()
  for (const write of writes) {
    let list = byKey.get(write.key)
    if (list === undefined) byKey.set(write.key, (list = []))
    list.push(write)
  }
  for (const list of byKey.values()) list.sort((a, b) => a.end - b.end)

  /** Index of the last write of `list` that resolved at or before `time`, or -1. */
  const lastResolvedBy = (list: Write[], time: number): number => {
    let lo = 0
    let hi = list.length - 1
    let found = -1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (list[mid]!.end <= time) {
        found = mid
        lo = mid + 1
      } else hi = mid - 1
    }
    return found
  }

  const windowOf = (time: number): WindowName | undefined => windows.find((w) => time >= w.start && time < w.end)?.name
  const rows = new Map<WindowName, FaultRow & { delays: number[] }>()
  const row = (name: WindowName) => {
    let r = rows.get(name)
    if (r === undefined) {
      r = {
        window: name,
        injections: injections.get(name) ?? 0,
        reads: 0,
        writes: 0,
        violations: 0,
        maxStalenessMs: 0,
        propagation: { p50: 0, p99: 0, max: 0, samples: 0 },
        delays: [],
      }
      rows.set(name, r)
    }
    return r
  }
  for (const w of windows) row(w.name)

  const violations: CheckerReport['violations'] = []
  for (const read of reads) {
    const window = windowOf(read.start)
    if (window === undefined) continue
    const r = row(window)
    r.reads++
    if (read.version < 0) continue // absent or failed: not an old value
    const list = byKey.get(read.key) ?? []
    const bound = lastResolvedBy(list, read.start - maxStalenessMs)
    if (bound >= 0 && read.version < list[bound]!.version) {
      r.violations++
      violations.push({ instance: read.instance, key: read.key, start: read.start, version: read.version, shouldBeAtLeast: list[bound]!.version })
    }
    // Staleness: how long before this read the first newer write had resolved.
    const latest = lastResolvedBy(list, read.start)
    if (latest >= 0 && list[latest]!.version > read.version) {
      const firstNewer = list.findIndex((w) => w.version > read.version)
      if (firstNewer >= 0 && firstNewer <= latest) r.maxStalenessMs = Math.max(r.maxStalenessMs, read.start - list[firstNewer]!.end)
    }
  }

  // Propagation: for each resolved write and each other instance, the first read there that saw it (or newer).
  const readsBy = new Map<string, Read[]>()
  for (const read of reads) {
    const id = `${read.instance}:${read.key}`
    let list = readsBy.get(id)
    if (list === undefined) readsBy.set(id, (list = []))
    list.push(read)
  }
  for (const list of readsBy.values()) list.sort((a, b) => a.start - b.start)
  const instances = new Set(reads.map((r) => r.instance))
  for (const write of writes) {
    const window = windowOf(write.end)
    if (window === undefined) continue
    const r = row(window)
    r.writes++
    for (const instance of instances) {
      if (instance === write.instance) continue
      const list = readsBy.get(`${instance}:${write.key}`) ?? []
      const seen = list.find((read) => read.start >= write.end && read.version >= write.version)
      if (seen !== undefined) r.delays.push(seen.start - write.end)
    }
  }

  const finish = (r: FaultRow & { delays: number[] }): FaultRow => {
    const delays = r.delays.sort((a, b) => a - b)
    const pick = (q: number) => (delays.length === 0 ? 0 : delays[Math.min(delays.length - 1, Math.floor(q * delays.length))]!)
    const { delays: _, ...rest } = r
    return { ...rest, propagation: { p50: pick(0.5), p99: pick(0.99), max: delays.at(-1) ?? 0, samples: delays.length } }
  }
  const finished = [...rows.values()].map(finish)
  const allDelays = [...rows.values()].flatMap((r) => r.delays)
  const total = finish({
    window: 'no fault',
    injections: [...injections.values()].reduce((a, b) => a + b, 0),
    reads: finished.reduce((a, r) => a + r.reads, 0),
    writes: finished.reduce((a, r) => a + r.writes, 0),
    violations: finished.reduce((a, r) => a + r.violations, 0),
    maxStalenessMs: Math.max(0, ...finished.map((r) => r.maxStalenessMs)),
    propagation: { p50: 0, p99: 0, max: 0, samples: 0 },
    delays: allDelays,
  })
  return { rows: finished, total: { ...total, window: 'all' as WindowName }, violations }
}

export function formatReport(report: CheckerReport): string {
  const ms = (n: number) => n.toFixed(2)
  const header = '| window | injections | reads | writes | violations | max staleness (ms) | propagation p50 / p99 / max (ms) |'
  const lines = [header, '| --- | ---: | ---: | ---: | ---: | ---: | ---: |']
  for (const r of [...report.rows, report.total]) {
    lines.push(
      `| ${r.window} | ${r.injections} | ${r.reads} | ${r.writes} | ${r.violations} | ${ms(r.maxStalenessMs)} | ${ms(r.propagation.p50)} / ${ms(r.propagation.p99)} / ${ms(r.propagation.max)} |`,
    )
  }
  lines.push(
    '',
    `${report.options.instances} instances, ${report.options.keys} keys, maxStaleness ${report.options.maxStalenessMs} ms, ${(report.durationMs / 1000).toFixed(1)} s, gaps seen per instance: ${report.gapsSeen.join(', ')}`,
  )
  return lines.join('\n')
}
