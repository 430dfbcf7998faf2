/**
 * A latency histogram in fixed memory: log-spaced buckets from 1 µs to about
 * 100 s (20 per decade, so a quantile is off by at most ~12 %), counted in a
 * typed array. Recording is a log, a floor and an increment: no allocation,
 * no growth however long the process runs.
 */
const MIN_MS = 0.001
const BUCKETS_PER_DECADE = 20
const DECADES = 8
const BUCKETS = BUCKETS_PER_DECADE * DECADES + 1

export interface LatencySummary {
  count: number
  /** Milliseconds; 0 when nothing was recorded. */
  p50: number
  p95: number
  p99: number
  max: number
}

export class LatencyHistogram {
  #counts = new Float64Array(BUCKETS)
  #count = 0
  #max = 0

  record(ms: number): void {
    const index = ms <= MIN_MS ? 0 : Math.min(BUCKETS - 1, Math.ceil(Math.log10(ms / MIN_MS) * BUCKETS_PER_DECADE))
    this.#counts[index]!++
    this.#count++
    if (ms > this.#max) this.#max = ms
  }

  get count(): number {
    return this.#count
  }

  /** The upper bound of the bucket holding quantile `q`. */
  quantile(q: number): number {
    if (this.#count === 0) return 0
    const rank = q * this.#count
    let seen = 0
    for (let i = 0; i < BUCKETS; i++) {
      seen += this.#counts[i]!
      if (seen >= rank) return Math.min(this.#max, MIN_MS * 10 ** (i / BUCKETS_PER_DECADE))
    }
    return this.#max
  }

  summary(): LatencySummary {
    return { count: this.#count, p50: this.quantile(0.5), p95: this.quantile(0.95), p99: this.quantile(0.99), max: this.#max }
  }
}
