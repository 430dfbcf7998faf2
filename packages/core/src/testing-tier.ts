/**
 * The conformance suite every `Tier` implementation runs
 * (`runTierConformance`, exported by `@tiercache/core/testing`). Each case
 * is a clause of the contract in contracts.ts, which the read and write
 * paths rely on: an adapter that passes can be dropped into `tiers` without
 * core knowing anything about it. This file has the cases of every tier
 * (BoundTier) and of local ones (BoundLocalTier); shared tiers
 * (BoundSharedTier) add testing-tier-shared.ts and testing-tier-leases.ts.
 */
import { clock } from './clock.js'
import type { BoundLocalTier, TierEntry } from './contracts.js'
import { InvalidArgumentError } from './errors.js'
import { type ConformanceHarness, resolveHarness } from './testing-harness.js'
import { describeLeaseCases } from './testing-tier-leases.js'
import { describeSharedCases } from './testing-tier-shared.js'
import { createTierSuite, expired, fresh, readsOf, stale, type TierConformanceOptions, type TierSuite } from './testing-tier-support.js'

/**
 * Registers the suite for one tier with the test framework: `framework` (or
 * `options.harness`), else vitest/jest-style globals, else vitest itself.
 * Call it at the top level of a test file, as `describe` would be.
 */
export function runTierConformance(options: TierConformanceOptions, framework?: ConformanceHarness): void {
  const harness = resolveHarness('runTierConformance', framework ?? options.harness)
  if (options.kind !== 'local' && options.kind !== 'shared') {
    throw new InvalidArgumentError(`runTierConformance: kind must be 'local' or 'shared', got ${String(options.kind)}`)
  }
  if (typeof options.createTier !== 'function') throw new InvalidArgumentError('runTierConformance: createTier must be a function returning a Tier')
  const suite = createTierSuite(options, harness)
  suite.outer(`Tier conformance: ${options.name}`, () => {
    describeEveryTierCases(suite)
    describeExpiryCases(suite)
    describeIfAbsentCases(suite)
    if (options.kind === 'local') describeLocalCases(suite)
    else {
      describeSharedCases(suite)
      describeLeaseCases(suite)
    }
  })
}

function describeEveryTierCases(suite: TierSuite): void {
  const { test, bind, expect, options } = suite

  test('declares its kind, a name, and a deployment only as a non-empty string', async () => {
    const tier = await options.createTier()
    expect(tier.kind).toBe(options.kind)
    expect(typeof tier.name).toBe('string')
    expect(tier.name.length).toBeGreaterThan(0)
    if (tier.deployment !== undefined) {
      expect(typeof tier.deployment).toBe('string')
      expect(tier.deployment.length).toBeGreaterThan(0)
    }
  })

  test('get of a key never written is undefined', async () => {
    const { b } = await bind('conf')
    expect(await b.get('missing')).toBeUndefined()
  })

  test('set then get returns the value, its createdAt and its expiry', async () => {
    const { b } = await bind('conf')
    const written = fresh({ id: 1, name: 'a' }, 30_000)
    await b.set('k', written)
    for (const read of await readsOf(b, 'k')) {
      expect(read?.value).toEqual({ id: 1, name: 'a' })
      expect(read?.createdAt).toBe(written.createdAt)
      suite.expectTimeNear(read!.expiresAt, written.expiresAt)
      // Written without grace: usable until its expiry and no longer (absent, or equal to expiresAt).
      expect(read!.staleUntil ?? read!.expiresAt).toBe(read!.expiresAt)
    }
  })

  // Core copies an L2 hit into L1 with the tags read back: without them, a
  // later invalidateTags would miss that L1 copy.
  test('an entry reads back with the tags it was written under', async () => {
    const { b } = await bind('conf')
    await b.set('tagged', fresh('v', 60_000, ['orders', 'ns:company:42']))
    await b.set('untagged', fresh('w'))
    for (const read of await readsOf(b, 'tagged')) expect([...(read?.tags ?? [])].sort()).toEqual(['ns:company:42', 'orders'])
    for (const read of await readsOf(b, 'untagged')) expect(read?.tags ?? []).toEqual([])
  })

  test('a cached null is distinct from an absent key', async () => {
    const { b } = await bind('conf')
    await b.set('negative', fresh(null))
    const read = await b.get('negative')
    expect(read).toBeDefined()
    expect(read!.value).toBeNull()
  })

  test('set overwrites an existing entry', async () => {
    const { b } = await bind('conf')
    await b.set('k', fresh('v1'))
    await b.set('k', fresh('v2'))
    expect((await b.get('k'))?.value).toBe('v2')
  })

  test('delete removes the entry, and deleting a missing key is not an error', async () => {
    const { b } = await bind('conf')
    await b.set('k', fresh('v'))
    await b.delete('k')
    expect(await b.get('k')).toBeUndefined()
    await b.delete('never-there')
  })

  test('keys are opaque: separators, spaces and unicode never collide', async () => {
    const { b } = await bind('conf')
    const keys = ['a:b', 'a', 'a:b:c', 'a b', 'ключ', 'a\u0000b', '{tag}x', '*', 'a%3Ab', 'a#gen', 'a:tag:x']
    for (const [i, key] of keys.entries()) await b.set(key, fresh(i))
    for (const [i, key] of keys.entries()) expect((await b.get(key))?.value).toBe(i)
  })

  test('clear removes every entry of its cache and none of another cache', async () => {
    const first = await bind('conf-a')
    const { b: other } = await bind('conf-b', options.kind === 'shared' ? first.tier : undefined)
    await first.b.set('k1', fresh(1))
    await first.b.set('k2', fresh(2))
    await other.set('k1', fresh('other'))
    await first.b.clear()
    expect(await first.b.get('k1')).toBeUndefined()
    expect(await first.b.get('k2')).toBeUndefined()
    expect((await other.get('k1'))?.value).toBe('other')
    // The cache is usable after a clear.
    await first.b.set('k1', fresh('after'))
    expect((await first.b.get('k1'))?.value).toBe('after')
  })

  test('two caches on one tier keep separate keyspaces', async () => {
    const first = await bind('space-a')
    const { b: other } = await bind('space-b', options.kind === 'shared' ? first.tier : undefined)
    await first.b.set('same', fresh('a'))
    await other.set('same', fresh('b'))
    expect((await first.b.get('same'))?.value).toBe('a')
    await other.delete('same')
    expect((await first.b.get('same'))?.value).toBe('a')
    expect(await other.get('same')).toBeUndefined()
  })

  test('close is idempotent', async () => {
    const { b } = await bind('conf')
    await b.close()
    await b.close()
  })
}

