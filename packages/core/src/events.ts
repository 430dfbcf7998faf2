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
  /** On 'gap-closed': how long the gap was open, ms (from the break to the probe that closed it). */
  gapMs?: number
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

/**
 * A pino-compatible logger (`logger.warn(object, message)`); console-like
 * loggers work too. Only `warn` is required: a line meant for a level the
 * logger lacks goes to `warn` (`error`) or is dropped (`info`, `debug`,
 * `trace`). What each level carries:
 * - `error`: a connection lost (with host:port and cause), the circuit opened;
 * - `warn`: recovered errors (the first of a kind at once, the rest counted
 *   and summed up every 10 s), decisions the cache took on its own;
 * - `info`: a connection restored, the circuit closed again;
 * - `debug`: the circuit's half-open probes.
 */
export interface Logger {
  warn(object: Record<string, unknown>, message?: string): void
  error?(object: Record<string, unknown>, message?: string): void
  info?(object: Record<string, unknown>, message?: string): void
  debug?(object: Record<string, unknown>, message?: string): void
  trace?(object: Record<string, unknown>, message?: string): void
}

export type LogLevel = 'error' | 'warn' | 'info' | 'debug' | 'trace'
