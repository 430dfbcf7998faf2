import { EventEmitter } from 'node:events'
import { describe, expect, it, vi } from 'vitest'
import { decodeInvalidations, encodeInvalidations } from '../src/adapter.js'
import { InvalidArgumentError, InvalidKeyError, createCache } from '../src/index.js'
import { FakeBus, controlledSharedTier, fakeLocalTier } from './fakes.js'

function cache() {
  const l1 = fakeLocalTier()
  const l2 = controlledSharedTier()
  const bus = new FakeBus()
  const c = createCache<string>({ name: 'orders', tiers: [l1, l2], bus, ttl: '1h', onError: () => {} })
  return { cache: c, l1: l1.bound, l2: l2.bound, bus }
}

describe('tags', () => {
  it('invalidateTags drops tagged entries in both tiers and publishes one tags invalidation', async () => {
    const { cache: c, l1, l2, bus } = cache()
    await c.set('a', 'A', { tags: ['company:42'] })
    await c.getOrSet('b', async () => 'B', { tags: ['company:42', 'list'] })
    await c.set('c', 'C', { tags: ['company:7'] })
    await c.invalidateTags(['company:42'])
    expect(l1.get('a')).toBeUndefined()
    expect(l1.get('b')).toBeUndefined()
    expect(l1.get('c')?.value).toBe('C')
    expect(l2.map.has('a')).toBe(false)
    expect(bus.published.at(-1)?.invalidations).toEqual([{ kind: 'tags', cache: 'orders', tags: ['company:42'] }])
  })

  it('a remote tags invalidation drops the tagged L1 entries only', async () => {
    const { cache: c, l1, bus } = cache()
    await c.set('a', 'A', { tags: ['t1'] })
    await c.set('b', 'B', { tags: ['t2'] })
    bus.deliver({ kind: 'tags', cache: 'orders', tags: ['t1'] })
    expect(l1.get('a')).toBeUndefined()
    expect(l1.get('b')?.value).toBe('B')
  })

  it('the factory can choose the tags of its value', async () => {
    const { cache: c, l1 } = cache()
    await c.getOrSet('k', (ctx) => {
      ctx.setTags(['chosen'])
      return 'v'
    })
    expect(l1.get('k')?.tags).toEqual(['chosen'])
  })

  it.each([[''], ['a\u001fb'], ['x'.repeat(257)]])('tag %j is rejected before any write', async (tag) => {
    const { cache: c, l2 } = cache()
    await expect(c.set('k', 'v', { tags: [tag] })).rejects.toBeInstanceOf(InvalidArgumentError)
    expect(l2.calls).toEqual([])
  })

  it('the bus protocol carries tags invalidations', () => {
    const decoded = decodeInvalidations(encodeInvalidations([{ origin: 'o', invalidation: { kind: 'tags', cache: 'c', tags: ['a', 'b'] } }]))
    expect(decoded?.invalidations[0]?.invalidation).toEqual({ kind: 'tags', cache: 'c', tags: ['a', 'b'] })
    expect(decodeInvalidations('{"v":1,"i":[["o","t","c",[]],["o","t","c",[1]],["o","t","c","x"]]}')?.dropped).toBe(3)
  })
})

describe('namespaces', () => {
  it('a namespace handle scopes keys, and invalidate() drops everything under it, deeper namespaces included', async () => {
    const { cache: c, l1 } = cache()
    const company = c.namespace('company:42')
    const orders = company.namespace('orders')
    await orders.set('page:1', 'p1')
    await company.set('profile', 'profile')
    await c.namespace('company:7').set('profile', 'other company')
    await c.set('plain', 'plain')
    expect(await orders.get('page:1')).toBe('p1')
    await orders.invalidate()
    expect(await orders.get('page:1')).toBeUndefined()
    expect(await company.get('profile')).toBe('profile')
    await c.invalidateNamespace('company:42')
    expect(await company.get('profile')).toBeUndefined()
    expect(await c.namespace('company:7').get('profile')).toBe('other company')
    expect(await c.get('plain')).toBe('plain')
    expect(l1.size).toBe(2)
  })

  it('keys cannot forge a namespace, and namespaces cannot have empty levels', async () => {
    const { cache: c } = cache()
    await expect(c.set('a\u001eb\u001ec', 'v')).rejects.toBeInstanceOf(InvalidKeyError)
    expect(() => c.namespace('a::b')).toThrow(InvalidKeyError)
    expect(() => c.namespace(':a')).toThrow(InvalidKeyError)
    await expect(c.namespace('a').set('b\u001ec', 'v')).rejects.toBeInstanceOf(InvalidKeyError)
  })

  it('a plain key and a namespaced key never collide', async () => {
    const { cache: c } = cache()
    await c.set('company:42:orders', 'plain')
    await c.namespace('company:42').set('orders', 'namespaced')
    expect(await c.get('company:42:orders')).toBe('plain')
    expect(await c.namespace('company:42').get('orders')).toBe('namespaced')
  })
})

