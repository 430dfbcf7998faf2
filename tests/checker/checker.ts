/**
 * The coherence checker: N instance processes share one Redis; each writes
 * the keys the database's writer locks give it (set, delete, tag and
 * namespace invalidations, clear) and reads every key without pause, while
 * faults are injected. Every operation is logged with CLOCK_MONOTONIC
 * timestamps; afterwards each read is judged against the contract.
 *
 * The model: every write operation bumps the version of each key it affects
 * in the "database" (a second redis-server that no fault touches) and then
 * issues its cache operation. Once that operation has resolved, the key's
 * state must be at least that version: a `set(v)` requires v or newer, and a
 * `delete`, `invalidateTags`, a namespace's `invalidate` or `clear` that
 * bumped the key to v requires that nothing older than v is read (the entry
 * may be absent; a fill reads v or newer from the database). So
 *
 *   a read is a violation if it returned a version older than one that an
 *   operation resolved more than maxStaleness before the read began required.
 *
 * Each key has one writer at a time (a lock in the database), so the order of
 * its versions is the order its writes land in; ownership rotates, so every
 * instance writes every key. Every read is judged, whatever window it falls
 * in, and the reads of each instance are counted on their own.
 */
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { InstanceProcess } from '../support/instance.js'
import { RedisServer } from '../support/redis-server.js'
import { ClusterGroup } from '../support/redis-cluster.js'
import { SentinelGroup } from '../support/redis-sentinel.js'
import { TcpProxy } from '../support/tcp-proxy.js'
import { SlowLink } from './slow-link.js'

export const FAULTS = ['pubsub-kill', 'redis-restart', 'redis-pause', 'instance-stop', 'slow-link', 'partition'] as const
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
/**
 * A coherence mechanism switched off from the outside (tests/checker/instance.mjs), to prove the checker sees it missing.
 * 'reuse-bound': outage reuse kept for 10 x maxStaleness instead of maxStaleness (`onBusDown: { serveStale }`).
 */
export type SwitchOff = 'liveness' | 'gap' | 'bus' | 'leases' | 'reuse-bound'
export const WRITE_KINDS = ['set', 'delete', 'tags', 'namespace', 'clear'] as const
export type WriteKind = (typeof WRITE_KINDS)[number]

export interface CheckerOptions {
  /** Planned run time. Split into windows: one fault-free window and one per fault, repeated `cycles` times. */
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
  /**
   * Instances that run with grace and fail-safe on (ttl 200 ms, grace 1 h,
   * softTimeout 20 ms, hardTimeout 150 ms, failSafeBackoff 2 s). Default: the
   * odd ones, which are the frozen instance (1) and, with 4 instances, the
   * partitioned one (3), whose database is then partitioned with it.
   */
  graceInstances?: readonly number[]
  /**
   * Standalone: the proxied instance's factory reaches the database through a
   * proxy that the partition fault cuts too, so its factory hangs while it is
   * cut off. Default: when that instance has grace on.
   */
  partitionDatabase?: boolean
  /** Standalone only: Redis under `--maxmemory <bytes> --maxmemory-policy <policy>`, with noise writes that keep it evicting. */
  maxmemory?: { bytes: string; policy: string }
  switchOff?: SwitchOff
  /**
   * Every instance's bus carries small values with their invalidations
   * (redisBus carryValues, with a shared secret): readers take the new value
   * from the message (a guarded fill) instead of re-reading L2. Standalone
   * and Sentinel (Cluster's bus refuses the option).
   */
  carryValues?: boolean
  /** How long each fault is held before it is healed (defaults in HOLD_MS). */
  holdMs?: Partial<Record<FaultName, number>>
  /** Time judged inside a fault's window after the fault is healed, at least. Default 2 × maxStaleness. */
  recoveryMs?: number
  /**
   * 'all' (default): every instance runs 2 readers, each alternating get and
   * getOrSet on random keys. 'proxied': only the proxied instance fills, with
   * one reader per key that refills its key as soon as it is gone; the others
   * only get. Then the instance behind the slow link is the one that refills
   * a deleted key (no faster instance fills it first), as soon as it has
   * heard of the delete: the fill a lease must stop when a newer delete
   * lands before the fill's store while its message is still on the way.
   */
  fillers?: 'all' | 'proxied'
  /**
   * 'violation': after the planned cycles, run more until a violation has
   * been found (or maxDurationMs has passed). For the runs with a mechanism
   * switched off, which must find one however loaded the machine is.
   */
  until?: 'violation'
  /** Reads each instance must have made before the run stops (it goes on, up to maxDurationMs, until they have). Default 0. */
  minReadsPerInstance?: number
  /** The most a run may last, waiting for `until` and `minReadsPerInstance`. Default 4 × durationMs + 60 s. */
  maxDurationMs?: number
  /** How often some instance runs a multi-key invalidation (invalidateTags, a namespace's invalidate, clear); default 700 ms. */
  multiIntervalMs?: number
  /** How long the factory waits after reading the database (default 3 ms): a longer wait leaves more fills in flight when a fault strikes. */
  factoryDelayMs?: number
  log?: (line: string) => void
}

