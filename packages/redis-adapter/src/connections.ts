import { Redis, type RedisOptions } from 'ioredis'
import { InvalidOptionError } from '@tiercache/core'

/** Where to reach Redis: a `redis://` / `rediss://` URL, or an ioredis client the caller owns. */
export type RedisInput = string | Redis

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
  readonly client: Redis
  /** Gives the connection back; the last lease of a connection tiercache opened closes it. */
  release(): Promise<void>
}

interface Shared {
  client: Redis
  leases: number
}

/**
 * Command connections opened from a URL are shared per URL within the
 * process, so every cache and the bus of a service use one connection (plus
 * the bus's subscriber) however many caches it declares.
 */
const sharedByUrl = new Map<string, Shared>()

export function assertRedisInput(input: unknown, owner: string): asserts input is RedisInput {
  if (typeof input === 'string') {
    if (!/^rediss?:\/\//.test(input)) {
      throw new InvalidOptionError(`${owner}: redis must be a redis:// or rediss:// URL or an ioredis client, got "${input}"`)
    }
    return
  }
  if (input instanceof Redis) return
  const candidate = input as { sendCommand?: unknown; duplicate?: unknown } | null
  if (candidate !== null && typeof candidate === 'object' && typeof candidate.sendCommand === 'function' && typeof candidate.duplicate === 'function') {
    return // an ioredis client from another copy of the package
  }
  throw new InvalidOptionError(`${owner}: redis must be a redis:// or rediss:// URL or an ioredis client`)
}

/** A command connection for `input`: shared per URL, or the caller's own client (never closed by us). */
export function acquireCommandConnection(input: RedisInput, connectionName: string): ConnectionLease {
  if (typeof input !== 'string') return { client: input, release: async () => {} }
  let shared = sharedByUrl.get(input)
  if (shared === undefined) {
    shared = { client: openConnection(input, connectionName), leases: 0 }
    sharedByUrl.set(input, shared)
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
      if (sharedByUrl.get(input) === entry) sharedByUrl.delete(input)
      await closeConnection(entry.client)
    },
  }
}

/** A dedicated connection (a subscriber cannot share a command connection). Always ours to close. */
export function openDedicatedConnection(input: RedisInput, connectionName: string, overrides: RedisOptions = {}): Redis {
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

/** Closes gracefully when connected, at once otherwise (QUIT on a dead socket would wait for a reconnect). */
export async function closeConnection(client: Redis): Promise<void> {
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
