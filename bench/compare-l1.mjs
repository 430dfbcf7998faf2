// The L1 hit path and the heap per L1 entry of two builds, measured in one
// run so that machine load moves both alike (issue budgets: L1 hit getOrSet
// within 2x an awaited async lru-cache get; heap per entry within 1.3x
// lru-cache's):
//
//   git worktree add /tmp/before <commit> && (cd /tmp/before && pnpm install && pnpm build)
//   node --expose-gc bench/compare-l1.mjs /tmp/before "$PWD"
//
// L1 hit: ROUNDS rounds, the builds and the lru-cache baseline in rotating
// order, 1M awaited getOrSet calls each; the median of the rounds is shown.
// Heap: 100k entries of a ~200-byte object in a memoryTier-only cache, each
// build in a fresh child process with --expose-gc.
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { LRUCache } from 'lru-cache'

const ROUNDS = 7
const CALLS = 1_000_000
const ENTRIES = 100_000
const value = (i) => ({ id: i, name: `user ${i}`, email: `user${i}@example.com`, roles: ['reader'], plan: 'pro', createdAt: 1_700_000_000_000 + i })

async function gcSettle() {
  for (let i = 0; i < 4; i++) {
    global.gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
}

async function heapPerEntry(root) {
  const { createCache } = await import(`${root}/packages/core/dist/index.js`)
  const { memoryTier } = await import(`${root}/packages/memory-adapter/dist/index.js`)
  const cache = createCache({ name: 'mem', tiers: [memoryTier({ maxEntries: 200_000 })], ttl: '1h', invalidation: { ttlOnly: true } })
  await cache.set('warm', value(0))
  await gcSettle()
  const before = process.memoryUsage().heapUsed
  for (let i = 0; i < ENTRIES; i++) await cache.set(`user:${i}`, value(i))
  await gcSettle()
  const bytes = (process.memoryUsage().heapUsed - before) / ENTRIES
  globalThis.keep = cache
  return bytes
}

async function heapPerEntryLru() {
  const lru = new LRUCache({ max: 200_000 })
  lru.set('warm', value(0))
  await gcSettle()
  const before = process.memoryUsage().heapUsed
  for (let i = 0; i < ENTRIES; i++) lru.set(`user:${i}`, value(i))
  await gcSettle()
  globalThis.keep = lru
  return (process.memoryUsage().heapUsed - before) / ENTRIES
}

if (process.argv[2] === 'heap') {
  const root = process.argv[3]
  process.send(root === 'lru-cache' ? await heapPerEntryLru() : await heapPerEntry(root))
  process.disconnect()
} else {
  const roots = process.argv.slice(2)
  if (roots.length !== 2) {
    console.error('usage: node --expose-gc bench/compare-l1.mjs <before-root> <after-root>')
    process.exit(2)
  }
  const subjects = [{ name: 'lru-cache (async get)' }]
  const lru = new LRUCache({ max: 10_000 })
  lru.set('k', value(1))
  const lruGet = async (key) => lru.get(key)
  subjects[0].hit = () => lruGet('k')
  for (const root of roots) {
    const { createCache } = await import(`${root}/packages/core/dist/index.js`)
    const { memoryTier } = await import(`${root}/packages/memory-adapter/dist/index.js`)
    const cache = createCache({ name: `hit${subjects.length}`, tiers: [memoryTier()], ttl: '1h', invalidation: { ttlOnly: true } })
    await cache.set('k', value(1))
    const factory = async () => value(1)
    subjects.push({ name: root, hit: () => cache.getOrSet('k', factory) })
  }
  const samples = new Map(subjects.map((s) => [s.name, []]))
  for (let round = 0; round < ROUNDS; round++) {
    const order = subjects.map((_, i) => subjects[(i + round) % subjects.length])
    for (const subject of order) {
      for (let i = 0; i < 100_000; i++) await subject.hit() // warm-up
      const started = process.hrtime.bigint()
      for (let i = 0; i < CALLS; i++) await subject.hit()
      samples.get(subject.name).push(Number(process.hrtime.bigint() - started) / CALLS)
    }
  }
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
  const heaps = {}
  for (const root of ['lru-cache', ...roots]) {
    const child = fork(fileURLToPath(import.meta.url), ['heap', root], { execArgv: ['--expose-gc'] })
    heaps[root] = await new Promise((resolve, reject) => {
      child.once('message', resolve)
      child.once('error', reject)
    })
  }
  const base = median(samples.get(subjects[0].name))
  console.log(`L1 hit, awaited, median of ${ROUNDS} rounds x ${CALLS} calls:`)
  for (const subject of subjects) {
    const ns = median(samples.get(subject.name))
    console.log(`  ${subject.name}: ${ns.toFixed(1)} ns  (${(ns / base).toFixed(2)}x the async lru-cache get)`)
  }
  console.log(`Heap per L1 entry, ${ENTRIES} entries of a ~200-byte object (object included):`)
  for (const [root, bytes] of Object.entries(heaps)) {
    console.log(`  ${root}: ${bytes.toFixed(0)} B  (${(bytes / heaps['lru-cache']).toFixed(2)}x lru-cache)`)
  }
}
