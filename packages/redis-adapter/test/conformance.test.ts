import { runTierConformance } from '@tiercache/core/testing'
import { afterAll } from 'vitest'
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
