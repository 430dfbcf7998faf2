/**
 * How L1 keeps its copy of a value: `l1Ttl` caps the copy's life, and
 * `refreshAhead` makes a hot key due for one background refresh before it
 * expires, so no request ever waits for its factory after warm-up.
 *
 * Refresh-ahead costs the L1 hit path nothing: the copy L1 keeps simply
 * expires at the refresh point (`expiresAt - aheadMs`), so the inline hit
 * check fails there and the read goes down to the load path, which finds
 * the copy still fresh (`freshUntil`), answers with it at once and starts
 * the refresh — the same path stale-while-revalidate takes within grace.
 * Across instances the refresh is single: it runs under the key's lease,
 * which the shared tier grants for a fresh entry within `aheadMs` of its
 * expiry (`readForFill(key, leaseMs, aheadMs)`).
 */
import { clock } from '../clock.js'
import type { TierEntry } from '../contracts.js'
import type { ReadPolicy } from '../policy.js'

/** What L1 keeps of an entry: its life capped (`l1TtlMs`), and due for a refresh `aheadMs` before it expires. */
export interface L1Shape {
  readonly l1TtlMs: number | undefined
  readonly aheadMs: number | undefined
}

/** An L1 copy due for refresh-ahead: `expiresAt` is the refresh point; the value is fresh until `freshUntil`. */
export type AheadEntry = TierEntry & { readonly freshUntil: number }

/** Entries copied as they are. */
export const AS_IS: L1Shape = Object.freeze({ l1TtlMs: undefined, aheadMs: undefined })

/**
 * A copy whose refresh point has passed while another instance refreshes it
 * is looked at again this much later (one L2 read per key per instance per
 * interval, not one per hit), never past its expiry.
 */
const RECHECK_MS = 100

/** The shape for an entry stored with `ttlMs` under `policy`. */
export function shapeOf(policy: ReadPolicy, ttlMs: number): L1Shape {
  if (policy.l1TtlMs === undefined && policy.refreshAhead === undefined) return AS_IS
  return { l1TtlMs: policy.l1TtlMs, aheadMs: aheadMsOf(policy, ttlMs) }
}

/** How long before its expiry a value stored with `ttlMs` is due for a refresh, or undefined without refresh-ahead. */
export function aheadMsOf(policy: ReadPolicy, ttlMs: number): number | undefined {
  return policy.refreshAhead === undefined ? undefined : Math.round((1 - policy.refreshAhead) * ttlMs)
}

/**
 * The copy L1 keeps. `l1Ttl` first: a copy capped before its refresh point
 * needs no refresh of its own (its next read goes to L2, which grants the
 * refresh lease when due). With an L2, a capped copy has no grace (grace
 * applies after the L2 TTL); on an L1-only cache it keeps its grace.
 */
export function l1Copy(entry: TierEntry, shape: L1Shape, hasL2: boolean): TierEntry {
  if (shape === AS_IS) return entry
  const now = clock()
  const { value, createdAt, tags } = entry
  if (shape.l1TtlMs !== undefined && entry.expiresAt > now + shape.l1TtlMs) {
    const expiresAt = now + shape.l1TtlMs
    const staleUntil = hasL2 || entry.staleUntil === undefined ? undefined : expiresAt + (entry.staleUntil - entry.expiresAt)
    return tags === undefined ? { value, createdAt, expiresAt, staleUntil } : { value, createdAt, expiresAt, staleUntil, tags }
  }
  if (shape.aheadMs === undefined || shape.aheadMs <= 0 || entry.expiresAt <= now) return entry
  const freshUntil = entry.expiresAt
  const expiresAt = Math.min(freshUntil, Math.max(freshUntil - shape.aheadMs, now + RECHECK_MS))
  const staleUntil = Math.max(entry.staleUntil ?? freshUntil, freshUntil)
  const copy: AheadEntry =
    tags === undefined ? { value, createdAt, expiresAt, staleUntil, freshUntil } : { value, createdAt, expiresAt, staleUntil, tags, freshUntil }
  return copy
}

/** True when `entry` is an L1 copy past its refresh point but still fresh. */
export function dueAhead(entry: TierEntry, now: number): boolean {
  const freshUntil = (entry as Partial<AheadEntry>).freshUntil
  return freshUntil !== undefined && freshUntil > now
}

/** Until when `entry` is fresh: its own expiry, or for an L1 copy due for refresh-ahead, the value's. */
export function freshUntilOf(entry: TierEntry): number {
  return (entry as Partial<AheadEntry>).freshUntil ?? entry.expiresAt
}
