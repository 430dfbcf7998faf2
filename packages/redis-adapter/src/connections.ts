import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import { isWrongDatabase } from './connection-errors.js'
import { CONNECTION_DEFAULTS, optionsFor, urlTargetOf, type UrlTarget } from './connection-options.js'
import { isClientLike, type ClusterSeed, type RedisInput, type RedisUrlWithOptions } from './redis-input.js'

export { assertRedisInput } from './redis-input.js'
export type { ClusterSeed, RedisClientLike, RedisConnectionOptions, RedisInput, RedisUrlWithOptions } from './redis-input.js'

/**
 * A command connection: one server (standalone, Sentinel) or a whole Redis
 * Cluster. Typed with the ioredis this package is built against; a client
 * the user passes (ioredis 5.3+ or 6, by shape) is used as one: every member
 * called on it exists with the same behaviour in both majors.
 */
export type RedisClient = Redis | Cluster

export function isCluster(client: RedisClient): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true
}

/** A URL, alone or with options: a connection tiercache opens (and shares) itself. */
export function isUrlInput(input: RedisInput): input is string | RedisUrlWithOptions {
  return typeof input === 'string' || (!Array.isArray(input) && !isClientLike(input))
}

export interface ConnectionLease {
  readonly client: RedisClient
  /** Gives the connection back; the last lease of a connection tiercache opened closes it. */
  release(): Promise<void>
}

interface Shared {
  client: RedisClient
  leases: number
}

/**
 * Command connections opened from a URL are shared per URL and options
 * within the process, so every cache and the bus of a service use one
 * connection (plus the bus's subscriber) however many caches it declares.
 */
const sharedByUrl = new Map<string, Shared>()

/** A command connection for `input`: shared per URL and options (or seed list), or the caller's own client (never closed by us). */
export function acquireCommandConnection(input: RedisInput): ConnectionLease {
  if (!Array.isArray(input) && !isUrlInput(input)) return { client: input as unknown as RedisClient, release: async () => {} }
  const target = Array.isArray(input) ? undefined : urlTargetOf(input as string | RedisUrlWithOptions)
  const seeds = input as readonly ClusterSeed[]
  const sharingKey = target?.sharingKey ?? `cluster:${JSON.stringify(seeds)}`
  let shared = sharedByUrl.get(sharingKey)
  if (shared === undefined) {
    shared = { client: target !== undefined ? openConnection(target, 'command') : openCluster(seeds, 'tiercache'), leases: 0 }
    sharedByUrl.set(sharingKey, shared)
  }
  shared.leases++
  const entry = shared
  let released = false
  return {
    client: entry.client,
    release: async () => {
      if (released) return
      released = true
      if (--entry.leases > 0) return
      if (sharedByUrl.get(sharingKey) === entry) sharedByUrl.delete(sharingKey)
      await closeConnection(entry.client)
    },
  }
}

/** A bus's subscriber connection (it cannot share a command connection). Always ours to close. Not for Cluster: see openNodeConnection. */
export function openSubscriberConnection(input: string | RedisUrlWithOptions | Redis, overrides: RedisOptions = {}): Redis {
  if (isUrlInput(input)) return openConnection(urlTargetOf(input), 'subscriber', overrides)
  // Behind Sentinel, a failover demotes the primary without closing its pub/sub
  // connections: a subscriber left there would still answer probes while
  // missing what the new primary publishes until the replica has resynced.
  // The failover detector (sentinels' +switch-master) moves it to the new
  // primary, and that reconnect is a gap: every L1 on the bus is emptied.
  const sentinel = (input.options.sentinels?.length ?? 0) > 0 ? { failoverDetector: true } : {}
  const duplicate = input.duplicate({ ...CONNECTION_DEFAULTS, ...sentinel, ...overrides, connectionName: 'tiercache:bus' })
  duplicate.on('error', () => {})
  return duplicate
}

function openConnection(target: UrlTarget, role: 'command' | 'subscriber', overrides: RedisOptions = {}): Redis {
  const client = new Redis(target.url, optionsFor(target, role, overrides))
  // Connection errors surface through the commands that fail and through
  // status(); without a listener ioredis would print every reconnect attempt.
  // A database that does not exist: ioredis reports the failed SELECT, then
  // goes on in database 0 and sends what was queued there. Closed at once
  // instead, for good (the watch keeps the error as the cause), so nothing
  // of this cache is read from or written to another database.
  client.on('error', (error: unknown) => {
    if (isWrongDatabase(error)) client.disconnect()
  })
  return client
}

/**
 * A Cluster from seed nodes, with the same per-connection defaults. Credentials
 * and TLS come from the first seed given as a URL.
 */
function openCluster(seeds: readonly ClusterSeed[], connectionName: string): Cluster {
  const nodes = seeds.map((seed) => {
    if (typeof seed !== 'string') return { host: seed.host, port: seed.port }
    const url = new URL(seed)
    return { host: url.hostname, port: Number(url.port || 6379) }
  })
  const first = seeds.find((seed): seed is string => typeof seed === 'string')
  const credentials: RedisOptions = {}
  if (first !== undefined) {
    const url = new URL(first)
    if (url.username !== '') credentials.username = decodeURIComponent(url.username)
    if (url.password !== '') credentials.password = decodeURIComponent(url.password)
    if (url.protocol === 'rediss:') credentials.tls = {}
  }
  const options: ClusterOptions = {
    enableAutoPipelining: false,
    redisOptions: { ...CONNECTION_DEFAULTS, ...credentials, connectionName },
  }
  const cluster = new Cluster(nodes, options)
  cluster.on('error', () => {})
  return cluster
}

/**
 * A dedicated connection to one node of a Cluster (the bus's per-shard
 * subscriber), with the Cluster's credentials, TLS and NAT mapping. Never
 * reconnects by itself: its owner replans the shards after a break.
 */
export function openNodeConnection(cluster: Cluster, host: string, port: number, connectionName: string): Redis {
  const mapped = natMapped(cluster.options.natMap, host, port)
  const client = new Redis({
    ...cluster.options.redisOptions,
    ...CONNECTION_DEFAULTS,
    host: mapped.host,
    port: mapped.port,
    connectionName,
    lazyConnect: false,
    autoResubscribe: false,
    retryStrategy: () => null,
  })
  client.on('error', () => {})
  return client
}

function natMapped(natMap: ClusterOptions['natMap'], host: string, port: number): { host: string; port: number } {
  if (natMap === undefined) return { host, port }
  const key = `${host}:${port}`
  return (typeof natMap === 'function' ? natMap(key) : natMap[key]) ?? { host, port }
}

/** Closes gracefully when connected, at once otherwise (QUIT on a dead socket would wait for a reconnect). */
export async function closeConnection(client: RedisClient): Promise<void> {
  if (client.status === 'ready') {
    const quitting = client.quit()
    // If the wait below gives up first, the disconnect that follows rejects QUIT
    // ("Connection is closed"): that rejection has nobody waiting for it.
    quitting.catch(() => {})
    try {
      await Promise.race([quitting, new Promise((resolve) => setTimeout(resolve, 500).unref())])
    } catch {
      // Closing anyway.
    }
  }
  client.disconnect()
}
