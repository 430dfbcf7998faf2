import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { freePort, PortTakenError, processIdOf, rawReply, redisServerBinary, RedisServer, START_ATTEMPTS } from './redis-server.js'

const MASTER_NAME = 'tiercache-test'
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
/** A short-lived connection to one sentinel; its errors surface through the commands that fail. */
function sentinelClient(port: number): Redis {
  const client = new Redis({ port, host: '127.0.0.1', lazyConnect: true, maxRetriesPerRequest: 0 })
  client.on('error', () => {})
  return client
}
const sentinels = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of sentinels) child.kill('SIGKILL')
})

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null

/** SIGTERM (SIGKILL if it lingers 3 s), and resolves once the process is gone. */
function stopChild(child: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (exited(child)) return resolve()
    const timer = setTimeout(() => child.kill('SIGKILL'), 3_000)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    // A paused process cannot act on SIGTERM.
    child.kill('SIGCONT')
    child.kill('SIGTERM')
  })
}

/** The process_id of a Redis answering on `port`, if any. */
async function holderPid(port: number): Promise<number | undefined> {
  try {
    return processIdOf(await rawReply(port, 'INFO server', 500))
  } catch {
    return undefined
  }
}

/**
 * Resolves once the process answering on `port` is `child` (INFO's
 * process_id is its pid). Every test file's sentinels monitor the same master
 * name, so any other check (a PONG, SENTINEL REPLICAS) would also pass
 * against another file's sentinel that took the port between `freePort()` and
 * our bind. Throws PortTakenError if another Redis answers there or ours
 * cannot bind; the caller kills the child and tries a new port.
 */
async function provenOurs(port: number, child: ChildProcess, output: () => string): Promise<void> {
  const deadline = Date.now() + 5_000
  while (Date.now() < deadline) {
    if (exited(child)) {
      const log = output().trim()
      if (/Address already in use/.test(log)) {
        throw new PortTakenError(port, await holderPid(port), `the sentinel could not bind: ${log}`)
      }
      throw new Error(`the sentinel exited at start on port ${port}: ${log}`)
    }
    const pid = await holderPid(port)
    if (pid === child.pid) return
    if (pid !== undefined) {
      throw new PortTakenError(port, pid, `it answered INFO with process_id ${pid}, not our sentinel's (${child.pid})`)
    }
    await sleep(20)
  }
  throw new Error(`the sentinel on port ${port} did not answer INFO with its pid ${child.pid} within 5 s`)
}

/**
 * Launches one sentinel monitoring `primaryPort` on a free port and resolves
 * once it proves to own that port; a taken port (or any other failed
 * attempt) is dropped and the next attempt takes a new one.
 */
async function startSentinel(dir: string, primaryPort: number): Promise<{ port: number; child: ChildProcess }> {
  const failures: string[] = []
  for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
    const port = await freePort()
    // Per port: a sentinel rewrites its own config file, so no two may share one.
    const conf = join(dir, `sentinel-${port}.conf`)
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${primaryPort} 2`,
        `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
        `sentinel failover-timeout ${MASTER_NAME} 5000`,
        '',
      ].join('\n'),
    )
    const child = spawn(redisServerBinary(), [conf, '--sentinel', '--loglevel', 'warning'], { stdio: ['ignore', 'pipe', 'pipe'] })
    sentinels.add(child)
    child.once('exit', () => sentinels.delete(child))
    // A sentinel logs to stdout (a failed bind included). Both pipes are read for
    // its whole life, or a full pipe would block it; only the tail is kept.
    let output = ''
    const keep = (data: unknown) => (output = (output + String(data)).slice(-4_000))
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    try {
      await provenOurs(port, child, () => output)
      return { port, child }
    } catch (error) {
      failures.push(`attempt ${attempt + 1} (port ${port}): ${error instanceof Error ? error.message : String(error)}`)
      await stopChild(child)
      rmSync(conf, { force: true })
    }
  }
  throw new Error(`could not start a sentinel in ${START_ATTEMPTS} attempts:\n${failures.join('\n')}`)
}

/**
 * A Sentinel-managed set started by a test: one primary, one replica and
 * three sentinels (`redis-server <conf> --sentinel`), all on free loopback
 * ports, each proven to be the process this group spawned, all stopped by
 * `stop()`.
 */
export class SentinelGroup {
  readonly masterName = MASTER_NAME
  readonly servers: RedisServer[]
  readonly sentinelPorts: number[]
  #children: ChildProcess[]
  #dir: string

  private constructor(servers: RedisServer[], sentinelPorts: number[], children: ChildProcess[], dir: string) {
    this.servers = servers
    this.sentinelPorts = sentinelPorts
    this.#children = children
    this.#dir = dir
  }

  /** The pids of the sentinels, in the order of `sentinelPorts` (what their INFO reports as `process_id`). */
  get sentinelPids(): number[] {
    return this.#children.map((child) => child.pid!)
  }

