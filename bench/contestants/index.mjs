// The caches a user would pick instead of tiercache, each configured the way
// its documentation shows for "memory in front of Redis, kept in sync across
// instances", behind the one interface the bench scenarios drive:
//
//   { name, version, getOrSet(key, factory), get(key), set(key, value), close() }
//
// `layers` picks the shape: 'l1+l2' (memory + Redis + the library's sync, if
// it has one), 'l2' (Redis only: every read is an L2 hit), 'l1' (memory only).
// Every library keeps its defaults otherwise (BentoCache serializes its L1
// entries by default; that is what its users get). cacheable's and
// cache-manager's memory store is `createKeyv({ ttl, lruSize })` from
// cacheable: the store cacheable creates when given none, bounded as
// cache-manager's README shows. It turns Keyv's serializer off, so the store
// holds the objects; a `new Keyv({ store: new KeyvCacheableMemory() })` would
// keep each entry as the string @keyv/serialize builds by concatenation,
// about 2,100 B per entry of this bench's value until a get() flattens it.
// BENCH_CACHEABLE_STORE=keyv-serialized builds that older setup (the one runs
// before issue 23 used), to compare.
import { readFileSync } from 'node:fs'
import KeyvRedis from '@keyv/redis'
import { RedisMessageProvider } from '@qified/redis'
import { BentoCache, bentostore } from 'bentocache'
import { memoryDriver } from 'bentocache/drivers/memory'
import { redisBusDriver, redisDriver } from 'bentocache/drivers/redis'
import { createCache as createCacheManager } from 'cache-manager'
import { Cacheable, KeyvCacheableMemory, createKeyv } from 'cacheable'
import { Keyv } from 'keyv'

// Read from this package's own node_modules: not every library exports its package.json.
const versionOf = (name) => JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, import.meta.url), 'utf8')).version

const TTL_MS = 3_600_000
const L1_ITEMS = 200_000

/** cacheable's memory store: its default (serializer off), or with BENCH_CACHEABLE_STORE=keyv-serialized the pre-issue-23 setup. */
function createCacheableMemory(options) {
  if (process.env.BENCH_CACHEABLE_STORE === 'keyv-serialized') return new Keyv({ store: new KeyvCacheableMemory(options) })
  return createKeyv(options)
}

function redisAddress(url) {
  const { hostname, port } = new URL(url)
  return { host: hostname, port: Number(port) }
}

export const OTHER_CONTESTANTS = ['bentocache', 'cacheable', 'cache-manager']

/** @returns {Promise<{name: string, version: string, getOrSet: Function, get: Function, set: Function, close: Function}>} */
export async function createOtherContestant(name, { redisUrl, layers = 'l1+l2', prefix = 'bench' }) {
  switch (name) {
    case 'bentocache':
      return bento(redisUrl, layers, prefix)
    case 'cacheable':
      return cacheable(redisUrl, layers, prefix)
    case 'cache-manager':
      return cacheManager(redisUrl, layers, prefix)
    default:
      throw new Error(`unknown contestant ${name}`)
  }
}

function bento(redisUrl, layers, prefix) {
  let store = bentostore()
  if (layers !== 'l2') store = store.useL1Layer(memoryDriver({ maxItems: L1_ITEMS }))
  if (layers !== 'l1') store = store.useL2Layer(redisDriver({ connection: redisAddress(redisUrl) }))
  if (layers === 'l1+l2') store = store.useBus(redisBusDriver({ connection: redisAddress(redisUrl) }))
  const cache = new BentoCache({ default: 'bench', prefix, ttl: TTL_MS, stores: { bench: store } })
  return {
    name: 'bentocache',
    version: versionOf('bentocache'),
    getOrSet: (key, factory) => cache.getOrSet({ key, factory }),
    get: (key) => cache.get({ key }),
    set: (key, value) => cache.set({ key, value }),
    close: () => cache.disconnect(),
  }
}

function cacheable(redisUrl, layers, prefix) {
  const redis = () => new Keyv({ store: new KeyvRedis(redisUrl), namespace: prefix })
  const options = { ttl: TTL_MS, namespace: prefix }
  if (layers === 'l2') options.primary = redis()
  else options.primary = createCacheableMemory({ lruSize: L1_ITEMS, ttl: TTL_MS })
  if (layers === 'l1+l2') {
    options.secondary = redis()
    // Cacheable's own cross-instance sync (qified over Redis pub/sub): it sends the value itself.
    options.sync = { qified: new RedisMessageProvider({ uri: redisUrl }), namespace: prefix }
  }
  const cache = new Cacheable(options)
  return {
    name: 'cacheable',
    version: versionOf('cacheable'),
    getOrSet: (key, factory) => cache.getOrSet(key, factory),
    get: (key) => cache.get(key),
    set: (key, value) => cache.set(key, value),
    close: async () => {
      await cache.sync?.qified?.disconnect?.()
      await cache.disconnect()
    },
  }
}

function cacheManager(redisUrl, layers, prefix) {
  const stores = []
  if (layers !== 'l2') stores.push(createCacheableMemory({ lruSize: L1_ITEMS, ttl: TTL_MS }))
  if (layers !== 'l1') stores.push(new Keyv({ store: new KeyvRedis(redisUrl), namespace: prefix }))
  // cache-manager has no cross-instance invalidation: an instance's memory store keeps a value until its TTL.
  const cache = createCacheManager({ stores, ttl: TTL_MS })
  return {
    name: 'cache-manager',
    version: versionOf('cache-manager'),
    getOrSet: (key, factory) => cache.wrap(key, factory),
    get: (key) => cache.get(key),
    set: (key, value) => cache.set(key, value),
    close: () => cache.disconnect(),
  }
}
