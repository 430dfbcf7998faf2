import {
  BusMembers,
  CacheClosedError,
  NotReadyError,
  TickBatcher,
  busStateChannel,
  clock,
  decodeInvalidations,
  encodeInvalidations,
  errorMessageOf,
  parseDuration,
  type Bus,
  type BusMember,
  type BusMembership,
  type BusStateEvent,
  type BusStatus,
  type ConnectionChange,
  type Invalidation,
  type Logger,
  type OriginInvalidation,
  type PublishRoute,
} from '@tiercache/core/adapter'
import { ReadyWaits, type ConnectionSource, type RedisConnectionChange } from './connection-state.js'
import { CarrySide, type CarryConfig, type CarryingRoute } from './carry.js'

/** A Redis-backed bus (pub/sub or sharded pub/sub): a Bus that can say when it is proven. */
export interface RedisBus extends Bus {
  /**
   * Resolves once the bus's connections are ready and a liveness probe has
   * proven its subscription: invalidations published from then on reach this
   * process. With `timeout` (ms or a duration string such as `'2s'`), rejects
   * with NotReadyError naming host:port and why (connection refused, auth
   * failed: WRONGPASS …, TLS failed, connect timed out) if it is not by
   * then; without, waits as long as it takes (a wrong URL waits forever).
   */
  ready(options?: { timeout?: number | string }): Promise<void>
  /** 'lost' (with its cause) when the bus's connection goes down, 'restored' when it is back; one call per change. Returns the unsubscribe. */
  onConnectionChange(listener: (change: ConnectionChange) => void): () => void
  status(): RedisBusStatus
}

/** A Redis bus's status: the Bus contract's, and why it is not connected. */
export interface RedisBusStatus extends BusStatus {
  /**
   * While a connection of the bus is down or has not connected yet: its
   * host:port, why (connection refused (ECONNREFUSED), host not found
   * (ENOTFOUND), auth failed (NOAUTH / WRONGPASS), TLS, timeout, a database
   * that does not exist) and what to do. Absent while connected.
   */
  readonly connectionError?: string
  /**
   * carryValues only: carried values turned into entries and offered to
   * L1 (`applied`; each still a guarded fill), refused because their MAC did
   * not check (`rejected`: a wrong or missing secret, or forged), and
   * values that did not decode (`undecodable`). The key was evicted in
   * every case.
   */
  readonly carriedValues?: { readonly applied: number; readonly rejected: number; readonly undecodable: number }
}

/** Unanswered probes beyond which a subscriber connection is taken for half-dead and reconnected. */
export const MAX_OUTSTANDING_PROBES = 8

