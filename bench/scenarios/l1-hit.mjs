// Scenario 1 — L1 hit: one caller awaiting getOrSet on a key every contestant
// already holds in memory, next to the raw baselines it cannot beat.
// Harness: mitata's measure() (batched samples, warm-up, GC between runs),
// repeated in ROUNDS rounds with the contestants in rotating order so that no
// one always runs first or last; the table shows the median of the rounds'
// medians and their spread.
import { LRUCache } from 'lru-cache'
import { do_not_optimize, measure } from 'mitata'
import { CONTESTANTS, createContestant } from '../lib/contestants.mjs'
import { summarize } from '../lib/stats.mjs'
import { sampleValue } from '../lib/value.mjs'
import { asEntryPoint } from '../lib/standalone.mjs'

export const id = 'l1-hit'
export const title = 'Scenario 1 — L1 hit: getOrSet of a key held in memory, one caller, awaited'

const fmt = (ns) => (ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(1)} ns`)
const spread = (s) => `${fmt(s.min)} – ${fmt(s.max)}`

export async function run({ redisUrl, smoke }) {
  const rounds = smoke ? 1 : 5
  const options = smoke ? { min_cpu_time: 5e6, max_samples: 50 } : { min_cpu_time: 400e6 }
  const value = sampleValue()
  const map = new Map([['k', value]])
  const lru = new LRUCache({ max: 10_000 })
  lru.set('k', value)
  const asyncLruGet = async (key) => lru.get(key)
  const factory = async () => value

  const contestants = []
  for (const name of CONTESTANTS) {
    const contestant = await createContestant(name, { redisUrl, layers: 'l1+l2', prefix: `${id}-${name}` })
    await contestant.set('k', value)
    await contestant.getOrSet('k', factory) // the key is now in every contestant's L1
    contestants.push(contestant)
  }

  const subjects = [
    { name: 'Map.get (sync)', fn: () => do_not_optimize(map.get('k')) },
    { name: 'lru-cache get (sync)', fn: () => do_not_optimize(lru.get('k')) },
    { name: 'async fn around lru-cache get, awaited', fn: async () => do_not_optimize(await asyncLruGet('k')), baseline: true },
    ...contestants.map((c) => ({ name: `${c.name} ${c.version}`, contestant: c.name, fn: async () => do_not_optimize(await c.getOrSet('k', factory)) })),
  ]
  const perSubject = new Map(subjects.map((s) => [s.name, []]))
  for (let round = 0; round < rounds; round++) {
    const order = subjects.map((_, i) => subjects[(i + round) % subjects.length])
    for (const subject of order) perSubject.get(subject.name).push((await measure(subject.fn, options)).p50)
  }
  for (const c of contestants) await c.close()

  const baselineNs = summarize(perSubject.get('async fn around lru-cache get, awaited')).median
  const results = { baselineNs }
  const rows = subjects.map((subject) => {
    const s = summarize(perSubject.get(subject.name))
    if (subject.contestant) results[subject.contestant] = { ns: s.median, ratio: s.median / baselineNs }
    return [subject.baseline ? `**${subject.name}** (baseline)` : subject.name, fmt(s.median), spread(s), `${(s.median / baselineNs).toFixed(2)}x`]
  })
  return {
    columns: ['subject', 'median ns/op', `spread over ${rounds} rounds`, 'vs baseline'],
    rows,
    results,
    notes: [
      'Each contestant runs memory + Redis + its sync; the key was read once before measuring, so every call is an L1 hit. tiercache runs with its stats on (they always are).',
      'BentoCache serializes L1 entries by default (JSON.parse on every hit); that default is what is measured.',
    ],
  }
}

await asEntryPoint(import.meta.url, { id, title, run })
