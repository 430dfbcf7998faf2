/**
 * The lease cases of the tier conformance suite (coherence mechanism 4):
 * `readForFill`, `set(…, { lease })` and `releaseLease` on a shared tier.
 * Leases are optional ("tiers without leases omit it"). Whether a tier has
 * them is known only once a test creates it, after the cases were
 * registered; so on a tier without `readForFill` each case checks that
 * `releaseLease` is absent too (a lease that cannot be taken cannot be given
 * back) and ends there.
 *
 * The contract, from contracts.ts:
 *  - readForFill is like get, but on a miss, or when the entry is stale
 *    (within grace), asks for the key's lease; a caller that does not get
 *    it because another holds it is told `leasedElsewhere`;
 *  - with `refreshAheadMs`, so does a fresh entry that expires within it
 *    (refresh ahead: one background refresh across every instance); a fresh
 *    entry further from its expiry is read without a lease;
 *  - set with `{ lease }` writes only while the lease holds: a set, delete
 *    or clear since it was granted revokes it and the value is dropped, and
 *    the set resolves false so the caller keeps it out of L1 too;
 *  - releaseLease gives the lease back unused, so waiters need not wait.
 */
import type { BoundSharedTier, FillRead, Tier, TierLease } from './contracts.js'
import { failureOf, fresh, LEASE_MS, stale, type TierSuite } from './testing-tier-support.js'