export interface FaultRow {
  window: WindowName | 'all'
  injections: number
  reads: number
  /** Write operations that resolved (a multi-key operation counts once). */
  writes: number
  violations: number
  /** Largest time a read was behind: its start minus the resolve time of the first operation that required newer than what it returned. */
  maxStalenessMs: number
  /** Operation resolved → start of the first read, on another instance, that returned the version it required or newer. */
  propagation: { p50: number; p99: number; max: number; samples: number }
}

export interface InstanceRow {
  instance: number
  grace: boolean
  reads: number
  /** Reads that returned a version (not absent, not an error). */
  valueReads: number
  violations: number
  /** Write operations that resolved, and how many were rejected (and retried). */
  writes: number
  rejectedWrites: number
  /** Distinct keys this instance wrote (any kind of operation). */
  keysWritten: number
  gapsSeen: number
  stats: InstanceStats
}

export interface InstanceStats {
  l1Hits: number
  l2Hits: number
  factoryCalls: number
  factoryErrors: number
  staleServed: number
  failSafe: number
  leaseWaits: number
  /** Lookups answered by outage reuse: a value this instance loaded while L1 was untrusted, within t0 + maxStaleness. */
  outageReuses: number
  /** Shared-tier calls failed at once, nothing sent (connection known down, or circuit open). */
  l2CallsSkipped: number
}

export interface Violation {
  instance: number
  key: number
  start: number
  version: number
  shouldBeAtLeast: number
  /** The operation that required it: its kind, the instance that issued it, and how long before the read it resolved. */
  requiredBy: WriteKind
  writer: number
  behindMs: number
  window: WindowName | undefined
}

export interface CheckerReport {
  rows: FaultRow[]
  total: FaultRow
  instances: InstanceRow[]
  violations: Violation[]
  /** Violations by the kind of operation whose requirement was broken. */
  violationsByKind: Record<WriteKind, number>
  /** Resolved write operations by kind. */
  writesByKind: Record<WriteKind, number>
  /** For each key, how many instances wrote it (ownership rotates: more than one each). */
  writersPerKey: number[]
  /**
   * Two operations on one key that overlapped in time, or whose versions ran
   * backwards: the writer locks failed, and the judgement of that key is void.
   * Always 0 when the checker works.
   */
  writeOrderAnomalies: number
  /** Standalone under maxmemory: keys Redis evicted (INFO evicted_keys, summed over restarts). */
  evictedKeys: number | undefined
  gapsSeen: number[]
  durationMs: number
  options: Required<Omit<CheckerOptions, 'log' | 'maxmemory' | 'switchOff' | 'holdMs' | 'until' | 'carryValues'>> &
    Pick<CheckerOptions, 'maxmemory' | 'switchOff' | 'holdMs' | 'until' | 'carryValues'>
  /** carryValues: carried values each instance's bus turned into L1 fills (applied), refused for their MAC, undecodable. */
  carried: Array<{ applied: number; rejected: number; undecodable: number } | undefined>
}

interface FaultContext {
  processes: InstanceProcess[]
  holdMs: (fault: FaultName) => number
}

/** The Redis a run's instances share, and how to break it. */
interface Topology {
  envOf(instance: number): Record<string, string>
  describe: string
  inject(fault: FaultName, context: FaultContext): Promise<void>
  /** Called once the instances run, and before they stop (noise writes under maxmemory). */
  started(): void
  stopping(): Promise<void>
  evictedKeys(): Promise<number | undefined>
  stop(): Promise<void>
}

