/** Seeded key traces for the ghost's predictions: the same sequence on every run. */

/** Seeded PRNG (mulberry32). */
export function random(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** Key indexes drawn uniformly from `n`. */
export const uniform = (n: number, rnd: () => number) => () => Math.floor(rnd() * n)

/** Key indexes drawn from a Zipf distribution over `n` (exponent `s`): a few hot keys, a long tail. */
export function zipf(n: number, s: number, rnd: () => number): () => number {
  const cdf: number[] = []
  let sum = 0
  for (let i = 1; i <= n; i++) cdf.push((sum += 1 / i ** s))
  return () => {
    const u = rnd() * sum
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (cdf[mid]! < u) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}
