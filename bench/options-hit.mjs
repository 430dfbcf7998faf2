// What checking per-call options costs an L1 hit (issue 21), two builds in one run:
//
//   git worktree add /tmp/before <commit> && (cd /tmp/before && pnpm install && pnpm build)
//   node bench/options-hit.mjs /tmp/before "$PWD"
//
// Each build: getOrSet hits on one key, awaited, with no options, with one
// options object reused ({ ttl: '5m' }), and with a new object each call
// ({ ttl: '5m', tags: [...] }, as wrap/@cached build one). ROUNDS rounds in
// rotating order, CALLS calls each; medians. Before, options were looked at
// only on a miss; after, whenever they are passed.
import { LRUCache } from 'lru-cache'
import { measureRotating } from './lib/rotate.mjs'

const ROUNDS = 5
const CALLS = 500_000
const roots = process.argv.slice(2)
if (roots.length === 0) throw new Error('usage: node bench/options-hit.mjs <build root> [<build root> …]')

const value = { id: 1, name: 'user 1' }
const factory = async () => value
const tags = ['team:1']
const reused = { ttl: '5m' }
const lru = new LRUCache({ max: 100 })
lru.set('k', value)
const subjects = [['async lru-cache get', async () => lru.get('k')]]
for (const root of roots) {
  const { createCache } = await import(`${root}/packages/core/dist/index.js`)
  const { memoryTier } = await import(`${root}/packages/memory-adapter/dist/index.js`)
  const cache = createCache({ name: 'opts', tiers: [memoryTier()], ttl: '1h', invalidation: { ttlOnly: true } })
  await cache.getOrSet('k', factory)
  subjects.push(
    [`${root}: no options`, () => cache.getOrSet('k', factory)],
    [`${root}: one options object reused`, () => cache.getOrSet('k', factory, reused)],
    [`${root}: a new options object per call`, () => cache.getOrSet('k', factory, { ttl: '5m', tags })],
  )
}
const medians = await measureRotating(subjects, { rounds: ROUNDS, calls: CALLS, warmup: 50_000 })
const median = (name) => medians.get(name)
const base = median('async lru-cache get')
console.log(`L1 hit with per-call options, median of ${ROUNDS} rounds x ${CALLS.toLocaleString('en')} awaited calls:`)
for (const [name] of subjects) {
  const ns = median(name)
  console.log(`  ${name}: ${ns.toFixed(1)} ns  (${(ns / base).toFixed(2)}x the async lru-cache get)`)
}