async function standaloneTopology(
  instances: number,
  database: RedisServer,
  partitionDatabase: boolean,
  maxmemory: CheckerOptions['maxmemory'],
): Promise<Topology> {
  const redis = await RedisServer.start(maxmemory === undefined ? [] : ['--maxmemory', maxmemory.bytes, '--maxmemory-policy', maxmemory.policy])
  // The last instance reaches Redis through a proxy, which partitions it
  // silently. Its factory's database may sit behind a proxy of its own,
  // partitioned with it: the factory hangs, so (with grace on) grace, soft
  // timeouts and fail-safe are all that can answer.
  const proxy = await TcpProxy.start(redis.port)
  // In front of the proxy, a link the slow-link fault slows down.
  const slowLink = await SlowLink.start(proxy.port)
  const databaseProxy = partitionDatabase ? await TcpProxy.start(database.port) : undefined
  const noise = maxmemory === undefined ? undefined : new NoiseWriter(redis.url)
  const admin = new Redis(redis.url, { maxRetriesPerRequest: 1 })
  admin.on('error', () => {})
  let evictedBeforeRestarts = 0
  const evicted = async () => Number(/^evicted_keys:(\d+)/m.exec(await noise!.info())?.[1] ?? 0)
  return {
    envOf: (i) => ({
      REDIS_URL: i === instances - 1 ? slowLink.url : redis.url,
      ...(i === instances - 1 && databaseProxy !== undefined ? { DB_FACTORY_URL: databaseProxy.url } : {}),
    }),
    describe:
      `instance ${instances - 1} behind a TCP proxy${databaseProxy === undefined ? '' : ' (its database too)'}` +
      (maxmemory === undefined ? '' : `, Redis under maxmemory ${maxmemory.bytes} ${maxmemory.policy} with noise writes`),
    inject: async (fault, { processes, holdMs }) => {
      switch (fault) {
        case 'pubsub-kill':
          // Several kills in a row: each opens a reconnect gap in which messages are lost.
          // (Over a connection, not redis-cli: a synchronous spawn stalls this process and the runs beside it.)
          for (let i = 0; i < 5; i++) {
            await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub').catch(() => {})
            await sleep(300)
          }
          return
        case 'redis-restart':
          if (noise !== undefined) evictedBeforeRestarts += await evicted()
          await redis.kill()
          await sleep(holdMs(fault))
          await redis.restart()
          return
        case 'redis-pause':
          redis.pause()
          await sleep(holdMs(fault))
          redis.resume()
          return
        case 'instance-stop': {
          const victim = processes[1 % processes.length]!
          victim.signal('SIGSTOP')
          await sleep(holdMs(fault))
          victim.signal('SIGCONT')
          return
        }
        case 'slow-link':
          slowLink.delayMs = SLOW_LINK_DELAY_MS
          await sleep(holdMs(fault))
          slowLink.delayMs = 0
          return
        case 'partition':
          proxy.partition()
          databaseProxy?.partition()
          await sleep(holdMs(fault))
          proxy.heal()
          databaseProxy?.heal()
          return
        default:
          throw new Error(`fault ${fault} is not one of the standalone topology's`)
      }
    },
    started: () => noise?.start(),
    stopping: async () => noise?.stop(),
    evictedKeys: async () => (noise === undefined ? undefined : evictedBeforeRestarts + (await evicted())),
    stop: async () => {
      noise?.close()
      admin.disconnect()
      await slowLink.stop()
      await proxy.stop()
      await databaseProxy?.stop()
      await redis.stop()
    },
  }
}

/**
 * Writes 4 KB values under keys of its own, 20 every 10 ms, so that a Redis
 * under maxmemory keeps evicting (its policy picks among all keys, the SDK's
 * bookkeeping included). Failures (a restart, a pause) are ignored.
 */
class NoiseWriter {
  #client: Redis
  #running: Promise<void> | undefined
  #stopped = false

  constructor(url: string) {
    this.#client = new Redis(url, { maxRetriesPerRequest: 1, commandTimeout: 1_000 })
    this.#client.on('error', () => {})
  }

  start(): void {
    const value = 'x'.repeat(4_096)
    this.#running = (async () => {
      for (let n = 0; !this.#stopped; ) {
        const batch = this.#client.pipeline()
        for (let i = 0; i < 20; i++) batch.set(`noise:${n++}`, value)
        await batch.exec().catch(() => {})
        await sleep(10)
      }
    })()
  }

  async stop(): Promise<void> {
    this.#stopped = true
    await this.#running
  }

  info(): Promise<string> {
    return this.#client.info('stats')
  }

  close(): void {
    this.#client.disconnect()
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
    started: () => {},
    stopping: async () => {},
    evictedKeys: async () => undefined,
    stop: () => group.stop(),
  }
}

/**
 * A cluster node's role ('master', 'slave') and whether it reports
 * cluster_state:ok, asked over a connection of its own; undefined if it does
 * not answer. Asynchronous on purpose: ClusterGroup's own helpers spawn
 * redis-cli synchronously, which stalls this process, and with it the other
 * runs of the suite that share it (their proxies, their Redis restarts).
 */