export function describeLeaseCases(suite: TierSuite): void {
  const { test, bindShared, expect } = suite

  /** The bound tier if it has leases; undefined (after checking the lease members are absent together) if not. */
  async function leasing(cacheName: string): Promise<Leased | undefined> {
    const { tier, b } = await bindShared(cacheName)
    if (b.readForFill === undefined) {
      expect(b.releaseLease).toBeUndefined() // a lease that cannot be taken cannot be given back
      return undefined
    }
    // Another instance of the same cache, as a second process would hold it.
    const { b: other } = await bindShared(cacheName, tier)
    return { tier, b, other }
  }

  /** The lease a read granted to its caller, checked for its shape. */
  const granted = (read: FillRead): TierLease => {
    expect(read.lease).toBeDefined()
    expect(typeof read.lease!.token).toBe('string')
    expect(read.lease!.token.length).toBeGreaterThan(0)
    expect(typeof read.lease!.generation).toBe('string')
    expect(read.leasedElsewhere === true).toBe(false)
    return read.lease!
  }

  const refused = async (b: BoundSharedTier, key: string, lease: TierLease): Promise<void> => {
    expect(await b.set(key, fresh('from the revoked fill'), { lease })).toBe(false)
  }

  suite.describe('leases', () => {
    test('readForFill (when implemented) grants the lease on a miss, and tells every other caller it is held', async () => {
      const t = await leasing('lease')
      if (t === undefined) return
      const first = await t.b.readForFill!('k', LEASE_MS)
      expect(first.entry).toBeUndefined()
      const lease = granted(first)
      for (const reader of [t.other, t.b]) {
        const second = await reader.readForFill!('k', LEASE_MS)
        expect(second.entry).toBeUndefined()
        expect(second.lease).toBeUndefined()
        expect(second.leasedElsewhere).toBe(true)
      }
      // The holder's fill lands for every instance, and ends the lease: the next reader finds the value.
      expect(await t.b.set('k', fresh('filled'), { lease })).not.toBe(false)
      expect((await t.other.get('k'))?.value).toBe('filled')
      const after = await t.other.readForFill!('k', LEASE_MS)
      expect(after.entry?.value).toBe('filled')
      expect(after.lease).toBeUndefined()
      expect(after.leasedElsewhere === true).toBe(false)
    })

    test('readForFill (when implemented) returns a fresh entry without asking for the lease', async () => {
      const t = await leasing('lease')
      if (t === undefined) return
      await t.b.set('k', fresh('fresh'))
      for (const reader of [t.b, t.other]) {
        const read = await reader.readForFill!('k', LEASE_MS)
        expect(read.entry?.value).toBe('fresh')
        expect(read.lease).toBeUndefined()
        expect(read.leasedElsewhere === true).toBe(false)
      }
    })

    test('readForFill (when implemented) returns a stale entry with the lease for its refresh, once', async () => {
      const t = await leasing('lease')
      if (t === undefined) return
      const written = stale('stale')
      await t.b.set('k', written)
      const first = await t.b.readForFill!('k', LEASE_MS)
      expect(first.entry?.value).toBe('stale')
      suite.expectTimeNear(first.entry?.staleUntil, written.staleUntil!)
      const lease = granted(first)
      const second = await t.other.readForFill!('k', LEASE_MS)
      expect(second.entry?.value).toBe('stale') // served stale while the holder refreshes
      expect(second.lease).toBeUndefined()
      expect(second.leasedElsewhere).toBe(true)
      expect(await t.b.set('k', fresh('refreshed'), { lease })).not.toBe(false)
      expect((await t.other.get('k'))?.value).toBe('refreshed')
    })

    test('a fill ends its lease: the key is leased again once its entry is stale', async () => {
      const t = await leasing('lease')
      if (t === undefined) return
      const lease = granted(await t.b.readForFill!('k', LEASE_MS))
      expect(await t.b.set('k', stale('filled, stale at once'), { lease })).not.toBe(false)
      const next = await t.other.readForFill!('k', LEASE_MS)
      expect(next.entry?.value).toBe('filled, stale at once')
      expect(granted(next).token).not.toBe(lease.token)
    })

    test('leases are per key and per cache', async () => {
      const t = await leasing('lease')
      if (t === undefined) return
      granted(await t.b.readForFill!('k1', LEASE_MS))
      granted(await t.b.readForFill!('k2', LEASE_MS))
      const { b: otherCache } = await bindShared('lease-elsewhere', t.tier)
      granted(await otherCache.readForFill!('k1', LEASE_MS))
    })

    describeRevocationCases(suite, leasing, granted, refused)
    describeRefreshAheadCases(suite, leasing, granted, refused)

    test('releaseLease (when implemented) gives the lease back: the next reader gets one, the released lease fills nothing', async () => {
      const t = await leasing('lease')
      if (t === undefined || t.b.releaseLease === undefined) return
      const lease = granted(await t.b.readForFill!('k', LEASE_MS))
      await t.b.releaseLease('k', lease)
      const next = granted(await t.other.readForFill!('k', LEASE_MS))
      expect(next.token).not.toBe(lease.token)
      await refused(t.b, 'k', lease)
      expect(await t.other.set('k', fresh('next'), { lease: next })).not.toBe(false)
      expect((await t.b.get('k'))?.value).toBe('next')
    })

    test("releaseLease (when implemented) of a revoked lease leaves the next holder's lease in place", async () => {
      const t = await leasing('lease')
      if (t === undefined || t.b.releaseLease === undefined) return
      const old = granted(await t.b.readForFill!('k', LEASE_MS))
      await t.other.delete('k') // revokes it
      const current = granted(await t.other.readForFill!('k', LEASE_MS))
      await t.b.releaseLease('k', old)
      expect((await t.b.readForFill!('k', LEASE_MS)).leasedElsewhere).toBe(true)
      expect(await t.other.set('k', fresh('current'), { lease: current })).not.toBe(false)
      expect((await t.b.get('k'))?.value).toBe('current')
      // Releasing a key that holds no lease is not an error.
      expect(await failureOf(() => t.b.releaseLease!('never-leased', old))).toBeUndefined()
    })
  })
}

/** A shared tier with leases, bound twice to one cache: two instances of it. */
interface Leased {
  readonly tier: Tier
  readonly b: BoundSharedTier
  readonly other: BoundSharedTier
}

type Leasing = (cacheName: string) => Promise<Leased | undefined>

