/**
 * A TCP proxy between one client and redis-server, for faults a real network
 * has and a killed socket does not:
 * - `partition()`: a silent partition. Nothing is forwarded either way and
 *   nothing is closed: no FIN, no RST, the client sees a half-dead socket.
 * - `holdReplies()`: requests reach Redis, replies do not come back (until
 *   `heal()`): the ambiguous "did my write land?" case.
 * - `heal()`: forwards everything held, in order, and resumes.
 * - `cut()`: destroys every open connection (what the client sees as a reset);
 *   new connections are accepted and proxied in the current mode.
 */
import { createServer, connect, type Server, type Socket } from 'node:net'

type Mode = 'forward' | 'partition' | 'hold-replies'

interface Link {
  client: Socket
  server: Socket
  heldToServer: Buffer[]
  heldToClient: Buffer[]
}

export class TcpProxy {
  readonly port: number
  #server: Server
  #targetPort: number
  #mode: Mode = 'forward'
  #links = new Set<Link>()

  private constructor(server: Server, port: number, targetPort: number) {
    this.#server = server
    this.port = port
    this.#targetPort = targetPort
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  static async start(targetPort: number): Promise<TcpProxy> {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    const proxy = new TcpProxy(server, typeof address === 'object' && address !== null ? address.port : 0, targetPort)
    server.on('connection', (client) => proxy.#accept(client))
    return proxy
  }

  #accept(client: Socket): void {
    const server = connect({ port: this.#targetPort, host: '127.0.0.1' })
    const link: Link = { client, server, heldToServer: [], heldToClient: [] }
    this.#links.add(link)
    client.on('data', (chunk) => {
      if (this.#mode === 'partition') link.heldToServer.push(chunk)
      else server.write(chunk)
    })
    server.on('data', (chunk) => {
      if (this.#mode === 'forward') client.write(chunk)
      else link.heldToClient.push(chunk)
    })
    const drop = () => {
      this.#links.delete(link)
      client.destroy()
      server.destroy()
    }
    client.on('error', drop)
    server.on('error', drop)
    client.on('close', drop)
    server.on('close', drop)
  }

  partition(): void {
    this.#mode = 'partition'
  }

  holdReplies(): void {
    this.#mode = 'hold-replies'
  }

  heal(): void {
    this.#mode = 'forward'
    for (const link of this.#links) {
      for (const chunk of link.heldToServer.splice(0)) link.server.write(chunk)
      for (const chunk of link.heldToClient.splice(0)) link.client.write(chunk)
    }
  }

  /** Destroys every open connection; what was held is lost. */
  cut(): void {
    for (const link of this.#links) {
      link.client.destroy()
      link.server.destroy()
    }
    this.#links.clear()
  }

  get connections(): number {
    return this.#links.size
  }

  async stop(): Promise<void> {
    this.cut()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}
