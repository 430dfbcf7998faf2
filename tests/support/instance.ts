import { fork, type ChildProcess } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import type { Redis } from 'ioredis'

const FIXTURE = fileURLToPath(new URL('../fixtures/instance.mjs', import.meta.url))

/** A cache instance running in a separate Node process (tests/fixtures/instance.mjs, or another fixture with the same IPC protocol). */
export class InstanceProcess {
  #child: ChildProcess
  #nextId = 0
  #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()

  private constructor(child: ChildProcess) {
    this.#child = child
    child.on('message', (message: { id?: number; ok?: boolean; result?: unknown; error?: { message: string } }) => {
      if (message.id === undefined) return
      const pending = this.#pending.get(message.id)
      this.#pending.delete(message.id)
      if (message.ok === true) pending?.resolve(message.result)
      else pending?.reject(new Error(message.error?.message ?? 'instance call failed'))
    })
    child.on('exit', (code, signal) => {
      for (const { reject } of this.#pending.values()) reject(new Error(`instance exited (${code ?? signal})`))
      this.#pending.clear()
    })
  }

  static async start(env: Record<string, string>, fixture: string = FIXTURE, execArgv: string[] = []): Promise<InstanceProcess> {
    const child = fork(fixture, [], {
      execArgv,
      env: { ...process.env, ...env },
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    })
    await new Promise<void>((resolve, reject) => {
      const onMessage = (message: { ready?: boolean }) => {
        if (message.ready === true) {
          child.off('message', onMessage)
          resolve()
        }
      }
      child.on('message', onMessage)
      child.once('exit', (code) => reject(new Error(`instance exited before it was ready (code ${code})`)))
    })
    return new InstanceProcess(child)
  }

  call<T = unknown>(op: string, args?: Record<string, unknown>): Promise<T> {
    const id = this.#nextId++
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.#child.send({ id, op, args })
    })
  }

  /** Closes the cache and bus, then waits for the process to exit on its own (it cannot if a handle is left open). */
  async close(): Promise<number | null> {
    const exited = new Promise<number | null>((resolve) => this.#child.once('exit', (code) => resolve(code)))
    await this.call('close')
    return exited
  }

  kill(): void {
    this.#child.kill('SIGKILL')
  }

  /** SIGSTOP / SIGCONT: the process freezes with its sockets open, then resumes. */
  signal(signal: NodeJS.Signals): void {
    this.#child.kill(signal)
  }
}

/** One command as MONITOR reports it: who sent it (`127.0.0.1:<port>`, or `lua` inside a script) and its arguments, the name lower-cased. */
export interface MonitoredCommand {
  readonly source: string
  readonly args: readonly string[]
}

/**
 * MONITOR on a raw socket of its own. Not ioredis's `monitor()`: ioredis
 * switches its connection to monitor mode only when the MONITOR reply's
 * promise has settled, so a command that arrives in the same read as "+OK"
 * is taken for a reply to nothing ("Command queue state error") — and any
 * client can cause that, a bus's liveness PING among them. Here every line
 * after "+OK" is a monitored command, whatever read it came in.
 *
 * Tests filter what it saw by the address of a named client (`addressOf`)
 * and end their window with a marker command they wait for, never with a
 * time window.
 */
export class RedisMonitor {
  readonly commands: MonitoredCommand[] = []
  #socket: Socket
  #pending = ''
  #waiters: Array<{ match: (command: MonitoredCommand) => boolean; from: number; resolve: (index: number) => void; reject: (error: Error) => void }> = []
  #closed: Error | undefined

  private constructor(socket: Socket) {
    this.#socket = socket
  }

