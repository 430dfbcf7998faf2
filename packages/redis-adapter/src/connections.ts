import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis'
import { InvalidOptionError } from '@tiercache/core/adapter'

/** A Redis Cluster seed node: a `redis://` / `rediss://` URL or a host and port. */
export type ClusterSeed = string | { host: string; port: number }

/**
 * Where to reach Redis: a `redis://` / `rediss://` URL, an ioredis client the
 * caller owns (`Redis`, or `Cluster` for Redis Cluster), or a list of Redis
 * Cluster seed nodes (one shared `Cluster` per list within the process).
 */
export type RedisInput = string | Redis | Cluster | readonly ClusterSeed[]

/** A command connection: one server (standalone, Sentinel) or a whole Redis Cluster. */
export type RedisClient = Redis | Cluster

export function isCluster(client: RedisClient): client is Cluster {
  return (client as { isCluster?: boolean }).isCluster === true
}

/**
 * Options for every connection tiercache opens itself. Commands never wait
 * forever: one retry across a reconnect, then the caller's timeout decides.
 * No ioredis auto-pipelining: reads and writes are already batched per tick
 * into one script call each (read-batcher.ts, write-batcher.ts), and
 * auto-pipelining would only add a `setImmediate` and a Pipeline per call.
 */
const CONNECTION_DEFAULTS: RedisOptions = {
  maxRetriesPerRequest: 1,
  enableAutoPipelining: false,
  connectTimeout: 2_000,
  retryStrategy: (attempt: number) => Math.min(50 * attempt, 1_000),
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
 * Command connections opened from a URL are shared per URL within the
 * process, so every cache and the bus of a service use one connection (plus
 * the bus's subscriber) however many caches it declares.
 */
const sharedByUrl = new Map<string, Shared>()

export function assertRedisInput(input: unknown, owner: string): asserts input is RedisInput {
  if (Array.isArray(input)) {
    if (input.length === 0) throw new InvalidOptionError(`${owner}: redis: the list of Cluster seed nodes is empty`)
    for (const seed of input as unknown[]) {
      const valid =
        (typeof seed === 'string' && /^rediss?:\/\//.test(seed)) ||
        (seed !== null &&
          typeof seed === 'object' &&
          typeof (seed as { host?: unknown }).host === 'string' &&
          Number.isInteger((seed as { port?: unknown }).port))
      if (!valid) {
        throw new InvalidOptionError(`${owner}: redis: a Cluster seed node must be a redis:// or rediss:// URL or { host, port }, got ${JSON.stringify(seed)}`)
      }
    }
    return
  }
  if (typeof input === 'string') {
    if (!/^rediss?:\/\//.test(input)) {
      throw new InvalidOptionError(`${owner}: redis must be a redis:// or rediss:// URL or an ioredis client, got "${input}"`)
    }
    return
  }
  if (input instanceof Redis || input instanceof Cluster) return
  const candidate = input as { sendCommand?: unknown; duplicate?: unknown } | null
  if (candidate !== null && typeof candidate === 'object' && typeof candidate.sendCommand === 'function' && typeof candidate.duplicate === 'function') {
    return // an ioredis client from another copy of the package
  }
  throw new InvalidOptionError(`${owner}: redis must be a redis:// or rediss:// URL or an ioredis client`)
}

/** A command connection for `input`: shared per URL (or seed list), or the caller's own client (never closed by us). */
export function acquireCommandConnection(input: RedisInput, connectionName: string): ConnectionLease {
  if (typeof input !== 'string' && !Array.isArray(input)) return { client: input as RedisClient, release: async () => {} }
  const seeds = input as readonly ClusterSeed[]
  const sharingKey = typeof input === 'string' ? input : `cluster:${JSON.stringify(seeds)}`
  let shared = sharedByUrl.get(sharingKey)
  if (shared === undefined) {
    shared = { client: typeof input === 'string' ? openConnection(input, connectionName) : openCluster(seeds, connectionName), leases: 0 }
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

/** A dedicated connection (a subscriber cannot share a command connection). Always ours to close. Not for Cluster: see openNodeConnection. */
export function openDedicatedConnection(input: string | Redis, connectionName: string, overrides: RedisOptions = {}): Redis {
  if (typeof input === 'string') return openConnection(input, connectionName, overrides)
  // Behind Sentinel, a failover demotes the primary without closing its pub/sub
  // connections: a subscriber left there would still answer probes while
  // missing what the new primary publishes until the replica has resynced.
  // The failover detector (sentinels' +switch-master) moves it to the new
  // primary, and that reconnect is a gap: every L1 on the bus is emptied.
  const sentinel = (input.options.sentinels?.length ?? 0) > 0 ? { failoverDetector: true } : {}
  const duplicate = input.duplicate({ ...CONNECTION_DEFAULTS, ...sentinel, ...overrides, connectionName })
  duplicate.on('error', () => {})
  return duplicate
}

function openConnection(url: string, connectionName: string, overrides: RedisOptions = {}): Redis {
  const client = new Redis(url, { ...CONNECTION_DEFAULTS, ...overrides, connectionName })
  // Connection errors surface through the commands that fail and through
  // status(); without a listener ioredis would print every reconnect attempt.
  client.on('error', () => {})
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
