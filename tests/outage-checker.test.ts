/**
 * Outage reuse under the coherence checker (tests/checker): its instances run
 * with the default `onBusDown: 'reuse'`, so while their bus cannot prove
 * delivery they serve values they loaded themselves within t0 +
 * maxStaleness. The checker judges every read against every write of the
 * run; reuse must add no violation. Two faults that leave L1 untrusted for
 * seconds while reads go on: Redis killed for 2 s, and the last instance
 * silently partitioned (its factory still reaches the database, so it loads,
 * and reuses, throughout). Grace is off on every instance: what is served
 * from L1 in the outage is reuse alone.
 */
import { describe, expect, it } from 'vitest'
import { formatReport, runChecker, type CheckerReport } from './checker/checker.js'

/** Every instance read and wrote enough to be judged, and the writer locks held. */
function expectAJudgedRun(report: CheckerReport): void {
  expect(report.writeOrderAnomalies).toBe(0)
  expect(report.instances).toHaveLength(report.options.instances)
  for (const instance of report.instances) {
    expect(instance.reads).toBeGreaterThanOrEqual(report.options.minReadsPerInstance)
    expect(instance.valueReads).toBeGreaterThan(0)
    expect(instance.writes).toBeGreaterThan(0)
  }
  for (const row of report.rows) expect(row.reads).toBeGreaterThan(0)
}

describe.concurrent('coherence checker with outage reuse on: 0 violations', () => {
  it('Redis killed for 2 s under 3 instances: reuse served reads on every instance, 0 violations', async () => {
    const report = await runChecker({
      durationMs: 6_000,
      instances: 3,
      graceInstances: [],
      faults: ['redis-restart'],
      holdMs: { 'redis-restart': 2_000 },
      minReadsPerInstance: 2_000,
    })
    console.info(`coherence checker, Redis killed for 2 s, outage reuse on\n${formatReport(report)}`)
    expect(report.violations).toEqual([])
    expectAJudgedRun(report)
    // Every instance lost its bus (a gap each) and answered reads from its own outage loads.
    for (const gaps of report.gapsSeen) expect(gaps).toBeGreaterThanOrEqual(1)
    for (const instance of report.instances) expect(instance.stats.outageReuses, `instance ${instance.instance}`).toBeGreaterThan(0)
  }, 180_000)

  it('the last of 3 instances silently partitioned for 4.5 s: reuse served its reads, 0 violations', async () => {
    const report = await runChecker({
      durationMs: 6_000,
      instances: 3,
      graceInstances: [],
      faults: ['partition'],
      minReadsPerInstance: 2_000,
    })
    console.info(`coherence checker, one instance partitioned, outage reuse on\n${formatReport(report)}`)
    expect(report.violations).toEqual([])
    expectAJudgedRun(report)
    const cut = report.instances.at(-1)!
    expect(report.gapsSeen.at(-1)).toBeGreaterThanOrEqual(1)
    expect(cut.stats.outageReuses).toBeGreaterThan(0)
  }, 180_000)
})

/**
 * The same partition with reuse's bound widened from the outside (the
 * instances' onBusDown: { serveStale: 10 x maxStaleness }, which also keeps
 * their own outage loads for 10 s): the checker reports violations, so the
 * 0 above means the bound held, not that the checker was blind to reuse.
 */
describe('the checker sees outage reuse without its bound', () => {
  it('reuse kept for 10 x maxStaleness on a partitioned instance: violations', async () => {
    const report = await runChecker({
      durationMs: 3_000,
      instances: 3,
      graceInstances: [],
      faults: ['partition'],
      switchOff: 'reuse-bound',
      until: 'violation',
      minReadsPerInstance: 100,
    })
    console.info(`coherence checker, reuse bound widened to 10 x maxStaleness\n${formatReport(report)}`)
    expect(report.violations.length).toBeGreaterThan(0)
    expect(report.violations.every((v) => v.instance === report.options.instances - 1)).toBe(true) // only the cut-off instance
    expectAJudgedRun(report)
  }, 180_000)
})
