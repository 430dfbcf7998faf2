/**
 * Observe mode (`mode: 'observe'`): reads behave as with no cache and store
 * nothing, invalidations still reach L2 and the bus, and the ghost of the
 * first tier predicts the hit rate the cache would have. The predictions are
 * checked against a reference simulation written here (a plain Map with
 * last-use stamps, evicting by a scan, with TTLs and tags) on seeded traces
 * replayed on a controlled clock.
 */
import { describe, expect, it } from 'vitest'
import type { Invalidation } from '../src/index.js'
import { InvalidOptionError, createCache } from '../src/index.js'
import { GhostIndex, ghostCapacityOf } from '../src/cache/ghost-index.js'
import { namespaceTag } from '../src/tags.js'
import { FakeBus, controlledSharedTier, entry, fakeLocalTier } from './fakes.js'
import { random, uniform, zipf } from './traces.js'

// ------------------------------------------------------------ reference model

/** What an L1 of `capacity` entries would hold: least recently used out first, TTL expiry, tag and clear invalidations. */
class ReferenceL1 {
  readonly #entries = new Map<string, { expiresAt: number; tags: readonly string[]; usedAt: number }>()
  #tick = 0
  hits = 0
  lookups = 0
  constructor(
    readonly capacity: number,
    readonly now: () => number,
  ) {}

  /** A lookup, and on a miss the fill that follows it. */
  read(key: string, ttlMs: number, tags: readonly string[] = []): void {
    this.lookups++
    const held = this.#entries.get(key)
    if (held !== undefined && held.expiresAt > this.now()) {
      this.hits++
      held.usedAt = ++this.#tick
      return
    }
    this.#entries.set(key, { expiresAt: this.now() + ttlMs, tags, usedAt: ++this.#tick })
    if (this.#entries.size > this.capacity) {
      let oldest: string | undefined
      let oldestAt = Number.POSITIVE_INFINITY
      for (const [k, e] of this.#entries) {
        if (e.usedAt < oldestAt) {
          oldest = k
          oldestAt = e.usedAt
        }
      }
      this.#entries.delete(oldest!)
    }
  }

