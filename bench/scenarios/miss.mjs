// Scenario 3 — Miss with a factory: getOrSet of a key no tier holds, so the
// factory runs and its value is written to L2 (and announced on the bus).
// The factory waits one setImmediate (a fast async data source); its own
// time is measured in the same rounds, and the table shows what the cache
// adds on top of it.
import { CONTESTANTS, createContestant } from '../lib/contestants.mjs'
import { quantile, summarize } from '../lib/stats.mjs'
import { sampleValue } from '../lib/value.mjs'
import { asEntryPoint } from '../lib/standalone.mjs'

export const id = 'miss'
export const title = 'Scenario 3 — Miss with a factory: getOrSet of a new key (L1 + L2 + sync), one caller'

const us = (ms) => `${(ms * 1000).toFixed(1)} µs`
const nextTurn = () => new Promise((resolve) => setImmediate(resolve))

/** p50 and p99 (ms) of `count` sequential awaited calls of fn(i). */
async function latencies(count, offset, fn) {
  const samples = new Float64Array(count)
  for (let i = 0; i < count; i++) {
    const start = performance.now()
    await fn(offset + i)
    samples[i] = performance.now() - start
  }
  samples.sort()
  return { p50: quantile(samples, 0.5), p99: quantile(samples, 0.99) }
}

export async function run({ redisUrl, smoke }) {
  const rounds = smoke ? 1 : 5
  const perRound = smoke ? 50 : 2_000
  const factory = (i) => async () => {
    await nextTurn()
    return sampleValue(i)
  }
  const contestants = []
  for (const name of CONTESTANTS) contestants.push(await createContestant(name, { redisUrl, layers: 'l1+l2', prefix: `${id}-${name}` }))
  // Warm-up: scripts loaded, connections ready, JIT settled.
  for (const c of contestants) for (let i = 0; i < 200; i++) await c.getOrSet(`warm-${i}`, factory(i))

  const own = []
  const byName = new Map(contestants.map((c) => [c.name, { p50: [], p99: [] }]))
  for (let round = 0; round < rounds; round++) {
    own.push((await latencies(perRound, 0, (i) => factory(i)())).p50)
    for (let k = 0; k < contestants.length; k++) {
      const c = contestants[(k + round) % contestants.length]
      const { p50, p99 } = await latencies(perRound, round * perRound, (i) => c.getOrSet(`key-${i}`, factory(i)))
      byName.get(c.name).p50.push(p50)
      byName.get(c.name).p99.push(p99)
    }
  }
  for (const c of contestants) await c.close()

  const factoryMs = summarize(own).median
  const results = { factoryMs }
  const rows = [[`factory alone (one setImmediate)`, us(factoryMs), '', '', '']]
  for (const c of contestants) {
    const p50 = summarize(byName.get(c.name).p50)
    const p99 = summarize(byName.get(c.name).p99)
    results[c.name] = { p50Ms: p50.median, p99Ms: p99.median, overheadMs: p50.median - factoryMs }
    rows.push([`${c.name} ${c.version}`, us(p50.median), `${us(p50.min)} – ${us(p50.max)}`, us(p99.median), us(p50.median - factoryMs)])
  }
  return {
    columns: ['subject', 'p50 per miss', 'p50 spread', 'p99', 'overhead over the factory (p50)'],
    rows,
    results,
    notes: [`${rounds} rounds of ${perRound} new keys per contestant, rotating order; medians of the rounds.`],
  }
}

await asEntryPoint(import.meta.url, { id, title, run })
