// The outage scenario's figures, from the readers' per-bucket counts and the
// writer's outcomes. Kept apart from the orchestration so that the parent can
// run the same recovery test while the run is going (to know when to stop)
// and once at the end (for the table).
import { BINS, BUCKET_MS, histogramQuantile } from './outage-model.mjs'

/** A 1 s window, in buckets, is the unit of "back to normal". */
export const WINDOW_BUCKETS = Math.round(1000 / BUCKET_MS)

/** The readers' 'done' messages summed bucket by bucket (max for the max). */
export function mergeReaders(done, buckets) {
  const merged = {
    reads: new Float64Array(buckets),
    factory: new Float64Array(buckets),
    errors: new Float64Array(buckets),
    stale: new Float64Array(buckets),
    behind: new Float64Array(buckets),
    maxUs: new Float64Array(buckets),
    histogram: new Float64Array(buckets * BINS),
  }
  for (const d of done) {
    for (const field of ['reads', 'factory', 'errors', 'stale', 'behind']) for (let b = 0; b < buckets; b++) merged[field][b] += d[field][b]
    for (let b = 0; b < buckets; b++) merged.maxUs[b] = Math.max(merged.maxUs[b], d.maxUs[b])
    for (let i = 0; i < merged.histogram.length; i++) merged.histogram[i] += d.histogram[i]
  }
  return merged
}

/**
 * Buckets [from, to) whose middle lies in [t0, t1): a bucket straddling the
 * kill or the restart goes to the phase that holds most of it.
 */
export function bucketRange(startAt, t0, t1) {
  const first = (t) => Math.max(0, Math.ceil((t - startAt) / BUCKET_MS - 0.5))
  return [first(t0), first(t1)]
}

/** Reads and factory calls per second over the buckets [from, to) (all that the live counts have). */
export function rates(counts, [from, to]) {
  let reads = 0
  let factory = 0
  for (let b = from; b < to; b++) {
    reads += counts.reads[b]
    factory += counts.factory[b]
  }
  const seconds = ((to - from) * BUCKET_MS) / 1000
  return { readsPerSec: reads / seconds, factoryPerSec: factory / seconds }
}

/** Reads, latency and factory calls over the buckets [from, to). */
export function phase(merged, [from, to]) {
  const seconds = ((to - from) * BUCKET_MS) / 1000
  const histogram = new Float64Array(BINS)
  let reads = 0
  let factory = 0
  let errors = 0
  let stale = 0
  let behind = 0
  let maxUs = 0
  for (let b = from; b < to; b++) {
    reads += merged.reads[b]
    factory += merged.factory[b]
    errors += merged.errors[b]
    stale += merged.stale[b]
    behind += merged.behind[b]
    maxUs = Math.max(maxUs, merged.maxUs[b])
    for (let i = 0; i < BINS; i++) histogram[i] += merged.histogram[b * BINS + i]
  }
  return {
    seconds,
    reads,
    readsPerSec: reads / seconds,
    p50Us: histogramQuantile(histogram, 0.5),
    p99Us: histogramQuantile(histogram, 0.99),
    maxUs,
    factory,
    factoryPerSec: factory / seconds,
    errors,
    stale,
    behind,
  }
}

/**
 * Back to normal: the start of the first 1 s window, among those starting at
 * or after the restart (100 ms steps), in which both processes together made
 * at most 2x the pre-outage factory calls per second + 10, at least half the
 * pre-outage reads per second, and no read failed. Undefined if no such
 * window ended before `to` (a bucket index: the buckets known so far).
 *
 * `counts` has per-bucket `reads`, `factory` and `errors` (the merged 'done'
 * arrays, or the live ticks).
 */
export function backToNormal(counts, before, restartBucket, to) {
  const maxFactory = ((2 * before.factoryPerSec + 10) * (WINDOW_BUCKETS * BUCKET_MS)) / 1000
  const minReads = (0.5 * before.readsPerSec * (WINDOW_BUCKETS * BUCKET_MS)) / 1000
  for (let from = restartBucket; from + WINDOW_BUCKETS <= to; from++) {
    let reads = 0
    let factory = 0
    let errors = 0
    for (let b = from; b < from + WINDOW_BUCKETS; b++) {
      reads += counts.reads[b]
      factory += counts.factory[b]
      errors += counts.errors[b]
    }
    if (factory <= maxFactory && reads >= minReads && errors === 0) return from
  }
  return undefined
}

/**
 * The writes whose database commit fell in [t0, t1): resolved by
 * `answeredBy`, failed (rejected to the writer), resolved only after
 * `answeredBy`, or never answered by the end of the run; and when the first
 * of them resolved. `outcomes`:
 * version -> { completedAt } or { failedAt, message }, as the writer reported them.
 */
export function writesBetween(outcomes, db, t0, t1, answeredBy = t1) {
  const tally = { issued: 0, ok: 0, failed: 0, late: 0, pending: 0, firstError: undefined, firstOkAt: undefined }
  for (let version = 1; db.committedAt(version) < t1; version++) {
    if (db.committedAt(version) < t0) continue
    tally.issued++
    const outcome = outcomes.get(version)
    if (outcome === undefined) tally.pending++
    else if (outcome.failedAt !== undefined) {
      tally.failed++
      tally.firstError ??= outcome.message
    } else {
      if (outcome.completedAt < answeredBy) tally.ok++
      else tally.late++
      tally.firstOkAt = Math.min(tally.firstOkAt ?? outcome.completedAt, outcome.completedAt)
    }
  }
  return tally
}
