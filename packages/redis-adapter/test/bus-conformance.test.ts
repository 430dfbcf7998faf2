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

/** Kills every pub/sub connection on each node: the buses see their subscriptions break. */
async function killSubscribers(ports: readonly number[]): Promise<void> {
  for (const port of ports) {
    const raw = new Redis(port, '127.0.0.1')
    try {
      await raw.call('CLIENT', 'KILL', 'TYPE', 'pubsub')
    } finally {
      raw.disconnect()
    }
  }
}

/** Two redisBus instances on one deployment, as two processes would hold. */
function harness(redis: string | string[], nodePorts: () => readonly number[]) {
  return async () => {
    const prefix = `conf${prefixes++}`
    const a = redisBus({ redis, prefix, maxStaleness: 1_000 })
    const b = redisBus({ redis, prefix, maxStaleness: 1_000 })
    return {
      buses: [a, b] as const,
      ready: async () => {
        await Promise.all([a.ready(), b.ready()])
      },
      breakSubscription: () => killSubscribers(nodePorts()),
      close: async () => {
        await Promise.all([a.close(), b.close()])
      },
    }
  }
}

runBusConformance({ name: 'redisBus on a real redis-server', open: harness(server.url, () => [server.port]) })

const cluster = await ClusterGroup.start({ primaries: 3, replicasPerPrimary: 0 })
afterAll(() => cluster.stop())

runBusConformance({
  name: 'redisBus on a Redis Cluster of 3 primaries (sharded pub/sub)',
  open: harness(
    cluster.nodes.map(({ port }) => `redis://127.0.0.1:${port}`),
    () => cluster.primaryPorts(),
  ),
})
