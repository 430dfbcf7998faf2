/**
 * The Bus contract (@tiercache/core/testing) on the real transports: two
 * redisBus instances on one redis-server (the subscription broken with
 * CLIENT KILL for the gap case), and two on a 3-primary Redis Cluster
 * (sharded pub/sub; every shard's subscriber killed for the gap case).
 */
import { runBusConformance } from '@tiercache/core/testing'
import { Redis } from 'ioredis'
import { afterAll } from 'vitest'
import { ClusterGroup } from '../../../tests/support/redis-cluster.js'
import { RedisServer } from '../../../tests/support/redis-server.js'
import { redisBus } from '../src/index.js'

const server = await RedisServer.start()
afterAll(() => server.stop())

let prefixes = 0

runBusConformance({
  name: 'redisBus on a real redis-server',
  open: async () => {
    const prefix = `conf${prefixes++}`
    const a = redisBus({ redis: server.url, prefix, maxStaleness: 1_000 })
    const b = redisBus({ redis: server.url, prefix, maxStaleness: 1_000 })
    return {
      buses: [a, b],
      ready: async () => {
        await Promise.all([a.ready(), b.ready()])
      },
      breakSubscription: async () => {
        // Kills every pub/sub connection on the server: both buses see their subscription break.
        const raw = new Redis(server.url)
        try {
          await raw.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
        } finally {
          raw.disconnect()
        }
      },
      close: async () => {
        await Promise.all([a.close(), b.close()])
      },
    }
  },
})

const cluster = await ClusterGroup.start({ primaries: 3, replicasPerPrimary: 0 })
afterAll(() => cluster.stop())

runBusConformance({
  name: 'redisBus on a Redis Cluster of 3 primaries (sharded pub/sub)',
  open: async () => {
    const prefix = `cconf${prefixes++}`
    const seeds = cluster.nodes.map(({ port }) => `redis://127.0.0.1:${port}`)
    const a = redisBus({ redis: seeds, prefix, maxStaleness: 1_000 })
    const b = redisBus({ redis: seeds, prefix, maxStaleness: 1_000 })
    return {
      buses: [a, b],
      ready: async () => {
        await Promise.all([a.ready(), b.ready()])
      },
      breakSubscription: async () => {
        for (const port of cluster.primaryPorts()) {
          const raw = new Redis(port, '127.0.0.1')
          try {
            await raw.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
          } finally {
            raw.disconnect()
          }
        }
      },
      close: async () => {
        await Promise.all([a.close(), b.close()])
      },
    }
  },
})
