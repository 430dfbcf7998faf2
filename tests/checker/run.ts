/**
 * Runs the coherence checker on its own:
 *   pnpm --filter @tiercache/tests checker -- --duration 60 --cycles 2
 *   pnpm --filter @tiercache/tests checker -- --duration 60 --cycles 2 --maxmemory 2mb --policy allkeys-lru
 *   pnpm --filter @tiercache/tests checker -- --duration 20 --switch-off liveness --faults partition --no-grace
 *   pnpm --filter @tiercache/tests checker -- --sentinel --duration 40 --cycles 2
 *   pnpm --filter @tiercache/tests checker -- --cluster --duration 40 --cycles 2
 * Options: --instances N, --keys N, --max-staleness MS, --grace 1,3 (the
 * instances with grace and fail-safe on; default the odd ones), --no-grace,
 * --faults a,b (a subset of the topology's), --switch-off
 * liveness|gap|bus|leases|reuse-bound, --fillers proxied (only the proxied instance
 * fills, one reader per key), --partition-database (the proxied instance's
 * factory is cut off in the partition even without grace), --min-reads N
 * (per instance; the run goes on until each has made them), --multi-interval
 * MS (how often a tag/namespace invalidation or a clear runs; default 700),
 * --carry-values (every bus carries small values with its invalidations).
 * Prints the per-window and per-instance tables; exits 1 if any read violated the contract.
 */
import { formatReport, runChecker, type FaultName, type SwitchOff } from './checker.js'

const args = process.argv.slice(2)
const value = (name: string): string | undefined => {
  const at = args.indexOf(`--${name}`)
  return at >= 0 ? args[at + 1] : undefined
}
const number = (name: string, fallback: number) => Number(value(name) ?? fallback)
const list = (name: string) =>
  value(name)
    ?.split(',')
    .filter((item) => item !== '')

const maxmemory = value('maxmemory')
const report = await runChecker({
  durationMs: number('duration', 60) * 1000,
  cycles: number('cycles', 2),
  instances: number('instances', 4),
  keys: number('keys', 16),
  maxStalenessMs: number('max-staleness', 1000),
  topology: args.includes('--sentinel') ? 'sentinel' : args.includes('--cluster') ? 'cluster' : 'standalone',
  ...(list('faults') === undefined ? {} : { faults: list('faults') as FaultName[] }),
  ...(args.includes('--no-grace') ? { graceInstances: [] } : list('grace') === undefined ? {} : { graceInstances: list('grace')!.map(Number) }),
  ...(maxmemory === undefined ? {} : { maxmemory: { bytes: maxmemory, policy: value('policy') ?? 'allkeys-lru' } }),
  ...(value('switch-off') === undefined ? {} : { switchOff: value('switch-off') as SwitchOff }),
  ...(args.includes('--fillers') ? { fillers: value('fillers') as 'all' | 'proxied' } : {}),
  ...(args.includes('--partition-database') ? { partitionDatabase: true } : {}),
  ...(args.includes('--carry-values') ? { carryValues: true } : {}),
  minReadsPerInstance: number('min-reads', 0),
  multiIntervalMs: number('multi-interval', 700),
  log: (line) => console.log(line),
})
console.log(`\n${formatReport(report)}`)
if (report.options.carryValues === true) console.log('carried values per instance (applied/rejected/undecodable):', report.carried)
if (report.violations.length > 0) {
  console.log('\nfirst violations:', report.violations.slice(0, 10))
  process.exitCode = 1
}
