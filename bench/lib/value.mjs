// The value every scenario caches: a ~200-byte object, plain JSON types only so
// that every contestant (JSON, msgpack) round-trips it the same way.
export function sampleValue(id = 42) {
  return {
    id,
    name: `user ${id}`,
    email: `user${id}@example.com`,
    roles: ['reader', 'writer'],
    plan: 'pro',
    createdAt: 1_700_000_000_000 + id,
    settings: { theme: 'dark', locale: 'en-GB', notifications: true },
    bio: 'Writes about caches.',
  }
}

/** Zipf(s) sampler over keys 0..n-1 by inverse CDF (precomputed, binary search). */
export function zipf(n, s = 0.99, random = Math.random) {
  const cdf = new Float64Array(n)
  let sum = 0
  for (let k = 0; k < n; k++) {
    sum += 1 / (k + 1) ** s
    cdf[k] = sum
  }
  for (let k = 0; k < n; k++) cdf[k] /= sum
  return () => {
    const u = random()
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (cdf[mid] < u) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}
