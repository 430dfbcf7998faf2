/**
 * What `redis` accepts (issue 21): a URL, `{ url, options }` (ioredis
 * options next to the URL: credentials, db, TLS, a connection name…), an
 * ioredis client, Cluster seeds; anything else is InvalidOptionError naming
 * redisTier or redisBus and what is accepted. Connections opened from a URL
 * are shared by equal URL and options only. Real redis-server processes.
 */
import { createCache, InvalidOptionError } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { freePort, RedisServer } from '../../../tests/support/redis-server.js'
import { redisBus, redisTier, type RedisConnectionOptions, type RedisInput } from '../src/index.js'

const PASSWORD = 's3cret'

const closers: Array<() => unknown> = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

describe('redis: what is accepted, checked before anything connects', () => {
  const both = [
    ['redisTier', (redis: unknown) => redisTier({ redis: redis as RedisInput })],
    ['redisBus', (redis: unknown) => redisBus({ redis: redis as RedisInput })],
  ] as const

  it('an unknown shape: InvalidOptionError naming the function, what it accepts and what it got', () => {
    const cases: Array<[unknown, string]> = [
      [{ host: '127.0.0.1', port: 6379 }, "got an object with keys host, port (for a host and port, pass { url: 'redis://host:port', options })"],
      [6379, 'got number 6379'],
      [null, 'got null'],
      // A node-redis client has sendCommand and duplicate, but none of ioredis's defineCommand.
      [{ sendCommand() {}, duplicate() {}, isOpen: false }, 'got an object with keys sendCommand, duplicate, isOpen'],
    ]
    for (const [owner, create] of both) {
      for (const [input, got] of cases) {
        const call = () => create(input)
        expect(call).toThrow(InvalidOptionError)
        expect(call).toThrow(
          `${owner}: redis must be a redis:// or rediss:// URL; { url, options } (a URL and ioredis options such as username, password, tls, db, connectTimeout); ` +
            `an ioredis client (Redis or Cluster, ioredis 5.3+ or 6); or a list of Redis Cluster seed nodes; ${got}`,
        )
      }
      expect(() => create('localhost:6379')).toThrow(`${owner}: redis must be a redis:// or rediss:// URL, got "localhost:6379"`)
    }
  })

  it('{ url, options }: a wrong URL, an unknown key, options that are not an object', () => {
    for (const [owner, create] of both) {
      expect(() => create({ url: 'localhost:6379' })).toThrow(`${owner}: redis.url must be a redis:// or rediss:// URL, got "localhost:6379"`)
      expect(() => create({ url: 'redis://127.0.0.1:1', opts: {} })).toThrow(`${owner}: redis: unknown key "opts" next to url (accepted: { url, options })`)
      expect(() => create({ url: 'redis://127.0.0.1:1', options: 'tls' })).toThrow(`${owner}: redis.options must be an object of ioredis options`)
      expect(() => create({ url: 'redis://127.0.0.1:1', options: [] })).toThrow(InvalidOptionError)
    }
  })

  it('options tiercache depends on are refused, each saying why; the rest pass', () => {
    const refused: Array<[RedisConnectionOptions, string]> = [
      [{ maxRetriesPerRequest: null }, 'redis.options.maxRetriesPerRequest must be 0 or 1: a command issued while Redis is down must fail'],
      [{ maxRetriesPerRequest: 20 }, 'redis.options.maxRetriesPerRequest must be 0 or 1'],
      [{ enableAutoPipelining: true }, 'redis.options.enableAutoPipelining must be false: reads and writes are already batched per tick'],
      [{ keyPrefix: 'app:' }, "redis.options.keyPrefix is not supported: use the tier's and the bus's prefix option"],
      [{ stringNumbers: true }, 'redis.options.stringNumbers must be false'],
      [{ replyMapping: 'resp3' }, "redis.options.replyMapping must be 'legacy'"],
      [{ host: 'other' }, 'redis.options.host is not accepted next to a URL: put the host in the URL'],
      [{ port: 6380 }, 'redis.options.port is not accepted next to a URL'],
      [{ db: -1 }, 'redis.options.db must be a database number (0, 1, …), got -1'],
    ]
    for (const [owner, create] of both) {
      for (const [options, message] of refused) {
        const call = () => create({ url: 'redis://127.0.0.1:1', options })
        expect(call).toThrow(InvalidOptionError)
        expect(call).toThrow(`${owner}: ${message}`)
      }
      // Given in the URL and in options: ioredis would let the URL win without a word.
      expect(() => create({ url: 'redis://:a@127.0.0.1:1', options: { password: 'b' } })).toThrow(
        `${owner}: redis.options.password is also set in the URL: give it in one place`,
      )
      expect(() => create({ url: 'redis://127.0.0.1:1/2', options: { db: 3 } })).toThrow(`${owner}: redis.options.db is also set in the URL`)
    }
  })

  it("an ioredis client of the user's with stringNumbers is refused (TTLs would be read as strings)", () => {
    const client = new Redis({ lazyConnect: true, stringNumbers: true })
    closers.push(() => client.disconnect())
    expect(() => redisTier({ redis: client })).toThrow('redisTier: redis: the ioredis client has stringNumbers: true')
    expect(() => redisBus({ redis: client })).toThrow(InvalidOptionError)
  })
})

