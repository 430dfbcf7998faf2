/**
 * "Is it hot?": the share of lookups that land on the hottest 1 % of keys,
 * in bounded memory whatever the number of keys. Two small summaries, each
 * of at most CAPACITY keys, because neither alone is right for every shape:
 *
 * - a hash sample: the keys whose hash has its low `level` bits zero, each
 *   counted exactly from its first lookup (membership depends on the key
 *   only, and `level` only grows). Past CAPACITY keys, `level` goes up and
 *   half the sample goes. The sample is a fair draw of keys, so its top 1 %
 *   share estimates the whole's, and its size × 2^level the number of
 *   distinct keys. It can miss a handful of very hot keys among millions.
 * - a Misra–Gries summary of heavy hitters: a key's count is under its
 *   true count by at most (weight seen) / (CAPACITY + 1), so it catches the
 *   very hot keys the sample may miss, and errs low on a flat workload.
 *
 * The answer is the larger of the two (each errs low in its own case). The
 * Misra–Gries decrement is O(CAPACITY), once per ~CAPACITY new keys: O(1)
 * amortized. Memory: two maps of ≤ 1,024 keys.
 *
 * Fed from observe mode's every lookup, and in normal mode from every
 * lookup past L1 plus one L1 hit in 64 weighted 64 (the hit path pays a
 * mask and a compare; see cache.ts).
 */

/** Keys each summary holds at most. */
const CAPACITY = 1_024

/** 32-bit FNV-1a of the key's UTF-16 code units, then a murmur3 finalizer so every bit mixes. */
function hash32(key: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < key.length; i++) {
    h ^= key.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  h ^= h >>> 16
  h = Math.imul(h, 0x85ebca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** The sum of the `n` largest of `counts`. */
function topSum(counts: Iterable<number>, n: number): number {
  const sorted = [...counts].sort((a, b) => b - a)
  let sum = 0
  for (let i = 0; i < Math.min(n, sorted.length); i++) sum += sorted[i]!
  return sum
}

export class HotKeys {
  /** The hash sample: key → exact weight since its first lookup. */
  readonly #sample = new Map<string, number>()
  #level = 0
  /** The Misra–Gries summary: key → weight, undercounted by at most #total / (CAPACITY + 1). */
  readonly #heavy = new Map<string, number>()
  #total = 0

  /** One lookup of `key`, counted `weight` times (a sampled lookup stands for the ones skipped). */
  add(key: string, weight = 1): void {
    this.#total += weight
    this.#addToSample(key, weight)
    this.#addToHeavy(key, weight)
  }

  #addToSample(key: string, weight: number): void {
    const h = hash32(key)
    if ((h & ((1 << this.#level) - 1)) !== 0) return
    const sample = this.#sample
    sample.set(key, (sample.get(key) ?? 0) + weight)
    while (sample.size > CAPACITY && this.#level < 31) {
      this.#level++
      const mask = (1 << this.#level) - 1
      for (const k of sample.keys()) if ((hash32(k) & mask) !== 0) sample.delete(k)
    }
  }

  #addToHeavy(key: string, weight: number): void {
    const heavy = this.#heavy
    const held = heavy.get(key)
    if (held !== undefined) {
      heavy.set(key, held + weight)
      return
    }
    if (heavy.size < CAPACITY) {
      heavy.set(key, weight)
      return
    }
    // Full: every counter (and the newcomer's weight) drops by the smallest; zeros go.
    let smallest = weight
    for (const count of heavy.values()) if (count < smallest) smallest = count
    for (const [k, count] of heavy) {
      if (count <= smallest) heavy.delete(k)
      else heavy.set(k, count - smallest)
    }
    if (weight > smallest) heavy.set(key, weight - smallest)
  }

  /** Weight seen: lookups counted (sampled ones at their weight). */
  get total(): number {
    return this.#total
  }

  /** Distinct keys seen, estimated from the hash sample (exact below CAPACITY keys). */
  get distinctKeys(): number {
    return this.#sample.size * 2 ** this.#level
  }

  /** The share of lookups on the hottest `fraction` of keys (at least one key); 0 before any lookup. Errs low. */
  hottestShare(fraction = 0.01): number {
    if (this.#total === 0) return 0
    const sampleWeight = topSum(this.#sample.values(), Number.POSITIVE_INFINITY)
    const fromSample = sampleWeight === 0 ? 0 : topSum(this.#sample.values(), Math.max(1, Math.round(this.#sample.size * fraction))) / sampleWeight
    const fromHeavy = topSum(this.#heavy.values(), Math.max(1, Math.round(this.distinctKeys * fraction))) / this.#total
    return Math.min(1, Math.max(fromSample, fromHeavy))
  }
}
