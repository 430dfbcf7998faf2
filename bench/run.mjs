// The benchmark suite: every scenario in its own process, one redis-server
// for the run (flushed between scenarios), then the tables, the targets and
// the versions, as markdown.
//
//   pnpm bench                               all scenarios, full length (about 10 minutes)
//   pnpm bench -- --smoke                    every scenario with tiny counts (CI: proves it runs)
//   pnpm bench -- --only l1-hit,l2-hit       some scenarios
//   pnpm bench -- --write ../docs/benchmarks.md   also put the report between that file's markers
import { fork } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { flushRedis, startRedis } from './lib/redis.mjs'
import { markdownTable, scenarioTables } from './lib/report.mjs'
import { checkTargets } from './lib/targets.mjs'

const SCENARIOS = ['l1-hit', 'l2-hit', 'miss', 'stampede', 'propagation', 'memory', 'mixed', 'outage']
const START = '<!-- bench:start -->'
const END = '<!-- bench:end -->'

const args = process.argv.slice(2)
const option = (name) => {
  const at = args.indexOf(name)
  return at >= 0 ? args[at + 1] : undefined
}
const smoke = args.includes('--smoke')
const only = option('--only')?.split(',')
const writeTo = option('--write')
const selected = only ?? SCENARIOS
for (const id of selected) if (!SCENARIOS.includes(id)) throw new Error(`unknown scenario ${id}; known: ${SCENARIOS.join(', ')}`)

function runScenario(id, redisUrl) {
  return new Promise((resolve) => {
    const child = fork(fileURLToPath(new URL('./lib/scenario-child.mjs', import.meta.url)), [id, redisUrl, ...(smoke ? ['--smoke'] : [])])
    let result
    child.on('message', (message) => (result = message))
    child.on('exit', (code) => resolve(result ?? { ok: false, id, title: id, error: `exited with code ${code} before reporting` }))
  })
}

const packageVersion = (path) => JSON.parse(readFileSync(new URL(path, import.meta.url), 'utf8')).version
const started = Date.now()
const redis = await startRedis()
const outputs = []
const results = {}
let failed = false
try {
  for (const id of selected) {
    await flushRedis(redis.url)
    const began = Date.now()
    process.stderr.write(`==> ${id}${smoke ? ' (smoke)' : ''}… `)
    const result = await runScenario(id, redis.url)
    process.stderr.write(`${result.ok ? 'done' : 'FAILED'} in ${((Date.now() - began) / 1000).toFixed(0)} s\n`)
    if (!result.ok) {
      failed = true
      outputs.push(`### ${result.title}\n\nFailed: \`${result.error.split('\n')[0]}\`\n`)
      console.error(result.error)
      continue
    }
    results[id] = result.results
    const notes = (result.notes ?? []).map((n) => `- ${n}`).join('\n')
    outputs.push(`### ${result.title}\n\n${scenarioTables(result)}\n\n${notes}\n`)
  }
} finally {
  await redis.stop()
}

const checks = checkTargets(results)
const versions = [
  `Node ${process.version}`,
  `redis-server ${redis.version}`,
  `tiercache ${packageVersion('../packages/core/package.json')}`,
  ...['bentocache', 'cacheable', 'cache-manager', '@keyv/redis', 'keyv'].map(
    (name) => `${name} ${packageVersion(`./contestants/node_modules/${name}/package.json`)}`,
  ),
  `ioredis ${packageVersion('./node_modules/ioredis/package.json')}`,
  `lru-cache ${packageVersion('./node_modules/lru-cache/package.json')}`,
  `mitata ${packageVersion('./node_modules/mitata/package.json')}`,
]
const report = [
  `Run ${new Date(started).toISOString().slice(0, 16).replace('T', ' ')} UTC${smoke ? ' (smoke mode: tiny counts, figures meaningless)' : ''}, ` +
    `${((Date.now() - started) / 60000).toFixed(1)} min, on ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'unknown CPU'}, ` +
    `${(os.totalmem() / 2 ** 30).toFixed(0)} GiB. Command: \`pnpm bench${smoke ? ' -- --smoke' : ''}\`.`,
  '',
  `Versions: ${versions.join(', ')}.`,
  '',
  '### Targets',
  '',
  markdownTable(
    ['target', 'measured', 'met?'],
    checks.map((c) => [c.target, c.measured, c.met ? 'met' : '**not met**']),
  ),
  '',
  ...outputs,
].join('\n')
console.log(report)

if (writeTo !== undefined) {
  const document = readFileSync(writeTo, 'utf8')
  const from = document.indexOf(START)
  const to = document.indexOf(END)
  if (from < 0 || to < from) throw new Error(`${writeTo} has no ${START} … ${END} markers`)
  writeFileSync(writeTo, `${document.slice(0, from + START.length)}\n${report}\n${document.slice(to)}`)
  console.error(`==> wrote the report into ${writeTo}`)
}
process.exitCode = failed ? 1 : 0
