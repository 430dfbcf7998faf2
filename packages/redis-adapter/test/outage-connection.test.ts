/**
 * When Redis goes down (issue 18): the tier says so at once (`available()`),
 * nothing is sent while it is known down, every change is reported once
 * (`onConnectionChange`, the bus's logger), and `ready({ timeout })` fails
 * loudly naming host:port and the cause. Real redis-server processes; every
 * wait is for an event (a change, a log line), never for the clock.
 */
import { CHANNELS, createCache, NotReadyError, TierUnavailableError, WriteFailedError, type BusStateEvent } from '@tiercache/core'
import type { ConnectionChange } from '@tiercache/core/adapter'
import { memoryTier } from '@tiercache/memory-adapter'
import { subscribe, unsubscribe } from 'node:diagnostics_channel'
import { Redis } from 'ioredis'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort, RedisServer } from '../../../tests/support/redis-server.js'
import { causeOf } from '../src/connection-state.js'
import { redisBus, redisTier } from '../src/index.js'

const closers: Array<() => unknown> = []
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close()
})

async function server(): Promise<RedisServer> {
  const started = await RedisServer.start()
  closers.push(() => started.stop()) // pushed first: stopped after whatever uses it
  return started
}

type Subscribe = (listener: (change: ConnectionChange) => void) => () => void

/** The next change in `state` that `onChange` reports. */
function next(onChange: Subscribe, state: ConnectionChange['state']): Promise<ConnectionChange> {
  return new Promise((resolve) => {
    const stop = onChange((change) => {
      if (change.state !== state) return
      stop()
      resolve(change)
    })
  })
}

interface Line {
  level: string
  fields: Record<string, unknown>
  message: string
}

