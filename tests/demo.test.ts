import { execFile } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { RedisServer } from './support/redis-server.js'

const DEMO = fileURLToPath(new URL('../demo/demo.mjs', import.meta.url))
const execFileAsync = promisify(execFile)
/** The demo's own narration says which check failed: keep it in the test's failure. */
async function run(file: string, args: string[], options: Parameters<typeof execFileAsync>[2]) {
  try {
    return await execFileAsync(file, args, { ...options, encoding: 'utf8' })
  } catch (error) {
    const { stdout, stderr } = error as { stdout?: string; stderr?: string }
    throw new Error(`${String((error as Error).message)}\n--- stdout ---\n${stdout ?? ''}\n--- stderr ---\n${stderr ?? ''}`)
  }
}

let server: RedisServer
beforeAll(async () => {
  server = await RedisServer.start()
})
afterAll(() => server.stop())

/**
 * Section 7's story, as the demo checks it on its own measurements (each
 * threshold is a ✔ line, or ✘ when it did not hold): the test asserts every
 * line appears with ✔, never the timings themselves.
 */
const STORY = [
  '✔ every query through Redis is slower than no cache',
  '✔ the advice applied is at least 60 % faster than no cache',
  '✔ it makes at least 60 % fewer Redis calls per request than every query through Redis',
  '✔ and has a higher hit rate',
  '✔ users: predicted hit rate',
  '✔ filters: predicted hit rate',
  '✔ permissions: predicted hit rate',
  '✔ the advisor keeps the permissions and takes the 5 ms queries out of Redis',
  '✔ observe mode ran every query itself and cached nothing',
  '✔ no setup read a stale value',
]
const SETUPS = [
  '| 1. no cache |',
  '| 2. every query through Redis |',
  "| 3. observe mode (L1+L2, mode: 'observe') |",
  '| 4. the advice applied |',
  '| 5. L1+L2 everything |',
]

function expectTheStory(stdout: string) {
  for (const row of SETUPS) expect(stdout).toContain(row)
  for (const line of STORY) expect(stdout).toContain(line)
  expect(stdout).toMatch(/\| users \| (l1-only|do-not-cache) \(/)
  expect(stdout).toMatch(/\| permissions \| keep \(/)
  expect(stdout).not.toContain('✘')
  expect(stdout).toMatch(/demo ok\s*$/)
}

describe('the README demo', () => {
  it('runs without Redis on the in-process store and bus, and every check holds', async () => {
    const env = { ...process.env }
    delete env.REDIS_URL
    const { stdout } = await run(process.execPath, [DEMO], { env, timeout: 120_000 })
    expect(stdout).toContain('in-process store and bus')
    expectTheStory(stdout)
    const report = readFileSync(new URL('../demo/report.html', import.meta.url), 'utf8')
    for (const chart of ['Profile first, cache second', 'Response time', 'Redis calls per request', 'Hit rate: predicted in observe mode, then measured']) {
      expect(report).toContain(chart)
    }
  }, 130_000)

  it('runs with REDIS_URL on real Redis, and every check holds', async () => {
    const { stdout } = await run(process.execPath, [DEMO], { env: { ...process.env, REDIS_URL: server.url }, timeout: 120_000 })
    expect(stdout).toContain(`Redis at ${server.url}`)
    expect(stdout).toContain('simulated 3 ms hop added to every L2 call')
    expectTheStory(stdout)
  }, 130_000)
})
