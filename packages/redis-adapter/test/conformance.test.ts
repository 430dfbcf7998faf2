import { runTierConformance } from '@tiercache/core/testing'
import { afterAll } from 'vitest'
import { ClusterGroup } from '../../../tests/support/redis-cluster.js'
import { RedisServer } from '../../../tests/support/redis-server.js'
import { redisTier } from '../src/index.js'

const server = await RedisServer.start()
afterAll(() => server.stop())

runTierConformance({
  name: 'redisTier (L2) on a real redis-server',
  kind: 'shared',
  createTier: () => redisTier({ redis: server.url }),
  cleanup: () => {
    server.cli('FLUSHALL')
  },
})

// The same contract on Redis Cluster (3 primaries, no replicas: the suite checks
// the tier, not failover), through a list of seed nodes.
const cluster = await ClusterGroup.start({ primaries: 3, replicasPerPrimary: 0 })
afterAll(() => cluster.stop())

runTierConformance({
  name: 'redisTier (L2) on a Redis Cluster of 3 primaries',
  kind: 'shared',
  createTier: () => redisTier({ redis: cluster.nodes.map(({ port }) => `redis://127.0.0.1:${port}`) }),
  cleanup: () => {
    for (const port of cluster.primaryPorts()) cluster.server(port).cli('FLUSHALL')
  },
})
