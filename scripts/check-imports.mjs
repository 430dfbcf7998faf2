#!/usr/bin/env node
// The dependency rules `npm test` enforces on packages/*/src:
//  1. No import cycles (type-only imports count: a cycle in types is a
//     cycle in the design, and the next refactor turns it into a runtime one).
//  2. Inside the core's cache/ folder, imports run one way, down the layers
//     below: the facade → batch → load/write → local-state/shared-tier →
//     leaves. A file may import only files of a lower layer (a higher number),
//     so the parts cannot decay into one shared context object.
//  3. Nothing outside cache/ imports into it except the entry points and the
//     type-only leaves (stats), so the core's other modules stay below it.
// Exit status 1 with one line per violation; 0 when the graph is clean.
import { readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
const CACHE_DIR = 'packages/core/src/cache'
const LAYERS = {
  'cache.ts': 0,
  'handles.ts': 1,
  'join-bus.ts': 1,
  'introspection.ts': 1,
  'assemble.ts': 1.2,
  'observe.ts': 1.5,
  'batch.ts': 2,
  'load.ts': 3,
  'load-callers.ts': 3.6,
  'write.ts': 3,
  'produce.ts': 4,
  'cancellation.ts': 3.5,
  'write-recovery.ts': 4,
  'local-state.ts': 4,
  'shared-tier.ts': 4,
  'config.ts': 5,
  'entry.ts': 5,
  'report.ts': 5,
  'stats.ts': 5,
  'skips.ts': 6,
  'get-or-set-call.ts': 4.5,
  'refresh-ahead.ts': 6,
  'ghost-index.ts': 5.5,
  'call-options.ts': 5.8,
  'cache-options.ts': 5.9,
}
/** Files outside cache/ allowed to import from it: the entry points, and modules reading a leaf's types. */
const INTO_CACHE_ALLOWED = new Map([
  ['packages/core/src/index.ts', null],
  ['packages/core/src/cached.ts', null],
  ['packages/core/src/advisor.ts', new Set(['stats.ts'])],
])

function sourcesUnder(dir) {
  const out = []
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) out.push(...sourcesUnder(path))
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path)
  }
  return out
}

const files = readdirSync(join(root, 'packages')).flatMap((pkg) => {
  const src = join(root, 'packages', pkg, 'src')
  try {
    return sourcesUnder(src)
  } catch {
    return []
  }
})
const graph = new Map()
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"](\.{1,2}\/[^'"]+)['"]/g
for (const file of files) {
  const text = readFileSync(file, 'utf8')
  const targets = []
  for (const match of text.matchAll(IMPORT)) targets.push(resolve(dirname(file), match[1].replace(/\.js$/, '.ts')))
  graph.set(file, targets)
}

const problems = []
const rel = (path) => relative(root, path)

// 1. Cycles: depth-first search, reporting each cycle once.
const state = new Map()
const stack = []
const seen = new Set()
function visit(file) {
  state.set(file, 'open')
  stack.push(file)
  for (const next of graph.get(file) ?? []) {
    if (!graph.has(next)) continue
    if (state.get(next) === 'open') {
      const cycle = stack.slice(stack.indexOf(next)).map(rel)
      const id = [...cycle].sort().join(' ')
      if (!seen.has(id)) {
        seen.add(id)
        problems.push(`import cycle: ${[...cycle, rel(next)].join(' -> ')}`)
      }
    } else if (!state.has(next)) visit(next)
  }
  stack.pop()
  state.set(file, 'done')
}
for (const file of graph.keys()) if (!state.has(file)) visit(file)

// 2 and 3. Layers of the core's cache/ folder.
for (const [file, targets] of graph) {
  const from = rel(file)
  for (const target of targets) {
    const to = rel(target)
    if (!to.startsWith(`${CACHE_DIR}/`)) continue
    const toName = to.slice(CACHE_DIR.length + 1)
    if (from.startsWith(`${CACHE_DIR}/`)) {
      const fromName = from.slice(CACHE_DIR.length + 1)
      const a = LAYERS[fromName]
      const b = LAYERS[toName]
      if (a === undefined) problems.push(`${from}: not placed in a layer (add it to LAYERS in scripts/check-imports.mjs)`)
      else if (b === undefined) problems.push(`${to}: not placed in a layer (add it to LAYERS in scripts/check-imports.mjs)`)
      else if (b <= a) problems.push(`${from} imports ${toName}: imports in cache/ must run down the layers (${a} -> ${b})`)
    } else if (!INTO_CACHE_ALLOWED.has(from) || (INTO_CACHE_ALLOWED.get(from) !== null && !INTO_CACHE_ALLOWED.get(from).has(toName))) {
      problems.push(`${from} imports ${to}: only the entry points reach into cache/`)
    }
  }
}

if (problems.length > 0) {
  console.error(problems.join('\n'))
  console.error(`check-imports: ${problems.length} problem(s)`)
  process.exit(1)
}
console.log(`check-imports: ${graph.size} files, no cycles, cache/ layers run one way`)