async function nodeState(port: number): Promise<{ role: string; masterPort: number | undefined; ok: boolean } | undefined> {
  const client = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    connectTimeout: 1_000,
    commandTimeout: 1_000,
    retryStrategy: () => null,
  })
  client.on('error', () => {})
  try {
    await client.connect()
    const role = (await client.call('ROLE')) as unknown[]
    const info = (await client.call('CLUSTER', 'INFO')) as string
    return { role: String(role[0]), masterPort: role[0] === 'slave' ? Number(role[2]) : undefined, ok: info.includes('cluster_state:ok') }
  } catch {
    return undefined
  } finally {
    client.disconnect()
  }
}

async function clusterTopology(): Promise<Topology> {
  const group = await ClusterGroup.start()
  let victim = 0
  const states = () => Promise.all(group.servers.map(async (server) => ({ server, state: await nodeState(server.port) })))
  const primaryPorts = async () => (await states()).filter(({ state }) => state?.role === 'master').map(({ server }) => server.port)
  /** Polls (every 100 ms, up to 30 s) until `done` holds for the cluster's nodes. */
  const waitFor = async (what: string, done: (nodes: Awaited<ReturnType<typeof states>>) => boolean) => {
    const deadline = now() + 30_000
    while (!done(await states())) {
      if (now() > deadline) throw new Error(`cluster: ${what} within 30 s`)
      await sleep(100)
    }
  }
  return {
    envOf: () => ({ CLUSTER_NODES: JSON.stringify(group.nodes) }),
    describe: 'every instance on a Redis Cluster (3 primaries, 3 replicas)',
    inject: async (fault) => {
      if (fault === 'shard-pubsub-kill') {
        // A kill every 50 ms for 2 s: the bus resubscribes within milliseconds,
        // so only a stream of kills loses enough messages to matter. Sent over
        // one connection per primary (not redis-cli, whose synchronous spawns
        // would stall this process and stretch the stream on a loaded machine).
        const killers = (await primaryPorts()).map((port) => {
          const client = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 })
          client.on('error', () => {})
          return client
        })
        try {
          for (let i = 0; i < 40; i++) {
            await Promise.all(killers.map((client) => client.call('CLIENT', 'KILL', 'TYPE', 'pubsub').catch(() => {})))
            await sleep(50)
          }
        } finally {
          for (const client of killers) client.disconnect()
        }
        return
      }
      if (fault !== 'primary-kill') throw new Error(`fault ${fault} is not one of the Cluster topology's`)
      // Kill a primary; one of its replicas takes over once the cluster has failed it over.
      const primaries = await primaryPorts()
      const port = primaries[victim++ % primaries.length]!
      const replicas = (await states()).filter(({ state }) => state?.masterPort === port).map(({ server }) => server.port)
      if (replicas.length === 0) throw new Error(`cluster: primary ${port} has no replica to take over`)
      await group.server(port).kill()
      await waitFor(`no replica of ${port} took over`, (nodes) =>
        nodes.some(({ server, state }) => replicas.includes(server.port) && state?.role === 'master' && state.ok),
      )
      // Back as a replica of its successor, so the next cycle can kill a primary again.
      await group.server(port).restart()
      await waitFor(`node ${port} did not rejoin as a replica`, (nodes) =>
        nodes.some(({ server, state }) => server.port === port && state?.role === 'slave' && state.ok),
      )
    },
    started: () => {},
    stopping: async () => {},
    evictedKeys: async () => undefined,
    stop: () => group.stop(),
  }
}

const INSTANCE_FIXTURE = fileURLToPath(new URL('./instance.mjs', import.meta.url))
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))
const now = () => Number(process.hrtime.bigint()) / 1e6

/** How long each fault is held before recovery, unless `holdMs` says otherwise. */
const HOLD_MS: Record<FaultName, number> = {
  'pubsub-kill': 0,
  'redis-restart': 300,
  'redis-pause': 1_500,
  'instance-stop': 2_000,
  'slow-link': 5_000,
  // Longer than the 3 × maxStaleness (3 s) after which the bus gives up on a
  // silent link and replaces it: messages held in the old link are lost, so
  // the partition is a gap, not only a delay.
  partition: 4_500,
  failover: 0,
  'shard-pubsub-kill': 0,
  'primary-kill': 0,
}

/** The latency the slow-link fault adds each way on the proxied instance's link to Redis. */
const SLOW_LINK_DELAY_MS = 50

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
  start: number
  end: number
  ok: boolean
  kind: WriteKind
}
interface InstanceResult {
  reads: Float64Array
  writes: Float64Array
  bus: { gapsSeen: number; carriedValues?: { applied: number; rejected: number; undecodable: number } }
  recoveredErrors: number
  stats: InstanceStats
}

