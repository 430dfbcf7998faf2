/**
 * Cancellation: the factory's `ctx.signal` aborts when no one needs its
 * value any more (hard timeout, close, every caller's own signal), and a
 * caller's `signal` rejects that caller only.
 */
import { describe, expect, it } from 'vitest'
import { CacheClosedError, FactoryTimeoutError, InvalidOptionError, createCache, type FactoryContext } from '../src/index.js'
import { controlledSharedTier, deferred, fakeLocalTier } from './fakes.js'

function cache(options: Record<string, unknown> = {}) {
  return createCache<string>({ name: 'cancel', tiers: [fakeLocalTier(), controlledSharedTier()], ttl: '1h', onError: () => {}, ...options })
}

/** A factory that waits until released, reporting the context it got. */
function heldFactory() {
  const started = deferred<FactoryContext<string>>()
  const release = deferred<string>()
  const factory = async (ctx: FactoryContext<string>) => {
    started.resolve(ctx)
    return release.promise
  }
  return { factory, started: started.promise, release: release.resolve }
}

describe('ctx.signal', () => {
  it('aborts at the hard timeout, with the FactoryTimeoutError as its reason', async () => {
    const c = cache({ hardTimeout: '20ms' })
    const { factory, started } = heldFactory()
    const call = c.getOrSet('k', factory)
    const ctx = await started
    await expect(call).rejects.toBeInstanceOf(FactoryTimeoutError)
    expect(ctx.signal.aborted).toBe(true)
    expect(ctx.signal.reason).toBeInstanceOf(FactoryTimeoutError)
    expect(c.stats().factoriesAborted).toBe(1)
    await c.close()
  })

  it('aborts when the cache closes', async () => {
    const c = cache()
    const { factory, started } = heldFactory()
    void c.getOrSet('k', factory).catch(() => {})
    const ctx = await started
    await c.close()
    expect(ctx.signal.aborted).toBe(true)
    expect(ctx.signal.reason).toBeInstanceOf(CacheClosedError)
  })
})

describe("a caller's signal", () => {
  it('rejects that caller with its reason; the other caller of the key gets the value and the factory runs on', async () => {
    const c = cache()
    const { factory, started, release } = heldFactory()
    const leaving = new AbortController()
    const first = c.getOrSet('k', factory, { signal: leaving.signal })
    const second = c.getOrSet('k', factory)
    const ctx = await started
    leaving.abort()
    await expect(first).rejects.toMatchObject({ name: 'AbortError' })
    expect(ctx.signal.aborted).toBe(false)
    release('v')
    expect(await second).toBe('v')
    expect(c.stats().factoriesAborted).toBe(0)
    await c.close()
  })

  it('once every caller has aborted, the factory is aborted too, and the next call starts afresh', async () => {
    const c = cache()
    const { factory, started } = heldFactory()
    const a = new AbortController()
    const b = new AbortController()
    const first = c.getOrSet('k', factory, { signal: a.signal })
    const second = c.getOrSet('k', factory, { signal: b.signal })
    const ctx = await started
    a.abort(new Error('client went away'))
    expect(ctx.signal.aborted).toBe(false)
    b.abort(new Error('client went away too'))
    await expect(first).rejects.toThrow('client went away')
    await expect(second).rejects.toThrow('client went away too')
    expect(ctx.signal.aborted).toBe(true)
    expect(await c.getOrSet('k', async () => 'fresh')).toBe('fresh')
    await c.close()
  })

  it('an already aborted signal rejects at once, without running the factory; a non-signal is an InvalidOptionError', async () => {
    const c = cache()
    let ran = false
    const factory = async () => {
      ran = true
      return 'v'
    }
    await expect(c.getOrSet('k', factory, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' })
    expect(ran).toBe(false)
    await expect(c.getOrSet('k', factory, { signal: 'stop' as unknown as AbortSignal })).rejects.toThrow(InvalidOptionError)
    await c.close()
  })
})
