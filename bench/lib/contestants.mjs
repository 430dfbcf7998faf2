// tiercache plus the other contestants behind one interface (see
// @tiercache/bench-contestants for theirs). tiercache runs with its defaults:
// stats on, policy defaults, msgpack, a Redis bus.
//
// 'tiercache-carry' is tiercache whose bus carries small values
// (redisBus carryValues, docs/coherence.md "Carrying values on the bus"). It
// only changes what crosses the bus, so only the propagation scenario runs it
// (selectContestants with it in the list); CONTESTANTS, the default list of
// the other scenarios, leaves it out.
import { createRequire } from 'node:module'
import { createCache } from '@tiercache/core'
import { memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier } from '@tiercache/redis-adapter'
import { OTHER_CONTESTANTS, createOtherContestant } from '@tiercache/bench-contestants'

const require = createRequire(import.meta.url)

export const TIERCACHE_CARRY = 'tiercache-carry'
const ALL = ['tiercache', ...OTHER_CONTESTANTS]

/** `names`, or those of them named in BENCH_CONTESTANTS (comma-separated, in that order) while working on one of them. */
export function selectContestants(names) {
  if (!process.env.BENCH_CONTESTANTS) return names
  return process.env.BENCH_CONTESTANTS.split(',').filter((n) => names.includes(n))
}

/** Every contestant, or those named in BENCH_CONTESTANTS. */
export const CONTESTANTS = selectContestants(ALL)

/** How a table names a contestant. */
export const labelOf = (name) => (name === TIERCACHE_CARRY ? 'tiercache (carryValues)' : name)

/** `options.carryValues: true` turns carrying on for 'tiercache' too. */
export async function createContestant(name, options) {
  if (name === 'tiercache') return tiercache(options)
  if (name === TIERCACHE_CARRY) return tiercache({ ...options, carryValues: true })
  return createOtherContestant(name, options)
}

async function tiercache({ redisUrl, layers = 'l1+l2', prefix = 'bench', carryValues = false }) {
  const tiers = []
  if (layers !== 'l2') tiers.push(memoryTier({ maxEntries: 200_000 }))
  if (layers !== 'l1') tiers.push(redisTier({ redis: redisUrl, prefix }))
  // channelProtected: the bench's redis-server is its own, nothing else can PUBLISH on it (a secret would add an HMAC per message).
  const bus = layers === 'l1+l2' ? redisBus({ redis: redisUrl, prefix, ...(carryValues ? { carryValues: { channelProtected: true } } : {}) }) : undefined
  const cache = createCache({ name: 'bench', tiers, bus, ttl: '1h', invalidation: { notes: 'benchmark' } })
  if (bus) await bus.ready()
  return {
    name: carryValues ? labelOf(TIERCACHE_CARRY) : 'tiercache',
    version: require('@tiercache/core/package.json').version,
    cache,
    bus,
    getOrSet: (key, factory) => cache.getOrSet(key, factory),
    get: (key) => cache.get(key),
    set: (key, value) => cache.set(key, value),
    /** What this instance did besides answering from L1: L2 reads, and values its bus put into L1. */
    counters: () => {
      const s = cache.stats()
      return { l2Hits: s.l2Hits, l1Misses: s.l1Misses, invalidationsReceived: s.invalidationsReceived, carried: bus?.status().carriedValues ?? null }
    },
    close: async () => {
      await cache.close()
      await bus?.close()
    },
  }
}
