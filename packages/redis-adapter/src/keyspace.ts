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

/**
 * What a key named by Redis (CLIENT TRACKING) is to this layout: an entry
 * of a cache, a cache's generation key, or nothing L1 holds (another prefix,
 * a lease, a tag version). The inverse of entryKey and generationKey.
 */
export function keyOfLayout(
  prefix: string,
  name: string,
): { kind: 'entry'; cache: string; key: string } | { kind: 'generation'; cache: string } | undefined {
  if (!name.startsWith(`${prefix}:`)) return undefined
  const rest = name.slice(prefix.length + 1)
  const mark = rest.indexOf('#') // cache names cannot contain '#' or ':': the first of them ends the name
  const colon = rest.indexOf(':')
  if (mark >= 0 && (colon < 0 || mark < colon)) return rest.slice(mark + 1) === 'gen' ? { kind: 'generation', cache: rest.slice(0, mark) } : undefined
  if (colon <= 0) return undefined
  return { kind: 'entry', cache: rest.slice(0, colon), key: rest.slice(colon + 1) }
}

export function invalidationChannel(prefix: string): string {
  return `${prefix}:invalidations`
}
