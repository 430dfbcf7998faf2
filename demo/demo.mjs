// tiercache demo: three instances of one service share a cache.
//
//   node demo/demo.mjs                               in-process store and bus (no Redis needed)
//   REDIS_URL=redis://127.0.0.1:6379 node demo/demo.mjs   real Redis L2 and pub/sub bus
//
// Each "instance" has its own L1 (memoryTier) and its own bus connection, as
// three processes would; they share the L2. The script narrates what happens
// and exits non-zero if anything it shows does not hold.
import { createCache } from '@tiercache/core'
import { memoryBus, memoryStore, memoryTier } from '@tiercache/memory-adapter'
import { redisBus, redisTier } from '@tiercache/redis-adapter'
import { PARAMETERS as PROFILE_PARAMETERS, profileDemo } from './profile.mjs'

const redisUrl = process.env.REDIS_URL
const prefix = 'tiercache-demo' // keeps the demo's keys apart from anything else on that Redis
/** Every cache declares how its data becomes invalid (describe() shows it). */
const invalidation = { on: ['user.updated'], notes: 'writers call set/delete; the bus drops every L1 copy' }

function makeInstances() {
  if (redisUrl === undefined || redisUrl === '') {
    const store = memoryStore()
    const bus = memoryBus()
    return {
      mode: 'in-process store and bus (set REDIS_URL to use Redis)',
      buses: [bus],
      instances: ['A', 'B', 'C'].map((id) => ({
        id,
        cache: createCache({ name: 'users', tiers: [memoryTier({ maxEntries: 1_000 }), store], bus, ttl: '5m', invalidation }),
      })),
    }
  }
  const buses = []
  const instances = ['A', 'B', 'C'].map((id) => {
    const bus = redisBus({ redis: redisUrl, prefix })
    buses.push(bus)
    return {
      id,
      bus,
      cache: createCache({ name: 'users', tiers: [memoryTier({ maxEntries: 1_000 }), redisTier({ redis: redisUrl, prefix })], bus, ttl: '5m', invalidation }),
    }
  })
  return { mode: `Redis at ${redisUrl} (prefix "${prefix}")`, buses, instances }
}

const { mode, buses, instances } = makeInstances()
const [a, b, c] = instances
let failures = 0
const check = (ok, what) => {
  console.log(`  ${ok ? '✔' : '✘'} ${what}`)
  if (!ok) failures++
}
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const received = () => instances.map((instance) => instance.bus?.status().messagesReceived ?? 0)
/**
 * A write resolves once Redis took its invalidation; reaching the other
 * instances is one more pub/sub hop (in-process delivery is synchronous).
 * Wait for that hop, however long a loaded machine makes it (up to 2 s).
 */
async function delivered(writer, before) {
  const deadline = Date.now() + 2_000
  const waiting = () =>
    instances.some((instance, i) => instance !== writer && instance.bus !== undefined && instance.bus.status().messagesReceived <= before[i])
  while (waiting() && Date.now() < deadline) await sleep(1)
}
const ms = (start) => `${(performance.now() - start).toFixed(2)} ms`

let databaseQueries = 0
/** A slow database lookup: 35 ms, the kind of work worth caching. */
async function loadUser(id) {
  databaseQueries++
  await sleep(35)
  return { id, name: `user ${id}`, plan: 'free', loadedAt: new Date() }
}

console.log(`tiercache demo — three instances, ${mode}\n`)
await Promise.all(buses.map((bus) => bus.ready?.()))

console.log('1. Read-through: the first read runs the factory, the others hit L2, then L1')
let start = performance.now()
const first = await a.cache.getOrSet('user:42', () => loadUser(42))
console.log(`  A: miss → factory → ${ms(start)}`)
start = performance.now()
await b.cache.getOrSet('user:42', () => loadUser(42))
console.log(`  B: L2 hit → ${ms(start)}`)
start = performance.now()
await c.cache.getOrSet('user:42', () => loadUser(42))
console.log(`  C: L2 hit → ${ms(start)}`)
const hits = 100_000
start = performance.now()
for (let i = 0; i < hits; i++) await b.cache.getOrSet('user:42', () => loadUser(42))
const nsPerHit = ((performance.now() - start) * 1e6) / hits
console.log(`  B: ${hits.toLocaleString('en')} L1 hits → ${nsPerHit.toFixed(0)} ns each`)
check(databaseQueries === 1, `the database was queried once (${databaseQueries})`)
check(first.loadedAt instanceof Date, 'a Date survives the round trip through L2')

console.log('\n2. Coherence: A writes; the bus tells B and C to drop their L1 copies')
let before = received()
await a.cache.set('user:42', { ...first, plan: 'pro' })
await delivered(a, before)
const seenByB = await b.cache.get('user:42')
const seenByC = await c.cache.get('user:42')
check(seenByB?.plan === 'pro' && seenByC?.plan === 'pro', `B and C read plan "${seenByB?.plan}" / "${seenByC?.plan}"`)

console.log('\n3. Delete and clear reach every instance')
before = received()
await c.cache.delete('user:42')
await delivered(c, before)
check((await a.cache.get('user:42')) === undefined, 'after C deletes user:42, A has no copy')
await a.cache.set('user:1', { id: 1 })
await b.cache.get('user:1')
before = received()
await b.cache.clear()
await delivered(b, before)
check((await a.cache.get('user:1')) === undefined, 'after B clears the cache, A has no copy')

console.log('\n4. Stampede: 500 concurrent reads of one cold key run the factory once')
databaseQueries = 0
await Promise.all(Array.from({ length: 500 }, () => a.cache.getOrSet('user:7', () => loadUser(7))))
check(databaseQueries === 1, `factory runs: ${databaseQueries}`)

console.log('\n5. Negative caching: a missing row is cached too (shorter TTL)')
let missingLookups = 0
const findMissing = async () => {
  missingLookups++
  return null
}
await a.cache.getOrSet('user:404', findMissing, { negativeTtl: '10s' })
await a.cache.getOrSet('user:404', findMissing, { negativeTtl: '10s' })
await b.cache.getOrSet('user:404', findMissing, { negativeTtl: '10s' })
check(missingLookups === 1, `lookups for the missing row: ${missingLookups}`)

console.log('\n6. Every cache documents its keys, TTLs, tiers and invalidation plan (describe())')
console.log(
  a.cache
    .describe()
    .markdown.split('\n')
    .map((line) => `  ${line}`)
    .join('\n'),
)

await Promise.all(instances.map(({ cache }) => cache.clear()))
await Promise.all(instances.map(({ cache }) => cache.close()))
await Promise.all(buses.map((bus) => bus.close()))

console.log('\n7. Profile first, cache second: one service, five setups (node demo/profile.mjs --runs 5 repeats it)')
const reportPath = new URL('./report.html', import.meta.url).pathname
const profile = await profileDemo({ redisUrl, reportPath })
const p = PROFILE_PARAMETERS
console.log(
  `  ${profile.mode}; ${p.requests} requests on ${p.instances} instances, each 3 × ${p.queryMs} ms queries then ${p.permissionsMs} ms permissions, with updates\n`,
)
console.log(
  profile.tables
    .split('\n')
    .map((line) => (line === '' ? line : `  ${line}`))
    .join('\n'),
)
console.log('')
for (const { ok, what } of profile.checks) check(ok, what)
console.log(`\n  Report with charts: ${reportPath}`)

console.log(failures === 0 ? '\ndemo ok' : `\ndemo FAILED: ${failures} check(s)`)
process.exitCode = failures === 0 ? 0 : 1
