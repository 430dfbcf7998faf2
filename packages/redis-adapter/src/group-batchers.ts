import type { TickBatcher } from '@tiercache/core/adapter'
import type { RedisClient } from './connections.js'

/**
 * The batcher of one connection and hash-tag group, made on first use. A
 * standalone connection has one group (''); a Cluster has at most
 * KEY_GROUPS per deployment, so the map stays small.
 */
export function batcherOf<Item, Result>(
  batchers: WeakMap<RedisClient, Map<string, TickBatcher<Item, Result>>>,
  client: RedisClient,
  group: string,
  create: () => TickBatcher<Item, Result>,
): TickBatcher<Item, Result> {
  let byGroup = batchers.get(client)
  if (byGroup === undefined) {
    byGroup = new Map()
    batchers.set(client, byGroup)
  }
  let batcher = byGroup.get(group)
  if (batcher === undefined) {
    batcher = create()
    byGroup.set(group, batcher)
  }
  return batcher
}
