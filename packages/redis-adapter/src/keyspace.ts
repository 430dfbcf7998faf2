import { InvalidOptionError } from '@tiercache/core'

/**
 * Redis key and channel layout. Cache names and prefixes cannot contain ':'
 * or '#', so these shapes cannot collide with one another:
 *
 *   <prefix>:<cache>:<key>     an entry
 *   <prefix>:<cache>#gen       the cache's generation (replaced by clear)
 *   <prefix>:<cache>#lease:<key>   the key's fill lease
 *   <prefix>:invalidations     the bus channel (channels are not keys)
 */
export const DEFAULT_PREFIX = 'tiercache'

const PREFIX_PATTERN = /^[A-Za-z0-9_.\-/]{1,64}$/

export function assertValidPrefix(prefix: unknown, owner: string): asserts prefix is string {
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
    throw new InvalidOptionError(
      `${owner}: prefix ${JSON.stringify(prefix)} is not valid (1-64 characters from A-Z a-z 0-9 _ . - /)`,
    )
  }
}

export function entryKey(prefix: string, cache: string, key: string): string {
  return `${prefix}:${cache}:${key}`
}

export function generationKey(prefix: string, cache: string): string {
  return `${prefix}:${cache}#gen`
}

export function leaseKey(prefix: string, cache: string, key: string): string {
  return `${prefix}:${cache}#lease:${key}`
}

export function invalidationChannel(prefix: string): string {
  return `${prefix}:invalidations`
}