/** What revokes a lease (TierSetOptions.lease), and what must not. */
function describeRevocationCases(
  suite: TierSuite,
  leasing: Leasing,
  granted: (read: FillRead) => TierLease,
  refused: (b: BoundSharedTier, key: string, lease: TierLease) => Promise<void>,
): void {
  const { test, expect } = suite

  test('a set since the lease was granted revokes it: the fill is refused and the set stays', async () => {
    const t = await leasing('revoke')
    if (t === undefined) return
    const lease = granted(await t.b.readForFill!('k', LEASE_MS))
    await t.other.set('k', fresh('newer'))
    await refused(t.b, 'k', lease)
    expect((await t.b.get('k'))?.value).toBe('newer')
  })

  test('an ifAbsent set that wrote since the lease was granted revokes it too', async () => {
    const t = await leasing('revoke')
    if (t === undefined) return
    const lease = granted(await t.b.readForFill!('k', LEASE_MS))
    expect(await t.other.set('k', fresh('newer'), { ifAbsent: true })).not.toBe(false)
    await refused(t.b, 'k', lease)
    expect((await t.b.get('k'))?.value).toBe('newer')
  })

  test('a delete since the lease was granted revokes it: the key stays a miss', async () => {
    const t = await leasing('revoke')
    if (t === undefined) return
    const lease = granted(await t.b.readForFill!('k', LEASE_MS))
    await t.other.delete('k')
    await refused(t.b, 'k', lease)
    expect(await t.b.get('k')).toBeUndefined()
  })

  test('a clear since the lease was granted revokes it: the cache stays empty', async () => {
    const t = await leasing('revoke')
    if (t === undefined) return
    const lease = granted(await t.b.readForFill!('k', LEASE_MS))
    await t.other.clear()
    await refused(t.b, 'k', lease)
    expect(await t.b.get('k')).toBeUndefined()
  })

  test("writes to other keys, and another cache's writes and clear, leave the lease in place", async () => {
    const t = await leasing('revoke')
    if (t === undefined) return
    const lease = granted(await t.b.readForFill!('k', LEASE_MS))
    await t.other.set('k2', fresh('other key'))
    await t.other.delete('k3')
    const { b: otherCache } = await suite.bindShared('revoke-elsewhere', t.tier)
    await otherCache.set('k', fresh('other cache'))
    await otherCache.delete('k')
    await otherCache.clear()
    expect(await t.b.set('k', fresh('filled'), { lease })).not.toBe(false)
    expect((await t.b.get('k'))?.value).toBe('filled')
  })

  // invalidateTags makes every entry under its tags a miss: a value computed
  // before it must not land afterwards and be read as if computed after.
  test('a fill begun before invalidateTags of one of its tags never lands as a live entry', async () => {
    const t = await leasing('revoke')
    if (t === undefined) return
    await t.b.set('k', stale('before, stale', 10_000, 60_000, ['t'])) // stale: its refresh takes the lease
    const lease = granted(await t.b.readForFill!('k', LEASE_MS))
    await t.other.invalidateTags(['t'])
    await t.b.set('k', fresh('computed before the invalidation', 60_000, ['t']), { lease })
    expect(await t.other.get('k')).toBeUndefined()
  })

  test('after invalidateTags, an invalidated key is a miss on the fill path, leased and filled anew', async () => {
    const t = await leasing('revoke')
    if (t === undefined) return
    await t.b.set('k', fresh('before', 60_000, ['t']))
    await t.other.invalidateTags(['t'])
    const read = await t.b.readForFill!('k', LEASE_MS)
    expect(read.entry).toBeUndefined()
    const lease = granted(read)
    expect(await t.b.set('k', fresh('after', 60_000, ['t']), { lease })).not.toBe(false)
    expect((await t.other.get('k'))?.value).toBe('after')
  })
}

/**
 * Refresh ahead (`readForFill`'s `refreshAheadMs`). Entries are written with
 * an expiry chosen against the window, so no case waits: 1 s left is well
 * within a 5 s window, an hour left is far outside it, whatever a shared
 * tier's rebuild of the times shifts them by.
 */
const AHEAD_MS = 5_000
const DUE_TTL_MS = 1_000
const NOT_DUE_TTL_MS = 3_600_000

