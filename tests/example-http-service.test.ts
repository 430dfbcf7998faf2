import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, RedisServer } from './support/redis-server.js'

/**
 * examples/http-service as its README runs it: two real `node server.mjs`
 * processes on one real redis-server, asked over HTTP with fetch. Waits for
 * events (a line an instance logs: listening, an invalidation received,
 * closed), each with a bound so that a lost one fails with a message; no
 * sleeps and no timing assertions.
 */
const EXAMPLE = fileURLToPath(new URL('../examples/http-service/', import.meta.url))
/** A bound on waiting for a logged event (an invalidation arrives in well under 1 ms unloaded). */
const EVENT_BOUND_MS = 20_000

const INVALIDATION = /^\[A\] invalidation received from another instance: tags$/
const PRIVATE_NO_CACHE = 'private, no-cache'
const ETAG = /^"[0-9a-f]{16}"$/

interface Exit {
  code: number | null
  signal: NodeJS.Signals | null
}

/** One `node server.mjs` and everything it printed, line by line. */
class ServiceProcess {
  readonly lines: string[] = []
  readonly exited: Promise<Exit>
  #stderr = ''
  #waiters: Array<() => void> = []
  url = ''

  private constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    let pending = ''
    child.stdout?.setEncoding('utf8')
    child.stdout?.on('data', (chunk: string) => {
      pending += chunk
      const parts = pending.split('\n')
      pending = parts.pop() ?? ''
      this.lines.push(...parts)
      for (const waiter of this.#waiters.splice(0)) waiter()
    })
    child.stderr?.setEncoding('utf8')
    child.stderr?.on('data', (chunk: string) => {
      this.#stderr += chunk
    })
    this.exited = new Promise((resolve) =>
      child.once('exit', (code, signal) => {
        resolve({ code, signal })
        for (const waiter of this.#waiters.splice(0)) waiter()
      }),
    )
  }

  static spawn(name: string, env: Record<string, string>): ServiceProcess {
    const child = spawn(process.execPath, ['server.mjs'], {
      cwd: EXAMPLE,
      env: { ...process.env, INSTANCE: name, HOST: '127.0.0.1', PORT: '0', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    return new ServiceProcess(name, child)
  }

  /** Starts an instance and resolves once it is listening (the port it picked is in its log). */
  static async start(name: string, env: Record<string, string>): Promise<ServiceProcess> {
    const service = ServiceProcess.spawn(name, env)
    const line = service.lines[await service.waitForLine(/ listening on (http:\/\/\S+) /)]!
    service.url = / listening on (http:\/\/\S+) /.exec(line)![1]!
    return service
  }

  /** How the process ended, once it has; fails after the bound if it has not (a handle left open keeps it alive). */
  async exit(): Promise<Exit> {
    let timer: NodeJS.Timeout | undefined
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.name} did not exit within ${EVENT_BOUND_MS} ms\n--- stdout ---\n${this.lines.join('\n')}`)),
        EVENT_BOUND_MS,
      )
    })
    try {
      return await Promise.race([this.exited, bound])
    } finally {
      clearTimeout(timer)
    }
  }

  get stderr(): string {
    return this.#stderr
  }

  count(pattern: RegExp): number {
    return this.lines.filter((line) => pattern.test(line)).length
  }

  /** The index of the `nth` (1-based) line matching `pattern`, once it has been printed. */
  waitForLine(pattern: RegExp, nth = 1): Promise<number> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => fail(`no line #${nth} matching ${pattern} within ${EVENT_BOUND_MS} ms`), EVENT_BOUND_MS)
      const fail = (why: string) => {
        clearTimeout(timer)
        reject(new Error(`${this.name}: ${why}\n--- stdout ---\n${this.lines.join('\n')}\n--- stderr ---\n${this.#stderr}`))
      }
      const check = () => {
        let seen = 0
        const index = this.lines.findIndex((line) => pattern.test(line) && ++seen === nth)
        if (index >= 0) {
          clearTimeout(timer)
          resolve(index)
        } else if (this.child.exitCode !== null || this.child.signalCode !== null) {
          fail(`exited (${this.child.exitCode ?? this.child.signalCode})`)
        } else {
          this.#waiters.push(check)
        }
      }
      check()
    })
  }

  async get(path: string, headers: Record<string, string> = {}) {
    const response = await fetch(`${this.url}${path}`, { headers })
    const text = await response.text()
    return { status: response.status, headers: response.headers, text, json: () => JSON.parse(text) as unknown }
  }

  async put(path: string, body: unknown) {
    const response = await fetch(`${this.url}${path}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
    return { status: response.status, json: (await response.json()) as unknown }
  }

  async databaseQueries(): Promise<number> {
    return ((await this.get('/health')).json() as { databaseQueries: number }).databaseQueries
  }

  /** Runs `write` (on another instance), then resolves once its tag invalidation has reached this one, as its log says. */
  async afterInvalidation(write: () => Promise<unknown>): Promise<void> {
    const before = this.count(INVALIDATION)
    await write()
    await this.waitForLine(INVALIDATION, before + 1)
  }
}

describe('examples/http-service: two server.mjs processes on one redis-server', () => {
  let redis: RedisServer
  let dbDir: string
  let a: ServiceProcess
  let b: ServiceProcess

  beforeAll(async () => {
    redis = await RedisServer.start()
    dbDir = mkdtempSync(join(tmpdir(), 'tiercache-example-db-'))
    const env = { REDIS_URL: redis.url, DB_DIR: dbDir }
    ;[a, b] = await Promise.all([ServiceProcess.start('A', env), ServiceProcess.start('B', env)])
  })

  afterAll(async () => {
    for (const service of [a, b]) service?.child.kill('SIGKILL') // only if a test failed before stopping them
    await redis?.stop()
    if (dbDir !== undefined) rmSync(dbDir, { recursive: true, force: true })
  })

  it("200 with private, no-cache and an ETag; B answers A's entry from Redis with the same ETag, without a database query", async () => {
    const fromA = await a.get('/products/1')
    expect(fromA.status).toBe(200)
    expect(fromA.json()).toEqual({ id: '1', name: 'Espresso cup', category: 'kitchen', price: 9.5 })
    expect(fromA.headers.get('cache-control')).toBe(PRIVATE_NO_CACHE)
    expect(fromA.headers.get('etag')).toMatch(ETAG)
    expect(fromA.headers.get('last-modified')).not.toBeNull()
    expect(fromA.headers.get('x-instance')).toBe('A')
    expect(a.count(/^\[A\] database: product 1$/)).toBe(1)

    const fromB = await b.get('/products/1')
    expect(fromB.status).toBe(200)
    expect(fromB.headers.get('x-instance')).toBe('B')
    expect(fromB.text).toBe(fromA.text)
    for (const name of ['etag', 'last-modified', 'cache-control']) expect(fromB.headers.get(name), name).toBe(fromA.headers.get(name))
    expect(await b.databaseQueries()).toBe(0)
  })

  it('304 without a body on a matching If-None-Match, on both instances; 200 on any other', async () => {
    const etag = (await a.get('/products/2')).headers.get('etag')!
    for (const service of [a, b]) {
      const revalidated = await service.get('/products/2', { 'if-none-match': etag })
      expect(revalidated.status, service.name).toBe(304)
      expect(revalidated.text).toBe('')
      expect(revalidated.headers.get('etag')).toBe(etag)
      expect(revalidated.headers.get('cache-control')).toBe(PRIVATE_NO_CACHE)
      expect((await service.get('/products/2', { 'if-none-match': '"0000000000000000"' })).status).toBe(200)
    }
    expect(a.count(/^\[A\] database: product 2$/)).toBe(1)
  })

  it('404 for a product that does not exist, 400 for an id that cannot be a key', async () => {
    expect((await a.get('/products/99')).status).toBe(404)
    expect((await a.get('/products/no%20such')).status).toBe(400)
    expect((await b.put('/products/99', { price: 1 })).status).toBe(404)
    expect((await b.put('/products/1', { price: 'free' })).status).toBe(400)
  })

  it('a PUT on B changes what A serves: the new value, a new ETag, and 200 (not 304) for the old ETag on both', async () => {
    const old = await a.get('/products/3')
    const oldEtag = old.headers.get('etag')!
    // Both instances now hold the entry in L1: only the invalidation can make A answer anything else.
    expect((await b.get('/products/3', { 'if-none-match': oldEtag })).status).toBe(304)
    expect((await a.get('/products/3', { 'if-none-match': oldEtag })).status).toBe(304)

    await a.afterInvalidation(async () => {
      const put = await b.put('/products/3', { name: 'Desk lamp, brass', price: 52 })
      expect(put.status).toBe(200)
      expect(put.json).toEqual({ id: '3', name: 'Desk lamp, brass', category: 'office', price: 52 })
    })
    expect(b.lines).toContain('[B] PUT /products/3: database written, invalidated product:3 category:office')

    const fromA = await a.get('/products/3', { 'if-none-match': oldEtag })
    expect(fromA.status).toBe(200)
    expect(fromA.json()).toEqual({ id: '3', name: 'Desk lamp, brass', category: 'office', price: 52 })
    const newEtag = fromA.headers.get('etag')!
    expect(newEtag).toMatch(ETAG)
    expect(newEtag).not.toBe(oldEtag)
    const fromB = await b.get('/products/3', { 'if-none-match': oldEtag })
    expect(fromB.status).toBe(200)
    expect(fromB.headers.get('etag')).toBe(newEtag)
    for (const service of [a, b]) expect((await service.get('/products/3', { 'if-none-match': newEtag })).status).toBe(304)
  })

  it('a PUT on B that moves a product drops both category listings on A (getOrSet under the category tag)', async () => {
    const listing = async (service: ServiceProcess, name: string) =>
      ((await service.get(`/categories/${name}`)).json() as { products: Array<{ id: string }> }).products.map((p) => p.id)
    expect(await listing(a, 'kitchen')).toEqual(['1', '2'])
    expect(await listing(a, 'garden')).toEqual([])
    const queries = await a.databaseQueries()
    expect(await listing(a, 'kitchen')).toEqual(['1', '2']) // from L1 now
    expect(await a.databaseQueries()).toBe(queries)

    await a.afterInvalidation(() => b.put('/products/2', { category: 'garden' }))

    expect(await listing(a, 'kitchen')).toEqual(['1'])
    expect(await listing(a, 'garden')).toEqual(['2'])
    expect(await listing(b, 'garden')).toEqual(['2'])
  })

  it('SIGTERM: each instance closes its server, cache and bus and exits 0 on its own', async () => {
    for (const service of [a, b]) service.child.kill('SIGTERM')
    for (const service of [a, b]) {
      expect(await service.exit(), `${service.name}\n${service.stderr}`).toEqual({ code: 0, signal: null })
      expect(service.lines).toContain(`[${service.name}] closed`)
    }
  })
})

describe('examples/http-service when Redis goes away after startup', () => {
  let redis: RedisServer
  let dbDir: string
  let service: ServiceProcess

  beforeAll(async () => {
    redis = await RedisServer.start()
    dbDir = mkdtempSync(join(tmpdir(), 'tiercache-example-db-'))
    service = await ServiceProcess.start('A', { REDIS_URL: redis.url, DB_DIR: dbDir })
  })

  afterAll(async () => {
    service?.child.kill('SIGKILL')
    await redis?.stop()
    if (dbDir !== undefined) rmSync(dbDir, { recursive: true, force: true })
  })

  it('a PUT writes the database and answers 503 (the invalidation failed: retry); SIGTERM still exits 0', async () => {
    expect((await service.get('/products/4')).status).toBe(200)
    await redis.kill()

    const put = await service.put('/products/4', { price: 5 })
    expect(put.status).toBe(503)
    expect(put.json).toEqual({ error: 'product 4 was written, but the cache could not be invalidated (Redis is unreachable): retry the PUT' })
    expect(JSON.parse(readFileSync(join(dbDir, '4.json'), 'utf8'))).toEqual({ id: '4', name: 'Notebook', category: 'office', price: 5 })
    expect(service.lines.some((line) => line.startsWith('[A] PUT /products/4: database written, invalidation failed: '))).toBe(true)

    service.child.kill('SIGTERM')
    expect(await service.exit(), service.stderr).toEqual({ code: 0, signal: null })
  })
})

describe('examples/http-service without a reachable Redis', () => {
  it('says so with what to do, and exits 1 instead of hanging', async () => {
    const url = `redis://127.0.0.1:${await freePort()}` // nothing listens there
    const dbDir = mkdtempSync(join(tmpdir(), 'tiercache-example-db-'))
    try {
      const service = ServiceProcess.spawn('A', { REDIS_URL: url, DB_DIR: dbDir })
      expect(await service.exit(), service.stderr).toEqual({ code: 1, signal: null })
      expect(service.stderr).toContain(`[A] Redis is not reachable at ${url}: `)
      expect(service.stderr).toContain('connection refused')
      expect(service.stderr).toContain("redis-server --port 6390 --save '' --appendonly no")
      expect(service.lines.some((line) => line.includes('listening on'))).toBe(false)
    } finally {
      rmSync(dbDir, { recursive: true, force: true })
    }
  })
})
