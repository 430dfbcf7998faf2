import { afterEach, describe, expect, it, vi } from 'vitest'
import { Deadlines } from '../src/deadlines.js'

const timedOut = (operation: string, key: string | undefined) => new Error(`${operation} ${key ?? '-'} timed out`)
const failed = (operation: string, key: string | undefined, error: unknown) => new Error(`${operation} ${key ?? '-'} failed: ${(error as Error).message}`)
const never = () => new Promise<never>(() => {})

describe('Deadlines: one timer bounds every call of a tier', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('a call that settles in time passes its value through, or its error as the tier names it', async () => {
    const deadlines = new Deadlines(1_000, timedOut, failed)
    await expect(deadlines.watch(Promise.resolve(7), 'read', 'k')).resolves.toBe(7)
    await expect(deadlines.watch(Promise.reject(new Error('boom')), 'read', 'k')).rejects.toThrow('read k failed: boom')
    deadlines.stopWhenIdle()
  })

  it('calls that hang reject once their own timeout passed, in the order they started, naming operation and key', async () => {
    vi.useFakeTimers()
    const deadlines = new Deadlines(100, timedOut, failed)
    const first = deadlines.watch(never(), 'read', 'a')
    first.catch(() => {})
    await vi.advanceTimersByTimeAsync(60)
    const second = deadlines.watch(never(), 'write', 'b')
    second.catch(() => {})
    let settledSecond = false
    second.then(undefined, () => (settledSecond = true))
    await vi.advanceTimersByTimeAsync(45) // 105 ms after the first, 45 after the second
    await expect(first).rejects.toThrow('read a timed out')
    expect(settledSecond).toBe(false)
    await vi.advanceTimersByTimeAsync(60)
    await expect(second).rejects.toThrow('write b timed out')
  })

  it('a call that settled is never rejected later, even when calls around it hang', async () => {
    vi.useFakeTimers()
    const deadlines = new Deadlines(100, timedOut, failed)
    let answer!: (value: string) => void
    const hanging = deadlines.watch(never(), 'read', 'slow')
    hanging.catch(() => {})
    const answered = deadlines.watch(new Promise<string>((resolve) => (answer = resolve)), 'read', 'fast')
    answer('value')
    await expect(answered).resolves.toBe('value')
    await vi.advanceTimersByTimeAsync(150)
    await expect(hanging).rejects.toThrow('read slow timed out')
  })

  it('a call that fails after its timeout rejected it keeps the timeout error, and its late failure is never unhandled', async () => {
    vi.useFakeTimers()
    let mapped = 0
    const deadlines = new Deadlines(100, timedOut, (operation, key, error) => {
      mapped++
      return failed(operation, key, error)
    })
    let fail!: (error: Error) => void
    const late = deadlines.watch(new Promise<never>((_, reject) => (fail = reject)), 'read', 'late')
    late.catch(() => {})
    await vi.advanceTimersByTimeAsync(150)
    await expect(late).rejects.toThrow('read late timed out')
    fail(new Error('connection reset'))
    await vi.advanceTimersByTimeAsync(0)
    expect(mapped).toBe(0)
  })

  it('holds no timer once every call settled and stopWhenIdle ran; keeps one while a call still waits', async () => {
    vi.useFakeTimers()
    const timers = () => vi.getTimerCount()
    const before = timers()
    const deadlines = new Deadlines(60_000, timedOut, failed)
    await deadlines.watch(Promise.resolve(1), 'read', 'k')
    expect(timers()).toBe(before + 1)
    deadlines.stopWhenIdle()
    expect(timers()).toBe(before)
    const waiting = deadlines.watch(never(), 'read', 'k')
    waiting.catch(() => {})
    deadlines.stopWhenIdle()
    expect(timers()).toBe(before + 1)
  })

  it('its timer never keeps the process alive on its own (a call in flight does, through its socket)', async () => {
    const deadlines = new Deadlines(60_000, timedOut, failed)
    const before = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length
    const waiting = deadlines.watch(never(), 'read', 'k')
    waiting.catch(() => {})
    expect(process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length).toBe(before)
  })
})
