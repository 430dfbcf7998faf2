import { Redis } from 'ioredis'
import { afterAll, afterEach, beforeAll } from 'vitest'
import { RedisServer } from './redis-server.js'

export interface RedisSuite {
  /** The suite's own redis-server (started before the first test). */
  readonly server: RedisServer
  /** A plain client on it, for looking at what the cache stored. */
  readonly raw: Redis
  /** Run after the current test, last registered first (caches, buses, proxies, processes). */
  cleanup(...steps: Array<() => unknown>): void
}

/**
 * Registers the hooks every Redis-backed test file needs: its own
 * redis-server for the file, cleanups after each test, then FLUSHALL, and
 * the server stopped at the end.
 */
export function useRedisSuite(): RedisSuite {
  const steps: Array<() => unknown> = []
  let server: RedisServer | undefined
  let raw: Redis | undefined
  beforeAll(async () => {
    server = await RedisServer.start()
    raw = new Redis(server.url)
  })
  afterEach(async () => {
    for (const step of steps.splice(0).reverse()) await step()
    await raw?.flushall()
  })
  afterAll(async () => {
    raw?.disconnect()
    await server?.stop()
  })
  return {
    get server() {
      return server!
    },
    get raw() {
      return raw!
    },
    cleanup: (...added) => {
      steps.push(...added)
    },
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
