// The contestants of the outage scenario. tiercache and bentocache are built
// exactly as in every other scenario (bench/lib/contestants.mjs,
// bench/contestants/index.mjs). cacheable is built here, twice:
// - 'cacheable': the configuration of bench/contestants/index.mjs (memory
//   primary from cacheable's `createKeyv`, `new KeyvRedis(url)` secondary,
//   qified Redis sync), unchanged;
// - 'cacheable-nonblocking': what cacheable's README asks for when Redis may
//   fail ("Non-Blocking with @keyv/redis": the default @keyv/redis client
//   "causes hangs and blocking"): createKeyvNonBlocking (no offline queue, no
//   reconnect strategy, no throw on connect errors) and `nonBlocking: true`.
// Both get one thing more than their docs show: an 'error' listener on the sync
// provider's two node-redis clients. @qified/redis creates them without one, so
// the first lost connection is an unhandled 'error' event that ends the process
// (it did, in the first run of this scenario); any user would add them after
// that, and without them there is nothing to measure.
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { createContestant } from './contestants.mjs'

export const OUTAGE_CONTESTANTS = ['tiercache', 'bentocache', 'cacheable', 'cacheable-nonblocking']

const TTL_MS = 3_600_000
const L1_ITEMS = 200_000

/** The contestants to run: all four, or those named in BENCH_CONTESTANTS (comma-separated). */
export function outageContestants() {
  if (!process.env.BENCH_CONTESTANTS) return OUTAGE_CONTESTANTS
  return process.env.BENCH_CONTESTANTS.split(',').filter((name) => OUTAGE_CONTESTANTS.includes(name))
}

export async function createOutageContestant(name, options) {
  if (name === 'cacheable' || name === 'cacheable-nonblocking') return cacheable(options, name === 'cacheable-nonblocking')
  return createContestant(name, options)
}

function cacheable({ redisUrl, prefix }, nonBlocking) {
  // These libraries are dependencies of @tiercache/bench-contestants only (pnpm keeps
  // them out of bench/node_modules): load them from there, all as CommonJS so that
  // Keyv instances are recognised across the packages.
  const require = createRequire(new URL('../contestants/index.mjs', import.meta.url))
  const { Cacheable, createKeyv: createCacheableMemory } = require('cacheable')
  const { default: KeyvRedis, createKeyvNonBlocking } = require('@keyv/redis')
  const { Keyv } = require('keyv')
  const { RedisMessageProvider } = require('@qified/redis')
  const version = JSON.parse(readFileSync(new URL('../contestants/node_modules/cacheable/package.json', import.meta.url), 'utf8')).version
  const provider = new RedisMessageProvider({ uri: redisUrl })
  for (const client of [provider.pub, provider.sub]) client.on('error', () => {})
  const options = {
    ttl: TTL_MS,
    namespace: prefix,
    primary: createCacheableMemory({ lruSize: L1_ITEMS, ttl: TTL_MS }),
    sync: { qified: provider, namespace: prefix },
  }
  if (nonBlocking) {
    options.secondary = createKeyvNonBlocking(redisUrl, { namespace: prefix })
    options.nonBlocking = true
  } else options.secondary = new Keyv({ store: new KeyvRedis(redisUrl), namespace: prefix })
  const cache = new Cacheable(options)
  return {
    name: nonBlocking ? 'cacheable-nonblocking' : 'cacheable',
    version,
    getOrSet: (key, factory) => cache.getOrSet(key, factory),
    get: (key) => cache.get(key),
    set: (key, value) => cache.set(key, value),
    close: async () => {
      await cache.sync?.qified?.disconnect?.()
      await cache.disconnect()
    },
  }
}
