import { describe, expect, it } from 'vitest'
import { ServerClock } from '../src/server-clock.js'

describe('ServerClock: an upper bound of how far Redis’s clock is ahead of ours', () => {
  it('is unknown until the first sample, and again once the estimate is older than MAX_AGE_MS', () => {
    const serverClock = new ServerClock()
    expect(serverClock.aheadMs(1_000)).toBeUndefined()
    serverClock.record(5_100, 1_000) // the server said 5100 when we had sent at 1000
    expect(serverClock.aheadMs(1_000)).toBe(4_100)
    expect(serverClock.aheadMs(1_000 + ServerClock.MAX_AGE_MS)).toBe(4_100)
    expect(serverClock.aheadMs(1_001 + ServerClock.MAX_AGE_MS)).toBeUndefined()
  })

  it('keeps the smallest sample of a window (the tightest bound: the least transit), and starts over in the next window', () => {
    const serverClock = new ServerClock()
    serverClock.record(5_100, 1_000)
    serverClock.record(5_090, 1_000) // a faster round trip: a tighter bound
    serverClock.record(5_300, 1_100) // a slow one does not loosen it
    expect(serverClock.aheadMs(1_100)).toBe(4_090)
    const nextWindow = 1_001 + ServerClock.WINDOW_MS
    serverClock.record(nextWindow + 4_200, nextWindow) // the server clock was stepped forward
    expect(serverClock.aheadMs(nextWindow)).toBe(4_200)
  })

  it('forgets the estimate (after a reconnect, possibly to another server)', () => {
    const serverClock = new ServerClock()
    serverClock.record(5_100, 1_000)
    serverClock.forget()
    expect(serverClock.aheadMs(1_000)).toBeUndefined()
  })
})
