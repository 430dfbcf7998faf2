import type { TierEntry } from '../contracts.js'

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
