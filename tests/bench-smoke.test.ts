import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { describe, expect, it } from 'vitest'

const RUN = fileURLToPath(new URL('../bench/run.mjs', import.meta.url))
const run = promisify(execFile)

// The benchmark suite's smoke mode: every scenario with tiny counts, every
// contestant, real processes and a real redis-server. It proves the suite
// runs; its figures are not looked at (speed is never asserted in tests). The
// timeouts are hang guards: the outage scenario alone takes ~40 s in smoke
// mode, and CI may run this file next to others on 2 cores.
describe('the benchmark suite (smoke mode)', () => {
  it('runs every scenario for every contestant and prints the targets table', async () => {
    const { stdout } = await run(process.execPath, [RUN, '--smoke'], { timeout: 540_000, maxBuffer: 16 * 1024 * 1024 })
    expect(stdout).toContain('### Targets')
    for (let scenario = 1; scenario <= 7; scenario++) expect(stdout).toContain(`### Scenario ${scenario} — `)
    expect(stdout).not.toContain('Failed:')
    for (const contestant of ['tiercache', 'bentocache', 'cacheable', 'cache-manager']) {
      expect(stdout.split('\n').filter((line) => line.startsWith(`| ${contestant}`)).length).toBeGreaterThanOrEqual(7)
    }
    expect(stdout).not.toMatch(/\| error: /)
  }, 600_000)
})
