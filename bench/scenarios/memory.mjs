// Scenario 6 — Memory: heap and RSS for 100k entries of a ~200-byte object
// held in L1 (memory only), each subject in a fresh process with
// --expose-gc, next to lru-cache holding the same objects. Figures include
// the objects themselves: they are what the cache holds.
//
// Per process: forced GC, then the heap spaces (v8.getHeapSpaceStatistics)
// and process.memoryUsage(); 100k set() calls; again; one get() of each
// entry; again. Heap per entry is heapUsed's growth. RSS growth is split
// into what the heap spaces committed, so that a difference between two
// subjects can be traced to a space: new space (the young generation V8
// grew while the entries were being made, not data), old space in use (the
// entries), old space committed but free (holes left among the entries by
// short-lived objects that died in old space), large objects, and the rest
// (malloc, code, stacks). RSS moves with the young generation's sizing from
// process to process, so the medians of several fresh processes are shown.
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import v8 from 'node:v8'
import { LRUCache } from 'lru-cache'
import { CONTESTANTS, createContestant } from '../lib/contestants.mjs'
import { summarize } from '../lib/stats.mjs'
import { sampleValue } from '../lib/value.mjs'

export const id = 'memory'
export const title = 'Scenario 6 — Memory: 100k entries of a ~200-byte object in L1'

const SUBJECTS = ['lru-cache', ...CONTESTANTS]
/**
 * Extra node/V8 flags for the measuring processes, to test where the RSS goes
 * (e.g. BENCH_MEMORY_NODE_FLAGS=--no-allocation-site-pretenuring); none in a normal run.
 */
