// Bus load as instances are added: one writer process-side cache, N subscriber
// buses (each its own Redis connection, as N instances would have), a fixed
// write rate, and what it costs — messages and bytes delivered, Redis CPU per
// delivered message, delivery delay — for N = 1, 10, 50. The figures back the
// estimates in docs/scaling.md.
//
//   node bench/bus-fanout.mjs            (starts its own redis-server)
//
// All subscribers live in this one process (the machine has 2 cores; 50
// processes would measure the scheduler). What Redis does per subscriber is
// the same either way: one socket write per message per subscriber.
import { createCache } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier } from '@tiercache/redis-adapter'
import { Redis } from 'ioredis'
import { quantile } from './lib/stats.mjs'
import { startRedis } from './lib/redis.mjs'

const WRITES_PER_SECOND = 500
const SECONDS = 4
const BURST = 20 // writes issued in one tick, for the coalescing row
const SUBSCRIBERS = [1, 10, 50]
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

const redis = await startRedis()
const admin = new Redis(redis.url)
const cpuOfRedis = async () => {
  const info = await admin.info('cpu')
  const pick = (name) => Number(info.match(new RegExp(`${name}:([\\d.]+)`))[1])
  return pick('used_cpu_sys') + pick('used_cpu_user')
}
const rows = []
for (const n of SUBSCRIBERS) {
  const prefix = `fanout${n}`
  const writerBus = redisBus({ redis: redis.url, prefix })
  const writer = createCache({
    name: 'items',
    tiers: [memoryTier(), redisTier({ redis: redis.url, prefix })],
    bus: writerBus,
    ttl: '1h',
    invalidation: { notes: 'bench' },
  })
  const readers = []
  const delays = []
  const sentAt = new Map()
  for (let i = 0; i < n; i++) {
    const bus = redisBus({ redis: redis.url, prefix })
    const cache = createCache({ name: 'items', tiers: [memoryTier()], bus, ttl: '1h', invalidation: { notes: 'bench' } })
    readers.push({ bus, cache })
  }
  await Promise.all([writerBus, ...readers.map((r) => r.bus)].map((bus) => bus.ready()))
  // Delivery delay, seen by the first reader: its invalidation events carry the key, and the key carries the send time.
  const { subscribe, unsubscribe } = await import('node:diagnostics_channel')
  const onInvalidation = (event) => {
    const at = sentAt.get(event.key)
    if (at !== undefined && event.key.startsWith('d')) {
      delays.push(performance.now() - at)
      sentAt.delete(event.key)
    }
  }
  subscribe('tiercache:invalidation', onInvalidation)
  const receivedBefore = readers.map((r) => r.bus.status().messagesReceived)
  const cpuBefore = await cpuOfRedis()
  const gap = 1000 / WRITES_PER_SECOND
  const started = performance.now()
  let writes = 0
  while (performance.now() - started < SECONDS * 1000) {
    const key = `d${writes}`
    sentAt.set(key, performance.now())
    await writer.set(key, writes)
    writes++
    const next = started + writes * gap
    const wait = next - performance.now()
    if (wait > 0) await sleep(wait)
  }
  await sleep(200)
  const cpuSeconds = (await cpuOfRedis()) - cpuBefore
  unsubscribe('tiercache:invalidation', onInvalidation)
  const delivered = readers.reduce((sum, r, i) => sum + r.bus.status().messagesReceived - receivedBefore[i], 0)
  // Coalescing: BURST writes in one tick become how many messages?
  const publishedBefore = writerBus.status().messagesPublishedAtomically + writerBus.status().messagesPublished
  await Promise.all(Array.from({ length: BURST }, (_, i) => writer.set(`burst${i}`, i)))
  const burstMessages = writerBus.status().messagesPublishedAtomically + writerBus.status().messagesPublished - publishedBefore
  delays.sort((a, b) => a - b)
  rows.push({
    subscribers: n,
    writes,
    delivered,
    perWrite: delivered / writes,
    redisCpuSeconds: cpuSeconds,
    redisCpuUsPerWrite: (cpuSeconds * 1e6) / writes,
    redisCpuShare: cpuSeconds / SECONDS,
    delayP50: quantile(delays, 0.5),
    delayP99: quantile(delays, 0.99),
    burstMessages,
  })
  for (const r of readers) {
    await r.cache.close()
    await r.bus.close()
  }
  await writer.close()
  await writerBus.close()
}
admin.disconnect()
await redis.stop()

const messageBytes = Buffer.byteLength(JSON.stringify({ v: 1, i: [['aZ3kQ9xY', 'k', 'items', 'd12345']] }))
console.log(
  `Node ${process.version}, redis-server ${redis.version}; ${WRITES_PER_SECOND} writes/s for ${SECONDS} s, one key each; a key invalidation message is ~${messageBytes} bytes of JSON.\n`,
)
console.log(
  `| subscribers | writes | messages delivered | per write | Redis CPU per write | Redis CPU (share of one core) | delivery p50 (ms) | delivery p99 (ms) | messages for a burst of ${BURST} writes in one tick |`,
)
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
for (const r of rows) {
  console.log(
    `| ${r.subscribers} | ${r.writes} | ${r.delivered} | ${r.perWrite.toFixed(2)} | ${r.redisCpuUsPerWrite.toFixed(1)} µs | ${(r.redisCpuShare * 100).toFixed(1)} % | ${r.delayP50.toFixed(2)} | ${r.delayP99.toFixed(2)} | ${r.burstMessages} |`,
  )
}
// What one more subscriber costs Redis per message: the slope between the first and the last row.
const first = rows[0]
const last = rows.at(-1)
const slopeUs = ((last.redisCpuSeconds - first.redisCpuSeconds) * 1e6) / (last.delivered - first.delivered)
console.log(`\nMarginal Redis CPU per delivered message (rows ${first.subscribers} → ${last.subscribers} subscribers): ${slopeUs.toFixed(1)} µs.`)
