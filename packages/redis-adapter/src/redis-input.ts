/**
 * What `redis` accepts in redisTier and redisBus, and its check, run before
 * anything connects. The public types are structural on purpose: ioredis is
 * a peer dependency (5.3+ or 6), and its `Redis` class has private members,
 * so a client from another copy or major of ioredis is never assignable to
 * the class this package was built against. Nothing here names an ioredis
 * type, so the published .d.ts does not pin a major.
 */
import type { ConnectionOptions as TlsConnectionOptions } from 'node:tls'
import { InvalidOptionError } from '@tiercache/core/adapter'

/** A Redis Cluster seed node: a `redis://` / `rediss://` URL or a host and port. */
export type ClusterSeed = string | { host: string; port: number }

/**
 * The members of an ioredis client that tiercache uses, by shape: any
 * `Redis` or `Cluster` of ioredis 5.3+ or 6 has them. tiercache also reads
 * `options` (host, port, db, Sentinel settings) and calls ioredis commands
 * (script calls, MGET, PUBLISH, PING, WAIT) through the same object.
 */
export interface RedisClientLike {
  /** ioredis's connection state: `'wait'`, `'connecting'`, `'ready'`, `'reconnecting'`, `'end'`, … */
  readonly status: string
  /** True for an ioredis `Cluster`. */
  readonly isCluster: boolean
  /** Connects a client made with `lazyConnect` (tiercache's `ready()` calls it). */
  connect(...args: never[]): Promise<unknown>
  /** The bus opens its subscriber connection as a duplicate of your client. */
  duplicate(...args: never[]): unknown
  /** The tier's Lua scripts are defined on the client (EVALSHA, reloaded after NOSCRIPT). */
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): unknown
  sendCommand(...args: never[]): unknown
  on(event: string, listener: (...args: unknown[]) => void): unknown
  off(event: string, listener: (...args: unknown[]) => void): unknown
}

/**
 * ioredis connection options given next to a URL (`{ url, options }`). The
 * URL says where to connect (`host`, `port` and `path` are refused here);
 * credentials and the database may be in either place, not both. Any
 * ioredis option not listed passes through unchanged (typed `unknown`).
 *
 * Your options override tiercache's defaults (`connectTimeout` 2 s,
 * `retryStrategy` 50 ms per attempt up to 1 s), except those tiercache's
 * guarantees depend on, which are refused (InvalidOptionError) when set to
 * anything else: `maxRetriesPerRequest` (0 or 1), `enableAutoPipelining`
 * (false), `keyPrefix`, `stringNumbers`, `replyMapping` (`'legacy'` only).
 */