/**
 * TTL and grace, without waiting: the entries are written with their times
 * already past. A tier decides from `expiresAt`/`staleUntil` (or the
 * remaining time a shared tier stores), never from when the write happened.
 */
function describeExpiryCases(suite: TierSuite): void {
  const { test, bind, expect } = suite

  test('an entry past its expiry and grace is not returned as usable', async () => {
    const { b } = await bind('conf')
    await b.set('gone', expired('v'))
    for (const read of await readsOf(b, 'gone')) {
      // A tier may still hold it (core checks the times on every hit), but then with the times it was written with.
      if (read !== undefined) {
        expect(read.value).toBe('v')
        expect(read.expiresAt).toBeLessThanOrEqual(clock())
        expect(read.staleUntil ?? read.expiresAt).toBeLessThanOrEqual(clock())
      }
    }
  })

  test('a set of an entry past its expiry and grace still replaces the older value', async () => {
    const { b } = await bind('conf')
    await b.set('k', fresh('older'))
    await b.set('k', expired('newer'))
    // Absent, or the expired newer entry: never the value it replaced.
    for (const read of await readsOf(b, 'k')) expect(read?.value).not.toBe('older')
  })

  // Every tier keeps grace: core serves stale-while-revalidate and fail-safe
  // from L1 as well as from L2 (an L1-only cache has nothing else), so a tier
  // that dropped an entry at its TTL, or dropped its staleUntil, would
  // silently switch grace off.
  test('an entry past its expiry but within grace is kept, and read back with both its expiry and its grace', async () => {
    const { b } = await bind('conf')
    const written = stale('v')
    await b.set('k', written)
    for (const read of await readsOf(b, 'k')) {
      expect(read).toBeDefined()
      expect(read!.value).toBe('v')
      expect(read!.createdAt).toBe(written.createdAt)
      expect(read!.expiresAt).toBeLessThanOrEqual(clock())
      suite.expectTimeNear(read!.expiresAt, written.expiresAt)
      suite.expectTimeNear(read!.staleUntil, written.staleUntil!)
    }
  })
}

