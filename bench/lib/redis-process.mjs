// A redis-server the outage scenario can SIGKILL and start again on the same
// port (bench/lib/redis.mjs's startRedis owns one server for a whole run and
// only stops it). Same settings as that one: no RDB, no AOF, so a restarted
// server comes back empty. Every server started here is killed when this
// process exits, whatever the way out, so none is left behind.
import { spawn } from 'node:child_process'
import { Redis } from 'ioredis'

const live = new Set()
let hooked = false

function hookExit() {
  if (hooked) return
  hooked = true
  process.once('exit', () => {
    for (const child of live) child.kill('SIGKILL')
  })
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(signal, () => {
      for (const child of live) child.kill('SIGKILL')
      process.exit(128 + (signal === 'SIGINT' ? 2 : signal === 'SIGTERM' ? 15 : 1))
    })
  }
}

/**
 * Starts redis-server on `port` (127.0.0.1) and resolves once it answers
 * PING, with `answeredAt` (performance.timeOrigin + performance.now()) the
 * moment of that first answer.
 */
export async function startRedisOn(port) {
  hookExit()
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], { stdio: 'ignore' })
  live.add(child)
  const exited = new Promise((resolve) => child.once('exit', resolve))
  exited.then(() => live.delete(child))
  await new Promise((resolve, reject) => {
    child.once('spawn', resolve)
    child.once('error', () => reject(new Error('redis-server was not found: install it (sudo apt-get install -y redis-server)')))
  })
  const url = `redis://127.0.0.1:${port}`
  // ioredis retries the refused connection every 5 ms and holds the PING until it connects.
  const probe = new Redis(url, { retryStrategy: () => 5, maxRetriesPerRequest: null })
  probe.on('error', () => {}) // refused until redis-server listens
  let timer
  let answeredAt
  try {
    await Promise.race([
      probe.ping(),
      exited.then((code) => Promise.reject(new Error(`redis-server on port ${port} exited (${code}) before answering PING`))),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`redis-server on port ${port} did not answer PING within 10 s`)), 10_000)
      }),
    ])
    answeredAt = performance.timeOrigin + performance.now()
  } catch (error) {
    child.kill('SIGKILL')
    throw error
  } finally {
    clearTimeout(timer)
    probe.disconnect()
  }
  return {
    url,
    port,
    answeredAt,
    /** SIGKILL (the outage) or SIGTERM (the end); resolves once the process is gone. */
    async kill(signal = 'SIGKILL') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal)
      await exited
    },
  }
}
