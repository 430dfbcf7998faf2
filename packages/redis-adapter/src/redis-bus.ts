import type { Redis } from 'ioredis'
import {
  BusMembers,
  CacheClosedError,
  InvalidOptionError,
  decodeInvalidations,
  encodeInvalidations,
  errorMessageOf,
  parseDuration,
  type Bus,
  type BusMember,
  type BusMembership,
  type BusStatus,
  type Duration,
  type Invalidation,
} from '@tiercache/core'
import {
  acquireCommandConnection,
  assertRedisInput,
  closeConnection,
  openDedicatedConnection,
  type ConnectionLease,
  type RedisInput,
} from './connections.js'
import { assertValidPrefix, DEFAULT_PREFIX, invalidationChannel } from './keyspace.js'

export interface RedisBusOptions {
  /** A `redis://` / `rediss://` URL or an ioredis client you own (the bus duplicates it for its subscriber). */
  redis: RedisInput
  /** Deployment prefix; names the channel. Must match the tiers' prefix. Default `'tiercache'`. */
  prefix?: string
  /** Longest a publish may take before the write that issued it rejects. Default `'1s'`. */
  timeout?: Duration
}

export interface RedisBus extends Bus {
  /** Resolves once the subscription is active: invalidations published from then on reach this process. */
  ready(): Promise<void>
}

const KNOWN_OPTIONS = new Set(['redis', 'prefix', 'timeout'])

/**
 * Invalidations over Redis pub/sub. One bus per process serves every cache:
 * one subscriber connection, one shared command connection for publishing.
 */
export function redisBus(options: RedisBusOptions): RedisBus {
  if (options === null || typeof options !== 'object') throw new InvalidOptionError('redisBus expects an options object')
  for (const option of Object.keys(options)) {
    if (!KNOWN_OPTIONS.has(option)) {
      throw new InvalidOptionError(`redisBus: unknown option "${option}" (known: ${[...KNOWN_OPTIONS].join(', ')})`)
    }
  }
  assertRedisInput(options.redis, 'redisBus')
  const prefix = options.prefix ?? DEFAULT_PREFIX
  assertValidPrefix(prefix, 'redisBus')
  const timeoutMs = options.timeout === undefined ? 1_000 : parseDuration(options.timeout, 'redisBus timeout')
  return new RedisPubSubBus(options.redis, invalidationChannel(prefix), timeoutMs)
}

class RedisPubSubBus implements RedisBus {
  #channel: string
  #timeoutMs: number
  #publisher: ConnectionLease
  #subscriber: Redis
  #subscription: Promise<void>
  #members = new BusMembers()
  #closed = false
  #published = 0
  #received = 0
  #dropped = 0

  constructor(input: RedisInput, channel: string, timeoutMs: number) {
    this.#channel = channel
    this.#timeoutMs = timeoutMs
    this.#publisher = acquireCommandConnection(input, 'tiercache')
    this.#subscriber = openDedicatedConnection(input, 'tiercache:bus')
    this.#subscriber.on('message', (channelName: string, message: string) => this.#onMessage(channelName, message))
    this.#subscription = this.#subscriber.subscribe(channel).then(() => undefined)
    // Retried by ioredis on reconnect (autoResubscribe); a failure here is visible through ready() and status().
    this.#subscription.catch(() => {})
  }

  ready(): Promise<void> {
    return this.#subscription
  }

  join(member: BusMember): BusMembership {
    if (this.#closed) throw new CacheClosedError('redisBus is closed', { cache: member.cacheName })
    const leave = this.#members.add(member)
    return {
      publish: (invalidations: readonly Invalidation[]) => this.#publish(member, invalidations),
      leave,
    }
  }

  async #publish(member: BusMember, invalidations: readonly Invalidation[]): Promise<void> {
    if (this.#closed) throw new CacheClosedError('redisBus is closed', { cache: member.cacheName })
    const message = encodeInvalidations(member.instanceId, invalidations)
    const pending = this.#publisher.client.publish(this.#channel, message)
    let timer: NodeJS.Timeout | undefined
    try {
      await Promise.race([
        pending,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`publish timed out after ${this.#timeoutMs} ms`)), this.#timeoutMs)
        }),
      ])
      this.#published++
    } catch (error) {
      pending.catch(() => {})
      throw new Error(`publish on ${this.#channel} failed: ${errorMessageOf(error)}`, { cause: error })
    } finally {
      clearTimeout(timer)
    }
  }

  #onMessage(channel: string, message: string): void {
    if (channel !== this.#channel) return
    this.#received++
    const decoded = decodeInvalidations(message)
    if (decoded === undefined) {
      this.#dropped++
      return
    }
    this.#dropped += decoded.dropped
    for (const { origin, invalidation } of decoded.invalidations) this.#members.deliver(origin, invalidation)
  }

  status(): BusStatus {
    return {
      connected: !this.#closed && this.#subscriber.status === 'ready' && this.#publisher.client.status === 'ready',
      messagesPublished: this.#published,
      messagesReceived: this.#received,
      messagesDropped: this.#dropped,
      members: this.#members.size,
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await Promise.all([closeConnection(this.#subscriber), this.#publisher.release()])
  }
}
