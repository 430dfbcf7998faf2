// Scenario 6 — Memory: heap and RSS for 100k entries of a ~200-byte object
// held in L1 (memory only), each subject in a fresh process with
// --expose-gc, next to lru-cache holding the same objects. Figures include
// the objects themselves: they are what the cache holds.
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { LRUCache } from 'lru-cache'
import { CONTESTANTS, createContestant } from '../lib/contestants.mjs'
import { summarize } from '../lib/stats.mjs'
import { sampleValue } from '../lib/value.mjs'

export const id = 'memory'
export const title = 'Scenario 6 — Memory: 100k entries of a ~200-byte object in L1'

const SUBJECTS = ['lru-cache', ...CONTESTANTS]
const mib = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`

async function settle() {
  for (let i = 0; i < 4; i++) {
    global.gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
}

async function measureSubject(subject, entries, redisUrl) {
  let set
  let close = async () => {}
  if (subject === 'lru-cache') {
    const lru = new LRUCache({ max: 200_000 })
    set = async (key, value) => void lru.set(key, value)
    globalThis.keep = lru
  } else {
    const contestant = await createContestant(subject, { redisUrl, layers: 'l1', prefix: `${id}-${subject}` })
    set = (key, value) => contestant.set(key, value)
    close = () => contestant.close()
    globalThis.keep = contestant
  }
  await set('warm-up', sampleValue(0))
  await settle()
  const before = process.memoryUsage()
  for (let i = 0; i < entries; i++) await set(`user:${i}`, sampleValue(i))
  await settle()
  const after = process.memoryUsage()
  await close()
  return { heapBytes: after.heapUsed - before.heapUsed, rssBytes: after.rss - before.rss }
}

if (process.argv[2] === 'worker') {
  const [, , , subject, entries, redisUrl] = process.argv
  process.send(await measureSubject(subject, Number(entries), redisUrl))
  process.disconnect()
}

export async function run({ redisUrl, smoke }) {
  const entries = smoke ? 2_000 : 100_000
  const repeats = smoke ? 1 : 3
  const measured = new Map(SUBJECTS.map((s) => [s, []]))
  for (let r = 0; r < repeats; r++) {
    for (const subject of SUBJECTS) {
      const child = fork(fileURLToPath(import.meta.url), ['worker', subject, String(entries), redisUrl], { execArgv: ['--expose-gc'] })
      measured.get(subject).push(
        await new Promise((resolve, reject) => {
          child.once('message', resolve)
          child.once('exit', (code) => reject(new Error(`${subject} memory worker exited with ${code}`)))
        }),
      )
    }
  }
  const perEntry = (subject, field) => summarize(measured.get(subject).map((m) => m[field] / entries)).median
  const base = perEntry('lru-cache', 'heapBytes')
  const results = {}
  const rows = SUBJECTS.map((subject) => {
    const heap = perEntry(subject, 'heapBytes')
    const rss = perEntry(subject, 'rssBytes')
    results[subject] = { heapPerEntry: heap, rssPerEntry: rss, vsLru: heap / base }
    return [
      subject === 'lru-cache' ? '**lru-cache** (baseline)' : subject,
      mib(heap * entries),
      `${heap.toFixed(0)} B`,
      mib(rss * entries),
      `${(heap / base).toFixed(2)}x`,
    ]
  })
  return {
    columns: ['subject', `heap for ${entries / 1000}k entries`, 'heap per entry', 'RSS growth', 'heap vs lru-cache'],
    rows,
    results,
    notes: [
      `Median of ${repeats} fresh processes per subject; heapUsed and RSS after forced GC, before and after ${entries} set() calls of distinct objects.`,
      'BentoCache keeps L1 entries serialized (JSON strings) by default, so it holds strings, not the objects.',
    ],
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] !== 'worker') {
  const { runStandalone } = await import('../lib/standalone.mjs')
  await runStandalone({ id, title, run })
}
