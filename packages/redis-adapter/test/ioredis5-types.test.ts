/**
 * Type level: a client of ioredis 5 type-checks as `redis`, though this
 * package is built against ioredis 6. ioredis's `Redis` and `Cluster` have
 * private members, so a class from another copy or major is never
 * assignable to the one we import; RedisInput is structural instead. The
 * classes below copy ioredis 5.3's declarations of the members involved
 * (private members included, which is what makes a class nominal). Checked
 * by `tsc` (pnpm -r run typecheck); the full install of real ioredis 5 is
 * tests/pack-install.test.ts.
 */
import { EventEmitter } from 'node:events'
import type { ConnectionOptions } from 'node:tls'
import type { Cluster, Redis } from 'ioredis'
import { describe, expectTypeOf, it } from 'vitest'
import type { RedisClientLike, RedisConnectionOptions, RedisInput, redisBus, redisTier } from '../src/index.js'

type RedisStatus5 = 'wait' | 'reconnecting' | 'connecting' | 'connect' | 'ready' | 'close' | 'end'

/** ioredis 5's RedisOptions, as far as options next to a URL go. */
interface RedisOptions5 {
  // biome-ignore lint/suspicious/noConfusingVoidType: ioredis 5 declares it so
  retryStrategy?: ((times: number) => number | void | null) | null
  reconnectOnError?: ((error: Error) => boolean | 1 | 2) | null
  maxRetriesPerRequest?: number | null
  connectTimeout?: number
  username?: string
  password?: string
  db?: number
  tls?: ConnectionOptions
  connectionName?: string
  lazyConnect?: boolean
  enableAutoPipelining?: boolean
  keyPrefix?: string
  sentinels?: Array<Partial<{ host: string; port: number; family: number }>>
  name?: string
}

declare class Command5 {
  name: string
}

declare class Redis5 extends EventEmitter {
  private connector
  private offlineQueue
  options: RedisOptions5
  status: RedisStatus5
  isCluster: boolean
  connect(callback?: (error?: Error | null) => void): Promise<void>
  disconnect(reconnect?: boolean): void
  duplicate(override?: Partial<RedisOptions5>): Redis5
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number; readOnly?: boolean }): void
  sendCommand(command: Command5, stream?: unknown, node?: unknown): unknown
}

declare class Cluster5 extends EventEmitter {
  private startupNodes
  private slots
  options: { redisOptions?: RedisOptions5 }
  status: 'end' | 'close' | 'wait' | 'connecting' | 'connect' | 'ready' | 'reconnecting' | 'disconnecting'
  isCluster: boolean
  connect(): Promise<void>
  duplicate(overrideStartupNodes?: unknown[], overrideOptions?: object): Cluster5
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number; readOnly?: boolean }): void
  sendCommand(command: Command5, stream?: unknown, node?: unknown): unknown
}

describe('ioredis 5 types', () => {
  it('a Redis and a Cluster of ioredis 5 are RedisInput, as are those of ioredis 6', () => {
    expectTypeOf<Redis5>().toExtend<RedisInput>()
    expectTypeOf<Cluster5>().toExtend<RedisInput>()
    expectTypeOf<Redis5>().toExtend<RedisClientLike>()
    expectTypeOf<Redis>().toExtend<RedisInput>()
    expectTypeOf<Cluster>().toExtend<RedisInput>()
    expectTypeOf<Redis5>().toExtend<Parameters<typeof redisTier>[0]['redis']>()
    expectTypeOf<Cluster5>().toExtend<Parameters<typeof redisBus>[0]['redis']>()
  })

  it('the RedisOptions of ioredis 5 go next to a URL as they are', () => {
    expectTypeOf<RedisOptions5>().toExtend<RedisConnectionOptions>()
    expectTypeOf<{ url: string; options: RedisOptions5 }>().toExtend<RedisInput>()
  })

  it('what is not a client or a URL does not type-check', () => {
    expectTypeOf<{ host: string; port: number }>().not.toExtend<RedisInput>()
    expectTypeOf<{ sendCommand(): void; duplicate(): void }>().not.toExtend<RedisInput>()
    expectTypeOf<{ url: string; options: { pasword: string } }>().not.toExtend<RedisInput>()
  })
})
