/**
 * The conformance suite every `Tier` implementation runs (`@tiercache/core/testing`).
 * It states the contract the read and write paths rely on; an adapter that
 * passes it can be dropped into `tiers` without core knowing anything about it.
 *
 *   import { runTierConformance } from '@tiercache/core/testing'
 *   runTierConformance({ name: 'my tier', kind: 'shared', createTier: () => myTier() })
 *
 * Needs vitest (an optional peer dependency of core).
 */
import { afterEach, describe, expect, it } from 'vitest'
import { clock } from './clock.js'
import type { BoundTier, Tier, TierEntry } from './contracts.js'

export interface TierConformanceOptions {
  /** Label for the describe block. */
  name: string
  /** The kind `createTier` returns; shared tiers also run the encoding cases. */
  kind: 'local' | 'shared'
  /** A fresh tier for each test. A local tier is bound once; a shared tier may be bound to several caches. */
  createTier: () => Tier | Promise<Tier>
  /** Called after each test, after the suite closed what it bound. */
  cleanup?: () => void | Promise<void>
}

/**
 * Slack for a shared tier's expiry times: it stores remaining time and
 * rebuilds the timestamps on read, which shifts them by the write's transit
 * (milliseconds, more on a loaded machine). Local tiers return them exactly.
 */
const EARLIER_MS = 1_000
const LATER_MS = 250

/**
 * Resolves once core's clock is past `time` plus the later slack, so that a
 * shared tier's rebuilt expiry is past too. Waits for that moment of the
 * clock, however long the timers take to fire on a loaded machine.
 */
async function past(time: number): Promise<void> {
  for (let left = time + LATER_MS - clock(); left >= 0; left = time + LATER_MS - clock()) {
    await new Promise<void>((resolve) => setTimeout(resolve, Math.ceil(left) + 1))
  }
}

/** `actual` is `expected`, give or take a shared tier's rebuild of it. */
function expectTimeNear(actual: number | undefined, expected: number): void {
  expect(actual).toBeGreaterThan(expected - EARLIER_MS)
  expect(actual).toBeLessThanOrEqual(expected + LATER_MS)
}

function entry<V>(value: V, ttlMs = 60_000): TierEntry<V> {
  const now = clock()
  return { value, createdAt: Date.now(), expiresAt: now + ttlMs }
}