/** `ifAbsent` (TierSetOptions): write only if the key holds no fresh entry; a stale one may be replaced. */
function describeIfAbsentCases(suite: TierSuite): void {
  const { test, bind, expect, options } = suite
  /** A shared tier resolves false when the condition held the write back, true or nothing when it wrote. */
  const expectWritten = (result: unknown, written: boolean): void => {
    if (options.kind === 'shared') {
      if (written) expect(result).not.toBe(false)
      else expect(result).toBe(false)
    }
  }

  test('ifAbsent writes a missing key but never overwrites a fresh entry', async () => {
    const { b } = await bind('conf')
    expectWritten(await b.set('k', fresh('first'), { ifAbsent: true }), true)
    expect((await b.get('k'))?.value).toBe('first')
    expectWritten(await b.set('k', fresh('second'), { ifAbsent: true }), false)
    expect((await b.get('k'))?.value).toBe('first')
  })

  test('ifAbsent replaces an entry past its TTL but within grace', async () => {
    const { b } = await bind('conf')
    await b.set('k', stale('stale'))
    expect((await b.get('k'))?.value).toBe('stale')
    expectWritten(await b.set('k', fresh('refreshed'), { ifAbsent: true }), true)
    expect((await b.get('k'))?.value).toBe('refreshed')
  })

  test('ifAbsent replaces an entry past its TTL and grace', async () => {
    const { b } = await bind('conf')
    await b.set('k', expired('gone'))
    expectWritten(await b.set('k', fresh('new'), { ifAbsent: true }), true)
    expect((await b.get('k'))?.value).toBe('new')
  })

  test('ifAbsent writes over an entry removed by delete or by clear', async () => {
    const { b } = await bind('conf')
    await b.set('deleted', fresh('old'))
    await b.delete('deleted')
    expectWritten(await b.set('deleted', fresh('new'), { ifAbsent: true }), true)
    expect((await b.get('deleted'))?.value).toBe('new')
    await b.set('cleared', fresh('old'))
    await b.clear()
    expectWritten(await b.set('cleared', fresh('new'), { ifAbsent: true }), true)
    expect((await b.get('cleared'))?.value).toBe('new')
  })
}

/** BoundLocalTier: synchronous, counts its entries, drops by tag in one call. */
function describeLocalCases(suite: TierSuite): void {
  const { test, bind, expect } = suite
  const bindLocal = async (): Promise<BoundLocalTier> => (await bind('local')).b as BoundLocalTier
  const isThenable = (value: unknown): boolean => typeof (value as { then?: unknown } | undefined)?.then === 'function'

  suite.describe('local tiers', () => {
    // The L1 hit path must not wait for a microtask it does not need.
    test('get, set, delete and clear are synchronous', async () => {
      const b = await bindLocal()
      expect(isThenable(b.set('k', fresh('v')))).toBe(false)
      const read = b.get('k')
      expect(isThenable(read)).toBe(false)
      expect(read?.value).toBe('v')
      expect(isThenable(b.delete('k'))).toBe(false)
      expect(b.get('k')).toBeUndefined()
      expect(isThenable(b.clear())).toBe(false)
    })

    test('size counts the entries held, through overwrites, deletes and clear', async () => {
      const b = await bindLocal()
      expect(b.size).toBe(0)
      b.set('a', fresh(1))
      b.set('b', fresh(2))
      b.set('a', fresh(3))
      expect(b.size).toBe(2)
      b.delete('a')
      expect(b.size).toBe(1)
      b.delete('b') // the last one
      expect(b.size).toBe(0)
      expect(b.get('b')).toBeUndefined()
      b.set('c', fresh(4))
      b.set('d', fresh(5))
      b.clear()
      expect(b.size).toBe(0)
    })

    test('deleteTagged drops every entry written under any of the tags, and nothing else', async () => {
      const b = await bindLocal()
      const write = (key: string, tags?: string[]): void => b.set(key, fresh(key, 60_000, tags) as TierEntry)
      write('a', ['t1'])
      write('b', ['t2'])
      write('c', ['t3', 't1'])
      write('d')
      b.deleteTagged(new Set(['t1', 'unknown']))
      expect(b.get('a')).toBeUndefined()
      expect(b.get('c')).toBeUndefined()
      expect(b.get('b')?.value).toBe('b')
      expect(b.get('d')?.value).toBe('d')
      b.deleteTagged(new Set())
      expect(b.size).toBe(2)
      // Tags are not remembered past their entries: a new write under t1 is kept.
      write('a', ['t1'])
      expect(b.get('a')?.value).toBe('a')
    })
  })
}
