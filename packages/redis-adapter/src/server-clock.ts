import { isCluster, type RedisClient } from './connections.js'

/**
 * How far Redis's clock is ahead of this process's clock, bounded from above,
 * so that an entry's server-time freshness can be turned into local time
 * without asking Redis for the entry's PTTL on every hit.
 *
 * Each sample is `server TIME − local time at send`: the server read its
 * clock after the request left, so a sample is never below the true offset
 * (it exceeds it by the request's transit). Keeping the smallest sample of a
 * window gives the tightest such bound; converting with an over-estimate
 * only ever makes entries expire early, never late. Samples come from the
 * read script (it returns TIME with its replies); an estimate older than
 * MAX_AGE_MS counts as unknown, so reads go through the script again and
 * refresh it, which bounds how long drift or a stepped server clock can
 * matter. A reconnect (possibly to another server) forgets the estimate.
 */
export class ServerClock {
  /** Upper bound of (server clock − local clock), ms. */
  #aheadMs = 0
  #sampledAt = Number.NEGATIVE_INFINITY

  /** A window's samples are kept at their minimum; a new window starts from the next sample. */
  static readonly WINDOW_MS = 10_000
  static readonly MAX_AGE_MS = 30_000

  record(serverNowMs: number, sentAtMs: number): void {
    const sample = serverNowMs - sentAtMs
    if (!Number.isFinite(sample)) return
    if (sentAtMs - this.#sampledAt > ServerClock.WINDOW_MS || sample < this.#aheadMs) {
      this.#aheadMs = sample
      this.#sampledAt = sentAtMs
    }
  }

  /** The offset to subtract from a server time to get a local time no later than the true one; undefined when unknown. */
  aheadMs(nowMs: number): number | undefined {
    return nowMs - this.#sampledAt <= ServerClock.MAX_AGE_MS ? this.#aheadMs : undefined
  }

  forget(): void {
    this.#sampledAt = Number.NEGATIVE_INFINITY
  }
}

/**
 * One estimate per connection — per group on Cluster, whose slots live on
 * different servers with clocks of their own (a group is one slot, so one
 * server at a time). Forgotten when the connection, or a Cluster node, is
 * replaced.
 */
const clocks = new WeakMap<RedisClient, Map<string, ServerClock>>()

export function serverClockOf(client: RedisClient, group = ''): ServerClock {
  let byGroup = clocks.get(client)
  if (byGroup === undefined) {
    const created = new Map<string, ServerClock>()
    const forgetAll = () => {
      for (const serverClock of created.values()) serverClock.forget()
    }
    client.on('ready', forgetAll)
    if (isCluster(client)) client.on('-node', forgetAll)
    clocks.set(client, created)
    byGroup = created
  }
  let serverClock = byGroup.get(group)
  if (serverClock === undefined) {
    serverClock = new ServerClock()
    byGroup.set(group, serverClock)
  }
  return serverClock
}
