/**
 * A TCP link with added latency, for the checker's `slow-link` fault: every
 * chunk, each way, is forwarded `delayMs` after it arrived, in order. With a
 * slow link an instance's writes reach Redis late and other instances'
 * invalidations reach it late, so a fill it stores can land after a delete
 * it has not heard of yet: only the delete's revoking of the fill's lease
 * keeps that older value out of L2 (coherence mechanism 4).
 */
import { createServer, connect, type Server, type Socket } from 'node:net'

interface Direction {
  to: Socket
  queue: Array<{ due: number; chunk: Buffer }>
  timer: NodeJS.Timeout | undefined
}

export class SlowLink {
  readonly port: number
  delayMs = 0
  #server: Server
  #sockets = new Set<Socket>()

  private constructor(server: Server, port: number) {
    this.#server = server
    this.port = port
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`
  }

  static async start(targetPort: number): Promise<SlowLink> {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const address = server.address()
    const link = new SlowLink(server, typeof address === 'object' && address !== null ? address.port : 0)
    server.on('connection', (client) => link.#accept(client, targetPort))
    return link
  }

  #accept(client: Socket, targetPort: number): void {
    const server = connect({ port: targetPort, host: '127.0.0.1' })
    this.#sockets.add(client).add(server)
    const up: Direction = { to: server, queue: [], timer: undefined }
    const down: Direction = { to: client, queue: [], timer: undefined }
    client.on('data', (chunk) => this.#forward(up, chunk))
    server.on('data', (chunk) => this.#forward(down, chunk))
    const drop = () => {
      for (const direction of [up, down]) clearTimeout(direction.timer)
      this.#sockets.delete(client)
      this.#sockets.delete(server)
      client.destroy()
      server.destroy()
    }
    for (const socket of [client, server]) {
      socket.on('error', drop)
      socket.on('close', drop)
    }
  }

  #forward(direction: Direction, chunk: Buffer): void {
    // Nothing held and no delay: straight through. Otherwise behind what is held, so order is kept.
    if (this.delayMs === 0 && direction.queue.length === 0) {
      direction.to.write(chunk)
      return
    }
    direction.queue.push({ due: performance.now() + this.delayMs, chunk })
    if (direction.timer === undefined) this.#schedule(direction)
  }

  #schedule(direction: Direction): void {
    const head = direction.queue[0]
    if (head === undefined) {
      direction.timer = undefined
      return
    }
    direction.timer = setTimeout(
      () => {
        const now = performance.now()
        while (direction.queue.length > 0 && direction.queue[0]!.due <= now) direction.to.write(direction.queue.shift()!.chunk)
        this.#schedule(direction)
      },
      Math.max(0, head.due - performance.now()),
    )
  }

  async stop(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    this.#sockets.clear()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}
