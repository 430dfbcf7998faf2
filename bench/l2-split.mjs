// Where the lone L2 hit's extra time goes, layer by layer (issue 23): the
// same interleaved one-caller measurement as `l2-lone.mjs`, on its own
// redis-server, of five subjects that each add one layer to the one before:
//
//   GET + decode        ioredis getBuffer, then msgpackr unpack (the baseline)
//   MGET + decode       the same with MGET of the entry and a second key, as tiercache reads
//   tier readForFill    tiercache's Redis tier alone (batching, deadline, header check, decode)
//   core, instant tier  getOrSet over a tier whose read resolves at once: core's cost with no I/O
//   getOrSet            the whole thing, over the Redis tier
//
// p50 per call of each, and the differences between neighbours. Core's cost
// appears twice on purpose: once with no I/O (its code alone) and once after
// a real round trip (the same code, run after the process waited for a reply).
//
//   node bench/l2-split.mjs
import os from 'node:os'
import { Redis } from 'ioredis'
import { Packr } from 'msgpackr'
import { createCache } from '@tiercache/core'
import { redisTier } from '@tiercache/redis-adapter'
import { latencyInterleaved } from './lib/interleave.mjs'
import { startRedis } from './lib/redis.mjs'
import { sampleValue } from './lib/value.mjs'

const KEYS = 1024
const redis = await startRedis()
try {
  const packr = new Packr({ moreTypes: true })
  const plain = new Redis(redis.url)
  for (let i = 0; i < KEYS; i++) await plain.set(`raw:${i}`, packr.pack(sampleValue(i)))

  // The Redis tier as the cache binds it, kept so that its read can be called on its own.
  const spec = redisTier({ redis: redis.url, prefix: 'split' })
  let bound
  const capturing = { ...spec, bind: (scope) => (bound = spec.bind(scope)) }
  const cache = createCache({ name: 'split', tiers: [capturing], ttl: '1h', invalidation: { notes: 'benchmark' } })
  for (let i = 0; i < KEYS; i++) await cache.set(String(i), sampleValue(i))

  // A tier that answers every read at once with an entry read from Redis up front.
  const entries = []
  for (let i = 0; i < KEYS; i++) entries.push((await bound.readForFill(String(i), 5_000, 0)).entry)
  const instantSpec = {
    ...spec,
    bind: (scope) => {
      const real = spec.bind(scope)
      return new Proxy(real, {
        get: (target, name) => {
          if (name === 'readForFill') return (key) => Promise.resolve({ entry: entries[Number(key)] })
          const member = target[name]
          return typeof member === 'function' ? member.bind(target) : member
        },
      })
    },
  }
  const instant = createCache({ name: 'split-instant', tiers: [instantSpec], ttl: '1h', invalidation: { notes: 'benchmark' } })

  const failIfCalled = async () => {
    throw new Error('factory called on an L2 hit')
  }
  const subjects = [
    { name: 'GET + decode', fn: async (i) => packr.unpack(await plain.getBuffer(`raw:${i}`)) },
    { name: 'MGET + decode', fn: async (i) => packr.unpack((await plain.mgetBuffer(`raw:${i}`, 'raw:generation'))[0]) },
    { name: 'tier readForFill', fn: (i) => bound.readForFill(String(i), 5_000, 0) },
    { name: 'core, instant tier', fn: (i) => instant.getOrSet(String(i), failIfCalled) },
    { name: 'getOrSet', fn: (i) => cache.getOrSet(String(i), failIfCalled) },
  ]
  const m = await latencyInterleaved(subjects, { calls: 16_000, segments: 5, warmup: 2_000, keys: KEYS })
  const us = (ns) => +(ns / 1000).toFixed(2)
  const p50 = Object.fromEntries(subjects.map(({ name }) => [name, us(m.get(name).p50)]))
  const cpu = Object.fromEntries(subjects.map(({ name }) => [name, +m.get(name).cpuUsPerCall.toFixed(1)]))
  console.log(
    JSON.stringify({
      loadAverage: os.loadavg()[0],
      p50Us: p50,
      clientCpuUsPerCall: cpu,
      addedUs: {
        mgetOverGet: +(p50['MGET + decode'] - p50['GET + decode']).toFixed(2),
        tierOverMget: +(p50['tier readForFill'] - p50['MGET + decode']).toFixed(2),
        coreAfterRoundTrip: +(p50.getOrSet - p50['tier readForFill']).toFixed(2),
        coreWithoutIo: p50['core, instant tier'],
        total: +(p50.getOrSet - p50['GET + decode']).toFixed(2),
      },
      ratio: +(p50.getOrSet / p50['GET + decode']).toFixed(3),
    }),
  )
  await instant.close()
  await cache.close()
  plain.disconnect()
} finally {
  await redis.stop()
}
