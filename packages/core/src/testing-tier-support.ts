/**
 * What the parts of the tier conformance suite share: the options, the
 * suite context (binding, cleanup, test registration) and the entries the
 * cases write. Expiry is tested without waiting: an entry is written with
 * times already in the past (the contract's times are plain numbers on
 * core's clock), so no case sleeps or depends on how fast timers fire.
 */
import { clock } from './clock.js'
import type { BoundSharedTier, BoundTier, Tier, TierEntry } from './contracts.js'
import type { ConformanceAssertion, ConformanceHarness } from './testing-harness.js'

export interface TierConformanceOptions {
  /** Label for the describe block. */
  name: string
  /** The kind `createTier` returns; each kind runs the cases of its contract (BoundLocalTier or BoundSharedTier). */
  kind: 'local' | 'shared'
  /** A fresh tier for each test. A local tier is bound once; a shared tier may be bound to several caches, and twice to one (two instances). */
  createTier: () => Tier | Promise<Tier>
  /** Called after each test, after the suite closed what it bound. */
  cleanup?: () => void | Promise<void>
  /** The test framework to register with; see `ConformanceHarness`. Default: globals, else vitest. */
  harness?: ConformanceHarness
}

/** What each group of cases gets. */
export interface TierSuite {
  readonly options: TierConformanceOptions
  readonly describe: (name: string, body: () => void) => void
  /** The suite's outer describe: where the cleanup after each test is registered, once. */
  readonly outer: (name: string, body: () => void) => void
  readonly expect: (actual: unknown) => ConformanceAssertion
  /** Registers a test; what it bound is closed, and `cleanup` run, after it. */
  test(name: string, body: () => Promise<void>): void
  /** Binds `tier` (default: a new one) for `cacheName`; closed after the test. */
  bind(cacheName: string, tier?: Tier): Promise<{ tier: Tier; b: BoundTier }>
  /** Binds a shared tier (default: a new one) for `cacheName`. */
  bindShared(cacheName: string, tier?: Tier): Promise<{ tier: Tier; b: BoundSharedTier }>
  /** `actual` is `expected`, give or take a shared tier's rebuild of it from the remaining time. */
  expectTimeNear(actual: number | undefined, expected: number): void
}

/**
 * Slack for a shared tier's expiry times: it stores remaining time and
 * rebuilds the timestamps on read, which shifts them by the write's transit
 * (milliseconds, more on a loaded machine). Local tiers return them exactly.
 */
const EARLIER_MS = 1_000
const LATER_MS = 250

/** How long the lease cases ask a lease for: far longer than any test, so none expires during one. */
export const LEASE_MS = 60_000

export function createTierSuite(options: TierConformanceOptions, harness: ConformanceHarness): TierSuite {
  const { describe, it, expect, afterEach } = harness
  const bound: BoundTier[] = []

  async function release(): Promise<void> {
    try {
      for (const b of bound.splice(0)) await b.close()
    } finally {
      await options.cleanup?.()
    }
  }

  async function bind(cacheName: string, given?: Tier): Promise<{ tier: Tier; b: BoundTier }> {
    const tier = given ?? (await options.createTier())
    const b = tier.bind({ cacheName })
    bound.push(b)
    return { tier, b }
  }

  return {
    options,
    describe: (name, body) => {
      describe(name, body)
    },
    outer: (name, body) => {
      describe(name, () => {
        // With the framework's afterEach, cleanup runs even after a test that timed out.
        if (afterEach !== undefined) afterEach(release)
        body()
      })
    },
    expect,
    test(name, body) {
      if (afterEach !== undefined) {
        it(name, body)
        return
      }
      it(name, async () => {
        try {
          await body()
        } catch (error) {
          await release().catch(() => {}) // the test's own failure is the one to report
          throw error
        }
        await release()
      })
    },
    bind,
    async bindShared(cacheName, given) {
      const { tier, b } = await bind(cacheName, given)
      expect(tier.kind).toBe('shared')
      return { tier, b: b as BoundSharedTier }
    },
    expectTimeNear(actual, expected) {
      expect(actual).toBeGreaterThan(expected - EARLIER_MS)
      expect(actual).toBeLessThanOrEqual(expected + LATER_MS)
    },
  }
}

/**
 * Every way the suite can read `key`, in turn: a first `get`, then, after
 * other traffic on the tier (a fill-path miss on another key, which a tier
 * may use to warm a faster read path), `get` again and `getMany`. A tier
 * must answer the same whichever path serves the read.
 */
export async function readsOf(b: BoundTier, key: string): Promise<Array<TierEntry | undefined>> {
  const reads = [await b.get(key)]
  const shared = b as Partial<BoundSharedTier>
  if (shared.readForFill !== undefined) {
    const warm = await shared.readForFill(`${key}:other-traffic`, LEASE_MS)
    if (warm.lease !== undefined) await shared.releaseLease?.(`${key}:other-traffic`, warm.lease)
  }
  reads.push(await b.get(key), await b.get(key))
  if (shared.getMany !== undefined) reads.push((await shared.getMany([key]))[0])
  return reads
}

/** A fresh entry: produced now, fresh for `ttlMs`, no grace. */
export function fresh<V>(value: V, ttlMs = 60_000, tags?: readonly string[]): TierEntry<V> {
  return { value, createdAt: Date.now(), expiresAt: clock() + ttlMs, ...(tags === undefined ? {} : { tags }) }
}

/** An entry past its TTL by `overdueMs` but within grace for `graceLeftMs` more: stale, still servable. */
export function stale<V>(value: V, overdueMs = 10_000, graceLeftMs = 60_000, tags?: readonly string[]): TierEntry<V> {
  const now = clock()
  return { value, createdAt: Date.now() - overdueMs, expiresAt: now - overdueMs, staleUntil: now + graceLeftMs, ...(tags === undefined ? {} : { tags }) }
}

/** An entry past its TTL and past any grace. */
export function expired<V>(value: V): TierEntry<V> {
  const now = clock()
  return { value, createdAt: Date.now() - 20_000, expiresAt: now - 10_000, staleUntil: now - 5_000 }
}

/** The error `run` throws or rejects with (a tier may throw synchronously), or undefined if it succeeds. */
export async function failureOf(run: () => unknown): Promise<unknown> {
  try {
    await run()
    return undefined
  } catch (error) {
    return error
  }
}

/** `error`'s stable code, if it has one. */
export function codeOf(error: unknown): unknown {
  return typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined
}
