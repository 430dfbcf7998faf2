// A CPU profile's self time per op, by category and by function (and a
// sampling heap profile's bytes allocated per op). Used by
// bench/l2-profile.mjs, or on any .cpuprofile file:
//
//   node bench/lib/cpuprofile-summary.mjs <file.cpuprofile> <ops> [--by-subject] [--top N]
//
// Self time is wall-clock time the profiler found the main thread in a
// function: "idle" is the thread waiting in epoll; a native call such as
// writeUtf8String (the socket write) also counts the time the thread was
// descheduled inside it. With --by-subject (bench/l2-profile.mjs both) each
// sample goes to the subject whose code is on its stack (plainGetDecode, or
// tiercache's packages: its batched MGET is written from a nextTick); GC,
// idle and ioredis's reply parsing (a socket callback) have no such frame
// and stay shared.
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

function category({ functionName: f, url }) {
  if (f === '(garbage collector)') return 'GC'
  if (f === '(idle)') return 'idle (waiting for I/O)'
  if (f === '(program)') return 'V8 / native (program)'
  if (f === 'runMicrotasks') return 'promise jobs (runMicrotasks)'
  if (/^write(Utf8String|Latin1String|Buffer|v)$/.test(f)) return 'socket write (native)'
  if (url.includes('msgpackr')) return 'msgpackr'
  if (url.includes('ioredis')) return 'ioredis'
  if (url.includes('/packages/core/')) return 'tiercache core'
  if (url.includes('/packages/redis-adapter/')) return 'tiercache redis-adapter'
  if (url.startsWith('node:')) return 'node internals'
  return 'other'
}

const short = (url) => url.replace(/^.*\/(packages\/[^/]+)\/dist\//, '$1/dist/').replace(/^.*node_modules\/\.pnpm\/([^/]+)\/.*\/([^/]+)$/, '$1 $2')

/** Lines of text: the total, each category, then the `top` functions, in µs of self time per op. */
export function summarizeProfile(profile, ops, { bySubject = false, top = 20 } = {}) {
  const nodes = new Map(profile.nodes.map((n) => [n.id, n]))
  const parent = new Map()
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id)
  const subjectOf = (id) => {
    for (let at = id; at !== undefined; at = parent.get(at)) {
      const { functionName: name, url } = nodes.get(at).callFrame
      if (name === 'plainGetDecode') return 'plain'
      if (name === 'tiercacheGetOrSet' || url.includes('/packages/')) return 'tiercache'
    }
    return 'shared'
  }
  const byCategory = new Map()
  const byFunction = new Map()
  const add = (map, key, t) => map.set(key, (map.get(key) ?? 0) + t)
  let total = 0
  for (let i = 0; i < profile.samples.length; i++) {
    const id = profile.samples[i]
    const t = profile.timeDeltas[i] ?? 0
    const frame = nodes.get(id).callFrame
    const prefix = bySubject ? `${subjectOf(id)} | ` : ''
    add(byCategory, prefix + category(frame), t)
    add(byFunction, `${prefix}${frame.functionName || '(anonymous)'} ${short(frame.url)}:${frame.lineNumber + 1}`, t)
    total += t
  }
  const perOp = (t) => `${(t / ops).toFixed(2).padStart(7)} µs/op`
  return [
    `${perOp(total)}  total (${ops} ops, ${(total / 1e6).toFixed(1)} s sampled)`,
    ...[...byCategory].sort((a, b) => b[1] - a[1]).map(([name, t]) => `${perOp(t)}  ${name}`),
    '',
    'top functions (self time):',
    ...[...byFunction]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, t]) => `${perOp(t)}  ${name}`),
  ]
}

/** Lines of text from a sampling heap profile: bytes allocated per op in total and by allocating function. */
export function summarizeAllocations(profile, ops, { top = 15 } = {}) {
  const byFunction = new Map()
  let total = 0
  const walk = (node) => {
    const frame = node.callFrame
    if (node.selfSize > 0) {
      const key = `${frame.functionName || '(anonymous)'} ${short(frame.url)}:${frame.lineNumber + 1}`
      byFunction.set(key, (byFunction.get(key) ?? 0) + node.selfSize)
      total += node.selfSize
    }
    for (const child of node.children) walk(child)
  }
  walk(profile.head)
  const perOp = (bytes) => `${String(Math.round(bytes / ops)).padStart(6)} B/op`
  return [
    `${perOp(total)}  allocated in total (${ops} ops)`,
    ...[...byFunction]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, bytes]) => `${perOp(bytes)}  ${name}`),
  ]
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2)
  const top = args.includes('--top') ? Number(args[args.indexOf('--top') + 1]) : 20
  const profile = JSON.parse(readFileSync(args[0], 'utf8'))
  console.log(summarizeProfile(profile, Number(args[1]), { bySubject: args.includes('--by-subject'), top }).join('\n'))
}
