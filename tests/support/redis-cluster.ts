import { spawnSync } from 'node:child_process'
import { Cluster } from 'ioredis'
import { freePort, RedisServer } from './redis-server.js'

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/** How long a node may be unreachable before the cluster fails it over (the Redis default is 15 s). */
const NODE_TIMEOUT_MS = 1_000

/**
 * A Redis Cluster started by a test: `primaries` primaries and as many
 * replicas, each a `redis-server --cluster-enabled yes` on free loopback
 * ports (the cluster bus on a second free port: port + 10000 may not exist),
 * joined by `redis-cli --cluster create`. All stopped by `stop()`.
 */
export class ClusterGroup {
  readonly servers: RedisServer[]

  private constructor(servers: RedisServer[]) {
    this.servers = servers
  }

  static async start({ primaries = 3, replicasPerPrimary = 1 } = {}): Promise<ClusterGroup> {
    const count = primaries * (1 + replicasPerPrimary)
    const servers: RedisServer[] = []
    try {
      for (let i = 0; i < count; i++) {
        servers.push(
          // A function, so a start attempt that lost a port race retries with a fresh bus port too.
          await RedisServer.start(async () => [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            'nodes.conf',
            '--cluster-port',
            String(await freePort()),
            '--cluster-node-timeout',
            String(NODE_TIMEOUT_MS),
            // A replica may take over however long it was cut off: the test kills primaries on purpose.
            '--cluster-replica-validity-factor',
            '0',
            '--repl-diskless-sync-delay',
            '0',
          ]),
        )
      }
      const created = spawnSync(
        'redis-cli',
        ['--cluster', 'create', ...servers.map((s) => `127.0.0.1:${s.port}`), '--cluster-replicas', String(replicasPerPrimary), '--cluster-yes'],
        { encoding: 'utf8' },
      )
      if (created.status !== 0) throw new Error(`redis-cli --cluster create failed: ${created.stdout}\n${created.stderr}`)
      const group = new ClusterGroup(servers)
      await group.waitUntilHealthy(primaries)
      return group
    } catch (error) {
      await Promise.all(servers.map((s) => s.stop()))
      throw error
    }
  }

  /** Seed nodes for an ioredis Cluster (any node will do; all are listed). */
  get nodes(): Array<{ host: string; port: number }> {
    return this.servers.map((s) => ({ host: '127.0.0.1', port: s.port }))
  }

  /** An ioredis Cluster on this group, with the options tiercache's tests use. */
  client(): Cluster {
    const cluster = new Cluster(this.nodes, { redisOptions: { maxRetriesPerRequest: 1 } })
    cluster.on('error', () => {})
    return cluster
  }

  /** The server at `port`. */
  server(port: number): RedisServer {
    const server = this.servers.find((s) => s.port === port)
    if (server === undefined) throw new Error(`no server of this cluster on port ${port}`)
    return server
  }

