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

/**
 * Sends one inline command over a raw socket and resolves with its whole
 * reply: a simple string or error line as is (`+PONG`, `-ERR ...`), a bulk
 * string's payload (what INFO answers).
 */
export function rawReply(port: number, command: string, timeoutMs = 1_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' })
    let buffer = Buffer.alloc(0)
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error(`no reply to ${command} on port ${port} within ${timeoutMs} ms`))
    }, timeoutMs)
    const done = (reply: string) => {
      clearTimeout(timer)
      socket.destroy()
      resolve(reply)
    }
    socket.on('connect', () => socket.write(`${command}\r\n`))
    socket.on('data', (data) => {
      buffer = Buffer.concat([buffer, data])
      const end = buffer.indexOf('\r\n')
      if (end < 0) return
      const header = buffer.subarray(0, end).toString('utf8')
      if (!header.startsWith('$')) return done(header)
      const length = Number(header.slice(1))
      if (length < 0) return done('')
      // The payload is counted in bytes, so the buffer is, too.
      if (buffer.length >= end + 2 + length) done(buffer.subarray(end + 2, end + 2 + length).toString('utf8'))
    })
    socket.on('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })
}

/** `process_id` from an INFO reply, or undefined if the reply is not one (an error, a half-started server). */
export function processIdOf(info: string): number | undefined {
  const match = /^process_id:(\d+)\r?$/m.exec(info)
  return match === null ? undefined : Number(match[1])
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

/**
 * Another process holds the port: either a server that answered as someone
 * else (`holderPid`, its `process_id`), or our redis-server could not bind.
 */
export class PortTakenError extends Error {
  constructor(
    readonly port: number,
    readonly holderPid: number | undefined,
    detail: string,
  ) {
    super(`port ${port} is held by another process${holderPid === undefined ? '' : ` (a Redis with pid ${holderPid})`}: ${detail}`)
    this.name = 'PortTakenError'
  }
}

/** Arguments for a launch, or a function that makes fresh ones for each start attempt (for extra ports, e.g. `--tls-port`). */
export type ExtraArgs = readonly string[] | (() => readonly string[] | Promise<readonly string[]>)

/** How often `start()` tries a new port, and `restart()` re-binds its own, before giving up. */
export const START_ATTEMPTS = 5
const RESTART_BIND_ATTEMPTS = 10

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

  /** The pid of the redis-server this object launched last (what its INFO reports as `process_id`). */
  get pid(): number | undefined {
    return this.#child?.pid
  }

  /**
   * Starts a server on a free port. Ready means the server on the port
   * reported our child's pid as its `process_id`: a PONG alone could come
   * from another test file's server that took the port between `freePort()`
   * and our bind (the two files would then share one server). If the port is
   * taken, or anything else fails, the next attempt takes a new port — and,
   * when `extraArgs` is a function, new extra arguments (so extra ports such
   * as `--tls-port` are fresh too). The arguments of the attempt that
   * succeeded are reused on every restart (e.g. `--cluster-enabled yes`).
   */
  static async start(extraArgs: ExtraArgs = []): Promise<RedisServer> {
    const binary = redisServerBinary()
    const failures: string[] = []
    for (let attempt = 0; attempt < START_ATTEMPTS; attempt++) {
      const args = typeof extraArgs === 'function' ? await extraArgs() : extraArgs
      const server = new RedisServer(await freePort(), mkdtempSync(join(tmpdir(), 'tiercache-redis-')), args)
      try {
        await server.#launch(binary)
        return server
      } catch (error) {
        failures.push(`attempt ${attempt + 1} (port ${server.port}): ${error instanceof Error ? error.message : String(error)}`)
        await server.stop()
      }
    }
    throw new Error(`could not start redis-server in ${START_ATTEMPTS} attempts:\n${failures.join('\n')}`)
  }

  /**
   * Launches redis-server on this.port and resolves once the server there
   * proves to be this child (INFO's process_id is the child's pid). Throws
   * PortTakenError if another server answers there or ours cannot bind.
   */
  async #launch(binary = redisServerBinary()): Promise<void> {
    const child = spawn(
      binary,
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--protected-mode',
        'no',
        '--daemonize',
        'no',
        '--loglevel',
        'warning',
        '--dir',
        this.#dir,
        ...this.#extraArgs,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    )
    this.#child = child
    running.add(child)
    // Redis logs to stdout (a failed bind included). Both pipes are read for the
    // server's whole life, or a full pipe would block it; only the tail is kept.
    let output = ''
    const keep = (data: unknown) => (output = (output + String(data)).slice(-4_000))
    child.stdout?.on('data', keep)
    child.stderr?.on('data', keep)
    child.once('exit', () => running.delete(child))
    const deadline = Date.now() + 5_000
    while (Date.now() < deadline) {
      if (child.exitCode !== null || child.signalCode !== null) {
        const log = output.trim()
        if (/Address already in use/.test(log)) {
          throw new PortTakenError(this.port, await this.#holder(), `redis-server could not bind: ${log}`)
        }
        throw new Error(`redis-server exited at start on port ${this.port}: ${log}`)
      }
      let pid: number | undefined
      try {
        pid = processIdOf(await rawReply(this.port, 'INFO server', 500))
      } catch {
        // nothing listening yet
      }
      if (pid === child.pid) return
      if (pid !== undefined) {
        // Someone else's server holds the port; ours cannot bind and will exit.
        await this.#signal('SIGKILL')
        throw new PortTakenError(this.port, pid, `it answered INFO with process_id ${pid}, not ours (${child.pid})`)
      }
      await sleep(20)
    }
    await this.#signal('SIGKILL')
    throw new Error(`redis-server on port ${this.port} did not answer INFO with its pid ${child.pid} within 5 s`)
  }

  /** The process_id of a Redis now answering on this.port, if any (used once ours has failed to bind). */
  async #holder(): Promise<number | undefined> {
    try {
      return processIdOf(await rawReply(this.port, 'INFO server', 500))
    } catch {
      return undefined
    }
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

  /**
   * Starts the server again on the same port (empty: nothing is persisted).
   * Callers rely on the port staying the same (their clients reconnect to
   * it), so a taken port is never swapped for another. While the port is
   * free only its bind can fail, and only transiently (another file's
   * `freePort()` probe holds any free port for an instant), so a failed bind
   * is retried a bounded number of times. If another Redis answers on the
   * port, it was taken while this one was down: that fails at once, naming
   * the port and the holder, rather than handing the caller a stranger's
   * server.
   */
  async restart(): Promise<void> {
    await this.kill()
    let lastError: PortTakenError | undefined
    for (let attempt = 1; attempt <= RESTART_BIND_ATTEMPTS; attempt++) {
      try {
        await this.#launch()
        return
      } catch (error) {
        if (!(error instanceof PortTakenError)) throw error
        if (error.holderPid !== undefined) {
          throw new Error(`restart(): port ${this.port} was taken by another Redis (pid ${error.holderPid}) while this one was down; refusing to share it`, {
            cause: error,
          })
        }
        lastError = error
        // Back off a little longer each time: the holder is expected to let go within milliseconds.
        await sleep(50 * attempt)
      }
    }
    throw new Error(`restart(): could not bind port ${this.port} again in ${RESTART_BIND_ATTEMPTS} attempts: ${lastError?.message ?? ''}`, { cause: lastError })
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
