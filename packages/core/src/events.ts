import { channel } from 'node:diagnostics_channel'

/**
 * Diagnostics channels (`node:diagnostics_channel`): subscribe to see every
 * hit, miss, write and invalidation, e.g. to log or trace them. Publishing
 * is skipped entirely while nobody subscribes, so the L1 hit path pays one
 * `hasSubscribers` check.
 *
 *   import { subscribe } from 'node:diagnostics_channel'
 *   subscribe('tiercache:miss', (event) => logger.debug(event))
 */
export interface HitEvent {
  cache: string
  key: string
  tier: 'l1' | 'l2'
  /** Served past its TTL, within grace. */
  stale: boolean
}
export interface MissEvent {
  cache: string
  key: string
  /** Factory time, ms. */
  factoryMs: number
  outcome: 'stored' | 'not-stored' | 'error' | 'fail-safe'
}
export interface WriteEvent {
  cache: string
  kind: 'set' | 'delete' | 'clear' | 'tags'
  key: string | undefined
}
export interface InvalidationEvent {
  cache: string
  kind: 'key' | 'clear' | 'tags' | 'gap'
  key: string | undefined
}

/** A bus's subscription broke (L1 bypassed) or was proven again (every L1 cleared, then trusted). */
export interface BusStateEvent {
  /** The bus's channel. */
  channel: string
  state: 'gap-opened' | 'gap-closed'
}

export const CHANNELS = {
  hit: 'tiercache:hit',
  miss: 'tiercache:miss',
  write: 'tiercache:write',
  invalidation: 'tiercache:invalidation',
  bus: 'tiercache:bus',
} as const

export const hitChannel = channel(CHANNELS.hit)
export const missChannel = channel(CHANNELS.miss)
export const writeChannel = channel(CHANNELS.write)
export const invalidationChannel = channel(CHANNELS.invalidation)
export const busStateChannel = channel(CHANNELS.bus)

/** A pino-compatible logger (`logger.warn(object, message)`); console-like loggers work too. */
export interface Logger {
  warn(object: Record<string, unknown>, message?: string): void
}
