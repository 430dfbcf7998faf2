/**
 * MONITOR for tests, read over a plain socket and attributed to connections.
 *
 * Why not ioredis's `monitor()`: it switches its parser to monitor mode only
 * once MONITOR's "OK" has been handled, so a monitored command that arrives
 * in the same socket read as that "OK" is taken for the reply to a command
 * never sent ("Command queue state error"). Here every line after "+OK" is
 * monitor output by construction.
 *
 * Why attribution: a MONITOR stream holds every connection's commands — a
 * bus's SUBSCRIBE, its liveness PINGs every probe interval — so a test that
 * counts commands must count only the connection it is about (found by its
 * CLIENT SETNAME name), and must bound the window by events on that same
 * connection, not by sleeps.
 */
import { randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import type { Redis } from 'ioredis'

export interface MonitoredCommand {
  /** `ip:port` of the client connection, or `lua` for a command a script ran. */
  readonly source: string
  readonly db: number
  /** The command name (lower-cased) and its arguments, unescaped. */
  readonly args: readonly string[]
}

/** One MONITOR line, e.g. `1700000000.123456 [0 127.0.0.1:5555] "mget" "a\x00b"` (the leading `+` removed). */
export function parseMonitorLine(line: string): MonitoredCommand {
  const header = /^\d+\.\d+ \[(\d+) ([^\]]+)\] /.exec(line)
  if (header === null) throw new Error(`not a MONITOR line: ${JSON.stringify(line)}`)
  const args: string[] = []
  let i = header[0].length
  while (i < line.length) {
    if (line[i] !== '"') throw new Error(`MONITOR line: expected a quoted argument at ${i}: ${JSON.stringify(line)}`)
    i++
    const bytes: number[] = []
    for (;;) {
      if (i >= line.length) throw new Error(`MONITOR line: unterminated argument: ${JSON.stringify(line)}`)
      const c = line[i]!
      if (c === '"') {
        i++
        break
      }
      if (c !== '\\') {
        bytes.push(c.charCodeAt(0))
        i++
        continue
      }
      // The escapes of Redis's sdscatrepr.
      const e = line[i + 1]
      const simple: Record<string, number> = { '\\': 0x5c, '"': 0x22, n: 0x0a, r: 0x0d, t: 0x09, a: 0x07, b: 0x08 }
      if (e !== undefined && e in simple) {
        bytes.push(simple[e]!)
        i += 2
      } else if (e === 'x') {
        bytes.push(parseInt(line.slice(i + 2, i + 4), 16))
        i += 4
      } else {
        throw new Error(`MONITOR line: unknown escape at ${i}: ${JSON.stringify(line)}`)
      }
    }
    args.push(Buffer.from(bytes).toString('utf8'))
    if (line[i] === ' ') i++
  }
  if (args.length === 0) throw new Error(`MONITOR line without a command: ${JSON.stringify(line)}`)
  args[0] = args[0]!.toLowerCase()
  return { db: Number(header[1]), source: header[2]!, args }
}

export class Monitor {
  /** Every command the server ran since MONITOR was confirmed, in the order it ran them. */
  readonly commands: MonitoredCommand[] = []
  #socket: Socket
  #waiters: Array<() => void> = []
  #failure: Error | undefined

  private constructor(socket: Socket) {
    this.#socket = socket
  }

  /** Resolves once the server has confirmed MONITOR: every command it runs from then on is recorded. */
  static start(port: number, host = '127.0.0.1'): Promise<Monitor> {
    return new Promise((resolve, reject) => {
      const socket = connect({ port, host })
      const monitor = new Monitor(socket)
      let confirmed = false
      let buffer = ''
      socket.setEncoding('latin1') // MONITOR output is ASCII (sdscatrepr escapes every other byte)
      socket.on('connect', () => socket.write('MONITOR\r\n'))
      socket.on('data', (data: string) => {
        buffer += data
        let end: number
        while ((end = buffer.indexOf('\r\n')) >= 0) {
          const line = buffer.slice(0, end)
          buffer = buffer.slice(end + 2)
          if (!confirmed) {
            if (line !== '+OK') {
              socket.destroy()
              reject(new Error(`MONITOR was answered ${JSON.stringify(line)}`))
              return
            }
            confirmed = true
            resolve(monitor)
            continue
          }
          try {
            if (!line.startsWith('+')) throw new Error(`unexpected reply on the MONITOR connection: ${JSON.stringify(line)}`)
            monitor.commands.push(parseMonitorLine(line.slice(1)))
          } catch (error) {
            monitor.#failure ??= error as Error
          }
          monitor.#wake()
        }
      })
      socket.on('error', (error) => {
        if (!confirmed) reject(error)
        monitor.#failure ??= error
        monitor.#wake()
      })
      socket.on('close', () => {
        monitor.#failure ??= new Error('the MONITOR connection closed')
        monitor.#wake()
      })
    })
  }

  #wake(): void {
    for (const waiter of this.#waiters.splice(0)) waiter()
  }

  /** Resolves with the index of the first recorded command (from `from` on) that matches; rejects if the monitor fails first. */
  async indexOf(matches: (command: MonitoredCommand) => boolean, from = 0): Promise<number> {
    for (;;) {
      const index = this.commands.findIndex((command, i) => i >= from && matches(command))
      if (index >= 0) return index
      if (this.#failure !== undefined) throw this.#failure
      await new Promise<void>((resolve) => this.#waiters.push(resolve))
    }
  }

  /**
   * Runs `body` and returns what the connection at `address` sent while it
   * ran, and what scripts ran meanwhile. The window is bounded by two ECHO
   * markers sent on `client` — the connection under test — itself: a
   * connection's commands run in the order sent, so everything it sent before
   * `body` started falls before the first marker, and everything it sent until
   * `body` resolved falls before the second. Script lines (`lua`) cannot be
   * attributed to a connection: callers keep every other connection free of
   * scripts during the window.
   */
  async during(client: Redis, address: string, body: () => Promise<void>): Promise<{ sent: MonitoredCommand[]; inScripts: MonitoredCommand[] }> {
    const marker = async () => {
      const token = `monitor-marker:${randomBytes(8).toString('hex')}`
      await client.echo(token)
      return this.indexOf((command) => command.source === address && command.args[0] === 'echo' && command.args[1] === token)
    }
    const start = await marker()
    await body()
    const end = await marker()
    const window = this.commands.slice(start + 1, end)
    if (this.#failure !== undefined) throw this.#failure
    return {
      sent: window.filter((command) => command.source === address),
      inScripts: window.filter((command) => command.source === 'lua'),
    }
  }

  close(): void {
    this.#socket.destroy()
  }
}

/** The `addr` (ip:port) of the one connection CLIENT LIST names `name`. */
export async function addressOf(raw: Redis, name: string): Promise<string> {
  const list = (await raw.call('CLIENT', 'LIST')) as string
  const named = list.split('\n').filter((line) => line.includes(` name=${name} `))
  if (named.length !== 1) throw new Error(`expected one connection named ${name}, found ${named.length}:\n${list}`)
  const address = / addr=(\S+) /.exec(named[0]!)
  if (address === null) throw new Error(`no addr in ${named[0]}`)
  return address[1]!
}
