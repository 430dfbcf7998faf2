/**
 * A wrong URL (issue 21): nothing listening, a host that does not resolve,
 * no password or a wrong one, a database that does not exist. Each reaches
 * the user with host:port, the real cause (ECONNREFUSED, ENOTFOUND, NOAUTH,
 * WRONGPASS, ERR DB index) and what to do — in the error of the first
 * write, the error reported for the first read (which the factory answers:
 * an outage never fails a read), the process warning, the bus's status(),
 * ready() and log, and the tier's connection change — never as ioredis's
 * "Reached the max retries per request limit". Real redis-server processes;
 * every wait is for an event.
 */
import { createCache, NotReadyError, TierError, TierUnavailableError, WriteFailedError, type TierCacheError } from '@tiercache/core'
import type { ConnectionChange } from '@tiercache/core/adapter'
import { memoryTier } from '@tiercache/memory-adapter'
import { spawnSync } from 'node:child_process'
import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { freePort, RedisServer } from '../../../tests/support/redis-server.js'
import type { RedisConnectionChange } from '../src/connection-state.js'
import { redisBus, redisTier } from '../src/index.js'

const PASSWORD = 's3cret'

const closers: Array<() => unknown> = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

/** A server that requires PASSWORD (set after start: start() proves the server is ours with a plain INFO). */
let locked: RedisServer
beforeAll(async () => {
  locked = await RedisServer.start()
  locked.cli('CONFIG', 'SET', 'requirepass', PASSWORD)
})
afterAll(() => locked.stop())

/** redis-cli on the locked server, with the password. */
function lockedCli(...args: string[]): string {
  const result = spawnSync('redis-cli', ['-p', String(locked.port), '-a', PASSWORD, '--no-auth-warning', ...args], { encoding: 'utf8' })
  if (result.status !== 0) throw new Error(`redis-cli ${args.join(' ')} failed: ${result.stderr}`)
  return result.stdout.trim()
}

interface Line {
  level: string
  message: string
  fields: Record<string, unknown>
}

/** A logger that records its lines, and resolves `lost` with the first 'lost its connection' line. */
function recordingLogger() {
  const lines: Line[] = []
  let wake: (line: Line) => void = () => {}
  const lost = new Promise<Line>((resolve) => (wake = resolve))
  const at =
    (level: string) =>
    (fields: Record<string, unknown>, message = '') => {
      const line = { level, message, fields }
      lines.push(line)
      if (/lost its connection/.test(message)) wake(line)
    }
  return { logger: { error: at('error'), warn: at('warn'), info: at('info') }, lines, lost }
}

interface WrongUrl {
  readonly name: string
  url(): Promise<string>
  /** host:port as the messages name it. */
  endpoint(url: string): string
  /** ConnectionChange.cause: the short code (or the error's message). */
  readonly cause: RegExp
  /** The sentence: the cause's code and what to do. */
  readonly explanation: RegExp
}

const hostPort = (url: string) => new URL(url).host

