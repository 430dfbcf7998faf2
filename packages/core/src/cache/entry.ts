import { clock } from '../clock.js'
import type { TierEntry } from '../contracts.js'
import { etagOf, etagOfEntry } from '../etag.js'
import { userTagsOf } from '../tags.js'

/** The last moment an entry may be served at all: the end of its grace, or its TTL without one. */
export const usableUntil = (entry: TierEntry): number => entry.staleUntil ?? entry.expiresAt

/**
 * An entry as L1 holds it. Two plain literals rather than one with a
 * conditional spread: the spread form measured 8.5 bytes more per entry
 * (bench/scenarios/memory.mjs; about 2 % of a 200-byte value's footprint),
 * and both give every untagged entry the same shape as the ones the shared
 * tiers return, so the hit path stays monomorphic.
 */
export function newEntry<V>(value: V, expiresAt: number, graceMs: number, tags: readonly string[] | undefined): TierEntry<V> {
  const createdAt = Date.now()
  const staleUntil = expiresAt + graceMs
  return tags === undefined ? { value, createdAt, expiresAt, staleUntil } : { value, createdAt, expiresAt, staleUntil, tags }
}

/**
 * What `getOrSetEntry` answers: the value, and what an HTTP layer needs to
 * describe it (see `@tiercache/http`). Times are wall-clock ms since the
 * epoch; `etag` is a quoted strong entity-tag, the same on every instance
 * for the same value (etag.ts); `tags` are the entry's own tags (no
 * namespace bookkeeping).
 */
export interface CachedEntry<V> {
  readonly value: V
  readonly etag: string
  readonly createdAt: number
  readonly expiresAt: number
  readonly tags: readonly string[]
}

/** A held entry, described: its expiry moved from core's monotonic clock to the wall clock. */
export function cachedEntryOf<V>(entry: TierEntry, freshUntil: number): CachedEntry<V> {
  return {
    value: entry.value as V,
    etag: etagOfEntry(entry),
    createdAt: entry.createdAt,
    expiresAt: Math.round(Date.now() + (freshUntil - clock())),
    tags: userTagsOf(entry.tags),
  }
}

/** A value no tier holds for this caller (not cached, or replaced since): described as produced now, for `ttlMs`. */
export function uncachedEntryOf<V>(value: V, ttlMs: number, tags: readonly string[] | undefined): CachedEntry<V> {
  const now = Date.now()
  return { value, etag: etagOf(value), createdAt: now, expiresAt: now + ttlMs, tags: userTagsOf(tags) }
}
