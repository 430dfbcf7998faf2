// Cross-instance propagation: one process writes, another reads the same key
// in a tight loop (its L1 holds the key, so the new value can only appear
// once the invalidation arrived and L2 was read). Reports the delay from the
// write resolving to the reader's first read of the new value.
//
//   node bench/propagation.mjs            (starts its own redis-server)
//   ROUNDS=5000 node bench/propagation.mjs
import { fork, spawn } from 'node:child_process'
import { createServer } from 'node:net'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { createCache } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier } from '@tiercache/redis-adapter'
import { Redis } from 'ioredis'

const now = () => Number(process.hrtime.bigint()) / 1e6

function instance(url) {
  const bus = redisBus({ redis: url, prefix: 'propagation' })
  const cache = createCache({ name: 'p', tiers: [memoryTier(), redisTier({ redis: url, prefix: 'propagation' })], bus, ttl: '1h', invalidation: { notes: 'benchmark' } })
  return { bus, cache }
}

if (process.argv[2] === 'reader') {
  // Child: spin on get('k'), record when each new version is first seen.
  const { bus, cache } = instance(process.env.REDIS_URL)
  await bus.ready()
  const seen = []
  let last
  let running = true
  process.on('message', async (message) => {
    if (message === 'stop') {
      running = false
      return
    }
  })
  process.send('ready')
  while (running) {
    const value = await cache.get('k')
    if (value !== last) {
      last = value
      seen.push(value ?? -1, now())
    }
    await new Promise((resolve) => setImmediate(resolve))
  }
  process.send({ seen, stale: bus.status() })
  await cache.close()
  await bus.close()
  process.disconnect()
} else {
  const rounds = Number(process.env.ROUNDS ?? 2000)
  const port = await new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
  const redisServer = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  const url = `redis://127.0.0.1:${port}`
  const probe = new Redis(url, { retryStrategy: () => 20, maxRetriesPerRequest: null })
  probe.on('error', () => {}) // refused until redis-server listens
  await probe.ping()
  probe.disconnect()

  const { bus, cache } = instance(url)
  await bus.ready()
  await cache.set('k', 0)
  // The reader spins on a core; at a lower priority it cannot starve redis-server and the
  // writer of the machine's other core, which is what a busy loop would measure instead.
  const reader = fork(fileURLToPath(import.meta.url), ['reader'], { env: { ...process.env, REDIS_URL: url } })
  try {
    os.setPriority(reader.pid, 10)
  } catch {
    // not permitted: measure as is
  }
  await new Promise((resolve) => reader.once('message', resolve))
  await new Promise((resolve) => setTimeout(resolve, 200))

  const resolvedAt = new Map()
  for (let version = 1; version <= rounds; version++) {
    await cache.set('k', version)
    resolvedAt.set(version, now())
    await new Promise((resolve) => setTimeout(resolve, 2))
  }
  await new Promise((resolve) => setTimeout(resolve, 200))
  reader.send('stop')
  const { seen } = await new Promise((resolve) => reader.on('message', (m) => typeof m === 'object' && resolve(m)))
  const delays = []
  let late50 = 0
  for (let i = 0; i < seen.length; i += 2) {
    const version = seen[i]
    const at = seen[i + 1]
    if (!resolvedAt.has(version)) continue
    const delay = at - resolvedAt.get(version)
    delays.push(delay)
    if (delay > 50) late50++
  }
  delays.sort((a, b) => a - b)
  const q = (p) => delays[Math.min(delays.length - 1, Math.floor(p * delays.length))]
  console.log(`node ${process.version}; ${rounds} writes, 1 writer process, 1 reader process, redis-server on loopback`)
  console.log(`versions seen by the reader: ${delays.length} of ${rounds} (a version replaced before the reader looked is skipped)`)
  console.log(`write resolved → reader's first read of the new value (ms): p50 ${q(0.5).toFixed(3)}  p99 ${q(0.99).toFixed(3)}  max ${delays.at(-1).toFixed(3)}`)
  console.log(`reads of a version more than 50 ms after it resolved: ${late50}`)
  await cache.close()
  await bus.close()
  redisServer.kill('SIGTERM')
}
