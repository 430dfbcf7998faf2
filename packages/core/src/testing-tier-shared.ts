/**
 * The tier conformance cases of shared tiers (BoundSharedTier) other than
 * leases: encoding, instances, tag invalidation, and the optional
 * `getMany`, `counters` and `canPublishVia`. An optional member is tested
 * only on a tier that implements it; on one that does not, its case checks
 * just that it is absent (core then takes the fallback contracts.ts names).
 */
import { clock } from './clock.js'
import type { BoundSharedTier, PublishRoute } from './contracts.js'
import { codeOf, expired, failureOf, fresh, stale, type TierSuite } from './testing-tier-support.js'

export function describeSharedCases(suite: TierSuite): void {
  suite.describe('shared tiers', () => {
    describeEncodingCases(suite)
    describeInstanceCases(suite)
    describeTagCases(suite)
    describeGetManyCases(suite)
    describeOptionalMembers(suite)
  })
}

function describeEncodingCases(suite: TierSuite): void {
  const { test, bindShared, expect } = suite

  test('round-trips Date, Map, Set, BigInt, undefined and nesting', async () => {
    const { b } = await bindShared('types')
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
    await b.set('typed', fresh(value))
    const read = (await b.get('typed'))?.value as typeof value
    expect(read).toEqual(value)
    expect(read.date).toBeInstanceOf(Date)
    expect(read.map).toBeInstanceOf(Map)
    expect(read.set).toBeInstanceOf(Set)
    expect(typeof read.big).toBe('bigint')
    expect('missing' in read).toBe(true)
  })

  test('a stored value is a copy: mutating the original does not change the cache', async () => {
    const { b } = await bindShared('copy')
    const value = { list: [1] }
    await b.set('k', fresh(value))
    value.list.push(2)
    expect((await b.get('k'))?.value).toEqual({ list: [1] })
  })

  // errors.ts: SerializationError, "Nothing was written". Another process
  // could never read a function back, so the write must fail where it is made.
  test('a value it cannot encode is refused with SerializationError, and nothing is written', async () => {
    const { b } = await bindShared('encode')
    await b.set('k', fresh('before'))
    const error = await failureOf(() => b.set('k', fresh({ handler: () => 1 })))
    expect(error).toBeInstanceOf(Error)
    expect(codeOf(error)).toBe('ERR_SERIALIZATION')
    expect((await b.get('k'))?.value).toBe('before')
  })

  test('every method is asynchronous (returns a promise)', async () => {
    const { b } = await bindShared('async')
    const isPromise = (value: unknown): boolean => typeof (value as { then?: unknown } | undefined)?.then === 'function'
    const calls = [() => b.set('k', fresh('v')), () => b.get('k'), () => b.invalidateTags(['t']), () => b.delete('k'), () => b.clear()]
    for (const call of calls) {
      const result = call()
      expect(isPromise(result)).toBe(true)
      await result
    }
  })
}

/** Kind 'shared': seen by every instance. Two bindings of one cache on one tier are two instances of that cache. */
function describeInstanceCases(suite: TierSuite): void {
  const { test, bindShared, expect } = suite

  test("two instances of a cache see each other's writes, deletes, clears and tag invalidations", async () => {
    const { tier, b: one } = await bindShared('instances')
    const { b: two } = await bindShared('instances', tier)
    await one.set('k', fresh('from one'))
    expect((await two.get('k'))?.value).toBe('from one')
    await two.set('k', fresh('from two'))
    expect((await one.get('k'))?.value).toBe('from two')
    await two.delete('k')
    expect(await one.get('k')).toBeUndefined()
    await one.set('c', fresh('c'))
    await two.clear()
    expect(await one.get('c')).toBeUndefined()
    await one.set('t', fresh('t', 60_000, ['tag']))
    await two.invalidateTags(['tag'])
    expect(await one.get('t')).toBeUndefined()
  })
}