/** A pino-like logger that records its lines, and waits for one to arrive. */
function recordingLogger() {
  const lines: Line[] = []
  const waiters = new Set<() => void>()
  const at =
    (level: string) =>
    (fields: Record<string, unknown>, message = '') => {
      lines.push({ level, fields, message })
      for (const wake of [...waiters]) wake()
    }
  const logger = { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') }
  const arrived = (matches: (line: Line) => boolean, count = 1) =>
    new Promise<void>((resolve) => {
      const check = () => {
        if (lines.filter(matches).length < count) return
        waiters.delete(check)
        resolve()
      }
      waiters.add(check)
      check()
    })
  return { logger, lines, arrived }
}

const matching = (pattern: RegExp) => (line: Line) => pattern.test(line.message)

describe('a tier whose Redis goes down and comes back', () => {
  it('available() is false once the server is killed and true once it is back; onConnectionChange reports lost (refused or closed), then restored, naming host:port', async () => {
    const redis = await server()
    const tier = redisTier({ redis: redis.url }).bind({ cacheName: 'watched' })
    closers.push(() => tier.close())
    const onChange: Subscribe = (listener) => tier.onConnectionChange!(listener)
    const changes: ConnectionChange[] = []
    const stop = onChange((change) => changes.push(change))
    await tier.ready!(10_000)
    expect(tier.available!()).toBe(true)
    await tier.probe!()

    const lost = next(onChange, 'lost')
    await redis.kill()
    const change = await lost
    const endpoint = `127.0.0.1:${redis.port}`
    expect(change.endpoint).toBe(endpoint)
    expect(['refused', 'closed']).toContain(change.cause)
    expect(tier.available!()).toBe(false)
    // Known down: the probe fails at once, unsent, instead of waiting in ioredis's queue.
    await expect(tier.probe!()).rejects.toThrow(`redis at ${endpoint} is down`)

    const restored = next(onChange, 'restored')
    await redis.restart()
    expect(await restored).toEqual({ state: 'restored', endpoint })
    expect(tier.available!()).toBe(true)
    await tier.probe!()
    expect(changes.map(({ state }) => state)).toEqual(['lost', 'restored'])
    stop()
  })

  it('through createCache: while the connection is known down no command is sent; reads come from the factory, writes reject with WriteFailedError', async () => {
    const redis = await server()
    // A client of our own, so that every command it sends can be counted (MONITOR cannot see a dead server).
    const client = new Redis(redis.url, { maxRetriesPerRequest: 1, retryStrategy: () => 20 })
    client.on('error', () => {})
    closers.push(() => client.disconnect())
    const sent: string[] = []
    const sendCommand = client.sendCommand.bind(client)
    client.sendCommand = ((command: { name: string }, stream?: unknown) => {
      sent.push(command.name)
      return sendCommand(command as never, stream as never)
    }) as typeof client.sendCommand
    const { logger, lines, arrived } = recordingLogger()
    const cache = createCache<string>({ name: 'spied', tiers: [memoryTier(), redisTier({ redis: client })], logger, invalidation: { ttlOnly: true } })
    closers.push(() => cache.close())
    await cache.ready({ timeout: '10s' })
    await cache.set('before', 'v')
    expect(sent.length).toBeGreaterThan(0) // the spy sees the tier's commands

    await redis.kill()
    await arrived((line) => line.level === 'error' && /lost its connection/.test(line.message))
    const endpoint = `127.0.0.1:${redis.port}`
    expect(lines.find((line) => /lost its connection/.test(line.message))?.fields).toMatchObject({ endpoint })
    sent.length = 0
    let loads = 0
    const load = () => {
      loads++
      return 'from-factory'
    }
    expect(await cache.getOrSet('a', load)).toBe('from-factory')
    expect(await cache.getMany(['b', 'c'])).toEqual([undefined, undefined])
    expect(loads).toBe(1)
    const writes = [() => cache.set('d', 'v'), () => cache.delete('d'), () => cache.invalidateTags(['t']), () => cache.clear()]
    for (const write of writes) {
      const error = await write().catch((e: unknown) => e)
      expect(error).toBeInstanceOf(WriteFailedError)
      expect((error as WriteFailedError).cause).toBeInstanceOf(TierUnavailableError)
    }
    expect(sent).toEqual([])
    expect(cache.stats().l2CallsSkipped).toBeGreaterThanOrEqual(1 + writes.length)

    await redis.restart()
    await arrived((line) => line.level === 'info' && /reconnected/.test(line.message))
    await cache.set('after', 'v')
    expect(sent).toContain('evalsha')
    expect(lines.filter(matching(/lost its connection/))).toHaveLength(1)
  })
})

describe('ready({ timeout })', () => {
  /** The tier's, the bus's and a cache's ready on `url`, each with its own objects. */
  async function readyErrors(url: string, name: string): Promise<unknown[]> {
    const tier = redisTier({ redis: url }).bind({ cacheName: name })
    const bus = redisBus({ redis: url })
    const cacheBus = redisBus({ redis: url })
    const cache = createCache({ name, tiers: [memoryTier(), redisTier({ redis: url })], bus: cacheBus, invalidation: { ttlOnly: true }, onError: () => {} })
    closers.push(
      () => tier.close(),
      () => bus.close(),
      () => cacheBus.close(),
      () => cache.close(),
    )
    const settled = await Promise.allSettled([tier.ready!(2_000), bus.ready({ timeout: '2s' }), cache.ready({ timeout: '2s' })])
    return settled.map((outcome) => (outcome.status === 'rejected' ? outcome.reason : 'resolved'))
  }

  it('no server on the port: the tier, the bus and cache.ready reject with NotReadyError naming 127.0.0.1:<port> and "connection refused"', async () => {
    const port = await freePort()
    const errors = await readyErrors(`redis://127.0.0.1:${port}`, 'nowhere')
    for (const error of errors) {
      expect(error).toBeInstanceOf(NotReadyError)
      expect((error as NotReadyError).code).toBe('ERR_NOT_READY')
      expect((error as Error).message).toContain(`redis at 127.0.0.1:${port} is not ready after 2000 ms: connection refused`)
    }
  })

  it("a wrong password: they reject naming host:port and auth, with the server's WRONGPASS", async () => {
    const redis = await server()
    redis.cli('CONFIG', 'SET', 'requirepass', 's3cret')
    const errors = await readyErrors(`redis://:wrong@127.0.0.1:${redis.port}`, 'locked')
    for (const error of errors) {
      expect(error).toBeInstanceOf(NotReadyError)
      expect((error as Error).message).toContain(`redis at 127.0.0.1:${redis.port} is not ready after 2000 ms: auth failed: WRONGPASS`)
    }
  })

  it('a server that answers: all three resolve', async () => {
    const redis = await server()
    expect(await readyErrors(redis.url, 'fine')).toEqual(['resolved', 'resolved', 'resolved'])
  })

  it('a closed bus: ready rejects; ready waits still pending when the bus closes reject too', async () => {
    const port = await freePort()
    const bus = redisBus({ redis: `redis://127.0.0.1:${port}` })
    const pending = bus.ready()
    await bus.close()
    await expect(pending).rejects.toThrow('redisBus was closed before it was ready')
    await expect(bus.ready()).rejects.toThrow('redisBus is closed')
  })
})

describe('a bus whose Redis goes down and comes back', () => {
  it('logs one line per change: lost (error, host:port, cause) and restored (info), gap opened (warn) and closed (info, with its length); onConnectionChange sees the same', async () => {
    const redis = await server()
    const { logger, lines, arrived } = recordingLogger()
    const bus = redisBus({ redis: redis.url, logger })
    closers.push(() => bus.close())
    const changes: ConnectionChange[] = []
    bus.onConnectionChange((change) => changes.push(change))
    const events: BusStateEvent[] = []
    const onBusEvent = (event: unknown) => events.push(event as BusStateEvent)
    subscribe(CHANNELS.bus, onBusEvent)
    closers.push(() => unsubscribe(CHANNELS.bus, onBusEvent))
    await bus.ready({ timeout: '10s' })
    expect(lines).toEqual([])
    const endpoint = `127.0.0.1:${redis.port}`

    for (let cycle = 1; cycle <= 2; cycle++) {
      await redis.kill()
      await arrived(matching(/lost its connection/), cycle)
      await redis.restart()
      await arrived(matching(/reconnected/), cycle)
      await arrived(matching(/gap closed/), cycle)
    }
    const lost = lines.filter(matching(/lost its connection/))
    const restored = lines.filter(matching(/reconnected/))
    const opened = lines.filter(matching(/gap opened/))
    const closed = lines.filter(matching(/gap closed/))
    expect(lines).toHaveLength(8) // nothing else: one line per change
    for (const line of lost) {
      expect(line.level).toBe('error')
      expect(line.message).toContain(endpoint)
      expect(line.fields).toMatchObject({ endpoint, cause: expect.stringMatching(/^(refused|closed)$/) })
    }
    for (const line of restored) {
      expect(line.level).toBe('info')
      expect(line.message).toContain(endpoint)
    }
    expect(opened.map(({ level }) => level)).toEqual(['warn', 'warn'])
    for (const line of closed) {
      expect(line.level).toBe('info')
      expect(line.fields.gapMs).toBeGreaterThanOrEqual(0)
      expect(line.message).toContain(`after ${line.fields.gapMs} ms`)
    }
    expect(changes.map(({ state }) => state)).toEqual(['lost', 'restored', 'lost', 'restored'])
    expect(changes.every((change) => change.endpoint === endpoint)).toBe(true)
    const gapsClosed = events.filter(({ state }) => state === 'gap-closed')
    expect(gapsClosed).toHaveLength(2)
    for (const event of gapsClosed) expect(event.gapMs).toBeGreaterThanOrEqual(0)
  })

  it('the logger option is checked like the others', () => {
    expect(() => redisBus({ redis: 'redis://127.0.0.1:1', logger: {} as never })).toThrow('redisBus: logger must have a warn(object, message) method')
  })
})

describe('causeOf', () => {
  const withCode = (message: string, code: string) => Object.assign(new Error(message), { code })
  it('names refused, auth, tls, timeout and closed; anything else by its message', () => {
    expect(causeOf(withCode('connect ECONNREFUSED 127.0.0.1:1', 'ECONNREFUSED'))).toBe('refused')
    expect(causeOf(new Error('WRONGPASS invalid username-password pair or user is disabled.'))).toBe('auth')
    expect(causeOf(new Error('NOAUTH Authentication required.'))).toBe('auth')
    expect(causeOf(withCode('self-signed certificate', 'DEPTH_ZERO_SELF_SIGNED_CERT'))).toBe('tls')
    expect(causeOf(withCode('write EPROTO ... wrong version number', 'EPROTO'))).toBe('tls')
    expect(causeOf(withCode('connect ETIMEDOUT', 'ETIMEDOUT'))).toBe('timeout')
    expect(causeOf(withCode('read ECONNRESET', 'ECONNRESET'))).toBe('closed')
    expect(causeOf(Object.assign(new Error('Failed to refresh slots cache.'), { lastNodeError: withCode('connect ECONNREFUSED', 'ECONNREFUSED') }))).toBe(
      'refused',
    )
    expect(causeOf(new Error('getaddrinfo ENOTFOUND nowhere'))).toBe('getaddrinfo ENOTFOUND nowhere')
  })
})