  /** Ports of the nodes that are primaries and reachable now. */
  primaryPorts(): number[] {
    return this.servers.filter((s) => this.#role(s) === 'master').map((s) => s.port)
  }

  /** The port of the primary that serves `key`'s slot, as the cluster says now. */
  primaryOf(key: string): number {
    const primary = this.servers.find((server) => this.#role(server) === 'master')
    if (primary === undefined) throw new Error('no reachable primary')
    return this.primaryOfSlot(Number(primary.cli('CLUSTER', 'KEYSLOT', key)))
  }

  /**
   * Kills a primary (SIGKILL) and waits until one of its replicas has taken
   * over and the cluster serves every slot again.
   */
  async failover(port: number): Promise<{ from: number; to: number }> {
    const victim = this.server(port)
    const replicas = this.servers.filter((s) => s !== victim && this.#replicaOf(s) === port)
    if (replicas.length === 0) throw new Error(`primary ${port} has no replica to take over`)
    await victim.kill()
    const deadline = Date.now() + 30_000
    for (;;) {
      const promoted = replicas.find((s) => this.#role(s) === 'master')
      if (promoted !== undefined && this.#clusterOk(promoted)) return { from: port, to: promoted.port }
      if (Date.now() > deadline) throw new Error(`no replica of ${port} took over within 30 s`)
      await sleep(100)
    }
  }

  /**
   * Moves one slot (and its keys) to the primary at `toPort`, the way
   * resharding does: IMPORTING/MIGRATING, MIGRATE, then SETSLOT NODE on every
   * primary.
   */
  moveSlot(slot: number, toPort: number): void {
    const fromPort = this.primaryOfSlot(slot)
    if (fromPort === toPort) return
    const from = this.server(fromPort)
    const to = this.server(toPort)
    const fromId = from.cli('CLUSTER', 'MYID')
    const toId = to.cli('CLUSTER', 'MYID')
    to.cli('CLUSTER', 'SETSLOT', String(slot), 'IMPORTING', fromId)
    from.cli('CLUSTER', 'SETSLOT', String(slot), 'MIGRATING', toId)
    for (;;) {
      const keys = from
        .cli('CLUSTER', 'GETKEYSINSLOT', String(slot), '100')
        .split('\n')
        .filter((k) => k !== '')
      if (keys.length === 0) break
      from.cli('MIGRATE', '127.0.0.1', String(toPort), '', '0', '5000', 'KEYS', ...keys)
    }
    for (const port of [toPort, fromPort, ...this.primaryPorts().filter((p) => p !== toPort && p !== fromPort)]) {
      this.server(port).cli('CLUSTER', 'SETSLOT', String(slot), 'NODE', toId)
    }
  }

  /** The port of the primary serving `slot`, as the first reachable primary says. */
  primaryOfSlot(slot: number): number {
    for (const server of this.servers) {
      if (this.#role(server) !== 'master') continue
      return ownerOfSlot(server.cli('CLUSTER', 'SLOTS'), slot)
    }
    throw new Error('no reachable primary')
  }

  /** Brings a killed node back; it rejoins (as a replica of whoever took over). */
  async restart(port: number): Promise<void> {
    const server = this.server(port)
    await server.restart()
    const deadline = Date.now() + 30_000
    while (!this.#clusterOk(server) || this.#role(server) !== 'slave') {
      if (Date.now() > deadline) throw new Error(`node ${port} did not rejoin as a replica within 30 s`)
      await sleep(100)
    }
  }

  async waitUntilHealthy(primaries: number): Promise<void> {
    const deadline = Date.now() + 30_000
    for (;;) {
      const masters = this.primaryPorts()
      if (masters.length === primaries && this.servers.every((s) => this.#clusterOk(s))) return
      if (Date.now() > deadline) throw new Error('the cluster did not become healthy within 30 s')
      await sleep(100)
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => s.stop()))
  }

  #clusterOk(server: RedisServer): boolean {
    try {
      return server.cli('CLUSTER', 'INFO').includes('cluster_state:ok')
    } catch {
      return false
    }
  }

  /** 'master', 'slave', or undefined while unreachable. */
  #role(server: RedisServer): string | undefined {
    try {
      return server.cli('ROLE').split('\n')[0]
    } catch {
      return undefined
    }
  }

  /** The port of the primary `server` replicates, if it is a replica. */
  #replicaOf(server: RedisServer): number | undefined {
    try {
      const lines = server.cli('ROLE').split('\n')
      return lines[0] === 'slave' ? Number(lines[2]) : undefined
    } catch {
      return undefined
    }
  }
}

/** The primary port serving `slot` in redis-cli's rendering of CLUSTER SLOTS (ranges, then nodes). */
function ownerOfSlot(rendered: string, slot: number): number {
  const lines = rendered.split('\n')
  // Each range renders as: start, end, then per node: ip, port, id (and hostname metadata in 7.0+).
  for (let i = 0; i + 3 < lines.length; i++) {
    const start = Number(lines[i])
    const end = Number(lines[i + 1])
    if (Number.isInteger(start) && Number.isInteger(end) && lines[i + 2] === '127.0.0.1' && slot >= start && slot <= end) {
      return Number(lines[i + 3])
    }
  }
  throw new Error(`slot ${slot} is not served`)
}