export interface RedisConnectionOptions extends Partial<Record<PassThroughRedisOption, unknown>> {
  /** ACL user (Redis 6+). Or in the URL: `redis://user:password@host:port`. Default: the `default` user. */
  username?: string
  /** Password (of `username`, or of the `default` user). Or in the URL. Default: none. */
  password?: string
  /** Database number; or the URL's path (`redis://host:6379/2`). Must exist on the server (below its `databases`). Default 0. */
  db?: number
  /**
   * TLS options (`ca` for a private CA, `servername`, client `cert`/`key`,
   * …): turns TLS on even for a `redis://` URL. Default: TLS only for
   * `rediss://`, verified against the system CAs.
   */
  tls?: TlsConnectionOptions
  /** How long one connection attempt may take before it fails (ETIMEDOUT) and is retried, ms. Default 2000. */
  connectTimeout?: number
  /** ioredis's own per-command timeout, ms; the tier's `timeout` bounds every call anyway. Default: none. */
  commandTimeout?: number
  /**
   * Delay before reconnect attempt `times` (ms), or null/undefined to stop
   * reconnecting for good (the tier then stays down). Default: 50 ms per
   * attempt, at most 1 s, forever.
   */
  retryStrategy?: ((times: number) => unknown) | null
  /** Reconnect when a command fails with a matching error (e.g. READONLY after a failover). Default: never. */
  reconnectOnError?: ((error: Error) => unknown) | null
  /** CLIENT SETNAME of the command connection; the bus's subscriber gets `<name>:bus`. Default `'tiercache'`. */
  connectionName?: string
  /** Connect on first use (or `ready()`) instead of at once. Default false. */
  lazyConnect?: boolean
  /** Queue commands while connecting; false fails them at once instead. Default true. */
  enableOfflineQueue?: boolean
  /** IP family for DNS lookups (4, 6, or 0 for both). Default: ioredis's (4 in ioredis 5.3, 0 in later 5.x and in 6). */
  family?: number
  /** TCP keep-alive initial delay, ms (0: off), so a dead peer behind a silent network is noticed. Default: ioredis's (0 in 5.x, 30 s in 6). */
  keepAlive?: number
  /** TCP_NODELAY: small commands go out at once instead of waiting for Nagle's algorithm. Default true. */
  noDelay?: boolean
  /**
   * Tried once more across a reconnect, then the command fails: a command
   * issued while Redis is down must fail (a read goes to the factory)
   * rather than wait in ioredis's offline queue, and a write the caller saw
   * rejected must not be applied later when the connection is back. Only 0
   * or 1 is accepted. Default 1.
   */
  maxRetriesPerRequest?: number | null
  /** Refused unless false: reads and writes are already batched per tick into one command each, so it would only add a delay per call. */
  enableAutoPipelining?: boolean
  /** Refused: use the tier's and the bus's `prefix` (a keyPrefix would rename keys but not channels, so tiers and bus would disagree). */
  keyPrefix?: string
  /** Refused unless false: tiercache reads TTLs and clock samples as numbers. */
  stringNumbers?: boolean
  /** ioredis 6: refused unless `'legacy'` (the tier decodes replies in their RESP2 shapes). */
  replyMapping?: string
  /** ioredis 6: RESP version, 2 or 3. Default 3 in ioredis 6 (ioredis 5 speaks RESP2 only). */
  protocol?: number
  /** Sentinel: the sentinels to ask for the primary `name` (the URL's host and port are then not used). */
  sentinels?: Array<{ host?: string; port?: number }>
  /** Sentinel: the primary's name. Default `'mymaster'`. */
  name?: string
  /** Sentinel: the ACL user to authenticate to the sentinels with (not the primary). Default: none. */
  sentinelUsername?: string
  /** Sentinel: the sentinels' password (not the primary's). Default: none. */
  sentinelPassword?: string
  /** Sentinel: TLS options for the connections to the sentinels. Default: none (plain TCP). */
  sentinelTLS?: TlsConnectionOptions
  /** Sentinel: use `tls` for the primary found through the sentinels too. Default false. */
  enableTLSForSentinelMode?: boolean
  /** Refused: the URL says where to connect. */
  host?: string
  /** Refused: the URL says where to connect. */
  port?: number
  /** Refused: the URL says where to connect. */
  path?: string
}

/**
 * ioredis options (of 5.x and 6.x) that tiercache neither uses nor
 * restricts: passed to ioredis as given, with ioredis's defaults and
 * meaning (see ioredis's RedisOptions). Typed `unknown` so that options of
 * either major type-check; listed so that a misspelt name does not.
 */
export type PassThroughRedisOption =
  | 'autoResendUnfulfilledCommands'
  | 'autoResubscribe'
  | 'autoPipeliningIgnoredCommands'
  | 'blockingTimeout'
  | 'blockingTimeoutGrace'
  | 'clientInfoTag'
  | 'Connector'
  | 'disableClientInfo'
  | 'disconnectTimeout'
  | 'enableReadyCheck'
  | 'failoverDetector'
  | 'localAddress'
  | 'localPort'
  | 'lookup'
  | 'maxLoadingRetryTime'
  | 'natMap'
  | 'offlineQueue'
  | 'preferredSlaves'
  | 'readOnly'
  | 'role'
  | 'scripts'
  | 'sentinelCommandTimeout'
  | 'sentinelMaxConnections'
  | 'sentinelReconnectStrategy'
  | 'sentinelRetryStrategy'
  | 'showFriendlyErrorStack'
  | 'socketTimeout'
  | 'updateSentinels'