describe('{ url, options } on a real server', () => {
  let server: RedisServer
  beforeAll(async () => {
    server = await RedisServer.start()
    server.cli('CONFIG', 'SET', 'requirepass', PASSWORD)
  })
  afterAll(() => server.stop())

  /** redis-cli with the password. */
  const cli = (...args: string[]): string => {
    const result = spawnSync('redis-cli', ['-p', String(server.port), '-a', PASSWORD, '--no-auth-warning', ...args], { encoding: 'utf8' })
    if (result.status !== 0) throw new Error(`redis-cli ${args.join(' ')} failed: ${result.stderr}`)
    return result.stdout.trim()
  }
  /** Connections open under `name` (CLIENT SETNAME). */
  const connectionsNamed = (name: string): number =>
    cli('CLIENT', 'LIST')
      .split('\n')
      .filter((line) => line.includes(` name=${name} `)).length

  /** A cache and its bus on `tierInput` and `busInput`. */
  function instance(tierInput: RedisInput, busInput: RedisInput = tierInput) {
    const bus = redisBus({ redis: busInput })
    const cache = createCache<number>({
      name: 'inputs',
      tiers: [memoryTier(), redisTier({ redis: tierInput })],
      bus,
      ttl: '1h',
      invalidation: { ttlOnly: true },
    })
    closers.push(
      () => cache.close(),
      () => bus.close(),
    )
    return { bus, cache }
  }

  it('password, db and connectionName from options: entries land in that db, invalidations cross instances, tier and bus share one command connection', async () => {
    const options = { password: PASSWORD, db: 3, connectionName: 'inputs-a' }
    const input = { url: `redis://127.0.0.1:${server.port}`, options }
    const a = instance(input)
    const b = instance({ url: `redis://127.0.0.1:${server.port}`, options: { ...options } }) // equal options, another object
    await Promise.all([a.bus.ready({ timeout: '10s' }), b.bus.ready({ timeout: '10s' }), a.cache.ready({ timeout: '10s' }), b.cache.ready({ timeout: '10s' })])
    await a.cache.set('x', 1)
    expect(await b.cache.getOrSet('x', () => -1)).toBe(1)
    expect(cli('-n', '3', 'EXISTS', 'tiercache:inputs:x')).toBe('1')
    expect(cli('-n', '0', 'EXISTS', 'tiercache:inputs:x')).toBe('0')
    await a.cache.set('x', 2)
    await vi.waitFor(async () => expect(await b.cache.get('x')).toBe(2))
    // The write and its invalidation went out in one script: the tier and the bus share the connection.
    expect(a.bus.status().messagesPublishedAtomically).toBeGreaterThan(0)
    // One command connection for both instances (equal options), and one subscriber per bus.
    expect(connectionsNamed('inputs-a')).toBe(1)
    expect(connectionsNamed('inputs-a:bus')).toBe(2)
  })

  it('different options get their own connection: two caches on two databases never see each other', async () => {
    const url = `redis://127.0.0.1:${server.port}`
    const one = instance({ url, options: { password: PASSWORD, db: 5, connectionName: 'inputs-db' } })
    const other = instance({ url, options: { password: PASSWORD, db: 6, connectionName: 'inputs-db' } })
    await Promise.all([one.cache.ready({ timeout: '10s' }), other.cache.ready({ timeout: '10s' })])
    await one.cache.set('k', 5)
    await other.cache.set('k', 6)
    expect(connectionsNamed('inputs-db')).toBe(2)
    expect(cli('-n', '5', 'GET', 'tiercache:inputs:k')).not.toBe('')
    expect(cli('-n', '6', 'GET', 'tiercache:inputs:k')).not.toBe('')
    expect(cli('-n', '5', 'GET', 'tiercache:inputs:k')).not.toBe(cli('-n', '6', 'GET', 'tiercache:inputs:k'))
  })

  it('functions in options compare by identity: the same retryStrategy shares, two written inline do not', async () => {
    const url = `redis://127.0.0.1:${server.port}`
    const retryStrategy = (times: number) => Math.min(times * 20, 500)
    const tiers = [
      redisTier({ redis: { url, options: { password: PASSWORD, connectionName: 'inputs-fn', retryStrategy } } }),
      redisTier({ redis: { url, options: { password: PASSWORD, connectionName: 'inputs-fn', retryStrategy } } }),
      redisTier({ redis: { url, options: { password: PASSWORD, connectionName: 'inputs-fn', retryStrategy: (times: number) => times } } }),
    ]
    const bound = tiers.map((tier, i) => tier.bind({ cacheName: `fn${i}` }))
    closers.push(...bound.map((tier) => () => tier.close()))
    await Promise.all(bound.map((tier) => tier.ready!(10_000)))
    expect(connectionsNamed('inputs-fn')).toBe(2)
  })

  it('a connection tiercache opened is closed when its last cache and bus close', async () => {
    const input = { url: `redis://127.0.0.1:${server.port}`, options: { password: PASSWORD, connectionName: 'inputs-close' } }
    const { bus, cache } = instance(input)
    await Promise.all([bus.ready({ timeout: '10s' }), cache.ready({ timeout: '10s' })])
    expect(connectionsNamed('inputs-close')).toBe(1)
    await cache.close()
    await bus.close()
    await vi.waitFor(() => expect(connectionsNamed('inputs-close') + connectionsNamed('inputs-close:bus')).toBe(0))
  })
})