const WRONG_URLS: WrongUrl[] = [
  {
    name: 'nothing listening on the port',
    url: async () => `redis://127.0.0.1:${await freePort()}`,
    endpoint: hostPort,
    cause: /^refused$/,
    explanation: /connection refused \(ECONNREFUSED\): nothing is listening there; check the host and port in the URL, and that redis-server is running/,
  },
  {
    name: 'a host that does not resolve',
    url: async () => 'redis://no-such-host.invalid:6379',
    endpoint: hostPort,
    // ENOTFOUND where DNS answers; EAI_AGAIN where no resolver is reachable.
    cause: /^getaddrinfo (ENOTFOUND|EAI_AGAIN) no-such-host\.invalid$/,
    explanation: /host not found \(getaddrinfo (ENOTFOUND|EAI_AGAIN) no-such-host\.invalid\): the host name does not resolve; check it in the URL/,
  },
  {
    name: 'no password for a server that requires one',
    url: async () => `redis://127.0.0.1:${locked.port}`,
    endpoint: hostPort,
    cause: /^auth$/,
    explanation: /auth failed: NOAUTH \(the server requires a password and none was given\): put it in the URL \(redis:\/\/:password@host:port/,
  },
  {
    name: 'a wrong password',
    url: async () => `redis://:wrong@127.0.0.1:${locked.port}`,
    endpoint: hostPort,
    cause: /^auth$/,
    explanation: /auth failed: WRONGPASS invalid username-password pair or user is disabled: check the username and password in the URL or options/,
  },
]

describe.each(WRONG_URLS)('a wrong URL: $name', (wrong) => {
  it('the first read goes to the factory and reports the cause; the first write rejects with it; the bus and the tier say it too', async () => {
    const url = await wrong.url()
    const endpoint = wrong.endpoint(url)
    const { logger, lines, lost } = recordingLogger()
    const bus = redisBus({ redis: url, logger })
    const tier = redisTier({ redis: url })
    const reported: TierCacheError[] = []
    const cache = createCache<number>({
      name: 'errs',
      tiers: [memoryTier(), tier],
      bus,
      invalidation: { ttlOnly: true },
      onError: (error) => reported.push(error),
    })
    closers.push(
      () => cache.close(),
      () => bus.close(),
    )
    const changes: ConnectionChange[] = []
    const watched = tier.bind({ cacheName: 'errs-watch' })
    closers.push(() => watched.close())
    const tierLost = new Promise<void>((resolve) =>
      watched.onConnectionChange!((change) => {
        changes.push(change)
        resolve()
      }),
    )

    // Used at once, while the first connection attempt is still under way.
    const [value, written] = await Promise.all([
      cache.getOrSet('k', () => 1),
      cache.set('w', 2).then(
        () => 'written',
        (error: unknown) => error,
      ),
    ])
    expect(value).toBe(1)
    expect(written).toBeInstanceOf(WriteFailedError)
    const writeCause = (written as WriteFailedError).cause
    expect(writeCause).toBeInstanceOf(TierUnavailableError)
    expect((writeCause as Error).message).toContain(`write failed: no connection to redis at ${endpoint}: `)
    expect((writeCause as Error).message).toMatch(wrong.explanation)
    expect((written as Error).message).toMatch(wrong.explanation)
    expect((written as Error).message).toContain('cache "errs", key "w"')

    const readError = reported.find((error) => error.key === 'k')
    expect(readError).toBeInstanceOf(TierUnavailableError)
    expect(readError!.message).toContain(`read failed: no connection to redis at ${endpoint}: `)
    expect(readError!.message).toMatch(wrong.explanation)
    expect(readError!.message).toContain('[cache "errs", key "k", tier redis]')
    for (const error of reported) expect(error.message).not.toContain('max retries')

    const busLost = await lost
    expect(busLost.level).toBe('error')
    expect(busLost.message).toContain(`redisBus lost its connection to ${endpoint} (`)
    expect(busLost.message).toMatch(wrong.explanation)
    expect(busLost.fields.cause).toMatch(wrong.cause)
    expect(bus.status().connected).toBe(false)
    expect(bus.status().connectionError).toMatch(new RegExp(`^redis at ${endpoint.replace(/\./g, '\\.')}: `))
    expect(bus.status().connectionError).toMatch(wrong.explanation)
    const notReady = await bus.ready({ timeout: 1 }).catch((error: unknown) => error)
    expect(notReady).toBeInstanceOf(NotReadyError)
    expect((notReady as Error).message).toMatch(wrong.explanation)

    await tierLost
    const change = changes[0] as RedisConnectionChange
    expect(change).toMatchObject({ state: 'lost', endpoint })
    expect(change.cause).toMatch(wrong.cause)
    expect(change.detail).toMatch(wrong.explanation)
    // What core can put in the error of a call it skips while the tier is known down.
    expect(watched.available!()).toBe(false)
    expect((watched as unknown as { unavailableReason(): string }).unavailableReason()).toMatch(wrong.explanation)
    expect(lines.map((line) => line.message).join('\n')).not.toContain('max retries')
  })
})

describe('without onError or a logger', () => {
  it('the process warning of the first read failure names the cache, host:port and the cause', async () => {
    const url = `redis://127.0.0.1:${await freePort()}`
    const warned = new Promise<Error & { code?: string }>((resolve) => {
      const onWarning = (warning: Error & { code?: string }) => {
        if (warning.code !== 'ERR_TIER_UNAVAILABLE' || !warning.message.includes('"warned"')) return
        process.off('warning', onWarning)
        resolve(warning)
      }
      process.on('warning', onWarning)
    })
    const cache = createCache<number>({ name: 'warned', tiers: [memoryTier(), redisTier({ redis: url })], invalidation: { ttlOnly: true } })
    closers.push(() => cache.close())
    expect(await cache.getOrSet('k', () => 1)).toBe(1)
    const warning = await warned
    expect(warning.message).toContain(`read failed: no connection to redis at ${new URL(url).host}: connection refused (ECONNREFUSED)`)
    expect(warning.message).toContain('[cache "warned", key "k", tier redis]')
  })
})

describe('a database that does not exist', () => {
  it('from the URL: nothing is read from or written to database 0 instead; the write rejects naming the database and what to do', async () => {
    lockedCli('FLUSHALL')
    const url = `redis://:${PASSWORD}@127.0.0.1:${locked.port}/99`
    const { logger, lost } = recordingLogger()
    const bus = redisBus({ redis: url, logger })
    const cache = createCache<number>({
      name: 'wrongdb',
      tiers: [memoryTier(), redisTier({ redis: url })],
      bus,
      invalidation: { ttlOnly: true },
      onError: () => {},
    })
    closers.push(
      () => cache.close(),
      () => bus.close(),
    )
    // ioredis would report the failed SELECT, then send these to database 0.
    const [value, written] = await Promise.all([
      cache.getOrSet('k', () => 1),
      cache.set('w', 2).then(
        () => 'written',
        (error: unknown) => error,
      ),
    ])
    expect(value).toBe(1)
    expect(written).toBeInstanceOf(WriteFailedError)
    const explanation = 'database 99 does not exist on this server (ERR DB index is out of range): use a db below the server\'s "databases" setting'
    expect(((written as WriteFailedError).cause as Error).message).toContain(explanation)
    expect(((written as WriteFailedError).cause as Error).message).toContain(`redis at 127.0.0.1:${locked.port}`)
    expect((await lost).message).toContain(explanation)
    expect(bus.status().connectionError).toContain(explanation)
    expect(lockedCli('-n', '0', 'DBSIZE')).toBe('0')
  })

  it("an ioredis client of the user's: the tier treats it as down (ready and the connection change say why)", async () => {
    const client = new Redis({ port: locked.port, password: PASSWORD, db: 99, maxRetriesPerRequest: 1 })
    client.on('error', () => {})
    closers.push(() => client.disconnect())
    const tier = redisTier({ redis: client }).bind({ cacheName: 'wrongdb-own' })
    closers.push(() => tier.close())
    const lost = new Promise<ConnectionChange>((resolve) => tier.onConnectionChange!(resolve))
    const change = (await lost) as RedisConnectionChange
    expect(change).toMatchObject({ state: 'lost', endpoint: `localhost:${locked.port}`, cause: 'ERR DB index is out of range' })
    expect(change.detail).toContain('database 99 does not exist on this server')
    expect(client.status).toBe('ready') // ioredis itself went on, in database 0
    expect(tier.available!()).toBe(false)
    const notReady = await tier.ready!(1).catch((error: unknown) => error)
    expect(notReady).toBeInstanceOf(NotReadyError)
    expect((notReady as Error).message).toContain('database 99 does not exist on this server')
  })
})

describe('a server that accepts the connection and never answers', () => {
  it('a call that times out says the connection never became ready, naming host:port', async () => {
    const frozen = await RedisServer.start()
    closers.push(() => frozen.stop())
    frozen.pause()
    const tier = redisTier({ redis: frozen.url, timeout: '200ms' }).bind({ cacheName: 'frozen' })
    closers.push(() => tier.close())
    const error = await tier.get('k').catch((e: unknown) => e)
    expect(error).toBeInstanceOf(TierError)
    expect((error as Error).message).toContain(
      `read timed out after 200 ms: redis at 127.0.0.1:${frozen.port} is not connected (no connection attempt has finished yet)`,
    )
  })
})
