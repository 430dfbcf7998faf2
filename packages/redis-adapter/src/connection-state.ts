/**
 * What tiercache knows about the state of an ioredis connection: whether it
 * is known to be down (so a call fails at once instead of waiting out a
 * timeout), why, and when it went down or came back. One watch per client,
 * shared by every tier binding and bus on it, so a connection serving fifty
 * caches carries four listeners, not two hundred.
 */
import type { Redis } from 'ioredis'
import type { ConnectionChange } from '@tiercache/core/adapter'
import { causeOf, explainConnectionError, isWrongDatabase } from './connection-errors.js'
import { isCluster, type RedisClient } from './connections.js'

export { causeOf } from './connection-errors.js'

type ChangeListener = (change: ConnectionChange) => void

/**
 * A 'lost' change as the Redis adapter reports it: `cause` stays the short
 * code (`refused`, `auth`, …) code matches on; `detail` is the sentence for
 * people (the error's code and what to do), which a log line can print.
 */
export interface RedisConnectionChange extends ConnectionChange {
  readonly detail?: string
}

/**
 * - `starting`: the first connection attempt is under way, nothing known yet;
 * - `up`: ready;
 * - `down`: it failed or broke, and is not ready again yet.
 */
type WatchState = 'starting' | 'up' | 'down'

/** `host:port` of a standalone connection; `sentinel <name>` behind Sentinel; `cluster <first seed>…` on Cluster. */
function endpointOf(client: RedisClient): string {
  if (isCluster(client)) {
    // ioredis keeps the seeds as given: { host, port }, a port number, or a URL / "host:port" string.
    const seeds = (client as unknown as { startupNodes?: unknown[] }).startupNodes ?? []
    return `cluster ${seedLabel(seeds[0])}${seeds.length > 1 ? '…' : ''}`
  }
  const options = (client as Redis).options
  if ((options.sentinels?.length ?? 0) > 0) return `sentinel ${options.name ?? 'mymaster'}`
  if (options.path !== undefined && options.path !== '') return options.path
  return `${options.host ?? 'localhost'}:${options.port ?? 6379}`
}

function seedLabel(seed: unknown): string {
  if (typeof seed === 'number') return `localhost:${seed}`
  if (typeof seed === 'string') return seed.replace(/^rediss?:\/\/([^@/]*@)?/, '').replace(/\/.*$/, '')
  const { host, port } = (seed ?? {}) as { host?: string; port?: number }
  return `${host ?? 'localhost'}:${port ?? 6379}`
}

/** A connection, or several seen as one: what a bus's ready(), onConnectionChange and log read. */
export interface ConnectionSource {
  /** `host:port`, `sentinel <name>`, or `cluster <first seed>…`. */
  readonly endpoint: string
  /** Ready now. */
  readonly up: boolean
  /** Why it is not ready, as a sentence for an error message. */
  describeCause(): string
  /** 'lost' and 'restored', one call per change. Returns the unsubscribe. */
  onChange(listener: ChangeListener): () => void
  /** Called on every state change; returns the unsubscribe. */
  subscribe(wake: () => void): () => void
}

