// Small statistics helpers shared by the scenarios.
export function quantile(sorted, p) {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]
}

export function median(values) {
  return quantile(
    [...values].sort((a, b) => a - b),
    0.5,
  )
}

/** Median of repeated measurements plus their spread, for the tables. */
export function summarize(values) {
  const sorted = [...values].sort((a, b) => a - b)
  return { median: quantile(sorted, 0.5), min: sorted[0], max: sorted.at(-1), runs: sorted.length }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
