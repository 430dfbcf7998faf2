// An L1 hit's cost against the age of the entry (issue 23: scenario 1's
// figure depended on when it was taken). One tiercache, as the bench builds
// it, reads one key in slices of 100,000 awaited getOrSet calls for 4 s and
// prints each slice's ns per call with the time since the key was written.
//
//   node bench/l1-age.mjs            # memory + Redis + the Redis bus (scenario 1's setup)
//   node bench/l1-age.mjs l1         # memory only
//   node bench/l1-age.mjs --no-yield # never yield to I/O: the bus's liveness lapses after 1 s
import { createContestant } from './lib/contestants.mjs'
import { startRedis } from './lib/redis.mjs'
import { sampleValue } from './lib/value.mjs'

const layers = process.argv.slice(2).find((a) => !a.startsWith('--')) ?? 'l1+l2'
const redis = await startRedis()
try {
  const cache = await createContestant('tiercache', { redisUrl: redis.url, layers, prefix: 'l1-age' })
  const value = sampleValue()
  const factory = async () => value
  await cache.set('k', value)
  const written = performance.now()
  const slices = []
  while (performance.now() - written < 4000) {
    const at = performance.now() - written
    const started = process.hrtime.bigint()
    for (let i = 0; i < 100_000; i++) await cache.getOrSet('k', factory)
    slices.push(`${(at / 1000).toFixed(2)} s: ${(Number(process.hrtime.bigint() - started) / 100_000).toFixed(0)} ns`)
    // A service yields to I/O between requests; without this the bus could
    // never read its liveness replies, L1 would lose trust after maxStaleness
    // and the slices would time the outage-reuse path, not the L1 hit.
    if (!process.argv.includes('--no-yield')) await new Promise((resolve) => setImmediate(resolve))
  }
  console.log(`${layers}, age of the entry at the slice's start: ns per L1 hit\n${slices.join('\n')}`)
  await cache.close()
} finally {
  await redis.stop()
}