/** A URL with ioredis options next to it; see RedisConnectionOptions. */
export interface RedisUrlWithOptions {
  /** `redis://[user:password@]host:port[/db]`, or `rediss://` for TLS. */
  url: string
  /** ioredis options: credentials, TLS, database, timeouts, … Default: none (tiercache's defaults). */
  options?: RedisConnectionOptions
}

/**
 * Where to reach Redis: a `redis://` / `rediss://` URL; a URL with ioredis
 * options (`{ url, options }`); an ioredis client you own (`Redis`, or
 * `Cluster` for Redis Cluster; ioredis 5.3+ or 6); or a list of Redis Cluster
 * seed nodes. Connections tiercache opens from a URL (or a seed list) are
 * shared within the process by everything given the same URL and equal
 * options.
 */
export type RedisInput = string | RedisUrlWithOptions | RedisClientLike | readonly ClusterSeed[]

const URL_PATTERN = /^rediss?:\/\//
const ACCEPTED =
  'a redis:// or rediss:// URL; { url, options } (a URL and ioredis options such as username, password, tls, db, connectTimeout); ' +
  'an ioredis client (Redis or Cluster, ioredis 5.3+ or 6); or a list of Redis Cluster seed nodes'

export function assertRedisInput(input: unknown, owner: string): asserts input is RedisInput {
  if (typeof input === 'string') return assertUrl(input, `${owner}: redis`)
  if (Array.isArray(input)) return assertSeeds(input, owner)
  if (isClientLike(input)) return assertClientOptions(input, owner)
  if (input !== null && typeof input === 'object' && 'url' in input) return assertUrlWithOptions(input as Record<string, unknown>, owner)
  const hint = input !== null && typeof input === 'object' && 'host' in input ? " (for a host and port, pass { url: 'redis://host:port', options })" : ''
  throw new InvalidOptionError(`${owner}: redis must be ${ACCEPTED}; got ${shapeOf(input)}${hint}`)
}

/** An ioredis client from any copy of the package, by the members tiercache calls. */
export function isClientLike(input: unknown): input is RedisClientLike {
  const candidate = input as Partial<Record<'sendCommand' | 'duplicate' | 'defineCommand', unknown>> | null
  return (
    candidate !== null &&
    typeof candidate === 'object' &&
    typeof candidate.sendCommand === 'function' &&
    typeof candidate.duplicate === 'function' &&
    typeof candidate.defineCommand === 'function'
  )
}

/** A client of the user's with an option tiercache cannot work with: refused at once rather than misread later. */
function assertClientOptions(client: RedisClientLike, owner: string): void {
  const options = (client as { options?: { stringNumbers?: unknown; redisOptions?: { stringNumbers?: unknown } } }).options
  if (options?.stringNumbers === true || options?.redisOptions?.stringNumbers === true) {
    throw new InvalidOptionError(
      `${owner}: redis: the ioredis client has stringNumbers: true; tiercache reads TTLs and server times as numbers, so pass a client without it`,
    )
  }
}

function assertUrl(url: unknown, where: string): asserts url is string {
  if (typeof url !== 'string' || !URL_PATTERN.test(url)) {
    throw new InvalidOptionError(`${where} must be a redis:// or rediss:// URL, got ${JSON.stringify(url)}`)
  }
  try {
    new URL(url)
  } catch {
    throw new InvalidOptionError(`${where}: "${url}" is not a valid URL (percent-encode special characters in the password)`)
  }
}