export class ConnectionWatch implements ConnectionSource {
  readonly endpoint: string
  readonly #client: RedisClient
  readonly #cluster: boolean
  #state: WatchState
  /** A 'lost' went out and its 'restored' has not yet. */
  #lostReported = false
  /** The last error seen since the connection was last ready. */
  #lastError: unknown
  /** The SELECT of the configured database failed in the current connection attempt (ioredis then carries on in database 0). */
  #attemptWrongDb: unknown
  /**
   * Ready, but in database 0 instead of the one configured: treated as down,
   * or entries would be written to and read from the wrong database.
   */
  #wrongDb: unknown
  readonly #listeners = new Set<ChangeListener>()
  /** Told of every state change (ready, down): `ready()` waits re-check their condition. */
  readonly #wakers = new Set<() => void>()
  readonly #onError = (error: unknown) => {
    this.#lastError = error
    if (!this.#cluster && isWrongDatabase(error)) this.#attemptWrongDb = error
  }
  readonly #onConnect = () => {
    this.#attemptWrongDb = undefined
  }
  readonly #onDown = () => this.#down()
  readonly #onReady = () => {
    this.#wrongDb = this.#attemptWrongDb
    if (this.#wrongDb === undefined) return this.#up()
    this.#lastError = this.#wrongDb
    this.#down()
  }

  constructor(client: RedisClient) {
    this.#client = client
    this.#cluster = isCluster(client)
    this.endpoint = endpointOf(client)
    const status = client.status
    this.#state = status === 'ready' ? 'up' : status === 'wait' || status === 'connecting' || status === 'connect' ? 'starting' : 'down'
    client.on('error', this.#onError)
    client.on('connect', this.#onConnect)
    client.on('close', this.#onDown)
    client.on('end', this.#onDown)
    client.on('ready', this.#onReady)
    if (this.#cluster) client.on('node error', this.#onError)
  }

  /**
   * False while the connection is known to be down: it failed or broke and
   * is not ready again. Read before every L2 call, so two property reads and
   * no allocation. During the very first connection attempt nothing is known
   * yet: calls go out (ioredis queues them until the connection is ready),
   * so a cache used right after it is created waits the few milliseconds of
   * the connect instead of failing.
   */
  available(): boolean {
    const status = this.#client.status
    // Between a socket's end and its close, ioredis still says 'ready' but would queue the command.
    if (status === 'ready') return this.#wrongDb === undefined && (this.#cluster || (this.#client as Redis).stream?.writable !== false)
    return this.#state === 'starting' && (status === 'connecting' || status === 'connect' || status === 'wait')
  }

  /** The connection is ready now (and in the database configured). */
  get up(): boolean {
    return this.#client.status === 'ready' && this.#wrongDb === undefined
  }

  /** Known down (failed or broke, not ready again): not merely still connecting for the first time. */
  get down(): boolean {
    return this.#state === 'down'
  }

  /** Why the connection is not ready: `refused`, `auth`, … (see causeOf); undefined if no error was seen. */
  get cause(): string | undefined {
    return this.#lastError === undefined ? undefined : causeOf(this.#lastError)
  }

  /** The cause as a sentence for error messages: what failed, the error's code, and what to do. */
  describeCause(): string {
    if (this.#lastError === undefined) return this.#state === 'down' ? 'connection closed' : 'no connection attempt has finished yet'
    return explainConnectionError(this.#lastError, (this.#client as Redis).options?.db)
  }

  /** A client created with `lazyConnect` connects on its first command: `ready()` starts it. */
  connect(): void {
    if (this.#client.status === 'wait') this.#client.connect().catch(() => {})
  }

  /** Reports 'lost' (with its cause) and 'restored', one call per change and listener. Returns the unsubscribe. */
  onChange(listener: ChangeListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** Calls `wake` on every state change; returns the unsubscribe. */
  subscribe(wake: () => void): () => void {
    this.#wakers.add(wake)
    return () => this.#wakers.delete(wake)
  }

  #down(): void {
    if (this.#state === 'down') return
    this.#state = 'down'
    this.#lostReported = true
    this.#emit({ state: 'lost', endpoint: this.endpoint, cause: this.cause ?? 'closed', detail: this.describeCause() })
  }

  #up(): void {
    const wasDown = this.#lostReported
    this.#state = 'up'
    this.#lastError = undefined
    this.#lostReported = false
    if (wasDown) this.#emit({ state: 'restored', endpoint: this.endpoint })
    else this.#wake()
  }

  #emit(change: RedisConnectionChange): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(change)
      } catch {
        // A listener's failure is its own: the others and the connection go on.
      }
    }
    this.#wake()
  }

  #wake(): void {
    for (const wake of [...this.#wakers]) wake()
  }

  /** Removes this watch's listeners from the client and forgets its own. */
  detach(): void {
    const client = this.#client
    client.off('error', this.#onError)
    client.off('connect', this.#onConnect)
    client.off('close', this.#onDown)
    client.off('end', this.#onDown)
    client.off('ready', this.#onReady)
    if (this.#cluster) client.off('node error', this.#onError)
    this.#listeners.clear()
    this.#wakers.clear()
  }
}

export interface WatchLease {
  readonly watch: ConnectionWatch
  /** The last lease of a client detaches its watch, before the connection is closed (a close is not a loss). */
  release(): void
}

const watches = new WeakMap<RedisClient, { watch: ConnectionWatch; leases: number }>()

/** The watch of `client`, shared by everyone that watches it. */
export function watchConnection(client: RedisClient): WatchLease {
  let entry = watches.get(client)
  if (entry === undefined) {
    entry = { watch: new ConnectionWatch(client), leases: 0 }
    watches.set(client, entry)
  }
  entry.leases++
  const shared = entry
  let released = false
  return {
    watch: shared.watch,
    release: () => {
      if (released) return
      released = true
      if (--shared.leases > 0) return
      if (watches.get(client) === shared) watches.delete(client)
      shared.watch.detach()
    },
  }
}

/**
 * Several connections to one endpoint (a bus's publisher and subscriber) seen
 * as one: 'lost' when the first of them goes down, 'restored' once all are
 * ready again, so a Redis that dies is one line in the log, not one per socket.
 */
export class ConnectionGroup implements ConnectionSource {
  readonly endpoint: string
  readonly #watches: readonly ConnectionWatch[]
  readonly #listeners = new Set<ChangeListener>()
  readonly #unsubscribes: Array<() => void>
  #lost = false

  constructor(watches: readonly ConnectionWatch[]) {
    this.#watches = watches
    this.endpoint = watches[0]!.endpoint
    this.#unsubscribes = watches.map((watch) => watch.subscribe(() => this.#check()))
  }

  get up(): boolean {
    return this.#watches.every((watch) => watch.up)
  }

  describeCause(): string {
    // The one known down explains more than one still connecting behind it.
    const watch = this.#watches.find((candidate) => candidate.down) ?? this.#watches.find((candidate) => !candidate.up)
    return watch?.describeCause() ?? 'connected'
  }

  subscribe(wake: () => void): () => void {
    const unsubscribes = this.#watches.map((watch) => watch.subscribe(wake))
    return () => {
      for (const unsubscribe of unsubscribes) unsubscribe()
    }
  }

  onChange(listener: ChangeListener): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  #check(): void {
    let change: RedisConnectionChange | undefined
    if (!this.#lost) {
      const down = this.#watches.find((watch) => watch.down)
      if (down !== undefined) change = { state: 'lost', endpoint: this.endpoint, cause: down.cause ?? 'closed', detail: down.describeCause() }
    } else if (this.up) {
      change = { state: 'restored', endpoint: this.endpoint }
    }
    if (change === undefined) return
    this.#lost = change.state === 'lost'
    for (const listener of [...this.#listeners]) {
      try {
        listener(change)
      } catch {
        // As in ConnectionWatch: one listener's failure is its own.
      }
    }
  }

  close(): void {
    for (const unsubscribe of this.#unsubscribes) unsubscribe()
    this.#listeners.clear()
  }
}

/**
 * The `ready()` waits of one tier binding or bus: each resolves once its
 * condition holds, or rejects at its timeout, and leaves no timer or
 * listener behind either way; `close()` rejects those still pending.
 */
export class ReadyWaits {
  readonly #pending = new Set<(error: Error) => void>()

  /**
   * Resolves once `isReady()` holds, checked now and whenever `subscribe`'s
   * callback runs; with `timeoutMs`, rejects with `notReady()` after it.
   */
  wait(isReady: () => boolean, subscribe: (wake: () => void) => () => void, timeoutMs: number | undefined, notReady: () => Error): Promise<void> {
    if (isReady()) return Promise.resolve()
    return new Promise<void>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const finish = () => {
        unsubscribe()
        clearTimeout(timer)
        this.#pending.delete(fail)
      }
      const fail = (error: Error) => {
        finish()
        reject(error)
      }
      const unsubscribe = subscribe(() => {
        if (!isReady()) return
        finish()
        resolve()
      })
      this.#pending.add(fail)
      if (timeoutMs !== undefined) timer = setTimeout(() => fail(notReady()), timeoutMs)
    })
  }

  close(error: () => Error): void {
    for (const fail of [...this.#pending]) fail(error())
  }
}