/** Settles with `pending`, or rejects once `timeoutMs` have passed; the error names the channel. */
async function publishWithin(pending: Promise<void>, timeoutMs: number, channel: string): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      pending,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`publish timed out after ${timeoutMs} ms`)), timeoutMs)
      }),
    ])
  } catch (error) {
    pending.catch(() => {})
    throw new Error(`publish on ${channel} failed: ${errorMessageOf(error)}`, { cause: error })
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Decodes one bus message and hands each invalidation to its cache's members;
 * returns how many were dropped: 1 for a message that is not one of the
 * protocol (garbage, another version, over MAX_MESSAGE_BYTES), else its
 * malformed entries. Runs in the subscriber connection's data handler, so it
 * never throws (the decoder does not, members' throws are caught by
 * BusMembers) and each message costs at most one bounded decode: a flood is
 * counted and dropped a message at a time, with the event loop turning
 * between socket reads.
 */
function deliverMessage(members: BusMembers, message: string | Uint8Array): number {
  const decoded = decodeInvalidations(message)
  if (decoded === undefined) return 1
  // One pass over the batch; each member evicts as it goes.
  for (const { origin, invalidation } of decoded.invalidations) members.deliver(origin, invalidation)
  return decoded.dropped
}

export interface BusCoreConfig {
  /** The deployment prefix (members check it against their tiers'). */
  readonly prefix: string
  /** The bus channel: named in errors and gap events, and the route's channel. */
  readonly channel: string
  readonly timeoutMs: number
  readonly maxStalenessMs: number
  /** Gets one line per state change (see RedisBusOptions.logger). */
  readonly logger?: Logger | undefined
  /** carryValues (carry.ts); undefined: off, and nothing of it runs. */
  readonly carry?: CarryConfig | undefined
}

/** A line to the logger at `level`; `error` falls back to `warn`, `info` is dropped by a logger without it. */
function log(logger: Logger | undefined, level: 'error' | 'warn' | 'info', fields: Record<string, unknown>, message: string): void {
  if (logger === undefined) return
  try {
    if (level === 'warn') logger.warn(fields, message)
    else if (logger[level] !== undefined) logger[level](fields, message)
    else if (level === 'error') logger.warn(fields, message)
  } catch {
    // A logger that throws must not break the connection handler it runs in.
  }
}

/**
 * What every Redis bus shares, whatever its connections: the members, the
 * trust object they read on each L1 hit, the counters, the publish batcher,
 * and the gap state machine (coherence mechanism 3). A bus owns its
 * connections and liveness probes, and tells this core when a subscription
 * broke (`openGap`) and when a probe proved it again (`proven`).
 */
export class BusCore {
  readonly members = new BusMembers()
  /** Shared with every member and read on each L1 hit; see BusTrust. */
  /** `lastProvenAt` is not reset by a gap: `onBusDown: { serveStale }` counts from it (see `BusTrust`). */
  readonly trust = { verifiedAt: Number.NEGATIVE_INFINITY, lastProvenAt: Number.NEGATIVE_INFINITY }
  readonly route: PublishRoute
  closed = false
  published = 0
  received = 0
  dropped = 0
  lastRoundTripMs: number | undefined
  #publishedAtomically = 0
  #gapsSeen = 0
  /** A gap is open from a break of a subscription until a probe sent after it is answered. */
  #gapOpen = true
  /** A probe has been answered at least once (start-up is over). */
  #proven = false
  /** When the open gap opened (clock()); meaningful while #gapOpen after start-up. */
  #gapOpenedAt = 0
  #config: BusCoreConfig
  #batcher: TickBatcher<readonly OriginInvalidation[], void>
  /** The bus's connections as one (standalone: publisher and subscriber; Cluster: the cluster). */
  readonly #connection: ConnectionSource
  /** Why the bus is not proven although its connections are up (tracking refused, shard plan incomplete), if known. */
  readonly #pendingWhy: () => string | undefined
  readonly #waits = new ReadyWaits()
  /** Woken when the first probe proves the subscription (ready() waits). */
  readonly #proofWakers = new Set<() => void>()
  readonly #unsubscribes = new Set<() => void>()
  /** carryValues: the carrying side; undefined when off. */
  readonly #carry: CarrySide | undefined
  /** carryValues: how far the server clock is ahead of ours (over-estimated), to convert a carried entry's freshness; set by the bus. */
  serverAheadMs: () => number | undefined = () => undefined

  /**
   * `send` publishes one encoded message outside any tier's script;
   * `routeConnection` is what a tier must share to publish atomically;
   * `connection` is watched for ready(), onConnectionChange and the log.
   */
  constructor(
    config: BusCoreConfig,
    connection: ConnectionSource,
    routeConnection: unknown,
    send: (message: string) => Promise<unknown>,
    pendingWhy: () => string | undefined = () => undefined,
  ) {
    this.#config = config
    this.#connection = connection
    this.#pendingWhy = pendingWhy
    this.#unsubscribes.add(connection.onChange((change) => this.#logConnection(change)))
    const route: PublishRoute = {
      connection: routeConnection,
      channel: config.channel,
      encode: encodeInvalidations,
      notePublished: () => this.#publishedAtomically++,
    }
    if (config.carry === undefined) this.route = route
    else {
      const carry = new CarrySide(config.carry)
      this.#carry = carry
      // Every write of a carrying cache goes through the write batcher, which registers it here as this process's own before its script is sent (carry.ts OwnWrites).
      const carrying: CarryingRoute = { ...route, carry }
      this.route = carrying
    }
    // Coalescing (mechanism 5): every publish of one tick goes out as one message.
    this.#batcher = new TickBatcher(async (batches) => {
      await send(encodeInvalidations(batches.flat()))
      this.published++
      return batches.map(() => undefined)
    })
  }

  /** See RedisBus.ready. */
  ready(options: { timeout?: number | string } = {}): Promise<void> {
    if (this.closed) return Promise.reject(new CacheClosedError('redisBus is closed'))
    const timeoutMs = options?.timeout === undefined ? undefined : parseDuration(options.timeout, 'redisBus ready timeout')
    const connection = this.#connection
    return this.#waits.wait(
      () => this.#proven && connection.up,
      (wake) => {
        this.#proofWakers.add(wake)
        const unsubscribe = connection.subscribe(wake)
        return () => {
          this.#proofWakers.delete(wake)
          unsubscribe()
        }
      },
      timeoutMs,
      () => {
        const why = connection.up
          ? (this.#pendingWhy() ?? 'connected, but no liveness probe has come back over the subscription yet')
          : connection.describeCause()
        return new NotReadyError(`redisBus: redis at ${connection.endpoint} is not ready after ${timeoutMs} ms: ${why}`)
      },
    )
  }

  /** See RedisBus.onConnectionChange. */
  onConnectionChange(listener: (change: ConnectionChange) => void): () => void {
    if (this.closed) return () => {}
    const remove = this.#connection.onChange(listener)
    const unsubscribe = () => {
      this.#unsubscribes.delete(unsubscribe)
      remove()
    }
    this.#unsubscribes.add(unsubscribe)
    return unsubscribe
  }

  #logConnection(change: ConnectionChange): void {
    if (this.closed) return
    const fields = { channel: this.#config.channel, endpoint: change.endpoint }
    if (change.state === 'lost') {
      const why = (change as RedisConnectionChange).detail ?? change.cause ?? 'closed'
      log(
        this.#config.logger,
        'error',
        { ...fields, cause: change.cause },
        `redisBus lost its connection to ${change.endpoint} (${why}): no invalidation reaches this process until it is back`,
      )
    } else {
      log(this.#config.logger, 'info', fields, `redisBus reconnected to ${change.endpoint}`)
    }
  }

  join(member: BusMember): BusMembership {
    if (this.closed) throw new CacheClosedError('redisBus is closed', { cache: member.cacheName })
    const leave = this.members.add(member)
    return {
      publish: (invalidations: readonly Invalidation[]) => this.#publish(member, invalidations),
      leave,
      trust: this.trust,
      maxStalenessMs: this.#config.maxStalenessMs,
      route: this.route,
      deployment: this.#config.prefix,
    }
  }

  async #publish(member: BusMember, invalidations: readonly Invalidation[]): Promise<void> {
    if (this.closed) throw new CacheClosedError('redisBus is closed', { cache: member.cacheName })
    const batch = invalidations.map((invalidation) => ({ origin: member.instanceId, invalidation }))
    this.#carry?.own.register(batch)
    await publishWithin(this.#batcher.submit(batch), this.#config.timeoutMs, this.#config.channel)
  }

  /** A message arrived on a bus channel. */
  receive(message: string | Uint8Array): void {
    this.received++
    if (this.#carry === undefined) this.dropped += deliverMessage(this.members, message)
    else this.dropped += this.#receiveCarrying(this.#carry, message)
  }

  /**
   * carryValues: each invalidation evicts first, exactly as deliverMessage
   * does (a message always evicts: a bad MAC, an oversize or undecodable
   * value change nothing of that); then, in the same turn, its carried
   * value, if any, is offered as a guarded fill. In message order, so a
   * later invalidation of the same batch evicts an earlier one's value.
   */
  #receiveCarrying(carry: CarrySide, message: string | Uint8Array): number {
    const decoded = decodeInvalidations(message, true)
    if (decoded === undefined) return 1
    const { invalidations, carried, serverNowMs } = decoded
    for (let index = 0; index < invalidations.length; index++) {
      const { origin, invalidation } = invalidations[index]!
      carry.own.release(origin, invalidation)
      this.members.deliver(origin, invalidation)
      const value = carried?.[index]
      if (value === undefined || invalidation.kind !== 'key') continue
      const { cache, key } = invalidation
      const serializer = carry.serializerOf(cache)
      if (serializer === undefined) continue
      const payload = carry.verified(origin, cache, key, value)
      if (payload === undefined) continue
      this.members.offer(
        origin,
        cache,
        key,
        () => carry.entryOf(payload, value, serializer, serverNowMs, this.serverAheadMs(), clock()),
        (instanceId) => carry.own.refuses(instanceId, cache, key),
      )
    }
    return decoded.dropped
  }

  /** A subscription broke: messages published from now until it is proven again may be lost to us. */
  openGap(): void {
    if (this.closed) return // closing is not a gap
    if (!this.#gapOpen) {
      this.#gapOpenedAt = clock()
      if (busStateChannel.hasSubscribers) busStateChannel.publish({ channel: this.#config.channel, state: 'gap-opened' } satisfies BusStateEvent)
      log(
        this.#config.logger,
        'warn',
        { channel: this.#config.channel },
        `redisBus gap opened on ${this.#config.channel}: invalidations may be missed, so every L1 on this bus is bypassed until a probe proves the subscription again`,
      )
    }
    this.trust.verifiedAt = Number.NEGATIVE_INFINITY
    this.#gapOpen = true
  }

  /**
   * Every subscription was active at `verifiedAt` (the send time of the probe
   * answered last, the oldest of them when there are several). Closes an open
   * gap first: messages may have been lost meanwhile, so every L1 on this bus
   * is emptied before it is trusted again.
   */
  proven(verifiedAt: number): void {
    if (this.#gapOpen) {
      this.#gapOpen = false
      if (this.#proven) this.#gapsSeen++ // the first proof ends start-up, not a gap
      this.members.gap()
      if (this.#proven) {
        const gapMs = Math.round(clock() - this.#gapOpenedAt)
        if (busStateChannel.hasSubscribers) busStateChannel.publish({ channel: this.#config.channel, state: 'gap-closed', gapMs } satisfies BusStateEvent)
        log(
          this.#config.logger,
          'info',
          { channel: this.#config.channel, gapMs },
          `redisBus gap closed on ${this.#config.channel} after ${gapMs} ms: every L1 on this bus was emptied and is trusted again`,
        )
      } else {
        this.#proven = true
        for (const wake of [...this.#proofWakers]) wake()
      }
    }
    if (verifiedAt > this.trust.verifiedAt) this.trust.verifiedAt = verifiedAt
    if (verifiedAt > this.trust.lastProvenAt) this.trust.lastProvenAt = verifiedAt
  }

  /** The status fields every bus reports; `connected` is the bus's own judgement of its connections. */
  status(connected: boolean): RedisBusStatus {
    const connection = this.#connection
    return {
      ...(this.closed || connection.up ? {} : { connectionError: `redis at ${connection.endpoint}: ${connection.describeCause()}` }),
      connected: !this.closed && connected,
      messagesPublished: this.published,
      messagesReceived: this.received,
      messagesDropped: this.dropped,
      members: this.members.size,
      trusted: clock() - this.trust.verifiedAt < this.#config.maxStalenessMs,
      lastProbeRoundTripMs: this.lastRoundTripMs,
      gapsSeen: this.#gapsSeen,
      messagesPublishedAtomically: this.#publishedAtomically,
      ...(this.#carry === undefined
        ? {}
        : { carriedValues: { applied: this.#carry.applied, rejected: this.#carry.rejected, undecodable: this.#carry.undecodable } }),
    }
  }

  /** Marks the bus closed and L1 untrusted; the bus then closes its connections. Returns false if it was closed already. */
  close(): boolean {
    if (this.closed) return false
    this.closed = true
    this.trust.verifiedAt = Number.NEGATIVE_INFINITY
    this.trust.lastProvenAt = Number.NEGATIVE_INFINITY
    this.#waits.close(() => new CacheClosedError('redisBus was closed before it was ready'))
    for (const unsubscribe of [...this.#unsubscribes]) unsubscribe()
    return true
  }
}