function assertSeeds(seeds: readonly unknown[], owner: string): void {
  if (seeds.length === 0) throw new InvalidOptionError(`${owner}: redis: the list of Cluster seed nodes is empty`)
  for (const seed of seeds) {
    const valid =
      (typeof seed === 'string' && URL_PATTERN.test(seed)) ||
      (seed !== null &&
        typeof seed === 'object' &&
        typeof (seed as { host?: unknown }).host === 'string' &&
        Number.isInteger((seed as { port?: unknown }).port))
    if (!valid) {
      throw new InvalidOptionError(`${owner}: redis: a Cluster seed node must be a redis:// or rediss:// URL or { host, port }, got ${JSON.stringify(seed)}`)
    }
  }
}

function assertUrlWithOptions(input: Record<string, unknown>, owner: string): void {
  for (const name of Object.keys(input)) {
    if (name !== 'url' && name !== 'options') {
      throw new InvalidOptionError(`${owner}: redis: unknown key "${name}" next to url (accepted: { url, options })`)
    }
  }
  assertUrl(input.url, `${owner}: redis.url`)
  const options = input.options
  if (options === undefined) return
  if (options === null || typeof options !== 'object' || Array.isArray(options) || isClientLike(options)) {
    throw new InvalidOptionError(`${owner}: redis.options must be an object of ioredis options (username, password, tls, db, …), got ${shapeOf(options)}`)
  }
  assertConnectionOptions(options as RedisConnectionOptions, new URL(input.url as string), `${owner}: redis.options`)
}

/** Options tiercache depends on: each with the values accepted and why. */
const GUARDED: ReadonlyArray<readonly [keyof RedisConnectionOptions, (value: unknown) => boolean, string]> = [
  [
    'maxRetriesPerRequest',
    (value) => value === 0 || value === 1,
    'must be 0 or 1: a command issued while Redis is down must fail (reads then go to the factory), not wait in the offline queue and be applied after the caller gave up',
  ],
  ['enableAutoPipelining', (value) => value === false, 'must be false: reads and writes are already batched per tick into one command each'],
  ['keyPrefix', (value) => value === '', "is not supported: use the tier's and the bus's prefix option (a keyPrefix would rename keys but not channels)"],
  ['stringNumbers', (value) => value === false, 'must be false: tiercache reads TTLs and server times as numbers'],
  ['replyMapping', (value) => value === 'legacy', "must be 'legacy': tiercache decodes replies in their RESP2 shapes"],
  ['host', () => false, 'is not accepted next to a URL: put the host in the URL'],
  ['port', () => false, 'is not accepted next to a URL: put the port in the URL'],
  ['path', () => false, 'is not accepted next to a URL: connect over TCP with a URL, or pass an ioredis client for a Unix socket'],
]

function assertConnectionOptions(options: RedisConnectionOptions, url: URL, where: string): void {
  for (const [name, accepted, why] of GUARDED) {
    const value = options[name]
    if (value !== undefined && !accepted(value)) throw new InvalidOptionError(`${where}.${name} ${why}; got ${JSON.stringify(value)}`)
  }
  if (options.db !== undefined && (!Number.isSafeInteger(options.db) || options.db < 0)) {
    throw new InvalidOptionError(`${where}.db must be a database number (0, 1, …), got ${JSON.stringify(options.db)}`)
  }
  // ioredis lets the URL win silently; two different values are a mistake either way.
  const inUrl = { username: url.username !== '', password: url.password !== '', db: url.pathname.length > 1 }
  for (const name of ['username', 'password', 'db'] as const) {
    if (inUrl[name] && options[name] !== undefined) {
      throw new InvalidOptionError(`${where}.${name} is also set in the URL: give it in one place (the URL would silently win)`)
    }
  }
}

/** What was passed, for an error message, without echoing secrets. */
function shapeOf(value: unknown): string {
  if (value === null) return 'null'
  if (typeof value !== 'object') return typeof value === 'string' ? JSON.stringify(value) : `${typeof value} ${String(value)}`
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name
  const keys = Object.keys(value).slice(0, 6)
  const kind = typeof name === 'string' && name !== 'Object' ? `a ${name}` : 'an object'
  return keys.length === 0 ? kind : `${kind} with keys ${keys.join(', ')}`
}