export function runTierConformance(options: TierConformanceOptions): void {
  describe(`Tier conformance: ${options.name}`, () => {
    const bound: BoundTier[] = []

    /** Binds a tier for `cacheName`; a local tier gets a fresh instance per binding (one L1 per cache). */
    async function bind(cacheName: string, shared?: Tier): Promise<{ tier: Tier; b: BoundTier }> {
      const tier = shared ?? (await options.createTier())
      const b = tier.bind({ cacheName })
      bound.push(b)
      return { tier, b }
    }

    afterEach(async () => {
      for (const b of bound.splice(0)) await b.close()
      await options.cleanup?.()
    })

    it('declares its kind and a name', async () => {
      const tier = await options.createTier()
      expect(tier.kind).toBe(options.kind)
      expect(typeof tier.name).toBe('string')
      expect(tier.name.length).toBeGreaterThan(0)
    })

    it('get of a key never written is undefined', async () => {
      const { b } = await bind('conf')
      expect(await b.get('missing')).toBeUndefined()
    })

    it('set then get returns the value, its createdAt and its expiry', async () => {
      const { b } = await bind('conf')
      const written = entry({ id: 1, name: 'a' }, 30_000)
      await b.set('k', written)
      const read = await b.get('k')
      expect(read?.value).toEqual({ id: 1, name: 'a' })
      expect(read?.createdAt).toBe(written.createdAt)
      expectTimeNear(read!.expiresAt, written.expiresAt)
      // Written without grace: usable until its expiry and no longer (absent, or equal to expiresAt).
      expect(read!.staleUntil ?? read!.expiresAt).toBe(read!.expiresAt)
    })

    it('a cached null is distinct from an absent key', async () => {
      const { b } = await bind('conf')
      await b.set('negative', entry(null))
      const read = await b.get('negative')
      expect(read).toBeDefined()
      expect(read!.value).toBeNull()
    })

    it('set overwrites an existing entry', async () => {
      const { b } = await bind('conf')
      await b.set('k', entry('v1'))
      await b.set('k', entry('v2'))
      expect((await b.get('k'))?.value).toBe('v2')
    })

    it('delete removes the entry, and deleting a missing key is not an error', async () => {
      const { b } = await bind('conf')
      await b.set('k', entry('v'))
      await b.delete('k')
      expect(await b.get('k')).toBeUndefined()
      await b.delete('never-there')
    })

    it('an entry is not returned after it expires', async () => {
      const { b } = await bind('conf')
      const written = entry('v', 40)
      await b.set('short', written)
      await past(written.expiresAt)
      const read = await b.get('short')
      // A tier may still hold it, but then it must report it as expired and past any grace (it had none).
      if (read !== undefined) {
        expect(read.value).toBe('v')
        expect(read.expiresAt).toBeLessThanOrEqual(clock())
        expect(read.staleUntil ?? read.expiresAt).toBeLessThanOrEqual(clock())
      }
    })

    it('keys are opaque: separators, spaces and unicode never collide', async () => {
      const { b } = await bind('conf')
      const keys = ['a:b', 'a', 'a:b:c', 'a b', 'ключ', 'a\u0000b', '{tag}x', '*', 'a%3Ab']
      for (const [i, key] of keys.entries()) await b.set(key, entry(i))
      for (const [i, key] of keys.entries()) expect((await b.get(key))?.value).toBe(i)
    })

    it('clear removes every entry of its cache and none of another cache', async () => {
      const first = await bind('conf-a')
      const { b: other } = await bind('conf-b', first.tier.kind === 'shared' ? first.tier : undefined)
      await first.b.set('k1', entry(1))
      await first.b.set('k2', entry(2))
      await other.set('k1', entry('other'))
      await first.b.clear()
      expect(await first.b.get('k1')).toBeUndefined()
      expect(await first.b.get('k2')).toBeUndefined()
      expect((await other.get('k1'))?.value).toBe('other')
      // The cache is usable after a clear.
      await first.b.set('k1', entry('after'))
      expect((await first.b.get('k1'))?.value).toBe('after')
    })

    it('two caches on one tier keep separate keyspaces', async () => {
      const first = await bind('space-a')
      const { b: other } = await bind('space-b', first.tier.kind === 'shared' ? first.tier : undefined)
      await first.b.set('same', entry('a'))
      await other.set('same', entry('b'))
      await other.delete('same')
      expect((await first.b.get('same'))?.value).toBe('a')
    })

    it('ifAbsent writes a missing key but never overwrites a live entry', async () => {
      const { b } = await bind('conf')
      await b.set('k', entry('first'), { ifAbsent: true })
      expect((await b.get('k'))?.value).toBe('first')
      await b.set('k', entry('second'), { ifAbsent: true })
      expect((await b.get('k'))?.value).toBe('first')
    })

    it('ifAbsent replaces an entry past its TTL but within grace', async () => {
      const { b } = await bind('conf')
      const now = clock()
      const stale: TierEntry = { value: 'stale', createdAt: Date.now(), expiresAt: now + 30, staleUntil: now + 60_000 }
      await b.set('k', stale)
      await past(stale.expiresAt)
      // The tier still holds it (within grace, see below): ifAbsent must replace it, not skip.
      expect((await b.get('k'))?.value).toBe('stale')
      await b.set('k', entry('refreshed'), { ifAbsent: true })
      expect((await b.get('k'))?.value).toBe('refreshed')
    })

    // Every tier keeps grace: core serves stale-while-revalidate and fail-safe
    // from L1 as well as from L2 (an L1-only cache has nothing else), so a tier
    // that dropped an entry at its TTL, or dropped its staleUntil, would
    // silently switch grace off.
    it('an entry within grace is kept, and read back with both its expiry and its grace', async () => {
      const { b } = await bind('conf')
      const now = clock()
      const written: TierEntry = { value: 'v', createdAt: Date.now(), expiresAt: now + 30, staleUntil: now + 60_000 }
      await b.set('k', written)
      await past(written.expiresAt)
      const read = await b.get('k')
      expect(read).toBeDefined()
      expect(read!.value).toBe('v')
      expect(read!.createdAt).toBe(written.createdAt)
      expect(read!.expiresAt).toBeLessThanOrEqual(clock())
      expectTimeNear(read!.expiresAt, written.expiresAt)
      expectTimeNear(read!.staleUntil, written.staleUntil!)
    })

    it('ifAbsent writes over an entry removed by clear', async () => {
      const { b } = await bind('conf')
      await b.set('k', entry('old'))
      await b.clear()
      await b.set('k', entry('new'), { ifAbsent: true })
      expect((await b.get('k'))?.value).toBe('new')
    })

    it('close is idempotent', async () => {
      const { b } = await bind('conf')
      await b.close()
      await b.close()
    })

    if (options.kind === 'shared') describeSharedCases(options, bind)
  })
}

function describeSharedCases(options: TierConformanceOptions, bind: (cacheName: string, shared?: Tier) => Promise<{ tier: Tier; b: BoundTier }>): void {
  describe('shared tiers', () => {
    it('round-trips Date, Map, Set, BigInt, undefined and nesting', async () => {
      const { b } = await bind('types', await options.createTier())
      const value = {
        date: new Date('2026-01-02T03:04:05.678Z'),
        map: new Map<unknown, unknown>([
          ['a', 1],
          [2, { nested: [1, 2] }],
        ]),
        set: new Set(['x', 'y']),
        big: 2n ** 70n,
        missing: undefined,
        list: [undefined, null, 1.5, 'str', true],
        nested: { deep: { deeper: [new Date(0)] } },
      }
      await b.set('typed', entry(value))
      const read = (await b.get('typed'))?.value as typeof value
      expect(read).toEqual(value)
      expect(read.date).toBeInstanceOf(Date)
      expect(read.map).toBeInstanceOf(Map)
      expect(read.set).toBeInstanceOf(Set)
      expect(typeof read.big).toBe('bigint')
      expect('missing' in read).toBe(true)
    })

    it('a stored value is a copy: mutating the original does not change the cache', async () => {
      const { b } = await bind('copy', await options.createTier())
      const value = { list: [1] }
      await b.set('k', entry(value))
      value.list.push(2)
      expect((await b.get('k'))?.value).toEqual({ list: [1] })
    })
  })
}

export { runBusConformance } from './testing-bus.js'
export type { BusConformanceOptions, BusHarness } from './testing-bus.js'
