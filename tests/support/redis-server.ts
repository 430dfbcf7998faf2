/**
 * Real redis-server processes for tests: each suite starts its own on a free
 * port, can kill, restart and pause it, and stops it afterwards. The shared
 * server some machines run on 6379 is never used or touched.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const INSTALL_HINT =
  'redis-server was not found on PATH. The tests need a real Redis 7: install it with ' +
  '`sudo apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS), ' +
  'or run `npm test`, which installs it when run as root on Debian.'

let cachedBinary: string | undefined

/** The redis-server binary, or an Error that says how to install it. Tests never skip for want of Redis. */
export function redisServerBinary(): string {
  if (cachedBinary !== undefined) return cachedBinary
  const candidates = [process.env.REDIS_SERVER_BIN, 'redis-server', '/usr/bin/redis-server', '/usr/local/bin/redis-server']
  for (const candidate of candidates) {
    if (candidate === undefined || candidate === '') continue
    const probe = spawnSync(candidate, ['--version'], { encoding: 'utf8' })
    if (probe.status === 0 && /Redis server v=/.test(probe.stdout)) {
      cachedBinary = candidate
      return candidate
    }
  }
  throw new Error(INSTALL_HINT)
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.unref()
    server.on('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const address = server.address()
      const port = typeof address === 'object' && address !== null ? address.port : 0
      server.close(() => resolve(port))
    })
  })
}

const running = new Set<ChildProcess>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
})

/** Sends one inline command over a raw socket; resolves with the first reply line. */
export function rawCommand(port: number, command: string, timeoutMs = 1_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' })
    let buffer = ''
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no reply to ${command} on port ${port} within ${timeoutMs} ms`))
    }, timeoutMs)
    socket.on('connect', () => socket.write(`${command}\r\n`))
    socket.on('data', (data) => {
      buffer += data.toString('utf8')
      const end = buffer.indexOf('\r\n')
      if (end >= 0) {
        clearTimeout(timer)
        socket.destroy()
        resolve(buffer.slice(0, end))
      }
    })
    socket.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export class RedisServer {
  readonly port: number
  #child: ChildProcess | undefined
  #dir: string
  #extraArgs: readonly string[]

  private constructor(port: number, dir: string, extraArgs: readonly string[]) {
    this.port = port
    this.#dir = dir
    this.#extraArgs = extraArgs
  }

  /** The server's working directory (a cluster node keeps its nodes.conf there across restarts). */
  get dir(): string {
    return this.#dir
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  /**
   * Starts a server on a free port (retrying if another process takes the
   * port first). `extraArgs` are passed on every launch, restarts included
   * (e.g. `--cluster-enabled yes`).
   */
  static async start(extraArgs: readonly string[] = []): Promise<RedisServer> {
    const binary = redisServerBinary()
    let lastError: unknown
    for (let attempt = 0; attempt < 5; attempt++) {
      const server = new RedisServer(await freePort(), mkdtempSync(join(tmpdir(), 'tiercache-redis-')), extraArgs)
      try {
        await server.#launch(binary)
        return server
      } catch (error) {
        lastError = error
        await server.stop()
      }
    }
    throw new Error(`could not start redis-server: ${String(lastError)}`)
  }

  async #launch(binary = redisServerBinary()): Promise<void> {
    const child = spawn(
      binary,
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
        '--protected-mode', 'no', '--daemonize', 'no', '--loglevel', 'warning', '--dir', this.#dir, ...this.#extraArgs],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    )
    this.#child = child
    running.add(child)
    let stderr = ''
    child.stderr?.on('data', (data) => (stderr += String(data)))
    child.once('exit', () => running.delete(child))
    const deadline = Date.now() + 5_000
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`redis-server exited at start on port ${this.port}: ${stderr.trim()}`)
      }
      try {
        if ((await rawCommand(this.port, 'PING', 200)) === '+PONG') return
      } catch {
        // not listening yet
      }
      await sleep(20)
    }
    throw new Error(`redis-server on port ${this.port} did not answer PING within 5 s`)
  }

  /** Runs one command through redis-cli and returns its trimmed output. */
  cli(...args: string[]): string {
    const result = spawnSync('redis-cli', ['-p', String(this.port), ...args], { encoding: 'utf8' })
    if (result.status !== 0) throw new Error(`redis-cli ${args.join(' ')} failed: ${result.stderr}`)
    return result.stdout.trim()
  }

  /** SIGKILL: the server vanishes without closing its connections gracefully. */
  async kill(): Promise<void> {
    await this.#signal('SIGKILL')
  }

  /** Starts the server again on the same port (empty: nothing is persisted). */
  async restart(): Promise<void> {
    await this.kill()
    await this.#launch()
  }

  /** Freezes the process (SIGSTOP): sockets stay open, nothing is answered. */
  pause(): void {
    this.#child?.kill('SIGSTOP')
  }

  resume(): void {
    this.#child?.kill('SIGCONT')
  }

  async stop(): Promise<void> {
    this.resume()
    await this.#signal('SIGTERM')
    rmSync(this.#dir, { recursive: true, force: true })
  }

  async #signal(signal: NodeJS.Signals): Promise<void> {
    const child = this.#child
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    child.kill(signal)
    const timer = setTimeout(() => child.kill('SIGKILL'), 3_000)
    await exited
    clearTimeout(timer)
  }
}