  static async start(): Promise<SentinelGroup> {
    // Filled in as processes start, so a failure part-way stops what did start.
    const group = new SentinelGroup([], [], [], mkdtempSync(join(tmpdir(), 'tiercache-sentinel-')))
    try {
      await group.#start()
      return group
    } catch (error) {
      await group.stop()
      throw error
    }
  }

  async #start(): Promise<void> {
    const primary = await RedisServer.start()
    this.servers.push(primary)
    const replica = await RedisServer.start()
    this.servers.push(replica)
    // Either may become the primary; neither should hold a (re)syncing replica
    // back 5 s (the default delay before a diskless full sync starts).
    for (const server of [primary, replica]) server.cli('CONFIG', 'SET', 'repl-diskless-sync-delay', '0')
    replica.cli('REPLICAOF', '127.0.0.1', String(primary.port))
    const linked = Date.now() + 10_000
    while (!primary.cli('INFO', 'replication').includes('state=online')) {
      if (Date.now() > linked) throw new Error('the replica did not come online within 10 s')
      await sleep(50)
    }
    for (let i = 0; i < 3; i++) {
      const { port, child } = await startSentinel(this.#dir, primary.port)
      this.#children.push(child)
      this.sentinelPorts.push(port)
    }
    // Ready when every sentinel knows the replica (a failover needs one to
    // promote). Each port was proven to be held by our child, and stays so while
    // that child lives, so these answers are our sentinels'.
    const deadline = Date.now() + 15_000
    for (const [i, port] of this.sentinelPorts.entries()) {
      const child = this.#children[i]!
      for (;;) {
        if (exited(child)) throw new Error(`the sentinel on port ${port} exited before it knew the replica`)
        if (Date.now() > deadline) throw new Error(`sentinel on port ${port} did not come up knowing the replica within 15 s`)
        const sentinel = sentinelClient(port)
        try {
          await sentinel.connect()
          const replicas = (await sentinel.call('SENTINEL', 'REPLICAS', MASTER_NAME)) as unknown[]
          if (replicas.length > 0) break
        } catch {
          // not answering yet
        } finally {
          sentinel.disconnect()
        }
        await sleep(100)
      }
    }
  }

  /** ioredis connection options that find the primary through the sentinels. */
  clientOptions(): { sentinels: Array<{ host: string; port: number }>; name: string } {
    return { sentinels: this.sentinelPorts.map((port) => ({ host: '127.0.0.1', port })), name: MASTER_NAME }
  }

  /** The port the sentinels name as primary now. */
  async primaryPort(): Promise<number> {
    const sentinel = sentinelClient(this.sentinelPorts[0]!)
    try {
      const [, port] = (await sentinel.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', MASTER_NAME)) as [string, string]
      return Number(port)
    } finally {
      sentinel.disconnect()
    }
  }

  /** The server at `port`. */
  server(port: number): RedisServer {
    const server = this.servers.find((s) => s.port === port)
    if (server === undefined) throw new Error(`no server of this group on port ${port}`)
    return server
  }

  /** SENTINEL FAILOVER, then waits until the other server is primary, the sentinels say so, and the old primary is a replica. */
  async failover({ untilOldPrimaryIsReplica = true } = {}): Promise<{ from: number; to: number }> {
    const from = await this.primaryPort()
    const sentinel = sentinelClient(this.sentinelPorts[0]!)
    // A hang guard, not a speed target: on a loaded 2-core box a forced
    // failover took over 20 s to be reported (CI run at load ~14).
    const deadline = Date.now() + 45_000
    try {
      // NOGOODSLAVE until the sentinel has seen the replica's link up in its INFO (sampled every few seconds).
      for (;;) {
        try {
          await sentinel.call('SENTINEL', 'FAILOVER', MASTER_NAME)
          break
        } catch (error) {
          if (!String(error).includes('NOGOODSLAVE') || Date.now() > deadline) throw error
          await sleep(200)
        }
      }
    } finally {
      sentinel.disconnect()
    }
    let to = from
    for (;;) {
      to = await this.primaryPort()
      if (to !== from && this.#role(to) === 'master') break
      if (Date.now() > deadline) throw new Error(`failover from ${from} did not complete within 45 s`)
      await sleep(100)
    }
    // Complete means the old primary was reconfigured as a replica too: until then
    // it still takes writes from any client that reaches it, and loses them when
    // it resyncs (the split-brain window the README describes).
    const reconfigured = Date.now() + 30_000
    while (untilOldPrimaryIsReplica && this.#role(from) !== 'slave') {
      if (Date.now() > reconfigured) throw new Error(`the old primary ${from} was not reconfigured as a replica within 30 s`)
      await sleep(100)
    }
    return { from, to }
  }

  /** 'master', 'slave', or undefined while the server is unreachable (it drops its clients when its role changes). */
  #role(port: number): string | undefined {
    try {
      return this.server(port).cli('ROLE').split('\n')[0]
    } catch {
      return undefined
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.#children.map(stopChild))
    await Promise.all(this.servers.map((server) => server.stop()))
    rmSync(this.#dir, { recursive: true, force: true })
  }
}