export async function runChecker(options: CheckerOptions): Promise<CheckerReport> {
  const instances = options.instances ?? 4
  const maxStalenessMs = options.maxStalenessMs ?? 1_000
  const defaultGrace = Array.from({ length: instances }, (_, i) => i).filter((i) => i % 2 === 1)
  const config: CheckerReport['options'] = {
    durationMs: options.durationMs,
    cycles: options.cycles ?? 1,
    instances,
    keys: options.keys ?? 16,
    maxStalenessMs,
    topology: options.topology ?? 'standalone',
    faults: options.faults ?? (options.topology === 'sentinel' ? SENTINEL_FAULTS : options.topology === 'cluster' ? CLUSTER_FAULTS : FAULTS),
    graceInstances: options.graceInstances ?? defaultGrace,
    recoveryMs: options.recoveryMs ?? 2 * maxStalenessMs,
    factoryDelayMs: options.factoryDelayMs ?? 3,
    fillers: options.fillers ?? 'all',
    multiIntervalMs: options.multiIntervalMs ?? 700,
    minReadsPerInstance: options.minReadsPerInstance ?? 0,
    maxDurationMs: options.maxDurationMs ?? 4 * options.durationMs + 60_000,
    maxmemory: options.maxmemory,
    switchOff: options.switchOff,
    carryValues: options.carryValues,
    holdMs: options.holdMs,
    until: options.until,
    partitionDatabase: options.partitionDatabase ?? (options.graceInstances ?? defaultGrace).includes(instances - 1),
  }
  if (config.maxmemory !== undefined && config.topology !== 'standalone') throw new Error('maxmemory is a standalone-topology option')
  const log = options.log ?? (() => {})
  const database = await RedisServer.start()
  let topology: Topology | undefined
  const processes: InstanceProcess[] = []
  try {
    topology =
      config.topology === 'sentinel'
        ? await sentinelTopology()
        : config.topology === 'cluster'
          ? await clusterTopology()
          : await standaloneTopology(instances, database, config.partitionDatabase, config.maxmemory)
    const envOf = topology.envOf
    processes.push(
      ...(await Promise.all(
        Array.from({ length: instances }, (_, i) =>
          InstanceProcess.start(
            {
              ...envOf(i),
              DB_URL: database.url,
              INDEX: String(i),
              INSTANCES: String(instances),
              KEYS: String(config.keys),
              MAX_STALENESS: String(maxStalenessMs),
              GRACE: config.graceInstances.includes(i) ? '1' : '0',
              SWITCH_OFF: config.switchOff ?? '',
              CARRY_VALUES: config.carryValues === true ? '1' : '0',
              FACTORY_DELAY_MS: String(config.factoryDelayMs),
              MULTI_INTERVAL_MS: String(config.multiIntervalMs),
              GET_ONLY: config.fillers === 'proxied' && i !== instances - 1 ? '1' : '0',
              READER_PER_KEY: config.fillers === 'proxied' && i === instances - 1 ? '1' : '0',
            },
            INSTANCE_FIXTURE,
          ),
        ),
      )),
    )
    log(
      `checker: ${instances} instances (${topology.describe}), ${config.keys} keys, maxStaleness ${maxStalenessMs} ms, ` +
        `grace on instances [${config.graceInstances.join(', ')}]${config.switchOff === undefined ? '' : `, ${config.switchOff} SWITCHED OFF`}` +
        `${config.carryValues === true ? ', values carried on the bus' : ''}`,
    )

    const cycle: WindowName[] = ['no fault', ...config.faults]
    const windowMs = config.durationMs / (cycle.length * config.cycles)
    const windows: Array<{ name: WindowName; start: number; end: number }> = []
    const injections = new Map<WindowName, number>()
    const holdMs = (fault: FaultName) => config.holdMs?.[fault] ?? HOLD_MS[fault]
    // Rows drained from the instances so far (between windows, never while one is frozen).
    const reads: Read[] = []
    const writes: Write[] = []
    const collect = (instance: number, logs: { reads: Float64Array; writes: Float64Array }) => {
      for (let i = 0; i < logs.reads.length; i += 5) {
        reads.push({ instance, key: logs.reads[i]!, start: logs.reads[i + 1]!, version: logs.reads[i + 3]! })
      }
      for (let i = 0; i < logs.writes.length; i += 6) {
        writes.push({
          instance,
          key: logs.writes[i]!,
          version: logs.writes[i + 1]!,
          start: logs.writes[i + 2]!,
          end: logs.writes[i + 3]!,
          ok: logs.writes[i + 4] === 1,
          kind: WRITE_KINDS[logs.writes[i + 5]!]!,
        })
      }
    }
    const drain = async () => {
      const drained = await Promise.all(processes.map((p) => p.call<{ reads: Float64Array; writes: Float64Array }>('drain')))
      drained.forEach((logs, instance) => collect(instance, logs))
    }
    const readsBy = (instance: number) => reads.reduce((n, r) => n + (r.instance === instance ? 1 : 0), 0)

    const startedAt = now()
    const deadline = startedAt + config.maxDurationMs
    await Promise.all(processes.map((p) => p.call('start')))
    topology.started()
    for (let c = 0; ; c++) {
      for (const name of cycle) {
        const start = windows.at(-1)?.end ?? startedAt
        if (name !== 'no fault') {
          await sleep(windowMs * 0.15)
          log(`  ${name}`)
          await topology.inject(name, { processes, holdMs })
          injections.set(name, (injections.get(name) ?? 0) + 1)
        }
        // A fault's window always ends with its recovery: reads after the heal are judged there.
        const remaining = Math.max(start + windowMs - now(), name === 'no fault' ? 0 : config.recoveryMs)
        if (remaining > 0) await sleep(remaining)
        windows.push({ name, start, end: now() })
      }
      await drain()
      if (c + 1 < config.cycles) continue
      // until 'violation': cycles go on until the run has found one (a mechanism
      // switched off), however slowly a loaded machine runs the instances.
      if (config.until !== 'violation' || now() >= deadline) break
      if (analyse(reads, writes, windows, injections, config).violations.length > 0) break
      log(`  no violation yet after ${c + 1} cycles: another`)
    }
    // Every instance must have been judged on enough reads: a slow or hung one keeps the run going (up to the deadline).
    while (now() < deadline && processes.some((_, i) => readsBy(i) < config.minReadsPerInstance)) {
      await sleep(250)
      await drain()
    }
    await topology.stopping()
    const evictedKeys = await topology.evictedKeys()
    const results = await Promise.all(processes.map((p) => p.call<InstanceResult>('stop')))
    const durationMs = now() - startedAt
    await Promise.all(processes.map((p) => p.close()))
    results.forEach((result, instance) => collect(instance, result))
    const analysis = analyse(reads, writes, windows, injections, config)
    return {
      ...analysis,
      instances: analysis.instances.map((row, i) => ({ ...row, gapsSeen: results[i]!.bus.gapsSeen, stats: results[i]!.stats })),
      evictedKeys,
      gapsSeen: results.map((r) => r.bus.gapsSeen),
      carried: results.map((r) => r.bus.carriedValues),
      durationMs,
      options: config,
    }
  } finally {
    for (const p of processes) p.kill()
    await topology?.stop()
    await database.stop()
  }
}

