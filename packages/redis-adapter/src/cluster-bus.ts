import type { Cluster, Redis } from 'ioredis'
import { clock, type BusMember, type BusMembership, type ConnectionChange, type Logger } from '@tiercache/core/adapter'
import { BusCore, MAX_OUTSTANDING_PROBES } from './bus-common.js'
import { watchConnection, type WatchLease } from './connection-state.js'
import { acquireCommandConnection, closeConnection, openNodeConnection, type ClusterSeed, type ConnectionLease } from './connections.js'
import { clusterGroups, slotOf } from './keyspace.js'
import type { RedisBus, RedisBusStatus } from './bus-common.js'

export interface ClusterBusConfig {
  input: Cluster | readonly ClusterSeed[]
  prefix: string
  /** The base channel; group n's shard channel is `<channel>{<prefix>/n}` (keyspace.ts). */
  channel: string
  timeoutMs: number
  maxStalenessMs: number
  probeIntervalMs: number
  logger?: Logger | undefined
}

/** How often the shard plan is checked against CLUSTER SLOTS when nothing broke (slots can move without a disconnect). */
const REPLAN_INTERVAL_MS = 5_000

/**
 * One subscriber connection to one primary, subscribed to the shard channels
 * of the groups whose slots it serves. Never reconnected: after a break the
 * bus replans, since the slots may have moved (a failover, a reshard).
 */
interface ShardLink {
  readonly node: string
  readonly client: Redis
  readonly channels: readonly string[]
  /** Send times of probes awaiting their answer, oldest first. */
  outstanding: number[]
  /** Send time of the latest answered probe: the subscription was active then. */
  verifiedAt: number
  broken: boolean
}

/**
 * Invalidations over sharded pub/sub on Redis Cluster. Each write publishes
 * (SPUBLISH, in its write's script) on the shard channel of its key's group,
 * so the message stays within the shard that holds the key instead of being
 * broadcast over the whole cluster bus. Every instance subscribes to all
 * KEY_GROUPS channels, one connection per primary.
 *
 * Liveness is per shard: each connection is probed on its own, and L1 is
 * trusted only up to the oldest proof among them. A break of any one opens
 * a gap for the whole bus (a lost message may concern any cache): the links
 * are replanned from CLUSTER SLOTS, and once every link has answered a probe
 * again, every L1 on the bus is emptied and trusted again.
 */
export class ClusterShardedBus implements RedisBus {
  #config: ClusterBusConfig
  #core: BusCore
  #publisher: ConnectionLease
  #cluster: Cluster
  /** The cluster connection's state: what ready(), onConnectionChange and the log report (shard links are replanned, not watched). */
  #watch: WatchLease
  #channels: readonly string[]
  #channelSet: ReadonlySet<string>
  #links = new Set<ShardLink>()
  /** Round-robin over the group channels for publishes that do not go through a tier's script. */
  #nextChannel = 0
  #planning: Promise<void> | undefined
  #plannedAt = Number.NEGATIVE_INFINITY
  #planError: string | undefined
  #probeTimer: NodeJS.Timeout