const V8_FLAGS = (process.env.BENCH_MEMORY_NODE_FLAGS ?? '').split(' ').filter(Boolean)
const mib = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`
const times = (ratio) => (Number.isFinite(ratio) ? `${ratio.toFixed(2)}x` : 'n/a')

async function settle() {
  for (let i = 0; i < 4; i++) {
    global.gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
}

function snapshot() {
  const spaces = {}
  for (const s of v8.getHeapSpaceStatistics()) spaces[s.space_name] = { used: s.space_used_size, committed: s.physical_space_size }
  return { ...process.memoryUsage(), spaces }
}

/** Growth from `a` to `b`: heapUsed, RSS, and RSS split by heap space. */
function growth(a, b) {
  const space = (name, field) => (b.spaces[name]?.[field] ?? 0) - (a.spaces[name]?.[field] ?? 0)
  const heapCommitted = Object.keys(b.spaces).reduce((sum, name) => sum + space(name, 'committed'), 0)
  const rss = b.rss - a.rss
  return {
    heapBytes: b.heapUsed - a.heapUsed,
    rssBytes: rss,
    newSpace: space('new_space', 'committed'),
    oldUsed: space('old_space', 'used'),
    oldFree: space('old_space', 'committed') - space('old_space', 'used'),
    largeObjects: space('large_object_space', 'committed'),
    otherSpaces: heapCommitted - space('new_space', 'committed') - space('old_space', 'committed') - space('large_object_space', 'committed'),
    outsideHeap: rss - heapCommitted,
  }
}

async function measureSubject(subject, entries, redisUrl) {
  let set
  let get
  let close = async () => {}
  if (subject === 'lru-cache') {
    const lru = new LRUCache({ max: 200_000 })
    set = async (key, value) => void lru.set(key, value)
    get = async (key) => lru.get(key)
    globalThis.keep = lru
  } else {
    const contestant = await createContestant(subject, { redisUrl, layers: 'l1', prefix: `${id}-${subject}` })
    set = (key, value) => contestant.set(key, value)
    get = (key) => contestant.get(key)
    close = () => contestant.close()
    globalThis.keep = contestant
  }
  await set('warm-up', sampleValue(0))
  await get('warm-up')
  await settle()
  const before = snapshot()
  for (let i = 0; i < entries; i++) await set(`user:${i}`, sampleValue(i))
  await settle()
  const afterSet = snapshot()
  for (let i = 0; i < entries; i++) if ((await get(`user:${i}`)) === undefined) throw new Error(`${subject} lost user:${i}`)
  await settle()
  const afterRead = snapshot()
  await close()
  return { ...growth(before, afterSet), heapAfterReadBytes: afterRead.heapUsed - before.heapUsed }
}

if (process.argv[2] === 'worker') {
  const [, , , subject, entries, redisUrl] = process.argv
  process.send(await measureSubject(subject, Number(entries), redisUrl))
  process.disconnect()
}

export async function run({ redisUrl, smoke }) {
  const entries = smoke ? 2_000 : 100_000
  const repeats = smoke ? 1 : 7
  const measured = new Map(SUBJECTS.map((s) => [s, []]))
  for (let r = 0; r < repeats; r++) {
    // Rotating order: no subject always runs while the machine is busiest.
    for (let k = 0; k < SUBJECTS.length; k++) {
      const subject = SUBJECTS[(k + r) % SUBJECTS.length]
      const child = fork(fileURLToPath(import.meta.url), ['worker', subject, String(entries), redisUrl], { execArgv: ['--expose-gc', ...V8_FLAGS] })
      measured.get(subject).push(
        await new Promise((resolve, reject) => {
          child.once('message', resolve)
          child.once('exit', (code) => reject(new Error(`${subject} memory worker exited with ${code}`)))
        }),
      )
    }
  }
  const med = (subject, field) => summarize(measured.get(subject).map((m) => m[field])).median
  const base = med('lru-cache', 'heapBytes') / entries
  const baseRss = med('lru-cache', 'rssBytes')
  const results = {}
  const rows = []
  const breakdown = []
  for (const subject of SUBJECTS) {
    const heap = med(subject, 'heapBytes') / entries
    const rss = summarize(measured.get(subject).map((m) => m.rssBytes))
    results[subject] = {
      heapPerEntry: heap,
      heapPerEntryAfterRead: med(subject, 'heapAfterReadBytes') / entries,
      rssPerEntry: rss.median / entries,
      rssBytes: rss.median,
      vsLru: heap / base,
      rssVsLru: rss.median / baseRss,
    }
    const label = subject === 'lru-cache' ? '**lru-cache** (baseline)' : subject
    rows.push([
      label,
      `${heap.toFixed(0)} B`,
      `${results[subject].heapPerEntryAfterRead.toFixed(0)} B`,
      times(heap / base),
      `${mib(rss.median)} (${mib(rss.min)} – ${mib(rss.max)})`,
      times(rss.median / baseRss),
    ])
    breakdown.push([
      label,
      mib(rss.median),
      ...['newSpace', 'oldUsed', 'oldFree', 'largeObjects', 'otherSpaces', 'outsideHeap'].map((field) => mib(med(subject, field))),
    ])
  }
  return {
    columns: [
      'subject',
      'heap per entry',
      'heap per entry after one get() of each',
      'heap vs lru-cache',
      `RSS growth for ${entries / 1000}k entries (spread)`,
      'RSS vs lru-cache',
    ],
    rows,
    tables: [
      {
        caption: 'Where the RSS growth goes (medians over the same processes; committed memory of each V8 heap space, before → after the set() calls):',
        columns: [
          'subject',
          'RSS growth',
          'new space',
          'old space in use',
          'old space committed, free',
          'large objects',
          'other heap spaces',
          'outside the V8 heap',
        ],
        rows: breakdown,
      },
    ],
    results,
    notes: [
      `Median of ${repeats} fresh processes per subject (rotating order), each with --expose-gc${V8_FLAGS.length > 0 ? ` ${V8_FLAGS.join(' ')}` : ''}: heapUsed, RSS and v8.getHeapSpaceStatistics() after forced GC, before and after ${entries} set() calls of distinct objects, and heapUsed again after one get() of every entry.`,
      'BentoCache keeps L1 entries serialized (JSON strings) by default, so it holds strings, not the objects.',
      'cacheable and cache-manager hold the objects: their memory stores are `createKeyv({ ttl, lruSize })` from cacheable, the store cacheable uses by default and cache-manager’s README shows, which turns Keyv’s serializer off.',
      'The medians of the columns are taken separately, so the breakdown need not add up to the RSS median exactly.',
    ],
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url) && process.argv[2] !== 'worker') {
  const { runStandalone } = await import('../lib/standalone.mjs')
  await runStandalone({ id, title, run })
}
