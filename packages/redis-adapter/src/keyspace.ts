import { InvalidOptionError } from '@tiercache/core/adapter'

/**
 * Redis key and channel layout. Cache names and prefixes cannot contain ':'
 * or '#', so these shapes cannot collide with one another:
 *
 *   <prefix>:<cache>:<key>     an entry
 *   <prefix>:<cache>#gen       the cache's generation (replaced by clear)
 *   <prefix>:<cache>#lease:<key>   the key's fill lease
 *   <prefix>:<cache>#tag:<tag>, #tagepoch   tag versions (derived from #gen by the scripts)
 *   <prefix>:invalidations     the bus channel (channels are not keys)
 *
 * On Redis Cluster every script must find all its keys in one slot, and a
 * read checks an entry against its cache's generation and tag versions in
 * the same call. So a cache's keys are spread over KEY_GROUPS hash-tag
 * groups (`{<prefix>/<n>}`, n from a hash of the key), and each group holds
 * its own copy of the generation and tag versions, next to its entries:
 *
 *   <prefix>:<cache>:{<prefix>/<n>}<key>      an entry
 *   <prefix>:<cache>#{<prefix>/<n>}gen         the generation, for group n
 *   <prefix>:<cache>#{<prefix>/<n>}lease:<key> the lease
 *   <prefix>:invalidations{<prefix>/<n>}       group n's shard channel
 *
 * A clear or a tag invalidation writes all KEY_GROUPS groups, each in its own
 * script that publishes its own message on its group's shard channel (write
 * and message stay one atomic step per slot). Prefixes and cache names
 * cannot contain braces, so the first `{…}` of every key is the group's.
 */
export const DEFAULT_PREFIX = 'tiercache'

const PREFIX_PATTERN = /^[A-Za-z0-9_.\-/]{1,64}$/

export function assertValidPrefix(prefix: unknown, owner: string): asserts prefix is string {
  if (typeof prefix !== 'string' || !PREFIX_PATTERN.test(prefix)) {
    throw new InvalidOptionError(`${owner}: prefix ${JSON.stringify(prefix)} is not valid (1-64 characters from A-Z a-z 0-9 _ . - /)`)
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
export function keyOfLayout(prefix: string, name: string): { kind: 'entry'; cache: string; key: string } | { kind: 'generation'; cache: string } | undefined {
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

/**
 * Hash-tag groups per deployment on Cluster. Fixed, not an option: every
 * process of a deployment must agree on it. 64 spreads a deployment over 64
 * slots (about ±20 % per node on 3 primaries) while a clear or a tag
 * invalidation costs 64 small script calls and 64 messages per instance.
 */
export const KEY_GROUPS = 64

/** Where one cache's keys live: the standalone layout, or the Cluster layout with its groups. */
export interface KeyLayout {
  /** The key's group: '' when standalone (one group), the hash tag on Cluster. */
  groupOf(key: string): string
  entry(key: string, group: string): string
  lease(key: string, group: string): string
  generation(group: string): string
  /** Every group's generation key: what clear and invalidateTags write. */
  readonly groups: readonly string[]
  /** The channel a write in `group` publishes on, given the bus's channel. */
  channel(busChannel: string, group: string): string
}

export function standaloneLayout(prefix: string, cache: string): KeyLayout {
  const generation = generationKey(prefix, cache)
  return {
    groupOf: () => '',
    entry: (key) => entryKey(prefix, cache, key),
    lease: (key) => leaseKey(prefix, cache, key),
    generation: () => generation,
    groups: [''],
    channel: (busChannel) => busChannel,
  }
}

export function clusterLayout(prefix: string, cache: string): KeyLayout {
  const groups = clusterGroups(prefix)
  return {
    groupOf: (key) => groups[groupIndexOf(key)]!,
    entry: (key, group) => `${prefix}:${cache}:${group}${key}`,
    lease: (key, group) => `${prefix}:${cache}#${group}lease:${key}`,
    generation: (group) => `${prefix}:${cache}#${group}gen`,
    groups,
    channel: (busChannel, group) => `${busChannel}${group}`,
  }
}

/** The hash tags of a deployment's groups, `{<prefix>/0}` to `{<prefix>/63}`. */
export function clusterGroups(prefix: string): string[] {
  return Array.from({ length: KEY_GROUPS }, (_, n) => `{${prefix}/${n}}`)
}

/** FNV-1a over the key's UTF-16 code units: the same group in every process, cheap per call. */
function groupIndexOf(key: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    hash ^= key.charCodeAt(i)
    hash = Math.imul(hash, 0x01000193)
  }
  return (hash >>> 0) % KEY_GROUPS
}

/** Redis Cluster's slot of a key or shard channel: CRC16 (XMODEM) of its hash tag, mod 16384. */
export function slotOf(name: string): number {
  let start = name.indexOf('{')
  let end = start >= 0 ? name.indexOf('}', start + 1) : -1
  if (start < 0 || end <= start + 1) {
    start = -1
    end = name.length
  }
  const bytes = Buffer.from(name.slice(start + 1, end))
  let crc = 0
  for (const byte of bytes) {
    crc ^= byte << 8
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
  }
  return crc % 16384
}
