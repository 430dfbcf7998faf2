// Quick benchmark: tiercache's L1 hit and L2 hit next to their raw baselines,
// measured in one run on one machine. Ratios, not absolute numbers, are what
// carry over between machines.
//
//   pnpm bench            (starts its own redis-server on a free port)
//   REDIS_URL=redis://127.0.0.1:6380 pnpm bench
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { createCache } from '@tiercache/core'
import { memoryBus, memoryStore, memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier } from '@tiercache/redis-adapter'
import { Redis } from 'ioredis'
import { LRUCache } from 'lru-cache'
import { Packr } from 'msgpackr'

const ROUNDS = 7

/** Median ns/op over ROUNDS rounds of `iterations` awaited calls. */
async function measure(iterations, fn) {
  for (let i = 0; i < Math.min(iterations, 20_000); i++) await fn(i)
  const perRound = []
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < iterations; i++) await fn(i)
    perRound.push(Number(process.hrtime.bigint() - start) / iterations)
  }
  perRound.sort((a, b) => a - b)
  return perRound[Math.floor(ROUNDS / 2)]
}

/** Median ns/op of a synchronous function (for the raw Map/LRU baselines). */
function measureSync(iterations, fn) {
  for (let i = 0; i < 100_000; i++) fn(i)
  const perRound = []
  for (let round = 0; round < ROUNDS; round++) {
    const start = process.hrtime.bigint()
    for (let i = 0; i < iterations; i++) fn(i)
    perRound.push(Number(process.hrtime.bigint() - start) / iterations)
  }
  perRound.sort((a, b) => a - b)
  return perRound[Math.floor(ROUNDS / 2)]
}

async function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

async function startRedis() {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, stop: async () => {} }
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  })
  child.on('error', () => {
    console.error('redis-server not found: install it (sudo apt-get install -y redis-server) or set REDIS_URL')
    process.exit(1)
  })
  const probe = new Redis({ port, retryStrategy: () => 20, maxRetriesPerRequest: null })
  probe.on('error', () => {}) // refused until redis-server listens
  await probe.ping()
  probe.disconnect()
  return {
    url: `redis://127.0.0.1:${port}`,
    stop: async () => {
      child.kill('SIGTERM')
      await new Promise((resolve) => child.once('exit', resolve))
    },
  }
}

const rows = []
const row = (name, ns, baseline) => rows.push({ name, ns, baseline })
const value = { id: 42, name: 'user 42', email: 'user42@example.com', roles: ['reader', 'writer'], plan: 'pro', createdAt: new Date(0) }

// ---- L1 hit
const map = new Map([['k', value]])
const lru = new LRUCache({ max: 10_000 })
lru.set('k', value)
const asyncLruGet = async (key) => lru.get(key)
const l1Only = createCache({ name: 'bench-l1', tiers: [memoryTier()], ttl: '1h', invalidation: { notes: 'benchmark' } })
await l1Only.set('k', value)
const store = memoryStore()
const l1WithBus = createCache({ name: 'bench-l1l2', tiers: [memoryTier(), store], bus: memoryBus(), ttl: '1h', invalidation: { notes: 'benchmark' } })
await l1WithBus.set('k', value)
const factory = () => value

const HITS = 1_000_000
const mapNs = measureSync(HITS * 5, () => map.get('k'))
const lruNs = measureSync(HITS * 5, () => lru.get('k'))
const asyncLruNs = await measure(HITS, () => asyncLruGet('k'))
row('Map.get (sync)', mapNs)
row('lru-cache get (sync)', lruNs)
row('async fn around lru-cache get, awaited  [baseline]', asyncLruNs)
row('tiercache getOrSet, L1 hit (L1 only)', await measure(HITS, () => l1Only.getOrSet('k', factory)), asyncLruNs)
row('tiercache getOrSet, L1 hit (L1 + L2 + bus)', await measure(HITS, () => l1WithBus.getOrSet('k', factory)), asyncLruNs)
row('tiercache get, L1 hit', await measure(HITS, () => l1Only.get('k')), asyncLruNs)

// ---- L2 hit on real Redis, one caller
const redis = await startRedis()
const raw = new Redis(redis.url)
const packr = new Packr({ moreTypes: true })
await raw.set('raw:k', packr.pack(value))
const L2_OPS = 5_000
const rawNs = await measure(L2_OPS, async () => packr.unpack(await raw.getBuffer('raw:k')))
row('ioredis GET + msgpackr decode  [baseline]', rawNs)
const bus = redisBus({ redis: redis.url, prefix: 'bench' })
const l2Only = createCache({ name: 'bench-l2', tiers: [redisTier({ redis: redis.url, prefix: 'bench' })], bus, ttl: '1h', invalidation: { notes: 'benchmark' } })
await bus.ready()
await l2Only.set('k', value)
const l1OnRedis = createCache({ name: 'bench-l1-redis', tiers: [memoryTier(), redisTier({ redis: redis.url, prefix: 'bench' })], bus, ttl: '1h', invalidation: { notes: 'benchmark' } })
await l1OnRedis.set('k', value)
row('tiercache getOrSet, L1 hit (L1 + Redis L2 + Redis bus)', await measure(HITS, () => l1OnRedis.getOrSet('k', factory)), asyncLruNs)
row('tiercache get, L2 hit (L2 only)', await measure(L2_OPS, () => l2Only.get('k')), rawNs)
row('tiercache getOrSet, L2 hit (L2 only)', await measure(L2_OPS, () => l2Only.getOrSet('k', factory)), rawNs)

await l2Only.close()
await l1OnRedis.close()
await bus.close()
raw.disconnect()
await redis.stop()

const format = (ns) => (ns >= 10_000 ? `${(ns / 1000).toFixed(1)} µs` : `${ns.toFixed(1)} ns`)
console.log(`node ${process.version}, ${ROUNDS} rounds each, median ns/op\n`)
for (const { name, ns, baseline } of rows) {
  const ratio = baseline === undefined ? '' : `  ${(ns / baseline).toFixed(2)}x baseline`
  console.log(`${name.padEnd(54)} ${format(ns).padStart(10)}${ratio}`)
}
