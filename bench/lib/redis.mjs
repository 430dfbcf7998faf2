// One redis-server for the whole bench run, on a free port, so no scenario
// depends on (or disturbs) a Redis that happens to run on 6379.
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'
import { Redis } from 'ioredis'

export async function freePort() {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** Starts redis-server (or uses REDIS_URL); resolves once it answers PING. */
export async function startRedis() {
  if (process.env.REDIS_URL) return { url: process.env.REDIS_URL, version: await serverVersion(process.env.REDIS_URL), stop: async () => {} }
  const port = await freePort()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  })
  await new Promise((resolve, reject) => {
    child.once('spawn', resolve)
    child.once('error', () => reject(new Error('redis-server was not found: install it (sudo apt-get install -y redis-server) or set REDIS_URL')))
  })
  const url = `redis://127.0.0.1:${port}`
  const probe = new Redis(url, { retryStrategy: () => 20, maxRetriesPerRequest: null })
  probe.on('error', () => {}) // refused until redis-server listens
  await probe.ping()
  probe.disconnect()
  return {
    url,
    version: await serverVersion(url),
    stop: async () => {
      child.kill('SIGTERM')
      await new Promise((resolve) => child.once('exit', resolve))
    },
  }
}

export async function flushRedis(url) {
  const client = new Redis(url)
  await client.flushall()
  client.disconnect()
}

async function serverVersion(url) {
  const client = new Redis(url)
  const info = await client.info('server')
  client.disconnect()
  return /redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown'
}
