// Awaited calls of several subjects measured in one run: `rounds` rounds,
// the subjects in rotating order (none always first or last, so machine
// load moves them alike), a warm-up then `calls` awaited calls each; the
// median ns per call of each subject over the rounds.
import { median } from './stats.mjs'

/** `subjects`: [name, fn] pairs, fn returning a promise (or a value). Returns a Map name → median ns/call. */
export async function measureRotating(subjects, { rounds, calls, warmup = Math.min(50_000, calls) }) {
  const samples = new Map(subjects.map(([name]) => [name, []]))
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < subjects.length; i++) {
      const [name, call] = subjects[(i + round) % subjects.length]
      for (let j = 0; j < warmup; j++) await call()
      const started = process.hrtime.bigint()
      for (let j = 0; j < calls; j++) await call()
      samples.get(name).push(Number(process.hrtime.bigint() - started) / calls)
    }
  }
  return new Map([...samples].map(([name, ns]) => [name, median(ns)]))
}
