// tiercache plus the other contestants behind one interface (see
// @tiercache/bench-contestants for theirs). tiercache runs with its defaults:
// stats on, policy defaults, msgpack, a Redis bus.
import { createRequire } from 'node:module'
import { createCache } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier } from '@tiercache/redis-adapter'
import { OTHER_CONTESTANTS, createOtherContestant } from '@tiercache/bench-contestants'

const require = createRequire(import.meta.url)

const ALL = ['tiercache', ...OTHER_CONTESTANTS]
/** Every contestant, or those named in BENCH_CONTESTANTS (comma-separated) while working on one of them. */
export const CONTESTANTS = process.env.BENCH_CONTESTANTS ? process.env.BENCH_CONTESTANTS.split(',').filter((n) => ALL.includes(n)) : ALL

export async function createContestant(name, options) {
  if (name === 'tiercache') return tiercache(options)
  return createOtherContestant(name, options)
}

async function tiercache({ redisUrl, layers = 'l1+l2', prefix = 'bench' }) {
  const tiers = []
  if (layers !== 'l2') tiers.push(memoryTier({ maxEntries: 200_000 }))
  if (layers !== 'l1') tiers.push(redisTier({ redis: redisUrl, prefix }))
  const bus = layers === 'l1+l2' ? redisBus({ redis: redisUrl, prefix }) : undefined
  const cache = createCache({ name: 'bench', tiers, bus, ttl: '1h', invalidation: { notes: 'benchmark' } })
  if (bus) await bus.ready()
  return {
    name: 'tiercache',
    version: require('@tiercache/core/package.json').version,
    cache,
    getOrSet: (key, factory) => cache.getOrSet(key, factory),
    get: (key) => cache.get(key),
    set: (key, value) => cache.set(key, value),
    close: async () => {
      await cache.close()
      await bus?.close()
    },
  }
}
