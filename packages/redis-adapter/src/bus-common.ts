import {
  BusMembers,
  CacheClosedError,
  TickBatcher,
  busStateChannel,
  clock,
  decodeInvalidations,
  encodeInvalidations,
  errorMessageOf,
  type Bus,
  type BusMember,
  type BusMembership,
  type BusStateEvent,
  type BusStatus,
  type Invalidation,
  type OriginInvalidation,
  type PublishRoute,
} from '@tiercache/core/adapter'

/** A Redis-backed bus (pub/sub or sharded pub/sub): a Bus that can say when it is proven. */
export interface RedisBus extends Bus {
  /** Resolves once the subscription is active and proven by a probe: invalidations published from then on reach this process. */
  ready(): Promise<void>
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
  readonly trust = { verifiedAt: Number.NEGATIVE_INFINITY }
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
  #config: BusCoreConfig
  #batcher: TickBatcher<readonly OriginInvalidation[], void>
  #firstProof: Promise<void>
  #resolveFirstProof!: () => void

  /** `send` publishes one encoded message outside any tier's script; `connection` is what a tier must share to publish atomically. */
  constructor(config: BusCoreConfig, connection: unknown, send: (message: string) => Promise<unknown>) {
    this.#config = config
    this.#firstProof = new Promise((resolve) => (this.#resolveFirstProof = resolve))
    this.route = {
      connection,
      channel: config.channel,
      encode: encodeInvalidations,
      notePublished: () => this.#publishedAtomically++,
    }
    // Coalescing (mechanism 5): every publish of one tick goes out as one message.
    this.#batcher = new TickBatcher(async (batches) => {
      await send(encodeInvalidations(batches.flat()))
      this.published++
      return batches.map(() => undefined)
    })
  }

  /** Resolves once a probe first proved the subscription(s). */
  ready(): Promise<void> {
    return this.#firstProof
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
    await publishWithin(this.#batcher.submit(batch), this.#config.timeoutMs, this.#config.channel)
  }

  /** A message arrived on a bus channel. */
  receive(message: string | Uint8Array): void {
    this.received++
    this.dropped += deliverMessage(this.members, message)
  }

  /** A subscription broke: messages published from now until it is proven again may be lost to us. */
  openGap(): void {
    if (this.closed) return // closing is not a gap
    if (!this.#gapOpen && busStateChannel.hasSubscribers) {
      busStateChannel.publish({ channel: this.#config.channel, state: 'gap-opened' } satisfies BusStateEvent)
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
      if (this.#proven && busStateChannel.hasSubscribers) {
        busStateChannel.publish({ channel: this.#config.channel, state: 'gap-closed' } satisfies BusStateEvent)
      }
      this.#proven = true
      this.#resolveFirstProof()
    }
    if (verifiedAt > this.trust.verifiedAt) this.trust.verifiedAt = verifiedAt
  }

  /** The status fields every bus reports; `connected` is the bus's own judgement of its connections. */
  status(connected: boolean): BusStatus {
    return {
      connected: !this.closed && connected,
      messagesPublished: this.published,
      messagesReceived: this.received,
      messagesDropped: this.dropped,
      members: this.members.size,
      trusted: clock() - this.trust.verifiedAt < this.#config.maxStalenessMs,
      lastProbeRoundTripMs: this.lastRoundTripMs,
      gapsSeen: this.#gapsSeen,
      messagesPublishedAtomically: this.#publishedAtomically,
    }
  }

  /** Marks the bus closed and L1 untrusted; the bus then closes its connections. Returns false if it was closed already. */
  close(): boolean {
    if (this.closed) return false
    this.closed = true
    this.trust.verifiedAt = Number.NEGATIVE_INFINITY
    return true
  }
}
