import { describe, expect, it, vi } from 'vitest'
import { InvalidOptionError, cached, createCache, describeCaches } from '../src/index.js'
import { FakeBus, controlledSharedTier, fakeLocalTier } from './fakes.js'

describe('invalidation plans and describe()', () => {
  it('describe() returns the cache as a plain object and a Markdown table', () => {
    const orders = createCache<string>({
      name: 'orders',
      tiers: [fakeLocalTier(), controlledSharedTier()],
      bus: new FakeBus(),
      ttl: '5m',
      grace: '1h',
      invalidation: { on: ['order.updated'], namespaces: ['company:{companyId}:orders'] },
    })
    orders.key('company:{companyId}:orders:page:{page}', { scope: 'company:{companyId}:orders' })
    const description = orders.describe()
    expect(description).toMatchObject({
      name: 'orders',
      tiers: ['fake-local', 'fake-shared'],
      bus: true,
      ttlMs: 300_000,
      graceMs: 3_600_000,
      keyTemplates: [{ template: 'company:{companyId}:orders:page:{page}', scope: 'company:{companyId}:orders' }],
      invalidation: { on: ['order.updated'] },
    })
    expect(description.markdown).toContain('| orders | `company:{companyId}:orders:page:{page}` (scope `company:{companyId}:orders`) | 300s | 3600s |')
    expect(description.markdown).toContain('on `order.updated`; namespaces `company:{companyId}:orders`')
  })

  it('describeCaches tables every cache given, and flags the one without a plan', () => {
    const a = createCache({ name: 'flags', tiers: [fakeLocalTier()], invalidation: { ttlOnly: true } })
    const b = createCache({ name: 'undeclared', tiers: [fakeLocalTier()] })
    const { caches, markdown } = describeCaches([a, b])
    expect(caches.map((c) => c.name)).toEqual(['flags', 'undeclared'])
    expect(markdown).toContain('| flags | free-form | 60s | — | fake-local | TTL only |')
    expect(markdown).toContain('**none declared**')
  })

  it('a cache without a plan gets a warning at creation, once per name; a malformed plan is an error', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => {})
    createCache({ name: 'no-plan-here', tiers: [fakeLocalTier()] })
    createCache({ name: 'no-plan-here', tiers: [fakeLocalTier()] })
    createCache({ name: 'planned', tiers: [fakeLocalTier()], invalidation: { ttlOnly: true } })
    expect(warn.mock.calls.filter(([message]) => String(message).includes('"no-plan-here"'))).toHaveLength(1)
    expect(warn.mock.calls.filter(([message]) => String(message).includes('"planned"'))).toHaveLength(0)
    warn.mockRestore()
    expect(() => createCache({ name: 'bad', tiers: [fakeLocalTier()], invalidation: { onn: [] } as never })).toThrow(InvalidOptionError)
  })
})

describe('@cached', () => {
  it('memoizes a method through getOrSet, keeping `this`', async () => {
    const users = createCache<string>({ name: 'users', tiers: [fakeLocalTier()], invalidation: { ttlOnly: true } })
    const calls: number[] = []
    class UserService {
      prefix = 'user'
      @cached(users, { key: (id: number) => `user:${id}`, tags: (id: number) => [`user:${id}`] })
      async load(id: number): Promise<string> {
        calls.push(id)
        return `${this.prefix} ${id}`
      }
    }
    const service = new UserService()
    expect(await service.load(1)).toBe('user 1')
    expect(await service.load(1)).toBe('user 1')
    expect(calls).toEqual([1])
    await users.invalidateTags(['user:1'])
    expect(await service.load(1)).toBe('user 1')
    expect(calls).toEqual([1, 1])
  })
})