  constructor(config: ClusterBusConfig) {
    this.#config = config
    this.#publisher = acquireCommandConnection(config.input)
    this.#cluster = this.#publisher.client as Cluster
    this.#channels = clusterGroups(config.prefix).map((group) => `${config.channel}${group}`)
    this.#channelSet = new Set(this.#channels)
    this.#watch = watchConnection(this.#cluster)
    const watch = this.#watch.watch
    // Every instance subscribes to every group's channel, so any one carries a message to all; spread over the shards.
    // A publish while the cluster is known down fails at once instead of waiting out the timeout in ioredis's queue.
    const send = (message: string) =>
      watch.available()
        ? this.#cluster.spublish(this.#channels[this.#nextChannel++ % this.#channels.length]!, message)
        : Promise.reject(new Error(`the connection to ${watch.endpoint} is down (${watch.describeCause()})`))
    this.#core = new BusCore(config, watch, this.#cluster, send, () =>
      this.#planError === undefined ? undefined : `shard plan incomplete: ${this.#planError}`,
    )
    this.#probeTimer = setInterval(() => this.#tick(), config.probeIntervalMs)
    this.#probeTimer.unref()
    void this.#replan()
  }

  ready(options?: { timeout?: number | string }): Promise<void> {
    return this.#core.ready(options)
  }

  onConnectionChange(listener: (change: ConnectionChange) => void): () => void {
    return this.#core.onConnectionChange(listener)
  }

  join(member: BusMember): BusMembership {
    return this.#core.join(member)
  }

  // -------------------------------------------------------------- the shards

  /** Reads the slot map and makes the links match it: one per primary that serves a group channel. */
  #replan(): Promise<void> {
    this.#planning ??= this.#plan().finally(() => (this.#planning = undefined))
    return this.#planning
  }

  async #plan(): Promise<void> {
    let ranges: Array<[number, number, ...Array<[string, number, ...unknown[]]>]>
    try {
      ranges = (await this.#cluster.cluster('SLOTS')) as unknown as typeof ranges
    } catch (error) {
      this.#planError = error instanceof Error ? error.message : String(error)
      return // the next tick tries again
    }
    if (this.#core.closed) return
    this.#plannedAt = clock()
    const wanted = new Map<string, { host: string; port: number; channels: string[] }>()
    for (const channel of this.#channels) {
      const slot = slotOf(channel)
      const range = ranges.find(([start, end]) => slot >= start && slot <= end)
      if (range === undefined) {
        this.#planError = `slot ${slot} is not served`
        return
      }
      const [host, port] = range[2]!
      const node = `${host}:${port}`
      let shard = wanted.get(node)
      if (shard === undefined) wanted.set(node, (shard = { host, port, channels: [] }))
      shard.channels.push(channel)
    }
    this.#planError = undefined
    for (const link of this.#links) {
      const shard = wanted.get(link.node)
      if (shard !== undefined && sameChannels(shard.channels, link.channels)) wanted.delete(link.node)
      else link.client.disconnect() // its slots moved: the close is a break, and a gap
    }
    for (const [node, shard] of wanted) this.#open(node, shard.host, shard.port, shard.channels)
  }

  #open(node: string, host: string, port: number, channels: readonly string[]): void {
    const client = openNodeConnection(this.#cluster, host, port, 'tiercache:bus')
    const link: ShardLink = { node, client, channels, outstanding: [], verifiedAt: Number.NEGATIVE_INFINITY, broken: false }
    this.#links.add(link)
    client.on('smessage', (channel: string, message: string) => {
      if (this.#channelSet.has(channel)) this.#core.receive(message)
    })
    // Subscribed before the first probe, so the probe's answer proves the
    // subscriptions. One SSUBSCRIBE per channel: one command takes channels of
    // one slot only. One refused (MOVED: the plan is already out of date)
    // must not leave a proven link without it: the link is dropped instead.
    client.on('ready', () => {
      for (const channel of channels) client.ssubscribe(channel).catch(() => client.disconnect())
      this.#probe(link)
    })
    // The node gave up one of our channels' slots (Redis unsubscribes us, ioredis says 'moved').
    client.on('moved', () => client.disconnect())
    client.on('close', () => this.#onBreak(link))
  }

  // --------------------------------------------------------------- liveness

  #onBreak(link: ShardLink): void {
    if (link.broken) return
    link.broken = true
    this.#links.delete(link)
    if (this.#core.closed) return
    this.#core.openGap()
    // At once, unless the slot map was read within a probe interval: while a dead
    // primary is still listed (before its replica takes over), replanning on every
    // refused connection would spin; the next tick replans instead.
    if (clock() - this.#plannedAt >= this.#config.probeIntervalMs) void this.#replan()
  }

  #tick(): void {
    if (this.#core.closed) return
    const now = clock()
    for (const link of this.#links) {
      const oldest = link.outstanding[0]
      if (oldest !== undefined && now - oldest > 3 * this.#config.maxStalenessMs) {
        link.client.disconnect() // half-dead (a silent partition): the close is a break
        continue
      }
      this.#probe(link)
    }
    if (!this.#covered() || now - this.#plannedAt > REPLAN_INTERVAL_MS) void this.#replan()
  }

  /** Every group channel has a live link. */
  #covered(): boolean {
    let channels = 0
    for (const link of this.#links) channels += link.channels.length
    return channels === this.#channels.length
  }

  /** A PING on a subscriber connection is answered after every message published on that shard before it. */
  #probe(link: ShardLink): void {
    if (this.#core.closed || link.broken || link.client.status !== 'ready') return
    if (link.outstanding.length >= MAX_OUTSTANDING_PROBES) return
    const sentAt = clock()
    link.outstanding.push(sentAt)
    link.client.ping().then(
      () => {
        if (link.broken) return
        link.outstanding.shift()
        if (sentAt > link.verifiedAt) link.verifiedAt = sentAt
        this.#core.lastRoundTripMs = clock() - sentAt
        this.#onProbeAnswered()
      },
      () => {
        // Failed probes prove nothing; the close event handles the connection.
      },
    )
  }

  /** L1 is trusted up to the oldest shard's proof, once every channel is covered and proven. */
  #onProbeAnswered(): void {
    if (!this.#covered()) return
    let verifiedAt = Number.POSITIVE_INFINITY
    for (const link of this.#links) verifiedAt = Math.min(verifiedAt, link.verifiedAt)
    if (verifiedAt !== Number.NEGATIVE_INFINITY) this.#core.proven(verifiedAt)
  }

  status(): RedisBusStatus {
    let linksReady = true
    for (const link of this.#links) linksReady &&= link.client.status === 'ready'
    return {
      ...this.#core.status(linksReady && this.#covered() && this.#cluster.status === 'ready'),
      shards: this.#links.size,
      ...(this.#planError === undefined ? {} : { shardPlan: `incomplete: ${this.#planError}` }),
    }
  }

  async close(): Promise<void> {
    if (!this.#core.close()) return
    clearInterval(this.#probeTimer)
    // A plan still waiting for CLUSTER SLOTS opens nothing once it sees the bus closed; not awaited, as an unreachable cluster would hold close().
    const links = [...this.#links]
    this.#links.clear()
    this.#watch.release()
    await Promise.all([...links.map((link) => closeConnection(link.client)), this.#publisher.release()])
  }
}

function sameChannels(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((channel, i) => channel === b[i])
}
