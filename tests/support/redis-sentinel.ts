import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { freePort, redisServerBinary, RedisServer } from './redis-server.js'

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

/**
 * A Sentinel-managed set started by a test: one primary, one replica and
 * three sentinels (`redis-server <conf> --sentinel`), all on free loopback
 * ports, all stopped by `stop()`.
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

  static async start(): Promise<SentinelGroup> {
    const primary = await RedisServer.start()
    const replica = await RedisServer.start()
    // Either may become the primary; neither should hold a (re)syncing replica
    // back 5 s (the default delay before a diskless full sync starts).
    for (const server of [primary, replica]) server.cli('CONFIG', 'SET', 'repl-diskless-sync-delay', '0')
    replica.cli('REPLICAOF', '127.0.0.1', String(primary.port))
    const linked = Date.now() + 10_000
    while (!primary.cli('INFO', 'replication').includes('state=online')) {
      if (Date.now() > linked) throw new Error('the replica did not come online within 10 s')
      await sleep(50)
    }
    const dir = mkdtempSync(join(tmpdir(), 'tiercache-sentinel-'))
    const ports: number[] = []
    const children: ChildProcess[] = []
    for (let i = 0; i < 3; i++) {
      const port = await freePort()
      const conf = join(dir, `sentinel-${port}.conf`)
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${MASTER_NAME} 127.0.0.1 ${primary.port} 2`,
          `sentinel down-after-milliseconds ${MASTER_NAME} 1000`,
          `sentinel failover-timeout ${MASTER_NAME} 5000`,
          '',
        ].join('\n'),
      )
      const child = spawn(redisServerBinary(), [conf, '--sentinel', '--loglevel', 'warning'], { stdio: 'ignore' })
      sentinels.add(child)
      child.once('exit', () => sentinels.delete(child))
      children.push(child)
      ports.push(port)
    }
    const group = new SentinelGroup([primary, replica], ports, children, dir)
    // Ready when every sentinel answers and knows the replica (a failover needs one to promote).
    const deadline = Date.now() + 15_000
    for (const port of ports) {
      for (;;) {
        if (Date.now() > deadline) {
          await group.stop()
          throw new Error(`sentinel on port ${port} did not come up knowing the replica within 15 s`)
        }
        try {
          const sentinel = sentinelClient(port)
          await sentinel.connect()
          const replicas = (await sentinel.call('SENTINEL', 'REPLICAS', MASTER_NAME)) as unknown[]
          sentinel.disconnect()
          if (replicas.length > 0) break
        } catch {
          // not up yet
        }
        await sleep(100)
      }
    }
    return group
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
    const deadline = Date.now() + 20_000
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
      if (Date.now() > deadline) throw new Error(`failover from ${from} did not complete within 20 s`)
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
    await Promise.all(
      this.#children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve()
            child.once('exit', () => resolve())
            child.kill('SIGTERM')
          }),
      ),
    )
    await Promise.all(this.servers.map((server) => server.stop()))
    rmSync(this.#dir, { recursive: true, force: true })
  }
}
