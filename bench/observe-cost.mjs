// What observe mode costs a request, measured in one run (issue 20):
//
//   pnpm build && node bench/observe-cost.mjs
//
// Each subject answers an awaited call whose "factory" is an async function
// returning a ready value (no I/O), so what remains is the wrapper's own cost:
// - no cache: `await factory()`;
// - observe, L1+L2: `getOrSet` on a `mode: 'observe'` cache with a
//   memoryTier (10,000 entries) and the in-process memoryStore, over 20,000
//   keys drawn from a skewed distribution (ghost hits and misses, LRU moves,
//   the hot-key sketch, L2's ghost on L1 misses);
// - observe, L1 only: the same without L2.
// ROUNDS rounds in rotating order, CALLS calls each; medians. The difference
// to "no cache" is observe mode's cost per request.
import { memoryStore, memoryTier } from '@tiercache/memory-adapter'
import { measureRotating } from './lib/rotate.mjs'

const ROUNDS = 5
const CALLS = 200_000
const KEYS = 20_000
const root = new URL('..', import.meta.url).pathname
const { createCache } = await import(`${root}packages/core/dist/index.js`)

const value = { id: 1, name: 'user 1' }
const factory = async () => value
const observing = (name, tiers) => createCache({ name, tiers, ttl: '1h', mode: 'observe', invalidation: { ttlOnly: true } })
const twoTier = observing('observe-l1-l2', [memoryTier({ maxEntries: 10_000 }), memoryStore()])
const oneTier = observing('observe-l1', [memoryTier({ maxEntries: 10_000 })])

let seed = 1
const keys = Array.from({ length: 1 << 16 }, () => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31
  return `user:${Math.floor(KEYS * (seed / 2 ** 31) ** 2)}`
})
let n = 0
const nextKey = () => keys[n++ & 0xffff]

const subjects = [
  ['no cache (await factory())', () => factory()],
  ['observe, L1+L2', () => twoTier.getOrSet(nextKey(), factory)],
  ['observe, L1 only', () => oneTier.getOrSet(nextKey(), factory)],
]
const medians = await measureRotating(subjects, { rounds: ROUNDS, calls: CALLS, warmup: 20_000 })
const median = (name) => medians.get(name)
const base = median(subjects[0][0])
console.log(`Observe mode's cost per request, median of ${ROUNDS} rounds x ${CALLS.toLocaleString('en')} calls:`)
for (const [name] of subjects) {
  const ns = median(name)
  console.log(`  ${name}: ${ns.toFixed(0)} ns${name === subjects[0][0] ? '' : `  (+${(ns - base).toFixed(0)} ns over no cache)`}`)
}
const stats = twoTier.stats()
console.log(
  `  (L1+L2 ghosts: predicted L1 hit rate ${(stats.predictedHitRate * 100).toFixed(1)} %, L2 ${(stats.predictedL2HitRate * 100).toFixed(1)} % of L1 misses)`,
)
await Promise.all([twoTier.close(), oneTier.close()])
