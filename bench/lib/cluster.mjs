// A throwaway Redis Cluster for a bench run: `primaries` redis-servers with
// --cluster-enabled on free loopback ports, no replicas, joined by
// `redis-cli --cluster create`. The cluster bus gets a second free port
// (port + 10000 may be taken or out of range). Like startRedis(), it never
// uses or disturbs a Redis that already runs (6379 included).
import { execFile, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { freePort } from './redis.mjs'

const run = promisify(execFile)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const cli = async (port, ...args) => (await run('redis-cli', ['-p', String(port), ...args])).stdout.trim()

/** Resolves once every node says cluster_state:ok; `stop()` SIGTERMs the servers and removes their dirs. */
export async function startCluster({ primaries = 3 } = {}) {
  const nodes = []
  const stop = async () => {
    await Promise.all(
      nodes.map(async ({ child, dir }) => {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise((resolve) => child.once('exit', resolve))
          child.kill('SIGTERM')
          await exited
        }
        rmSync(dir, { recursive: true, force: true })
      }),
    )
  }
  // Last resort if the process exits without stop() (process.exit, a crash): no server outlives it.
  process.once('exit', () => nodes.forEach(({ child }) => child.kill('SIGKILL')))
  try {
    const ports = new Set() // distinct: a port freed by one probe could come back from the next
    while (ports.size < primaries * 2) ports.add(await freePort())
    const [clientPorts, busPorts] = [[...ports].slice(0, primaries), [...ports].slice(primaries)]
    for (const [i, port] of clientPorts.entries()) {
      const dir = mkdtempSync(join(tmpdir(), 'tiercache-bench-cluster-'))
      const child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--save',
          '',
          '--appendonly',
          'no',
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          'nodes.conf',
          '--cluster-port',
          String(busPorts[i]),
          '--cluster-node-timeout',
          '1000',
          '--dir',
          dir,
        ],
        { stdio: 'ignore' },
      )
      nodes.push({ port, dir, child })
      await new Promise((resolve, reject) => {
        child.once('spawn', resolve)
        child.once('error', () => reject(new Error('redis-server was not found: install it (sudo apt-get install -y redis-server)')))
      })
    }
    await until('every node answers PING', async () => (await Promise.all(clientPorts.map((p) => cli(p, 'PING').catch(() => '')))).every((r) => r === 'PONG'))
    await run('redis-cli', ['--cluster', 'create', ...clientPorts.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', '0', '--cluster-yes'])
    await until('cluster_state:ok on every node', async () =>
      (await Promise.all(clientPorts.map((p) => cli(p, 'CLUSTER', 'INFO')))).every((info) => info.includes('cluster_state:ok')),
    )
    const version = /redis_version:(\S+)/.exec(await cli(clientPorts[0], 'INFO', 'server'))?.[1] ?? 'unknown'
    return { nodes: clientPorts.map((port) => ({ host: '127.0.0.1', port })), version, stop }
  } catch (error) {
    await stop()
    throw error
  }
}

async function until(what, check, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Redis Cluster: no ${what} within ${timeoutMs / 1000} s`)
    await sleep(100)
  }
}
