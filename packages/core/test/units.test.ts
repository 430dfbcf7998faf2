import { describe, expect, it } from 'vitest'
import {
  BusMembers,
  InFlightGuard,
  InvalidOptionError,
  type TierCacheError,
  decodeInvalidations,
  encodeInvalidations,
  parseDuration,
  type Invalidation,
} from '../src/adapter.js'

describe('durations', () => {
  it.each([
    [250, 250],
    ['250ms', 250],
    ['60s', 60_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['1d', 86_400_000],
    ['1.5s', 1_500],
    ['0.5ms', 1],
  ])('%s is %i ms', (input, ms) => {
    expect(parseDuration(input, 'ttl')).toBe(ms)
  })

  it.each([['5 minutes'], [-1], [0], [Number.NaN], [Infinity], ['1w'], [''], ['ms'], [null], ['30d']])(
    '%s is rejected with a typed error naming the option',
    (input) => {
      const error = (() => {
        try {
          parseDuration(input as never, 'ttl', { cache: 'c' })
        } catch (e) {
          return e
        }
      })()
      expect(error).toBeInstanceOf(InvalidOptionError)
      expect((error as TierCacheError).code).toBe('ERR_INVALID_OPTION')
      expect((error as Error).message).toMatch(/^ttl/)
      expect((error as Error).message).toContain('cache "c"')
    },
  )
})

describe('bus protocol', () => {
  it('round-trips a batch of key and clear invalidations with their origin', () => {
    const batch: Invalidation[] = [
      { kind: 'key', cache: 'users', key: 'user:1' },
      { kind: 'clear', cache: 'perms' },
    ]
    const decoded = decodeInvalidations(encodeInvalidations(batch.map((invalidation) => ({ origin: 'origin-1', invalidation }))))
    expect(decoded).toEqual({
      invalidations: batch.map((invalidation) => ({ origin: 'origin-1', invalidation })),
      dropped: 0,
    })
  })

  it.each([['not json'], ['{}'], ['{"v":2,"i":[]}'], ['null'], ['[1,2]'], ['{"v":1,"i":"x"}'], [''], ['\u0000\u00ff']])(
    'malformed message %j is rejected, never thrown',
    (message) => {
      expect(decodeInvalidations(message)).toBeUndefined()
    },
  )

  it('malformed entries of a batch are dropped and counted; the rest are kept', () => {
    const decoded = decodeInvalidations(JSON.stringify({ v: 1, i: [['o', 'k', 'c', 'key'], ['o', 'k', 'c'], 5, ['o', 'x', 'c'], ['o', 'c', 'c']] }))
    expect(decoded?.dropped).toBe(3)
    expect(decoded?.invalidations).toHaveLength(2)
  })
})

describe('InFlightGuard', () => {
  it('a read may fill when nothing matching arrived, and not after its key or a clear was invalidated', () => {
    const guard = new InFlightGuard()
    const a = guard.begin('a')
    expect(guard.mayFill('a', a)).toBe(true)
    guard.invalidateKey('b')
    expect(guard.mayFill('a', a)).toBe(true)
    guard.invalidateKey('a')
    expect(guard.mayFill('a', a)).toBe(false)
    guard.end(a)

    const again = guard.begin('a')
    expect(guard.mayFill('a', again)).toBe(true)
    guard.invalidateAll()
    expect(guard.mayFill('a', again)).toBe(false)
    guard.end(again)
  })

  it('keeps state only for keys being read', () => {
    const guard = new InFlightGuard()
    for (let i = 0; i < 100; i++) guard.invalidateKey(`k${i}`)
    expect(guard.trackedKeys).toBe(0)
    const x1 = guard.begin('x')
    const x2 = guard.begin('x')
    guard.end(x1)
    expect(guard.trackedKeys).toBe(1)
    guard.end(x2)
    expect(guard.trackedKeys).toBe(0)
  })

  it('a read begun before an invalidation is refused, one begun after it is not, whichever ends first', () => {
    const guard = new InFlightGuard()
    const before = guard.begin('k')
    guard.invalidateKey('k')
    const after = guard.begin('k')
    expect(guard.mayFill('k', before)).toBe(false)
    expect(guard.mayFill('k', after)).toBe(true)
    guard.end(after)
    expect(guard.mayFill('k', before)).toBe(false) // the newer read ending forgets nothing the older one needs
    guard.end(before)
    expect(guard.trackedKeys).toBe(0)
  })

  it('stays bounded under a load that always has a read open, and still refuses what it must', () => {
    const guard = new InFlightGuard()
    const oldest = guard.begin('old')
    let open = guard.begin('k0')
    for (let i = 1; i <= 10_000; i++) {
      guard.invalidateKey(`k${i - 1}`)
      const next = guard.begin(`k${i}`)
      guard.end(open)
      open = next
    }
    // Held back only by the oldest open read: every stamp is newer than its ticket.
    expect(guard.mayFill('k5000', oldest)).toBe(false)
    guard.end(oldest)
    for (let i = 10_001; i <= 20_000; i++) {
      guard.invalidateKey(`k${i - 1}`)
      const next = guard.begin(`k${i}`)
      guard.end(open)
      open = next
    }
    // With the oldest read gone, the record is pruned down to what open reads could need.
    expect(guard.trackedKeys).toBeLessThan(200)
    guard.invalidateKey('k20000')
    expect(guard.mayFill('k20000', open)).toBe(false)
    guard.end(open)
    expect(guard.trackedKeys).toBe(0)
  })
})

describe('BusMembers', () => {
  it('delivers to members of the named cache except the origin, and survives a throwing member', () => {
    const members = new BusMembers()
    const seen: string[] = []
    const member = (id: string, cacheName: string, throws = false) => ({
      instanceId: id,
      cacheName,
      onGap: () => {},
      onInvalidation: () => {
        if (throws) throw new Error('bad member')
        seen.push(id)
      },
    })
    members.add(member('a', 'users'))
    members.add(member('bad', 'users', true))
    members.add(member('b', 'users'))
    const leaveC = members.add(member('c', 'other'))
    members.deliver('a', { kind: 'key', cache: 'users', key: 'k' })
    expect(seen).toEqual(['b'])
    expect(members.size).toBe(4)
    leaveC()
    leaveC()
    expect(members.size).toBe(3)
  })
})

describe('LatencyHistogram', () => {
  it('summarizes quantiles within its bucket resolution, in fixed memory', async () => {
    const { LatencyHistogram } = await import('../src/adapter.js')
    const histogram = new LatencyHistogram()
    expect(histogram.summary()).toEqual({ count: 0, p50: 0, p95: 0, p99: 0, max: 0 })
    for (let i = 1; i <= 1000; i++) histogram.record(i / 10) // 0.1 ms … 100 ms
    const summary = histogram.summary()
    expect(summary.count).toBe(1000)
    expect(summary.max).toBe(100)
    expect(summary.p50).toBeGreaterThanOrEqual(50)
    expect(summary.p50).toBeLessThan(50 * 1.13)
    expect(summary.p99).toBeGreaterThanOrEqual(99)
    expect(summary.p99).toBeLessThanOrEqual(100)
    histogram.record(0)
    histogram.record(1e9)
    expect(histogram.summary().max).toBe(1e9)
  })
})