/** Resolved operations on one key, in resolve order, with the newest version required so far at each. */
interface KeyHistory {
  ops: Write[]
  /** requiredAt[i]: the highest version among ops[0..i]; requiredBy[i]: the op it came from. */
  requiredAt: number[]
  requiredBy: Write[]
}

function analyse(
  reads: Read[],
  writes: Write[],
  windows: Array<{ name: WindowName; start: number; end: number }>,
  injections: Map<WindowName, number>,
  config: CheckerReport['options'],
): Omit<CheckerReport, 'evictedKeys' | 'gapsSeen' | 'durationMs' | 'options' | 'carried'> {
  const { maxStalenessMs } = config
  const histories = new Map<number, KeyHistory>()
  for (const write of writes) {
    if (!write.ok) continue
    let history = histories.get(write.key)
    if (history === undefined) histories.set(write.key, (history = { ops: [], requiredAt: [], requiredBy: [] }))
    history.ops.push(write)
  }
  for (const history of histories.values()) {
    history.ops.sort((a, b) => a.end - b.end)
    let best: Write | undefined
    for (const op of history.ops) {
      if (best === undefined || op.version > best.version) best = op
      history.requiredAt.push(best.version)
      history.requiredBy.push(best)
    }
  }

  // The writer locks: on each key, operations (rejected ones included) never overlap and their versions only grow.
  let writeOrderAnomalies = 0
  const byKey = new Map<number, Write[]>()
  for (const write of writes) {
    let list = byKey.get(write.key)
    if (list === undefined) byKey.set(write.key, (list = []))
    list.push(write)
  }
  const writersPerKey = Array.from({ length: config.keys }, (_, k) => new Set((byKey.get(k) ?? []).filter((w) => w.ok).map((w) => w.instance)).size)
  for (const list of byKey.values()) {
    list.sort((a, b) => a.start - b.start)
    for (let i = 1; i < list.length; i++) {
      if (list[i]!.start < list[i - 1]!.end || list[i]!.version <= list[i - 1]!.version) writeOrderAnomalies++
    }
  }

  /** Index of the last op of `history` that resolved at or before `time`, or -1. */
  const lastResolvedBy = (history: KeyHistory, time: number): number => {
    let lo = 0
    let hi = history.ops.length - 1
    let found = -1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (history.ops[mid]!.end <= time) {
        found = mid
        lo = mid + 1
      } else hi = mid - 1
    }
    return found
  }
  /** Index of the first op after which a version newer than `version` was required, or -1. */
  const firstRequiringAbove = (history: KeyHistory, version: number): number => {
    let lo = 0
    let hi = history.ops.length - 1
    let found = -1
    while (lo <= hi) {
      const mid = (lo + hi) >> 1
      if (history.requiredAt[mid]! > version) {
        found = mid
        hi = mid - 1
      } else lo = mid + 1
    }
    return found
  }

  const windowOf = (time: number): WindowName | undefined => windows.find((w) => time >= w.start && time < w.end)?.name
  type Accumulator = FaultRow & { delays: number[]; ops: Set<string> }
  const newRow = (window: WindowName | 'all', injectionCount: number): Accumulator => ({
    window,
    injections: injectionCount,
    reads: 0,
    writes: 0,
    violations: 0,
    maxStalenessMs: 0,
    propagation: { p50: 0, p99: 0, max: 0, samples: 0 },
    delays: [],
    ops: new Set(),
  })
  const rows = new Map<WindowName, Accumulator>()
  for (const w of windows) if (!rows.has(w.name)) rows.set(w.name, newRow(w.name, injections.get(w.name) ?? 0))
  const all = newRow(
    'all',
    [...injections.values()].reduce((a, b) => a + b, 0),
  )
  /** The rows a moment counts in: its window's (if any), and always 'all'. */
  const rowsAt = (time: number) => {
    const window = windowOf(time)
    return window === undefined ? [all] : [rows.get(window)!, all]
  }

  const perInstance = new Map<number, Omit<InstanceRow, 'gapsSeen' | 'stats'> & { keys: Set<number>; ops: Set<number>; rejected: Set<number> }>()
  const instanceRow = (instance: number) => {
    let row = perInstance.get(instance)
    if (row === undefined) {
      row = {
        instance,
        grace: config.graceInstances.includes(instance),
        reads: 0,
        valueReads: 0,
        violations: 0,
        writes: 0,
        rejectedWrites: 0,
        keysWritten: 0,
        keys: new Set(),
        ops: new Set(),
        rejected: new Set(),
      }
      perInstance.set(instance, row)
    }
    return row
  }
  for (let i = 0; i < config.instances; i++) instanceRow(i)

  const violations: Violation[] = []
  const violationsByKind = Object.fromEntries(WRITE_KINDS.map((k) => [k, 0])) as Record<WriteKind, number>
  for (const read of reads) {
    const counted = rowsAt(read.start)
    const byInstance = instanceRow(read.instance)
    byInstance.reads++
    for (const r of counted) r.reads++
    if (read.version < 0) continue // absent or failed: not an old value
    byInstance.valueReads++
    const history = histories.get(read.key)
    if (history === undefined) continue
    const bound = lastResolvedBy(history, read.start - maxStalenessMs)
    if (bound >= 0 && read.version < history.requiredAt[bound]!) {
      const op = history.requiredBy[bound]!
      for (const r of counted) r.violations++
      byInstance.violations++
      violationsByKind[op.kind]++
      violations.push({
        instance: read.instance,
        key: read.key,
        start: read.start,
        version: read.version,
        shouldBeAtLeast: history.requiredAt[bound]!,
        requiredBy: op.kind,
        writer: op.instance,
        behindMs: read.start - op.end,
        window: windowOf(read.start),
      })
    }
    // Staleness: how long before this read the first operation requiring newer than what it returned had resolved.
    const first = firstRequiringAbove(history, read.version)
    if (first >= 0 && history.ops[first]!.end <= read.start) {
      const behind = read.start - history.ops[first]!.end
      for (const r of counted) r.maxStalenessMs = Math.max(r.maxStalenessMs, behind)
    }
  }

  // Propagation: for each resolved operation and each other instance, the first read there that returned its version or newer.
  const readsBy = new Map<string, Read[]>()
  for (const read of reads) {
    const id = `${read.instance}:${read.key}`
    let list = readsBy.get(id)
    if (list === undefined) readsBy.set(id, (list = []))
    list.push(read)
  }
  for (const list of readsBy.values()) list.sort((a, b) => a.start - b.start)
  const firstReadFrom = (list: Read[], time: number): number => {
    let lo = 0
    let hi = list.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (list[mid]!.start < time) lo = mid + 1
      else hi = mid
    }
    return lo
  }
  const writesByKind = Object.fromEntries(WRITE_KINDS.map((k) => [k, 0])) as Record<WriteKind, number>
  for (const write of writes) {
    const byInstance = instanceRow(write.instance)
    byInstance.keys.add(write.key)
    const opId = `${write.instance}:${write.start}`
    if (!write.ok) {
      byInstance.rejected.add(write.start)
      continue
    }
    const counted = rowsAt(write.end)
    if (!byInstance.ops.has(write.start)) {
      byInstance.ops.add(write.start)
      writesByKind[write.kind]++
    }
    for (const r of counted) r.ops.add(opId)
    for (let instance = 0; instance < config.instances; instance++) {
      if (instance === write.instance) continue
      const list = readsBy.get(`${instance}:${write.key}`) ?? []
      for (let i = firstReadFrom(list, write.end); i < list.length; i++) {
        if (list[i]!.version >= write.version) {
          for (const r of counted) r.delays.push(list[i]!.start - write.end)
          break
        }
      }
    }
  }

  const finish = (r: Accumulator): FaultRow => {
    const delays = r.delays.sort((a, b) => a - b)
    const pick = (q: number) => (delays.length === 0 ? 0 : delays[Math.min(delays.length - 1, Math.floor(q * delays.length))]!)
    const { delays: _delays, ops, ...rest } = r
    return { ...rest, writes: ops.size, propagation: { p50: pick(0.5), p99: pick(0.99), max: delays.at(-1) ?? 0, samples: delays.length } }
  }
  return {
    rows: [...rows.values()].map(finish),
    total: finish(all),
    instances: [...perInstance.values()]
      .sort((a, b) => a.instance - b.instance)
      .map(({ keys, ops, rejected, ...row }) => ({
        ...row,
        writes: ops.size,
        rejectedWrites: rejected.size,
        keysWritten: keys.size,
        gapsSeen: 0,
        stats: { l1Hits: 0, l2Hits: 0, factoryCalls: 0, factoryErrors: 0, staleServed: 0, failSafe: 0, leaseWaits: 0, outageReuses: 0, l2CallsSkipped: 0 },
      })),
    violations,
    violationsByKind,
    writesByKind,
    writersPerKey,
    writeOrderAnomalies,
  }
}