describe('typed key templates', () => {
  it('builds keys from exactly the template parameters, in the scope namespace', async () => {
    const { cache: c } = cache()
    const orderPage = c.key('company:{companyId}:orders:page:{page}', { scope: 'company:{companyId}:orders' })
    expect(orderPage({ companyId: 42, page: 1 })).toBe('company:42:orders\u001epage:1')
    // @ts-expect-error a missing parameter is a type error…
    expect(() => orderPage({ companyId: 42 })).toThrow(InvalidArgumentError)
    // @ts-expect-error …and so is an extra one
    expect(() => orderPage({ companyId: 42, page: 1, sort: 'asc' })).toThrow(/no parameter "sort"/)
    expect(() => c.key('a:{x}{y}')).toThrow(/separated/)
    expect(() => c.key('a:{x}', { scope: 'b:{y}' })).toThrow(/scope/)
  })

  it('escapes separators inside values: two different parameter sets never build the same key', () => {
    const { cache: c } = cache()
    const key = c.key('t:{a}:{b}:x:{c}', { scope: 't:{a}' })
    const alphabet = ['a', ':', '%', '3A', '%3A', '\u001e', '\u001f', ' ', 'é', '0']
    const random = () => Array.from({ length: 1 + Math.floor(Math.random() * 4) }, () => alphabet[Math.floor(Math.random() * alphabet.length)]).join('')
    const seen = new Map<string, string>()
    for (let i = 0; i < 20_000; i++) {
      const params = { a: random(), b: random(), c: random() }
      const id = JSON.stringify(params)
      const built = key(params)
      const previous = seen.get(built)
      if (previous !== undefined) expect(previous).toBe(id)
      seen.set(built, id)
    }
    expect(seen.size).toBeGreaterThan(1_000)
  })

  it('invalidate() on a template drops every key of the scope it names', async () => {
    const { cache: c } = cache()
    const orderPage = c.key('company:{companyId}:orders:page:{page}', { scope: 'company:{companyId}:orders' })
    await c.set(orderPage({ companyId: 42, page: 1 }), 'p1')
    await c.set(orderPage({ companyId: 42, page: 2 }), 'p2')
    await c.set(orderPage({ companyId: 7, page: 1 }), 'other')
    await orderPage.invalidate({ companyId: 42 })
    expect(await c.getMany([orderPage({ companyId: 42, page: 1 }), orderPage({ companyId: 42, page: 2 }), orderPage({ companyId: 7, page: 1 })])).toEqual([
      undefined,
      undefined,
      'other',
    ])
  })
})

describe('wrap and invalidateOn', () => {
  it('wrap memoizes through getOrSet, with per-call keys and tags', async () => {
    const { cache: c, l1 } = cache()
    const load = vi.fn(async (id: number) => `user ${id}`)
    const cachedLoad = c.wrap(load, { key: (id) => `user:${id}`, tags: (id) => [`user:${id}`], ttl: '5m' })
    expect(await cachedLoad(1)).toBe('user 1')
    expect(await cachedLoad(1)).toBe('user 1')
    expect(load).toHaveBeenCalledTimes(1)
    expect(l1.get('user:1')?.tags).toEqual(['user:1'])
  })

  it('invalidateOn turns a domain event into the right invalidation, and can be unwired', async () => {
    const { cache: c } = cache()
    const events = new EventEmitter()
    const orders = c.namespace('company:42:orders')
    await orders.set('page:1', 'p1')
    await c.set('summary:42', 's', { tags: ['company:42'] })
    const off = c.invalidateOn(events, 'order.updated', (e: { companyId: number }) => ({
      namespaces: [`company:${e.companyId}:orders`],
      tags: [`company:${e.companyId}`],
    }))
    events.emit('order.updated', { companyId: 42 })
    await vi.waitFor(async () => expect(await orders.get('page:1')).toBeUndefined())
    expect(await c.get('summary:42')).toBeUndefined()
    off()
    await orders.set('page:1', 'p1 again')
    events.emit('order.updated', { companyId: 42 })
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(await orders.get('page:1')).toBe('p1 again')
  })
})
