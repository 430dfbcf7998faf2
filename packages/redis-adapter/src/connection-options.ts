/**
 * The ioredis options of every connection tiercache opens from a URL: its
 * defaults, the user's options over them (checked in redis-input.ts), and
 * the key under which such a connection is shared in the process.
 */
import type { RedisOptions } from 'ioredis'
import type { RedisConnectionOptions, RedisUrlWithOptions } from './redis-input.js'

/**
 * Defaults of every connection tiercache opens itself. Commands never wait
 * forever: one retry across a reconnect, then the caller's timeout decides.
 * No ioredis auto-pipelining: reads and writes are already batched per tick
 * into one script call each (read-batcher.ts, write-batcher.ts), and
 * auto-pipelining would only add a `setImmediate` and a Pipeline per call.
 * A user's `{ url, options }` overrides these, within what redis-input.ts
 * accepts (maxRetriesPerRequest 0 or 1, enableAutoPipelining false).
 */
export const CONNECTION_DEFAULTS: RedisOptions = {
  maxRetriesPerRequest: 1,
  enableAutoPipelining: false,
  connectTimeout: 2_000,
  retryStrategy: (attempt: number) => Math.min(50 * attempt, 1_000),
}

/** A URL input in one form: the URL, the user's options, and the key its command connection is shared under. */
export interface UrlTarget {
  readonly url: string
  readonly options: RedisConnectionOptions
  readonly sharingKey: string
}

export function urlTargetOf(input: string | RedisUrlWithOptions): UrlTarget {
  const url = typeof input === 'string' ? input : input.url
  const options = typeof input === 'string' ? {} : (input.options ?? {})
  // Two caches given different options (another password, db, TLS CA) must not share a connection.
  return { url, options, sharingKey: `${url} ${canonical(options, new Set())}` }
}

/** The connection's role: the command connection (shared) or a bus's subscriber. */
export type ConnectionRole = 'command' | 'subscriber'

/** The options a connection for `target` is opened with; `overrides` (the subscriber's needs) win over everything. */
export function optionsFor(target: UrlTarget, role: ConnectionRole, overrides: RedisOptions = {}): RedisOptions {
  const name = target.options.connectionName ?? 'tiercache'
  return {
    ...CONNECTION_DEFAULTS,
    ...(target.options as RedisOptions),
    ...overrides,
    connectionName: role === 'subscriber' ? `${name}:bus` : name,
  }
}

/**
 * A stable text for an options object: plain objects by sorted keys, bytes
 * (a TLS `ca`, `cert`, `key`) by content, anything else — functions, class
 * instances, cycles — by identity. So equal option literals share one
 * connection, and a `retryStrategy` written twice inline does not.
 */
function canonical(value: unknown, seen: Set<object>): string {
  if (value === undefined) return 'u'
  if (value === null || typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return JSON.stringify(value)
  if (typeof value === 'bigint' || typeof value === 'symbol') return String(value)
  if (typeof value === 'function') return identityOf(value)
  if (ArrayBuffer.isView(value)) return `b:${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64')}`
  if (seen.has(value)) return identityOf(value)
  seen.add(value)
  try {
    if (Array.isArray(value)) return `[${value.map((item) => canonical(item, seen)).join(',')}]`
    const prototype = Object.getPrototypeOf(value)
    if (prototype !== Object.prototype && prototype !== null) return identityOf(value)
    const record = value as Record<string, unknown>
    const keys = Object.keys(record)
      .filter((key) => record[key] !== undefined)
      .sort()
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonical(record[key], seen)}`).join(',')}}`
  } finally {
    seen.delete(value)
  }
}

const identities = new WeakMap<object, string>()
let identitiesGiven = 0

function identityOf(value: object): string {
  let identity = identities.get(value)
  if (identity === undefined) {
    identity = `#${++identitiesGiven}`
    identities.set(value, identity)
  }
  return identity
}