  /** Resolves once Redis has acknowledged MONITOR: every command executed from then on is seen. */
  static async start(port: number): Promise<RedisMonitor> {
    const socket = connect({ port, host: '127.0.0.1' })
    const monitor = new RedisMonitor(socket)
    socket.setEncoding('latin1') // MONITOR escapes every non-printable byte: its lines are ASCII
    await new Promise<void>((resolve, reject) => {
      let acknowledged = false
      socket.on('data', (chunk: string) => {
        monitor.#pending += chunk
        for (let end = monitor.#pending.indexOf('\r\n'); end >= 0; end = monitor.#pending.indexOf('\r\n')) {
          const line = monitor.#pending.slice(0, end)
          monitor.#pending = monitor.#pending.slice(end + 2)
          if (!acknowledged) {
            if (line !== '+OK') {
              reject(new Error(`MONITOR refused: ${line}`))
              socket.destroy()
              return
            }
            acknowledged = true
            resolve()
          } else {
            monitor.#add(parseMonitorLine(line))
          }
        }
      })
      socket.once('error', reject)
      socket.once('close', () => {
        monitor.#closed = new Error('the MONITOR connection closed')
        for (const waiter of monitor.#waiters.splice(0)) waiter.reject(monitor.#closed)
        reject(monitor.#closed)
      })
      socket.write('MONITOR\r\n')
    })
    return monitor
  }

  /** The index in `commands` of the first command at or after `from` that matches, once it has arrived. */
  until(match: (command: MonitoredCommand) => boolean, from = 0): Promise<number> {
    const index = this.commands.findIndex((command, i) => i >= from && match(command))
    if (index >= 0) return Promise.resolve(index)
    if (this.#closed !== undefined) return Promise.reject(this.#closed)
    return new Promise((resolve, reject) => this.#waiters.push({ match, from, resolve, reject }))
  }

  stop(): void {
    this.#socket.destroy()
  }

  #add(command: MonitoredCommand): void {
    const index = this.commands.push(command) - 1
    this.#waiters = this.#waiters.filter((waiter) => {
      if (index < waiter.from || !waiter.match(command)) return true
      waiter.resolve(index)
      return false
    })
  }
}

/** `+<time> [<db> <source>] "<arg>" "<arg>" …`, each argument quoted and escaped as Redis's sdscatrepr does. */
function parseMonitorLine(line: string): MonitoredCommand {
  const head = /^\+\d+\.\d+ \[\d+ ([^\]]+)\] /.exec(line)
  if (head === null) throw new Error(`not a MONITOR line: ${line}`)
  const args: string[] = []
  let i = head[0].length
  while (i < line.length) {
    if (line[i] === ' ') {
      i++
      continue
    }
    if (line[i] !== '"') throw new Error(`unquoted MONITOR argument at ${i}: ${line}`)
    i++
    const bytes: number[] = []
    for (; line[i] !== '"'; i++) {
      if (i >= line.length) throw new Error(`unterminated MONITOR argument: ${line}`)
      if (line[i] !== '\\') {
        bytes.push(line.charCodeAt(i))
        continue
      }
      const escaped = line[++i]
      if (escaped === 'x') {
        bytes.push(Number.parseInt(line.slice(i + 1, i + 3), 16))
        i += 2
      } else {
        const named: Record<string, number> = { n: 10, r: 13, t: 9, a: 7, b: 8 }
        bytes.push(named[escaped!] ?? escaped!.charCodeAt(0))
      }
    }
    i++ // the closing quote
    args.push(Buffer.from(bytes).toString('utf8'))
  }
  if (args.length > 0) args[0] = args[0]!.toLowerCase()
  return { source: head[1]!, args }
}

/**
 * The address (`ip:port`, as Redis and MONITOR see it) of the one client
 * connected under `name` (ioredis `connectionName`, i.e. CLIENT SETNAME).
 * `admin` is any connection to the same server.
 */
export async function addressOf(admin: Redis, name: string): Promise<string> {
  const list = (await admin.call('CLIENT', 'LIST')) as string
  const found = list
    .split('\n')
    .map((line) =>
      Object.fromEntries(
        line
          .trim()
          .split(' ')
          .map((field) => [field.slice(0, field.indexOf('=')), field.slice(field.indexOf('=') + 1)]),
      ),
    )
    .filter((client) => client.name === name)
  if (found.length !== 1) throw new Error(`expected one client named ${name}, found ${found.length}`)
  return found[0]!.addr as string
}
