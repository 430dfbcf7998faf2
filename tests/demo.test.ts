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

describe('the README demo', () => {
  it('runs without Redis on the in-process store and bus, and every check holds', async () => {
    const env = { ...process.env }
    delete env.REDIS_URL
    const { stdout } = await run(process.execPath, [DEMO], { env, timeout: 60_000 })
    expect(stdout).toContain('in-process store and bus')
    expect(stdout).toContain('| as the advisor recommends |')
    expect(stdout).toMatch(/\| users-\d+ \| (l1-only|keep|do-not-cache|raise-ttl) \|/)
    expect(stdout).not.toContain('✘')
    expect(stdout).toMatch(/demo ok\s*$/)
    expect(readFileSync(new URL('../demo/report.html', import.meta.url), 'utf8')).toContain('Profile first, cache second')
  })

  it('runs with REDIS_URL on real Redis, and every check holds', async () => {
    const { stdout } = await run(process.execPath, [DEMO], { env: { ...process.env, REDIS_URL: server.url }, timeout: 60_000 })
    expect(stdout).toContain(`Redis at ${server.url}`)
    expect(stdout).not.toContain('✘')
    expect(stdout).toMatch(/demo ok\s*$/)
  })
})