describe('{ url, options } with TLS', () => {
  let certificates: string
  let server: RedisServer
  let tlsPort: number
  beforeAll(async () => {
    certificates = mkdtempSync(join(tmpdir(), 'tiercache-input-tls-'))
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(certificates, 'key.pem'), '-out', join(certificates, 'cert.pem')].concat([
        '-days',
        '2',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ]),
      { stdio: 'ignore' },
    )
    server = await RedisServer.start(async () => {
      tlsPort = await freePort()
      const file = (name: string) => join(certificates, name)
      return ['--tls-port', String(tlsPort), '--tls-cert-file', file('cert.pem'), '--tls-key-file', file('key.pem')].concat([
        '--tls-ca-cert-file',
        file('cert.pem'),
        '--tls-auth-clients',
        'no',
      ])
    })
  }, 30_000)
  afterAll(async () => {
    await server.stop()
    rmSync(certificates, { recursive: true, force: true })
  })

  it('rediss:// with options.tls.ca (a private CA): caches and the bus work over TLS', async () => {
    const input = { url: `rediss://127.0.0.1:${tlsPort}`, options: { tls: { ca: readFileSync(join(certificates, 'cert.pem')) }, connectionName: 'inputs-tls' } }
    const made = [0, 1].map(() => {
      // A fresh options object each time, equal bytes: still one shared connection.
      const own = { url: input.url, options: { ...input.options, tls: { ca: readFileSync(join(certificates, 'cert.pem')) } } }
      const bus = redisBus({ redis: own })
      const cache = createCache<number>({ name: 'tls', tiers: [memoryTier(), redisTier({ redis: own })], bus, ttl: '1h', invalidation: { ttlOnly: true } })
      closers.push(
        () => cache.close(),
        () => bus.close(),
      )
      return { bus, cache }
    })
    const [a, b] = made as [(typeof made)[0], (typeof made)[0]]
    await Promise.all([a.bus.ready({ timeout: '10s' }), b.bus.ready({ timeout: '10s' })])
    await a.cache.set('x', 1)
    expect(await b.cache.getOrSet('x', () => -1)).toBe(1)
    await a.cache.set('x', 2)
    await vi.waitFor(async () => expect(await b.cache.get('x')).toBe(2))
    const clients = server.cli('CLIENT', 'LIST').split('\n')
    expect(clients.filter((line) => line.includes(' name=inputs-tls ') && line.includes(`laddr=127.0.0.1:${tlsPort}`))).toHaveLength(1)
  })
})
