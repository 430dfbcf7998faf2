// The L2-hit and miss figures of one checkout's build, to compare builds (before/after an optimisation):
//
//   git worktree add /tmp/before <commit> && (cd /tmp/before && pnpm install && pnpm build)
//   node bench/compare-builds.mjs /tmp/before redis://127.0.0.1:<port>
//   node bench/compare-builds.mjs "$PWD" redis://127.0.0.1:<port>
//
// Alternate the two a few times on one redis-server (FLUSHALL between runs); the
// figures move by 10-20 % between runs on a 2-core machine.
const [root, url] = process.argv.slice(2)
const { createCache } = await import(`${root}/packages/core/dist/index.js`)
const { redisTier } = await import(`${root}/packages/redis-adapter/dist/index.js`)
const prefix = `ba${Date.now()}`
const cache = createCache({ name: 'ba', tiers: [redisTier({ redis: url, prefix })], ttl: '1h', invalidation: { notes: 'benchmark' } })
const value = (i) => ({
  id: i,
  name: `user ${i}`,
  email: `user${i}@example.com`,
  roles: ['reader', 'writer'],
  plan: 'pro',
  createdAt: 1_700_000_000_000 + i,
  settings: { theme: 'dark', locale: 'en-GB', notifications: true },
  bio: 'Writes about caches.',
})
for (let i = 0; i < 1024; i++) await cache.set(String(i), value(i))
const fail = async () => {
  throw new Error('factory')
}
const out = {}
// lone caller
for (let i = 0; i < 3000; i++) await cache.getOrSet(String(i % 1024), fail)
let t = performance.now()
const N = 10000
for (let i = 0; i < N; i++) await cache.getOrSet(String(i % 1024), fail)
out.l2HitUs = ((performance.now() - t) / N) * 1000
// 64 callers
let ops = 0,
  running = true
t = performance.now()
setTimeout(() => (running = false), 2000)
await Promise.all(
  Array.from({ length: 64 }, async (_, k) => {
    for (let i = k; running; i += 64) {
      await cache.getOrSet(String(i % 1024), fail)
      ops++
    }
  }),
)
out.l2Hit64OpsPerSec = ops / ((performance.now() - t) / 1000)
// miss with a one-setImmediate factory
const factory = (i) => async () => {
  await new Promise((r) => setImmediate(r))
  return value(i)
}
for (let i = 0; i < 300; i++) await cache.getOrSet(`w${i}`, factory(i))
t = performance.now()
for (let i = 0; i < 3000; i++) await cache.getOrSet(`m${i}`, factory(i))
out.missUs = ((performance.now() - t) / 3000) * 1000
await cache.close()
console.log(JSON.stringify(out))
