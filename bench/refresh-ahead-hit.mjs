// What refresh-ahead costs a hit, measured in one run (issue 19):
//
//   pnpm build && node bench/refresh-ahead-hit.mjs
//
// - plain: an L1 hit of a cache without refreshAhead (the inline hit path);
// - ahead, before the refresh point: the same with refreshAhead set (the
//   L1 copy is shaped, the hit path is the same inline one);
// - ahead, past the refresh point: every hit answers from the load path
//   while one refresh is in flight (held open here, so each call is such a hit).
// ROUNDS rounds in rotating order, CALLS awaited getOrSet calls each; medians.
import { LRUCache } from 'lru-cache'
import { measureRotating } from './lib/rotate.mjs'

const ROUNDS = 5
const CALLS = 500_000
const root = new URL('..', import.meta.url).pathname
const { createCache } = await import(`${root}packages/core/dist/index.js`)
const { memoryTier } = await import(`${root}packages/memory-adapter/dist/index.js`)

const value = { id: 1, name: 'user 1', email: 'user1@example.com', roles: ['reader'] }
const make = (name, extra) => createCache({ name, tiers: [memoryTier()], ttl: '1h', invalidation: { ttlOnly: true }, ...extra })

const plain = make('plain')
await plain.getOrSet('k', async () => value)
const before = make('before', { refreshAhead: 0.8 })
await before.getOrSet('k', async () => value)
// Past the refresh point almost at once (0.01 % of an hour is 360 ms), and the refresh never finishes.
const past = make('past', { refreshAhead: 0.0001 })
await past.getOrSet('k', async () => value)
await new Promise((resolve) => setTimeout(resolve, 500))
const never = () => new Promise(() => {})
await past.getOrSet('k', never)
if (past.stats().refreshAheadHits !== 1) throw new Error('the past-the-refresh-point cache is not past it')

const lru = new LRUCache({ max: 100 })
lru.set('k', value)
const lruGet = async (key) => lru.get(key)
const factory = async () => value
const subjects = [
  ['async lru-cache get', () => lruGet('k')],
  ['plain L1 hit', () => plain.getOrSet('k', factory)],
  ['refreshAhead, before the refresh point', () => before.getOrSet('k', factory)],
  ['refreshAhead, past the refresh point', () => past.getOrSet('k', never)],
]
const medians = await measureRotating(subjects, { rounds: ROUNDS, calls: CALLS, warmup: 50_000 })
const median = (name) => medians.get(name)
const base = median('async lru-cache get')
const plainNs = median('plain L1 hit')
console.log(`getOrSet hits, median of ${ROUNDS} rounds x ${CALLS} calls:`)
for (const [name] of subjects) {
  const ns = median(name)
  console.log(`  ${name}: ${ns.toFixed(1)} ns  (${(ns / base).toFixed(2)}x the async lru-cache get, ${(ns / plainNs).toFixed(2)}x the plain hit)`)
}
if (past.stats().refreshesStarted !== 1) throw new Error(`expected one refresh in flight, saw ${past.stats().refreshesStarted}`)
process.exit(0)
