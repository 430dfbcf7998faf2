/**
 * Runs the soak on its own (the test runs its 30-second form):
 *   pnpm --filter @tiercache/tests soak -- --duration 600
 *   pnpm --filter @tiercache/tests soak -- --duration 600 --restart-every 60 --instances 4 --keys 1000
 * Prints the report as markdown; exits 1 on a violation, an unhandled error
 * or a process that did not exit on close.
 */
import { formatSoakReport, runSoak } from './soak.js'

// Ctrl-C: exit through process.exit, so the 'exit' hooks kill the redis-servers.
process.once('SIGINT', () => process.exit(130))

const args = process.argv.slice(2)
const option = (name: string, fallback: number) => {
  const at = args.indexOf(`--${name}`)
  return at >= 0 ? Number(args[at + 1]) : fallback
}
const durationMs = option('duration', 600) * 1000
const report = await runSoak({
  durationMs,
  restartEveryMs: option('restart-every', Math.max(5, durationMs / 10_000)) * 1000,
  instances: option('instances', 4),
  keys: option('keys', 1000),
  maxStalenessMs: option('max-staleness', 1000),
  log: (line) => console.log(line),
})
console.log(`\n${formatSoakReport(report)}`)
if (report.violations > 0) console.log('\nfirst violations:', report.violationSamples.slice(0, 10))
const unhandled = report.processes.reduce((a, p) => a + p.unhandled.rejections + p.unhandled.exceptions, 0)
if (report.violations > 0 || unhandled > 0 || report.processes.some((p) => !p.exitedOnClose)) process.exitCode = 1
