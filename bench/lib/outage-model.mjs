// What the outage scenario's processes agree on without talking: the
// "database" (a write schedule every process can evaluate for any key and
// time, so a factory in any process reads the current version with no I/O),
// the value each read returns, the latency histogram and the time buckets.
import { sampleValue } from './value.mjs'

/** Cross-process timestamps (ms): wall-clock anchored, sub-ms, comparable between processes on one machine. */
export const now = () => performance.timeOrigin + performance.now()

/** Reads and factory calls are counted per time bucket of this length (by the read's start). */
export const BUCKET_MS = 100

/**
 * The database. Write i (i = 0, 1, …) commits version i + 1 of key
 * `k${i % writtenKeys}` at `writesFrom + i * periodMs`; every other key stays
 * at version 0. The writer process then sets that value in the cache; a
 * factory returns the version committed at the moment it runs.
 */
export function createDatabase({ writesFrom, periodMs, writtenKeys }) {
  return {
    versionAt(key, t) {
      if (key >= writtenKeys || t < writesFrom) return 0
      const last = Math.floor((t - writesFrom) / periodMs) // the newest write committed by t
      if (last < key) return 0
      return last - ((last - key) % writtenKeys) + 1
    },
    /** When write `version - 1` committed. */
    committedAt: (version) => writesFrom + (version - 1) * periodMs,
    keyOf: (version) => (version - 1) % writtenKeys,
  }
}

/** The cached value: a ~200-byte object plus its version, who produced it ('w0', 'w1', 'writer') and when. */
export function makeValue(key, version, by, at) {
  return { ...sampleValue(key), version, by, at }
}

// Latency histogram: 16 bins per power of two of nanoseconds (about 4.4 %
// wide), from 1 ns to 2^38 ns (4.5 min): an L1 hit takes well under a
// microsecond. Counts add across processes and buckets, so quantiles are
// exact up to a bin's width. The interface is in µs.
const PER_OCTAVE = 16
export const BINS = PER_OCTAVE * 38 + 2

export function binOf(us) {
  const ns = us * 1000
  if (!(ns >= 1)) return 0
  return Math.min(BINS - 1, Math.floor(Math.log2(ns) * PER_OCTAVE) + 1)
}

/** A bin's representative latency: the geometric middle of its range, µs. */
export function binValue(bin) {
  return (bin === 0 ? 0.5 : 2 ** ((bin - 0.5) / PER_OCTAVE)) / 1000
}

/** Quantile p of a histogram (any array of counts indexed by bin). */
export function histogramQuantile(histogram, p) {
  let total = 0
  for (const c of histogram) total += c
  if (total === 0) return Number.NaN
  let cumulative = 0
  for (let bin = 0; bin < histogram.length; bin++) {
    cumulative += histogram[bin]
    if (cumulative >= p * total) return binValue(bin)
  }
  return binValue(histogram.length - 1)
}
