import type { Redis } from 'ioredis'
import { TickBatcher, type OriginInvalidation, type PublishRoute } from '@tiercache/core'
import { defineScripts } from './scripts.js'

/** One write of a batch; see WRITE_BATCH in scripts.ts. */
export interface WriteOperation {
  readonly kind: 's' | 'a' | 'd' | 'c'
  /** The entry key ('c': the generation key). */
  readonly key: string
  readonly generationKey: string
  readonly payload?: Buffer
  readonly ttlMs?: number
  /** Invalidations to publish with this write, and the route they go by. */
  readonly publish?: { readonly route: PublishRoute; readonly batch: readonly OriginInvalidation[] }
}

/**
 * Writes issued in one tick on one connection go to Redis as one script
 * call, and their invalidations as one message. Batchers are per connection
 * and per channel (caches of different deployments may share a connection).
 */
const batchers = new WeakMap<Redis, Map<string, TickBatcher<WriteOperation, number>>>()

export function submitWrite(client: Redis, operation: WriteOperation): Promise<number> {
  let byChannel = batchers.get(client)
  if (byChannel === undefined) {
    byChannel = new Map()
    batchers.set(client, byChannel)
  }
  const channel = operation.publish?.route.channel ?? ''
  let batcher = byChannel.get(channel)
  if (batcher === undefined) {
    batcher = new TickBatcher((operations) => runBatch(client, channel, operations))
    byChannel.set(channel, batcher)
  }
  return batcher.submit(operation)
}

async function runBatch(client: Redis, channel: string, operations: WriteOperation[]): Promise<number[]> {
  const keys: string[] = []
  const args: Array<string | Buffer> = []
  const invalidations: OriginInvalidation[] = []
  let route: PublishRoute | undefined
  for (const operation of operations) {
    keys.push(operation.key, operation.generationKey)
    args.push(operation.kind, operation.payload ?? '', String(operation.ttlMs ?? 0))
    if (operation.publish !== undefined) {
      route = operation.publish.route
      invalidations.push(...operation.publish.batch)
    }
  }
  const message = route === undefined ? '' : route.encode(invalidations)
  const results = await defineScripts(client).tiercacheWrite(keys.length, ...keys, route === undefined ? '' : channel, message, ...args)
  route?.notePublished()
  return results
}
