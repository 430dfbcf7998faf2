// Should I cache this? Observe mode first, then the advice, then the check.
//
//   pnpm build && node demo/observe.mjs
//
// One workload, run three times on the in-process store and bus: 5,000
// requests over 2,000 user keys (skewed: a few are hot), one write per 50
// requests, a 2 ms "database". (1) mode: 'observe' with a 500-entry L1: the
// factory runs every time, nothing is cached, and the ghost predicts the L1
// hit rate. (2) The same with caching on, to compare the prediction with the
// measured L1 hit rate. (3) The advised change (a bigger L1), measured.
import { createCache } from '@tiercache/core'
import { memoryBus, memoryStore, memoryTier } from '@tiercache/memory-adapter'

const store = memoryStore()
const bus = memoryBus()
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

async function run(mode, maxEntries) {
  let seed = 42 // the same request sequence every run
  const random = () => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31
    return seed / 2 ** 31
  }
  const cache = createCache({
    name: `users-${mode}-${maxEntries}`,
    tiers: [memoryTier({ maxEntries }), store],
    bus,
    ttl: '5m',
    mode,
    invalidation: { on: ['user.updated'] },
  })
  for (let i = 0; i < 5000; i++) {
    const key = `user:${Math.floor(2000 * random() ** 3)}`
    if (i % 50 === 49) await cache.set(key, { id: key })
    else
      await cache.getOrSet(key, async () => {
        await sleep(2)
        return { id: key }
      })
  }
  const stats = cache.stats()
  const advice = cache.advise()
  await cache.close()
  const lookups = stats.l1Hits + stats.l1Misses + stats.staleServed
  return { stats, advice, l1HitRate: stats.l1Hits / lookups }
}

const pct = (rate) => `${(rate * 100).toFixed(1)} %`
const observed = await run('observe', 500)
console.log(`1. observe, L1 of 500: predicted L1 hit rate ${pct(observed.stats.predictedHitRate)}, factory calls ${observed.stats.factoryCalls}`)
console.log(`   advice: ${observed.advice.recommendation}: ${observed.advice.reason}`)
const cached = await run('normal', 500)
console.log(
  `2. caching, L1 of 500: measured L1 hit rate ${pct(cached.l1HitRate)}, factory calls ${cached.stats.factoryCalls}, L1 evictions ${cached.stats.l1Evictions}`,
)
const advised = await run('normal', 2000)
console.log(
  `3. caching, L1 of 2000: measured L1 hit rate ${pct(advised.l1HitRate)}, factory calls ${advised.stats.factoryCalls}, L1 evictions ${advised.stats.l1Evictions}`,
)
console.log(`   advice: ${advised.advice.recommendation}: ${advised.advice.reason}`)