  invalidate(invalidation: Invalidation): void {
    if (invalidation.kind === 'clear') this.#entries.clear()
    else if (invalidation.kind === 'key') this.#entries.delete(invalidation.key)
    else for (const [k, e] of this.#entries) if (e.tags.some((tag) => invalidation.tags.includes(tag))) this.#entries.delete(k)
  }

  get hitRate(): number {
    return this.hits / this.lookups
  }
}

interface Trace {
  readonly reads: number
  readonly capacity: number
  readonly ttlMs: number
  readonly next: () => number
  /** Clock advance per read, ms. */
  readonly stepMs?: () => number
  /** Invalidations from another process, by the read they come before. */
  readonly invalidationAt?: (i: number) => Invalidation | undefined
}

const tagsOf = (k: number) => [`group:${k % 7}`]

/** Replays `trace` through a ghost and the reference on one controlled clock; returns both hit rates. */
function replay(trace: Trace): { predicted: number; actual: number } {
  let now = 1_000_000
  const ghost = new GhostIndex(trace.capacity, () => now)
  const reference = new ReferenceL1(trace.capacity, () => now)
  for (let i = 0; i < trace.reads; i++) {
    const invalidation = trace.invalidationAt?.(i)
    if (invalidation !== undefined) {
      ghost.invalidate(invalidation)
      reference.invalidate(invalidation)
    }
    const k = trace.next()
    const key = `k${k}`
    if (!ghost.lookup(key)) ghost.record(key, trace.ttlMs, tagsOf(k))
    reference.read(key, trace.ttlMs, tagsOf(k))
    now += trace.stepMs?.() ?? 1
  }
  expect(ghost.lookups).toBe(trace.reads)
  return { predicted: ghost.hitRate, actual: reference.hitRate }
}

const HOUR = 3_600_000

// ------------------------------------------------------------------- traces

describe('the ghost predicts the hit rate of seeded traces within 5 points', () => {
  const cases: Array<[string, () => Trace]> = [
    ['uniform', () => ({ reads: 20_000, capacity: 10_000, ttlMs: HOUR, next: uniform(2_000, random(1)) })],
    ['Zipf', () => ({ reads: 20_000, capacity: 10_000, ttlMs: HOUR, next: zipf(20_000, 1, random(2)) })],
    [
      'with TTL expiry',
      () => {
        const rnd = random(3)
        return { reads: 20_000, capacity: 10_000, ttlMs: 2_000, next: zipf(5_000, 0.9, rnd), stepMs: () => Math.floor(rnd() * 4) }
      },
    ],
    [
      'with invalidations from another process',
      () => {
        const rnd = random(4)
        const next = zipf(3_000, 1, rnd)
        return {
          reads: 20_000,
          capacity: 10_000,
          ttlMs: HOUR,
          next,
          invalidationAt: (i) => {
            if (i % 7 === 0) return { kind: 'key', cache: 'c', key: `k${next()}` }
            if (i % 501 === 0) return { kind: 'tags', cache: 'c', tags: [`group:${i % 7}`] }
            if (i === 12_345) return { kind: 'clear', cache: 'c' }
            return undefined
          },
        }
      },
    ],
    ['with an L1 smaller than the working set', () => ({ reads: 20_000, capacity: 300, ttlMs: HOUR, next: zipf(5_000, 0.8, random(5)) })],
  ]
  for (const [name, trace] of cases) {
    it(name, () => {
      const { predicted, actual } = replay(trace())
      // Not a trivial trace: the cache would neither always nor never hit.
      expect(actual).toBeGreaterThan(0.05)
      expect(actual).toBeLessThan(0.98)
      expect(Math.abs(predicted - actual)).toBeLessThanOrEqual(0.05)
    })
  }

  it('an L1 smaller than the working set evicts, and the ghost counts it', () => {
    const ghost = new GhostIndex(2, () => 0)
    ghost.record('a', 10)
    ghost.record('b', 10)
    expect(ghost.lookup('a')).toBe(true) // a is now the most recently used
    ghost.record('c', 10) // b goes
    expect(ghost.evictions).toBe(1)
    expect(ghost.lookup('b')).toBe(false)
    expect(ghost.lookup('a')).toBe(true)
    expect(ghost.hitRate).toBeCloseTo(2 / 3)
  })

  it('has a hit rate of 0, never NaN, before the first lookup; capacity comes from the tier, else unbounded', () => {
    expect(new GhostIndex().hitRate).toBe(0)
    expect(ghostCapacityOf({ capacity: 500 })).toBe(500)
    expect(ghostCapacityOf({})).toBe(Number.POSITIVE_INFINITY)
    expect(ghostCapacityOf(undefined)).toBe(Number.POSITIVE_INFINITY)
    expect(ghostCapacityOf({ capacity: 0 })).toBe(Number.POSITIVE_INFINITY)
    expect(() => new GhostIndex(0)).toThrow(RangeError)
  })
})

// ------------------------------------------------------------- the facade

function observing(capacity?: number) {
  const l1 = fakeLocalTier()
  const l2 = controlledSharedTier()
  const bus = new FakeBus()
  const tier = capacity === undefined ? l1 : { ...l1, capacity }
  const cache = createCache<string>({ name: 'obs', tiers: [tier, l2], bus, ttl: '1h', mode: 'observe', onError: () => {}, invalidation: { ttlOnly: true } })
  return { cache, l1: l1.bound, l2: l2.bound, bus }
}

describe("mode: 'observe'", () => {
  it('runs the factory on every call and returns its result', async () => {
    const { cache } = observing()
    let calls = 0
    const factory = async () => `v${++calls}`
    expect(await cache.getOrSet('k', factory)).toBe('v1')
    expect(await cache.getOrSet('k', factory)).toBe('v2')
    expect(await Promise.all([cache.getOrSet('k', factory), cache.getOrSet('k', factory)])).toEqual(['v3', 'v4'])
    expect(calls).toBe(4)
    const loaded: string[][] = []
    expect(
      await cache.getOrSetMany(['a', 'b'], (keys) => {
        loaded.push(keys)
        return keys.map((key) => `${key}!`)
      }),
    ).toEqual(['a!', 'b!'])
    expect(await cache.getOrSetMany(['a', 'b'], (keys) => keys.map((key) => `${key}?`))).toEqual(['a?', 'b?'])
    expect(cache.stats().factoryCalls).toBe(6)
  })

  it('reads nothing from and stores nothing in any tier', async () => {
    const { cache, l1, l2 } = observing()
    l1.map.set('there', entry('from-l1'))
    l2.map.set('there', entry('from-l2'))
    expect(await cache.getOrSet('there', async () => 'db')).toBe('db')
    expect(await cache.getOrSet('new', async () => 'db', { tags: ['t'] })).toBe('db')
    expect(await cache.get('there')).toBeUndefined()
    expect(await cache.getMany(['there', 'new'])).toEqual([undefined, undefined])
    await cache.getOrSetMany(['x', 'y'], (keys) => keys)
    expect(l2.calls).toEqual([])
    expect([...l1.map.keys()]).toEqual(['there'])
    expect([...l2.map.keys()]).toEqual(['there'])
    const stats = cache.stats()
    expect(stats.l1Entries).toBe(0)
    expect(stats.l1Hits + stats.l2Hits).toBe(0)
    expect(stats.mode).toBe('observe')
  })

  it('sends every write and invalidation to L2 and the bus, as deletes', async () => {
    const { cache, l2, bus } = observing()
    l2.map.set('k', entry('old'))
    await cache.set('k', 'new', { tags: ['t'] })
    expect(l2.map.has('k')).toBe(false)
    await cache.delete('d')
    await cache.invalidateTags(['t'])
    await cache.invalidateNamespace('company:1')
    await cache.clear()
    expect(l2.calls).toEqual(['delete k', 'delete d', 'invalidateTags t', `invalidateTags ${namespaceTag('company:1')}`, 'clear'])
    expect(bus.published.map((p) => p.invalidations[0])).toEqual([
      { kind: 'key', cache: 'obs', key: 'k' },
      { kind: 'key', cache: 'obs', key: 'd' },
      { kind: 'tags', cache: 'obs', tags: ['t'] },
      { kind: 'tags', cache: 'obs', tags: [namespaceTag('company:1')] },
      { kind: 'clear', cache: 'obs' },
    ])
  })

  it('predicts, end to end, the hit rate of a trace with invalidations from another process and a gap', async () => {
    const capacity = 50
    const { cache, bus } = observing(capacity)
    const reference = new ReferenceL1(capacity, () => 0)
    const rnd = random(6)
    const next = zipf(300, 1, rnd)
    const ns = (k: number) => `team:${k % 5}`
    for (let i = 0; i < 3_000; i++) {
      let invalidation: Invalidation | undefined
      const target = next()
      if (i % 4 === 0) invalidation = { kind: 'key', cache: 'obs', key: `${ns(target)}\u001ek${target}` }
      else if (i % 101 === 0) invalidation = { kind: 'tags', cache: 'obs', tags: [namespaceTag(`team:${i % 5}`)] }
      if (invalidation !== undefined) {
        bus.deliver(invalidation)
        reference.invalidate(invalidation)
      }
      if (i === 2_000) {
        bus.gap()
        reference.invalidate({ kind: 'clear', cache: 'obs' })
      }
      const k = next()
      await cache.namespace(ns(k)).getOrSet(`k${k}`, async () => 'v')
      // The reference holds the tags the entry is written under: its namespace's levels.
      reference.read(`${ns(k)}\u001ek${k}`, HOUR, [namespaceTag('team'), namespaceTag(ns(k))])
    }
    const predicted = cache.stats().predictedHitRate!
    expect(reference.hitRate).toBeGreaterThan(0.05)
    expect(Math.abs(predicted - reference.hitRate)).toBeLessThanOrEqual(0.05)
    expect(cache.stats().factoryCalls).toBe(3_000)
    const advice = cache.advise()
    expect(advice.numbers.predictedHitRate).toBe(predicted)
    expect(advice.reason).toContain('predicted hit rate')
  })

  it('counts a set as the fill it would have been, and a get as a lookup: the ghost predicts the get-then-set pattern', async () => {
    const { cache } = observing()
    expect(await cache.get('k')).toBeUndefined() // ghost miss
    await cache.set('k', 'v')
    expect(await cache.get('k')).toBeUndefined() // ghost hit: normal mode would have answered
    expect(cache.stats().predictedHitRate).toBe(0.5)
  })

  it('keeps a value loaded while an invalidation overtook it out of the ghost, as L1 would', async () => {
    const { cache, bus } = observing()
    let release!: () => void
    const loading = cache.getOrSet('k', () => new Promise<string>((resolve) => (release = () => resolve('old'))))
    bus.deliver({ kind: 'key', cache: 'obs', key: 'k' })
    release()
    await loading
    await cache.getOrSet('k', async () => 'new')
    expect(cache.stats().predictedHitRate).toBe(0)
  })

  it('is validated; in normal mode stats() has no prediction', () => {
    expect(() => createCache({ name: 'bad', tiers: [fakeLocalTier()], mode: 'watch' as 'observe', invalidation: { ttlOnly: true } })).toThrow(
      InvalidOptionError,
    )
    const normal = createCache({ name: 'normal', tiers: [fakeLocalTier()], invalidation: { ttlOnly: true } })
    expect(normal.stats().mode).toBe('normal')
    expect(normal.stats().predictedHitRate).toBeUndefined()
    expect(normal.advise().numbers.predictedHitRate).toBeUndefined()
    const fresh = observing().cache
    expect(fresh.stats().predictedHitRate).toBe(0)
  })
})
