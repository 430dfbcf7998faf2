import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { fileURLToPath } from 'node:url'
import { InstanceProcess } from './support/instance.js'
import { RedisServer } from './support/redis-server.js'

/**
 * redisBus carryValues across separate Node processes sharing one real
 * redis-server (the hazards one by one: packages/redis-adapter/test/
 * carry-values.test.ts). A writer carries; one reader takes the value into
 * its L1 (its next read makes no L2 call); one reader on the current format
 * (option off) and one with another secret only evict, and read the new
 * value from L2.
 */
const FIXTURE = fileURLToPath(new URL('./fixtures/carry-instance.mjs', import.meta.url))
const WAIT = { timeout: 10_000, interval: 20 }

interface Status {
  messagesReceived: number
  carriedValues?: { applied: number; rejected: number; undecodable: number }
}
interface Read {
  value: unknown
  fromL1: boolean
  l2Calls: number
}

let server: RedisServer
let writer: InstanceProcess
let carrying: InstanceProcess
let plain: InstanceProcess
let otherSecret: InstanceProcess

beforeAll(async () => {
  server = await RedisServer.start()
  const env = { REDIS_URL: server.url }
  ;[writer, carrying, plain, otherSecret] = await Promise.all([
    InstanceProcess.start(env, FIXTURE),
    InstanceProcess.start(env, FIXTURE),
    InstanceProcess.start({ ...env, CARRY: 'off' }, FIXTURE),
    InstanceProcess.start({ ...env, SECRET: 'another-secret-not-shared-by-anyone' }, FIXTURE),
  ])
})

afterAll(async () => {
  for (const instance of [writer, carrying, plain, otherSecret]) instance?.kill()
  await server?.stop()
})

describe('carryValues across processes', () => {
  it('the value lands in L1 where the secret matches; the current format and a wrong secret evict and re-read L2', async () => {
    const readers = [carrying, plain, otherSecret]
    await writer.call('set', { key: 'k', value: 'v1' })
    // Each reader holds v1 in L1 (a read until one is an L1 hit: the first write's own message may evict a first copy).
    for (const reader of readers) {
      await vi.waitFor(async () => {
        await reader.call('read', { key: 'k' })
        expect((await reader.call<Read>('read', { key: 'k' })).fromL1).toBe(true)
      }, WAIT)
    }
    const received = await Promise.all(readers.map(async (r) => (await r.call<Status>('busStatus')).messagesReceived))
    await writer.call('set', { key: 'k', value: 'v2' })
    await Promise.all(
      readers.map((r, i) => vi.waitFor(async () => expect((await r.call<Status>('busStatus')).messagesReceived).toBeGreaterThan(received[i]!), WAIT)),
    )

    const taken = await carrying.call<Read>('read', { key: 'k' })
    expect(taken).toEqual({ value: 'v2', fromL1: true, l2Calls: 0 })

    const evicted = await plain.call<Read>('read', { key: 'k' })
    expect(evicted.value).toBe('v2')
    expect(evicted.l2Calls).toBeGreaterThan(0)
    expect((await plain.call<Status>('busStatus')).carriedValues).toBeUndefined()

    const refused = await otherSecret.call<Read>('read', { key: 'k' })
    expect(refused.value).toBe('v2')
    expect(refused.l2Calls).toBeGreaterThan(0)
    expect((await otherSecret.call<Status>('busStatus')).carriedValues?.rejected).toBeGreaterThan(0)
    expect((await otherSecret.call<Status>('busStatus')).carriedValues?.applied).toBe(0)
  })
})
