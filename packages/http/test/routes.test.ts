import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createCache, InvalidArgumentError, InvalidOptionError, type Cache, type FactoryContext } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import express, { type NextFunction, type Request, type Response } from 'express'
import Fastify, { type FastifyRequest } from 'fastify'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { cacheHeaders, expressRoute, fastifyRoute, notModified, type RouteOptions } from '../src/index.js'

/**
 * Both route helpers in a real server of their framework, asked over real
 * HTTP (fetch), with a memory-only cache: what each framework does with the
 * answer (status, headers, body, HEAD, errors). Cross-instance behaviour
 * over Redis is in tests/http-express.test.ts and tests/http-fastify.test.ts.
 */
interface User {
  id: string
  name: string
}

const newCache = () => createCache<unknown>({ name: 'http-unit', tiers: [memoryTier()], ttl: '10m', invalidation: { ttlOnly: true } })
let cache: Cache<unknown>
let loads: string[] = []
beforeEach(() => {
  loads = []
})

/** The routes both frameworks mount, written once against each framework's own request type. */
function routes<Req extends { params: unknown }>() {
  const id = (req: Req) => (req.params as { id: string }).id
  return {
    user: {
      key: (req: Req) => `user:${id(req)}`,
      load: (req: Req, ctx: FactoryContext<unknown>) => {
        loads.push(ctx.key)
        return { id: id(req), name: `User ${id(req)}` } satisfies User
      },
      tags: (req: Req) => [`user:${id(req)}`],
      cacheTag: true,
    } satisfies RouteOptions<Req, unknown>,
    text: { key: () => 'text', load: () => 'plain "text"' } satisfies RouteOptions<Req, unknown>,
    missing: { key: (req: Req) => `missing:${id(req)}`, load: () => null } satisfies RouteOptions<Req, unknown>,
    failing: {
      key: () => 'failing',
      load: () => {
        throw new Error('database down')
      },
    } satisfies RouteOptions<Req, unknown>,
    remaining: {
      key: () => 'remaining',
      load: () => 'x',
      ttl: '2m',
      maxAge: 'remaining',
      visibility: 'public',
      vary: 'accept-language',
    } satisfies RouteOptions<Req, unknown>,
  }
}

interface Server {
  url: string
  close(): Promise<void>
}

async function expressServer(): Promise<Server> {
  const app = express()
  const r = routes<Request>()
  // Another middleware's Vary must survive the route's.
  app.use((_req, res, next) => {
    res.setHeader('vary', 'Origin')
    next()
  })
  app.get('/users/:id', expressRoute(cache, r.user))
  app.get('/text', expressRoute(cache, r.text))
  app.get('/missing/:id', expressRoute(cache, r.missing))
  app.get('/failing', expressRoute(cache, r.failing))
  app.get('/remaining', expressRoute(cache, r.remaining))
  app.get('/ns/:id', expressRoute(cache.namespace('team:1'), { key: (req) => req.params.id!, load: (req) => ({ in: req.params.id }) }))
  app.use((error: Error, _req: Request, res: Response, _next: NextFunction) => {
    res.status(500).json({ error: error.message })
  })
  const server = app.listen(0, '127.0.0.1')
  await new Promise<void>((resolve) => server.once('listening', resolve))
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      }),
  }
}

async function fastifyServer(): Promise<Server> {
  const app = Fastify()
  type ById = FastifyRequest<{ Params: { id: string } }>
  const r = routes<FastifyRequest>()
  app.addHook('onRequest', async (_request, reply) => {
    reply.header('vary', 'Origin')
  })
  app.get('/users/:id', fastifyRoute(cache, r.user))
  app.get('/text', fastifyRoute(cache, r.text))
  app.get('/missing/:id', fastifyRoute(cache, r.missing))
  app.get('/failing', fastifyRoute(cache, r.failing))
  app.get('/remaining', fastifyRoute(cache, r.remaining))
  app.get('/ns/:id', fastifyRoute(cache.namespace('team:1'), { key: (req: ById) => req.params.id, load: (req: ById) => ({ in: req.params.id }) }))
  const address = await app.listen({ port: 0, host: '127.0.0.1' })
  return { url: address, close: () => app.close() }
}

