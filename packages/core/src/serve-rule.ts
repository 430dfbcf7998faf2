/**
 * Rule 7 of the coherence contract: one rule for everything served locally.
 *
 * An L1 hit, a grace value, a fail-safe value, the result of a load a caller
 * joined: each may be served at `now` only if
 *
 *     now < max(verifiedAt, t0) + maxStaleness
 *
 * `verifiedAt` is when the last answered liveness probe was sent: every
 * invalidation published before it has arrived (and dropped what it
 * matched). `t0` is when the L2 read or factory call that produced the value
 * was issued, on this instance's monotonic clock: any write this instance has
 * not heard of completed after `t0`, so the value is at most `now - t0` older
 * than it. `t0` is never the writer's `createdAt` (another machine's clock).
 *
 * Why at serve time, in one place: the holes this closes were values held
 * across a silent partition (a fail-safe backoff, a refresh that had already
 * answered stale) that were dropped only when a gap *closed*. A silent
 * partition opens a gap only after several missed probes, long after trust
 * has lapsed, and it never closes while the partition lasts. Checking the
 * rule when the value is handed out needs no event at all.
 */
/**
 * `t0` of a value whose producing read is unknown here (an L1 entry: L1 does
 * not keep it, to keep the entry small). Such a value is served on liveness
 * alone.
 */
export const UNKNOWN_T0 = Number.NEGATIVE_INFINITY

/**
 * True if a value produced by a read issued at `t0` may be served at `now`
 * (rule 7). The L1 hit path inlines the same comparison with `t0` unknown
 * (`now - verifiedAt < maxStaleness`): it is measured in nanoseconds.
 */
export function servable(verifiedAt: number, maxStalenessMs: number, t0: number, now: number): boolean {
  return now < Math.max(verifiedAt, t0) + maxStalenessMs
}