export function formatReport(report: CheckerReport): string {
  const ms = (n: number) => n.toFixed(2)
  const lines = [
    '| window | injections | reads | writes | violations | max staleness (ms) | propagation p50 / p99 / max (ms) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const r of [...report.rows, report.total]) {
    lines.push(
      `| ${r.window} | ${r.injections} | ${r.reads} | ${r.writes} | ${r.violations} | ${ms(r.maxStalenessMs)} | ${ms(r.propagation.p50)} / ${ms(r.propagation.p99)} / ${ms(r.propagation.max)} |`,
    )
  }
  lines.push(
    '',
    '| instance | grace | reads | violations | writes (rejected) | keys written | gaps | L1 / L2 hits | factory calls (errors) | stale served | fail-safe | outage reuses |',
    '| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  )
  for (const i of report.instances) {
    lines.push(
      `| ${i.instance} | ${i.grace ? 'yes' : 'no'} | ${i.reads} | ${i.violations} | ${i.writes} (${i.rejectedWrites}) | ${i.keysWritten} | ${i.gapsSeen} | ${i.stats.l1Hits} / ${i.stats.l2Hits} | ${i.stats.factoryCalls} (${i.stats.factoryErrors}) | ${i.stats.staleServed} | ${i.stats.failSafe} | ${i.stats.outageReuses} |`,
    )
  }
  const kinds = (counts: Record<WriteKind, number>) => WRITE_KINDS.map((k) => `${k} ${counts[k]}`).join(', ')
  const o = report.options
  lines.push(
    '',
    `${o.instances} instances, ${o.keys} keys, maxStaleness ${o.maxStalenessMs} ms, ${(report.durationMs / 1000).toFixed(1)} s` +
      (o.switchOff === undefined ? '' : `, ${o.switchOff} switched off`) +
      (o.maxmemory === undefined ? '' : `, maxmemory ${o.maxmemory.bytes} ${o.maxmemory.policy}: ${report.evictedKeys} keys evicted`),
    `writes resolved: ${kinds(report.writesByKind)}; violations by the write that required newer: ${kinds(report.violationsByKind)}; write-order anomalies: ${report.writeOrderAnomalies}; writers per key: ${report.writersPerKey.join(' ')}`,
  )
  return lines.join('\n')
}