/** invalidateTags: every entry of this cache written under any of the tags is a miss; nothing else changes. */
function describeTagCases(suite: TierSuite): void {
  const { test, bindShared, expect } = suite

  test('invalidateTags makes every entry under any of the tags a miss, and leaves the others', async () => {
    const { b } = await bindShared('tags')
    await b.set('a', fresh('a', 60_000, ['t1']))
    await b.set('b', fresh('b', 60_000, ['t2']))
    await b.set('c', fresh('c', 60_000, ['t3', 't1']))
    await b.set('d', fresh('d'))
    await b.set('s', stale('s', 10_000, 60_000, ['t2']))
    await b.invalidateTags(['t2', 'never-used'])
    expect(await b.get('b')).toBeUndefined()
    expect(await b.get('s')).toBeUndefined() // a stale entry too: grace never serves an invalidated value
    expect((await b.get('a'))?.value).toBe('a')
    await b.invalidateTags(['t1'])
    expect(await b.get('a')).toBeUndefined()
    expect(await b.get('c')).toBeUndefined()
    expect((await b.get('d'))?.value).toBe('d')
  })

  test('invalidateTags is scoped to its cache', async () => {
    const { tier, b } = await bindShared('tags-a')
    const { b: other } = await bindShared('tags-b', tier)
    await b.set('k', fresh('a', 60_000, ['shared-tag']))
    await other.set('k', fresh('b', 60_000, ['shared-tag']))
    await b.invalidateTags(['shared-tag'])
    expect(await b.get('k')).toBeUndefined()
    expect((await other.get('k'))?.value).toBe('b')
  })

  test('an entry written under a tag after its invalidation is live, until the next one', async () => {
    const { b } = await bindShared('tags')
    await b.set('k', fresh('before', 60_000, ['t']))
    await b.invalidateTags(['t'])
    await b.set('k', fresh('after', 60_000, ['t']))
    await b.set('k2', fresh('after too', 60_000, ['t', 'u']))
    expect((await b.get('k'))?.value).toBe('after')
    expect((await b.get('k2'))?.value).toBe('after too')
    await b.invalidateTags(['t'])
    expect(await b.get('k')).toBeUndefined()
    expect(await b.get('k2')).toBeUndefined()
  })

  test('invalidateTags of no tags, or of tags never written, is not an error', async () => {
    const { b } = await bindShared('tags')
    await b.set('k', fresh('v', 60_000, ['t']))
    await b.invalidateTags([])
    await b.invalidateTags(['unknown'])
    expect((await b.get('k'))?.value).toBe('v')
  })
}

