import { describe, expect, it } from 'vitest'
import { formatSoakReport, Judge, runSoak } from './soak/soak.js'

/**
 * The soak in its 30-second form (the long form, and its last report, are in
 * docs/reliability.md: `pnpm --filter @tiercache/tests soak -- --duration 600`).
 */
describe('soak (30-second form)', () => {
  it('4 processes, zipfian reads, writes and tag invalidations through 3 Redis restarts: 0 violations, 0 unhandled errors, every process recovers, heap bounded', async () => {
    const report = await runSoak({ durationMs: 30_000, restartEveryMs: 8_000, instances: 4 })
    console.info(`soak, 30-second form\n${formatSoakReport(report)}`)

    expect(report.violationSamples).toEqual([])
    expect(report.violations).toBe(0)
    expect(report.restarts).toBe(3)
    for (const p of report.processes) {
      // A process warning counts too: MaxListenersExceededWarning is how a listener leak shows.
      expect(p.unhandled, `process ${p.instance}`).toMatchObject({ rejections: 0, exceptions: 0, warnings: 0 })
      expect(p.hits).toBeGreaterThan(1_000)
      expect(p.writes).toBeGreaterThan(100)
      expect(p.invalidations.ok).toBeGreaterThan(0)
      // It survived the restarts: still reading values and writing after the last one, and saw each as a gap.
      expect(p.afterLastRestart.hits).toBeGreaterThan(0)
      expect(p.afterLastRestart.writes).toBeGreaterThan(0)
      expect(p.gapsSeen).toBeGreaterThanOrEqual(report.restarts)
      expect(p.dropped).toBe(0)
      expect(p.exitedOnClose).toBe(true)
    }
    // A generous bound (after a full GC at each point): it catches a gross leak, not GC noise; the curve of the
    // 10-minute form is the real flatness figure.
    expect(report.memory).toHaveLength(10)
    const from = report.memory[1]! // the 20 % mark
    const end = report.memory.at(-1)!
    for (let i = 0; i < report.processes.length; i++) expect(end.heapUsed[i]!).toBeLessThan(from.heapUsed[i]! + 64 * 2 ** 20)
  }, 60_000)

  it('its judge flags a read older than a write resolved more than maxStaleness before it began, and only that', () => {
    const judge = new Judge(1_000)
    judge.addWrite(7, 1, 100)
    judge.addWrite(7, 2, 2_000)
    judge.judge(0, 7, 2_500, 1) // version 2 resolved 500 ms before: within the bound
    judge.judge(0, 7, 3_100, 2)
    expect(judge.violationCount).toBe(0)
    judge.judge(1, 7, 3_001, 1) // version 2 resolved 1 001 ms before
    expect(judge.violations).toEqual([{ instance: 1, key: 7, start: 3_001, version: 1, shouldBeAtLeast: 2 }])
    expect(judge.maxStalenessMs).toBe(1_001)
  })
})