for (const [framework, start] of [
  ['express', expressServer],
  ['fastify', fastifyServer],
] as const) {
  describe(`${framework}Route`, () => {
    let server: Server
    beforeAll(async () => {
      cache = newCache()
      server = await start()
    })
    afterAll(async () => {
      await server?.close()
      await cache.close()
    })

    it('200: the value as JSON, private no-cache, ETag, Last-Modified, cache-tag from the tags', async () => {
      const response = await fetch(`${server.url}/users/42`)
      expect(response.status).toBe(200)
      expect(response.headers.get('content-type')).toMatch(/^application\/json/)
      expect(await response.json()).toEqual({ id: '42', name: 'User 42' })
      expect(response.headers.get('cache-control')).toBe('private, no-cache')
      const entry = await cache.getOrSetEntry('user:42', () => 'unused')
      expect(response.headers.get('etag')).toBe(entry.etag)
      expect(response.headers.get('last-modified')).toBe(new Date(entry.createdAt).toUTCString())
      expect(response.headers.get('cache-tag')).toBe('user:42')
      expect(loads).toEqual(['user:42'])
    })

    it('304 without a body on a matching If-None-Match (weak or in a list) or a later If-Modified-Since', async () => {
      const first = await fetch(`${server.url}/users/7`)
      const etag = first.headers.get('etag')!
      const lastModified = first.headers.get('last-modified')!
      const conditions: Array<Record<string, string>> = [
        { 'if-none-match': etag },
        { 'if-none-match': `"other", W/${etag}` },
        { 'if-modified-since': lastModified },
      ]
      for (const headers of conditions) {
        const response = await fetch(`${server.url}/users/7`, { headers })
        expect(response.status, JSON.stringify(headers)).toBe(304)
        expect(await response.text()).toBe('')
        expect(response.headers.get('etag')).toBe(etag)
        expect(response.headers.get('cache-control')).toBe('private, no-cache')
        expect(response.headers.get('last-modified')).toBeNull()
      }
      const other = await fetch(`${server.url}/users/7`, { headers: { 'if-none-match': '"0000000000000000"' } })
      expect(other.status).toBe(200)
      expect(await other.json()).toEqual({ id: '7', name: 'User 7' })
      expect(loads).toEqual(['user:7'])
    })

    it('HEAD: the headers without the body, and 304 when current', async () => {
      const head = await fetch(`${server.url}/users/9`, { method: 'HEAD' })
      expect(head.status).toBe(200)
      expect(await head.text()).toBe('')
      const etag = head.headers.get('etag')!
      expect(etag).toMatch(/^"[0-9a-f]{16}"$/)
      expect((await fetch(`${server.url}/users/9`, { method: 'HEAD', headers: { 'if-none-match': etag } })).status).toBe(304)
    })

    it('a string value is sent as JSON too', async () => {
      const response = await fetch(`${server.url}/text`)
      expect(response.headers.get('content-type')).toMatch(/^application\/json/)
      expect(await response.json()).toBe('plain "text"')
    })

    it('null from load: 404, no-store, no body', async () => {
      const response = await fetch(`${server.url}/missing/1`)
      expect(response.status).toBe(404)
      expect(response.headers.get('cache-control')).toBe('no-store')
      expect(response.headers.get('etag')).toBeNull()
      expect(await response.text()).toBe('')
    })

    it("load's error reaches the framework's error handling", async () => {
      const response = await fetch(`${server.url}/failing`)
      expect(response.status).toBe(500)
      expect(await response.text()).toContain('database down')
    })

    it("ttl and header options: public, max-age within the entry's remaining life, Vary added to another middleware's", async () => {
      const before = Date.now()
      const response = await fetch(`${server.url}/remaining`)
      const entry = await cache.getOrSetEntry('remaining', () => 'unused')
      // expiresAt is the monotonic expiry moved to the wall clock, once per call: two calls may differ by a millisecond.
      expect(Math.abs(entry.expiresAt - entry.createdAt - 120_000)).toBeLessThanOrEqual(1)
      const maxAge = Number(/^public, max-age=(\d+)$/.exec(response.headers.get('cache-control')!)?.[1])
      // The server computed it between `before` and now: bracketed, not timed.
      expect(maxAge).toBeLessThanOrEqual(Math.floor((entry.expiresAt + 1 - before) / 1_000))
      expect(maxAge).toBeGreaterThanOrEqual(Math.floor((entry.expiresAt - 1 - Date.now()) / 1_000))
      expect(response.headers.get('vary')).toBe('Origin, accept-language')
    })

    it('a namespace handle serves as the cache', async () => {
      const response = await fetch(`${server.url}/ns/5`)
      expect(await response.json()).toEqual({ in: '5' })
      expect((await cache.namespace('team:1').getOrSetEntry('5', () => 'unused')).value).toEqual({ in: '5' })
    })
  })
}

