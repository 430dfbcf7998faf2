/**
 * close() leaves nothing open: after closing its caches and bus, a process
 * holds no socket or timer of the SDK's (process.getActiveResourcesInfo())
 * and exits on its own — standalone and on Redis Cluster.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ClusterGroup } from './support/redis-cluster.js'
import { RedisServer } from './support/redis-server.js'

const FIXTURE = fileURLToPath(new URL('./fixtures/close-handles.mjs', import.meta.url))

let server: RedisServer
let cluster: ClusterGroup
beforeAll(async () => {
  server = await RedisServer.start()
  cluster = await ClusterGroup.start({ primaries: 3, replicasPerPrimary: 0 })
}, 60_000)
afterAll(async () => {
  await server?.stop()
  await cluster?.stop()
})

/**
 * Runs the fixture and returns its report, and whether it then exited by
 * itself (given 5 s; a leaked handle keeps it alive, and it is killed).
 */
function run(env: Record<string, string>): Promise<{ before: string[]; after: string[]; exitedByItself: boolean }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [FIXTURE], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] })
    let out = ''
    let report: { before: string[]; after: string[] } | undefined
    let killer: NodeJS.Timeout | undefined
    child.stdout.on('data', (data) => {
      out += String(data)
      if (report === undefined && out.includes('\n')) {
        report = JSON.parse(out.split('\n')[0]!)
        killer = setTimeout(() => child.kill('SIGKILL'), 5_000)
      }
    })
    child.on('error', reject)
    child.on('exit', (code, signal) => {
      clearTimeout(killer)
      if (report === undefined) reject(new Error(`fixture printed no report (exit ${code ?? signal}): ${out}`))
      else resolve({ ...report, exitedByItself: code === 0 })
    })
  })
}

/** Resources beyond what the process held before it opened anything. */
function leaked(report: { before: string[]; after: string[] }): string[] {
  const remaining = [...report.after]
  for (const resource of report.before) {
    const at = remaining.indexOf(resource)
    if (at >= 0) remaining.splice(at, 1)
  }
  return remaining
}

describe('close() leaves no open handles', () => {
  it('standalone: no socket, no timer left, and the process exits by itself', async () => {
    const report = await run({ REDIS_URL: server.url })
    expect(leaked(report)).toEqual([])
    expect(report.exitedByItself).toBe(true)
  }, 30_000)

  it('Redis Cluster (seed nodes): no socket, no timer left, and the process exits by itself', async () => {
    const report = await run({ CLUSTER_NODES: JSON.stringify(cluster.nodes.map(({ port }) => `redis://127.0.0.1:${port}`)) })
    expect(leaked(report)).toEqual([])
    expect(report.exitedByItself).toBe(true)
  }, 30_000)
})