/** getMany (optional): several keys in one round trip, in order, each read as `get` reads it. */
function describeGetManyCases(suite: TierSuite): void {
  const { test, bindShared, expect } = suite
  const absent = (b: BoundSharedTier): boolean => {
    if (b.getMany !== undefined) return false
    expect(b.getMany).toBeUndefined() // core reads key by key instead
    return true
  }

  test('getMany (when implemented) reads the keys in order, misses as undefined, duplicates included', async () => {
    const { b } = await bindShared('many')
    if (absent(b)) return
    expect(await b.getMany!([])).toEqual([])
    const written = fresh({ n: 1 }, 30_000)
    await b.set('one', written)
    await b.set('two', fresh(null))
    const read = await b.getMany!(['missing', 'one', 'two', 'one'])
    expect(read.length).toBe(4)
    expect(read[0]).toBeUndefined()
    expect(read[1]?.value).toEqual({ n: 1 })
    expect(read[1]?.createdAt).toBe(written.createdAt)
    suite.expectTimeNear(read[1]?.expiresAt, written.expiresAt)
    expect(read[2]?.value).toBeNull()
    expect(read[3]?.value).toEqual({ n: 1 })
  })

  // Enough keys to land on every node of a sharded store.
  test('getMany (when implemented) keeps the order across many keys', async () => {
    const { b } = await bindShared('many')
    if (absent(b)) return
    const keys = Array.from({ length: 60 }, (_, i) => `key:${i}`)
    for (const [i, key] of keys.entries()) if (i % 3 !== 0) await b.set(key, fresh(i))
    const read = await b.getMany!(keys)
    expect(read.map((entry) => entry?.value)).toEqual(keys.map((_, i) => (i % 3 !== 0 ? i : undefined)))
  })

  test('getMany (when implemented) sees what get sees: grace, expiry, tags, clear, the cache', async () => {
    const { tier, b } = await bindShared('many')
    if (absent(b)) return
    const { b: other } = await bindShared('many-other', tier)
    const staleEntry = stale('stale')
    await b.set('stale', staleEntry)
    await b.set('expired', expired('expired'))
    await b.set('tagged', fresh('tagged', 60_000, ['t']))
    await b.set('kept', fresh('kept', 60_000, ['u']))
    await other.set('elsewhere', fresh('other cache'))
    await b.invalidateTags(['t'])
    const [s, e, t, k, elsewhere] = await b.getMany!(['stale', 'expired', 'tagged', 'kept', 'elsewhere'])
    expect(s?.value).toBe('stale')
    suite.expectTimeNear(s?.expiresAt, staleEntry.expiresAt)
    suite.expectTimeNear(s?.staleUntil, staleEntry.staleUntil!)
    if (e !== undefined) expect(e.staleUntil ?? e.expiresAt).toBeLessThanOrEqual(clock())
    expect(t).toBeUndefined()
    expect(k?.value).toBe('kept')
    expect([...(k?.tags ?? [])]).toEqual(['u'])
    expect(elsewhere).toBeUndefined()
    await b.clear()
    expect(await b.getMany!(['stale', 'kept'])).toEqual([undefined, undefined])
  })
}

function describeOptionalMembers(suite: TierSuite): void {
  const { test, bindShared, expect } = suite

  test('counters (when implemented) reports counts as non-negative numbers', async () => {
    const { b } = await bindShared('counters')
    if (b.counters === undefined) {
      expect(b.counters).toBeUndefined()
      return
    }
    const counters = b.counters()
    expect(typeof counters.corruptEntries).toBe('number')
    expect(counters.corruptEntries).toBeGreaterThanOrEqual(0)
    for (const optional of [counters.fillsRefused, counters.fillsWithoutLease]) {
      if (optional !== undefined) expect(optional).toBeGreaterThanOrEqual(0)
    }
  })

  // PublishRoute: a tier publishes atomically only over the bus's very connection.
  test('canPublishVia (when implemented) refuses a route over a connection it does not hold', async () => {
    const { b } = await bindShared('route')
    if (b.canPublishVia === undefined) {
      expect(b.canPublishVia).toBeUndefined()
      return
    }
    const route: PublishRoute = { connection: {}, channel: 'conformance', encode: () => '', notePublished: () => {} }
    expect(b.canPublishVia(route)).toBe(false)
  })

  test('connection members (when implemented): on a tier that answers, ready and probe resolve, available is true, no loss is reported', async () => {
    const { b } = await bindShared('connection')
    const members = b as BoundSharedTier & ConnectionMembers
    const changes: unknown[] = []
    const unsubscribe = members.onConnectionChange?.((change) => changes.push(change))
    await b.set('k', fresh('v')) // a round trip: the connection is up
    if (members.ready !== undefined) await members.ready(10_000)
    if (members.available !== undefined) expect(members.available()).toBe(true)
    if (members.probe !== undefined) await members.probe()
    if (unsubscribe !== undefined) {
      expect(typeof unsubscribe).toBe('function')
      unsubscribe()
      expect(changes.filter((change) => (change as { state?: unknown }).state === 'lost')).toEqual([])
    }
  })
}

/**
 * The optional connection members of BoundSharedTier (available, probe,
 * onConnectionChange, ready), typed here so the suite reads them whatever
 * the version of the contract it is compiled with.
 */
interface ConnectionMembers {
  available?(): boolean
  probe?(): Promise<void>
  onConnectionChange?(listener: (change: unknown) => void): () => void
  ready?(timeoutMs?: number): Promise<void>
}