function describeRefreshAheadCases(
  suite: TierSuite,
  leasing: Leasing,
  granted: (read: FillRead) => TierLease,
  refused: (b: BoundSharedTier, key: string, lease: TierLease) => Promise<void>,
): void {
  const { test, expect } = suite

  test('refresh-ahead lease: a fresh entry within refreshAheadMs of its expiry grants the lease with the entry', async () => {
    const t = await leasing('ahead')
    if (t === undefined) return
    const written = fresh('due', DUE_TTL_MS)
    await t.b.set('k', written)
    // Other traffic first (a fill-path miss on another key), which a tier may use to warm a faster read path: it must see the entry is due too.
    const warm = await t.b.readForFill!('other-traffic', LEASE_MS, AHEAD_MS)
    if (warm.lease !== undefined) await t.b.releaseLease?.('other-traffic', warm.lease)
    const read = await t.b.readForFill!('k', LEASE_MS, AHEAD_MS)
    expect(read.entry?.value).toBe('due') // served at once, still fresh
    suite.expectTimeNear(read.entry?.expiresAt, written.expiresAt)
    granted(read)
  })

  test('refresh-ahead lease: a second reader sees leasedElsewhere with the entry', async () => {
    const t = await leasing('ahead')
    if (t === undefined) return
    await t.b.set('k', fresh('due', DUE_TTL_MS))
    granted(await t.b.readForFill!('k', LEASE_MS, AHEAD_MS))
    for (const reader of [t.other, t.b]) {
      const read = await reader.readForFill!('k', LEASE_MS, AHEAD_MS)
      expect(read.entry?.value).toBe('due')
      expect(read.lease).toBeUndefined()
      expect(read.leasedElsewhere).toBe(true)
    }
    // Without refreshAheadMs the read is as it always was: a fresh entry, no word of the lease.
    const plain = await t.other.readForFill!('k', LEASE_MS)
    expect(plain.entry?.value).toBe('due')
    expect(plain.lease).toBeUndefined()
    expect(plain.leasedElsewhere === true).toBe(false)
  })

  test('refresh-ahead lease: a fresh entry further from expiry grants no lease', async () => {
    const t = await leasing('ahead')
    if (t === undefined) return
    await t.b.set('k', fresh('not due', NOT_DUE_TTL_MS))
    for (const reader of [t.b, t.other]) {
      const read = await reader.readForFill!('k', LEASE_MS, AHEAD_MS)
      expect(read.entry?.value).toBe('not due')
      expect(read.lease).toBeUndefined()
      expect(read.leasedElsewhere === true).toBe(false)
    }
    // Nor did those reads take it unsaid: a window wider than the entry's life finds the lease free.
    const wide = await t.other.readForFill!('k', LEASE_MS, NOT_DUE_TTL_MS + 60_000)
    expect(wide.entry?.value).toBe('not due')
    granted(wide)
  })

  test('refresh-ahead lease: a fill under that lease replaces the entry (and a set in between revokes it)', async () => {
    const t = await leasing('ahead')
    if (t === undefined) return
    await t.b.set('k', fresh('due', DUE_TTL_MS))
    const lease = granted(await t.b.readForFill!('k', LEASE_MS, AHEAD_MS))
    expect(await t.b.set('k', fresh('refreshed'), { lease })).not.toBe(false)
    expect((await t.other.get('k'))?.value).toBe('refreshed')
    // The fill ended the lease, and the refreshed entry is far from its expiry: no lease now.
    const after = await t.other.readForFill!('k', LEASE_MS, AHEAD_MS)
    expect(after.entry?.value).toBe('refreshed')
    expect(after.lease).toBeUndefined()
    expect(after.leasedElsewhere === true).toBe(false)

    await t.b.set('k2', fresh('due', DUE_TTL_MS))
    const revoked = granted(await t.b.readForFill!('k2', LEASE_MS, AHEAD_MS))
    await t.other.set('k2', fresh('newer'))
    await refused(t.b, 'k2', revoked)
    expect((await t.b.get('k2'))?.value).toBe('newer')
  })
}
