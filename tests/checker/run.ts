/**
 * Runs the coherence checker on its own:
 *   pnpm --filter @tiercache/tests checker -- --duration 60 --cycles 2
 *   pnpm --filter @tiercache/tests checker -- --sentinel --duration 40 --cycles 2
 *   pnpm --filter @tiercache/tests checker -- --cluster --duration 40 --cycles 2
 * Prints the per-fault table; exits 1 if any read violated the contract.
 */
import { formatReport, runChecker } from './checker.js'

const args = process.argv.slice(2)
const option = (name: string, fallback: number) => {
  const at = args.indexOf(`--${name}`)
  return at >= 0 ? Number(args[at + 1]) : fallback
}
const report = await runChecker({
  durationMs: option('duration', 60) * 1000,
  cycles: option('cycles', 2),
  instances: option('instances', 4),
  keys: option('keys', 16),
  maxStalenessMs: option('max-staleness', 1000),
  topology: args.includes('--sentinel') ? 'sentinel' : args.includes('--cluster') ? 'cluster' : 'standalone',
  log: (line) => console.log(line),
})
console.log(`\n${formatReport(report)}`)
if (report.violations.length > 0) {
  console.log('\nfirst violations:', report.violations.slice(0, 10))
  process.exitCode = 1
}
