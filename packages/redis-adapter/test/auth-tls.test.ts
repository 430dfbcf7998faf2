/**
 * Redis ACL users, passwords and TLS: a least-privilege ACL user confined to
 * its prefix's keys and channels runs every operation; a wrong password fails
 * typed, never unhandled; TLS works through an ioredis client with the CA.
 */
import { createCache, TierError, WriteFailedError } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { freePort, RedisServer } from '../../../tests/support/redis-server.js'
import { redisBus, redisTier, type RedisInput } from '../src/index.js'

/**
 * The least privilege tiercache needs, documented in the README: its keys and
 * channels only, reads, writes, scripts (which call TIME), pub/sub, WAIT,
 * naming its connections, and INFO (ioredis's ready check).
 */
const LEAST_PRIVILEGE = [
  'resetkeys',
  '~app:*',
  'resetchannels',
  '&app:*',
  '-@all',
  '+@read',
  '+@write',
  '+@scripting',
  '+@pubsub',
  '+@connection',
  '+time',
  '+wait',
  '+info',
  '+client|setname',
  '+client|id',
]

let server: RedisServer
let tlsPort: number
let certificates: string
beforeAll(async () => {
  certificates = mkdtempSync(join(tmpdir(), 'tiercache-tls-'))
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      join(certificates, 'key.pem'),
      '-out',
      join(certificates, 'cert.pem'),
      '-days',
      '2',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  )
  // A fresh TLS port for every start attempt: a retry after a lost port race
  // must not bind the one it lost. The last port made is the one that started.
  server = await RedisServer.start(async () => {
    tlsPort = await freePort()
    return [
      '--tls-port',
      String(tlsPort),
      '--tls-cert-file',
      join(certificates, 'cert.pem'),
      '--tls-key-file',
      join(certificates, 'key.pem'),
      '--tls-ca-cert-file',
      join(certificates, 'cert.pem'),
      '--tls-auth-clients',
      'no',
    ]
  })
  // start() proved the plain port is our child's; prove the TLS port is too, the
  // same way, before any test trusts what answers there.
  const ca = readFileSync(join(certificates, 'cert.pem'))
  const probe = new Redis({ host: '127.0.0.1', port: tlsPort, tls: { ca }, lazyConnect: true, maxRetriesPerRequest: 0 })
  probe.on('error', () => {})
  try {
    await probe.connect()
    const info = await probe.info('server')
    expect(/^process_id:(\d+)\r?$/m.exec(info)?.[1]).toBe(String(server.pid))
  } finally {
    probe.disconnect()
  }
  server.cli('ACL', 'SETUSER', 'app', 'on', '>s3cret', ...LEAST_PRIVILEGE)
}, 30_000)
afterAll(async () => {
  await server.stop()
  rmSync(certificates, { recursive: true, force: true })
})

/** Two instances on `redis` (a URL or a client factory), prefix 'app'. */
function pair(redis: () => RedisInput) {
  return [0, 1].map(() => {
    const input = redis()
    const bus = redisBus({ redis: input, prefix: 'app' })
    const cache = createCache<number>({
      name: 'acl',
      tiers: [memoryTier(), redisTier({ redis: input, prefix: 'app', timeout: '500ms' })],
      bus,
      ttl: '1h',
      invalidation: { ttlOnly: true },
      onError: () => {},
    })
    return { bus, cache, input }
  })
}

async function exercise(instances: ReturnType<typeof pair>): Promise<void> {
  const [a, b] = instances as [(typeof instances)[0], (typeof instances)[0]]
  await Promise.all([a.bus.ready(), b.bus.ready()])
  await a.cache.set('x', 1, { tags: ['t'] })
  expect(await b.cache.getOrSet('x', () => -1)).toBe(1)
  expect(await b.cache.getOrSet('y', () => 2)).toBe(2) // a fill under a lease
  const before = b.bus.status().messagesReceived
  await a.cache.set('x', 3)
  await vi.waitFor(() => expect(b.bus.status().messagesReceived).toBeGreaterThan(before))
  expect(await b.cache.get('x')).toBe(3)
  await a.cache.invalidateTags(['t'])
  await a.cache.delete('y')
  await a.cache.clear()
  // b's L1 copy of x goes when the clear's message arrives.
  await vi.waitFor(async () => expect(await b.cache.getMany(['x', 'y'])).toEqual([undefined, undefined]))
}

async function closeAll(instances: ReturnType<typeof pair>): Promise<void> {
  for (const { cache, bus, input } of instances) {
    await cache.close()
    await bus.close()
    if (input instanceof Redis) input.disconnect()
  }
}

describe('ACL, passwords and TLS', () => {
  it('an ACL user limited to ~app:* and &app:* (and the commands listed in the README) runs every operation', async () => {
    const instances = pair(() => `redis://app:s3cret@127.0.0.1:${server.port}`)
    await exercise(instances)
    await closeAll(instances)
  })

  it('a wrong password: reads and writes fail with TierError (reads fall back to the factory), the bus stays untrusted, nothing unhandled', async () => {
    const url = `redis://app:wrong@127.0.0.1:${server.port}`
    const bus = redisBus({ redis: url, prefix: 'app' })
    const cache = createCache<number>({
      name: 'acl',
      tiers: [memoryTier(), redisTier({ redis: url, prefix: 'app', timeout: '300ms' })],
      bus,
      ttl: '1h',
      invalidation: { ttlOnly: true },
      onError: () => {},
    })
    const rejected = await cache.set('x', 1).catch((e: unknown) => e)
    expect(rejected).toBeInstanceOf(WriteFailedError)
    expect((rejected as Error).cause).toBeInstanceOf(TierError)
    expect(await cache.getOrSet('x', () => 7)).toBe(7)
    expect(bus.status().trusted).toBe(false)
    await cache.close()
    await bus.close()
  })

  it('TLS: an ioredis client with the server CA (what rediss:// URLs do with the system CAs)', async () => {
    const ca = readFileSync(join(certificates, 'cert.pem'))
    const instances = pair(() => {
      const client = new Redis({ host: '127.0.0.1', port: tlsPort, tls: { ca }, username: 'app', password: 's3cret' })
      client.on('error', () => {})
      return client
    })
    await exercise(instances)
    expect(server.cli('CLIENT', 'LIST')).toContain(`laddr=127.0.0.1:${tlsPort}`)
    await closeAll(instances)
  })
})