describe('route options', () => {
  beforeAll(() => {
    cache = newCache()
  })
  afterAll(() => cache.close())
  const route = { key: () => 'k', load: () => 1 }
  const bad: Array<[string, Record<string, unknown>]> = [
    ['key', { ...route, key: 'k' }],
    ['load', { ...route, load: undefined }],
    ['ttl', { ...route, ttl: 'forever' }],
    ['tags', { ...route, tags: 'user' }],
    ['options', { ...route, options: 5 }],
    ['maxAge', { ...route, maxAge: 'always' }],
    ['visibility', { ...route, visibility: 'secret' }],
    ['tll', { ...route, tll: '1m' }],
  ]
  const makers: Array<(cache: Cache<unknown>, options: RouteOptions<never, unknown>) => unknown> = [expressRoute, fastifyRoute]
  for (const make of makers) {
    for (const [option, options] of bad) {
      it(`${make.name}: ${option} is checked when the route is made`, () => {
        expect(() => make(cache, options as unknown as RouteOptions<never, unknown>)).toThrow(InvalidOptionError)
        expect(() => make(cache, options as unknown as RouteOptions<never, unknown>)).toThrow(new RegExp(`${option}.*\\[cache "http-unit"\\]`))
      })
    }
    it(`${make.name}: a cache without getOrSetEntry is InvalidArgumentError`, () => {
      expect(() => make({} as unknown as Cache<unknown>, route)).toThrow(InvalidArgumentError)
    })
  }

  it('ttl, tags and per-request options reach getOrSetEntry; ttl and tags win over the same names in options', async () => {
    const calls: unknown[] = []
    const spy = {
      name: 'spy',
      getOrSetEntry: async (key: string, _factory: unknown, options: unknown) => {
        calls.push({ key, options })
        return { value: key, etag: '"e"', createdAt: 0, expiresAt: 0, tags: [] }
      },
    }
    const req = { method: 'GET', headers: {}, params: { id: '3' } }
    const res = { status: () => res, setHeader: () => res, getHeader: () => undefined, json: () => res, end: () => res }
    const next = (error?: unknown) => calls.push({ error })
    await expressRoute(spy, { key: (r) => `k${r.params.id}`, load: () => 'v' })(req, res, next)
    await expressRoute(spy, { key: () => 'a', load: () => 'v', ttl: '1m', tags: ['t'], options: { ttl: '5m', grace: '1h' } })(req, res, next)
    await expressRoute(spy, { key: () => 'b', load: () => 'v', tags: (r) => [`t${r.params.id}`], options: (r) => ({ skipL1: r.params.id === '3' }) })(
      req,
      res,
      next,
    )
    expect(calls).toEqual([
      { key: 'k3', options: undefined },
      { key: 'a', options: { ttl: '1m', tags: ['t'], grace: '1h' } },
      { key: 'b', options: { skipL1: true, tags: ['t3'] } },
    ])
  })

  it('express: an error from key goes to next', async () => {
    const errors: unknown[] = []
    const handler = expressRoute(cache, {
      key: () => {
        throw new Error('no key')
      },
      load: () => 1,
    })
    const res = { status: () => res, setHeader: () => res, getHeader: () => undefined, json: () => res, end: () => res }
    await handler({ method: 'GET', headers: {}, params: {} }, res, (error) => errors.push(error))
    expect(errors).toEqual([new Error('no key')])
  })
})

describe('cacheHeaders and notModified on plain node:http', () => {
  it('writeHead takes the headers as they are; 304 for the ETag it sent', async () => {
    const local = newCache()
    const server = createServer(async (req, res) => {
      const entry = await local.getOrSetEntry('plain', () => ({ plain: true }))
      const headers = cacheHeaders(entry)
      if (notModified(req.headers, entry)) res.writeHead(304, headers).end()
      else res.writeHead(200, { ...headers, 'content-type': 'application/json' }).end(JSON.stringify(entry.value))
    })
    server.listen(0, '127.0.0.1')
    await new Promise<void>((resolve) => server.once('listening', resolve))
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const first = await fetch(url)
      expect(await first.json()).toEqual({ plain: true })
      expect(first.headers.get('cache-control')).toBe('private, no-cache')
      expect((await fetch(url, { headers: { 'if-none-match': first.headers.get('etag')! } })).status).toBe(304)
    } finally {
      await new Promise<void>((resolve) => {
        server.close(() => resolve())
        server.closeAllConnections()
      })
      await local.close()
    }
  })
})
