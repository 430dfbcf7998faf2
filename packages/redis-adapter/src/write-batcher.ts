import type { Redis } from 'ioredis'
import { TickBatcher, type OriginInvalidation, type PublishRoute } from '@tiercache/core'
import { defineScripts } from './scripts.js'

/** One write of a batch; see WRITE_BATCH in scripts.ts. */
export interface WriteOperation {
  readonly kind: 's' | 'a' | 'd' | 'c' | 'f' | 'r' | 't'
  /** The entry key ('c': the generation key). */
  readonly key: string
  readonly generationKey: string
  /** The key's lease ('c': the generation key, unused). */
  readonly leaseKey: string
  readonly payload?: Buffer
  /** Expiry (PX): to the end of grace. */
  readonly ttlMs?: number
  /** How long of `ttlMs` the entry is fresh. */
  readonly freshMs?: number
  /** 'f' and 'r': the lease token; 'f': the generation the read saw. */
  readonly token?: string
  readonly expectedGeneration?: string
  /** The tags to write the entry under (U+001F-joined). */
  readonly tags?: string
  /** Invalidations to publish with this write, and the route they go by. */
  readonly publish?: { readonly route: PublishRoute; readonly batch: readonly OriginInvalidation[] }
}

/** WAIT after a write: how many replicas must have it, and how long to wait for them. */
export interface ReplicaWait {
  readonly replicas: number
  readonly timeoutMs: number
}

/** A batch's payloads stay under this many bytes, so one burst of big values cannot become one huge script call. */
const MAX_BATCH_BYTES = 4 * 1024 * 1024

/**
 * Writes issued in one tick on one connection go to Redis as one script
 * call, in the order they were issued (a fill and a delete of the same key
 * must not swap), with their invalidations as one message per channel.
 */
const batchers = new WeakMap<Redis, TickBatcher<Submitted, number | string>>()

interface Submitted {
  readonly operation: WriteOperation
  readonly wait: ReplicaWait | undefined
}

export function submitWrite(client: Redis, operation: WriteOperation, wait?: ReplicaWait): Promise<number | string> {
  let batcher = batchers.get(client)
  if (batcher === undefined) {
    batcher = new TickBatcher((submitted) => runBatch(client, submitted), {
      maxWeight: MAX_BATCH_BYTES,
      weigh: (submitted) => submitted.operation.payload?.byteLength ?? 0,
    })
    batchers.set(client, batcher)
  }
  return batcher.submit({ operation, wait })
}

async function runBatch(client: Redis, submitted: Submitted[]): Promise<Array<number | string>> {
  const operations = submitted.map((s) => s.operation)
  // The strictest wait of the batch's tiers covers them all (tiers of one connection usually share one).
  let wait: ReplicaWait | undefined
  for (const { wait: w } of submitted) {
    if (w !== undefined) wait = { replicas: Math.max(w.replicas, wait?.replicas ?? 0), timeoutMs: Math.max(w.timeoutMs, wait?.timeoutMs ?? 0) }
  }
  const keys: string[] = []
  const operationArgs: Array<string | Buffer> = []
  const byChannel = new Map<string, { route: PublishRoute; batch: OriginInvalidation[] }>()
  for (const operation of operations) {
    keys.push(operation.key, operation.generationKey, operation.leaseKey)
    operationArgs.push(
      operation.kind,
      operation.payload ?? '',
      String(operation.ttlMs ?? 0),
      String(operation.freshMs ?? 0),
      operation.token ?? '',
      operation.expectedGeneration ?? '',
      operation.tags ?? '',
    )
    const publish = operation.publish
    if (publish !== undefined) {
      const channel = byChannel.get(publish.route.channel)
      if (channel === undefined) byChannel.set(publish.route.channel, { route: publish.route, batch: [...publish.batch] })
      else channel.batch.push(...publish.batch)
    }
  }
  const messageArgs: string[] = [String(byChannel.size)]
  for (const [channel, { route, batch }] of byChannel) messageArgs.push(channel, route.encode(batch))
  const writing = defineScripts(client).tiercacheWrite(keys.length, ...keys, ...messageArgs, ...operationArgs)
  // Sent right behind the write on the same connection: answered once the replicas have it.
  const replicated = wait === undefined ? undefined : client.wait(wait.replicas, wait.timeoutMs)
  replicated?.catch(() => {}) // if the write fails, nobody awaits this one
  const results = await writing
  for (const { route } of byChannel.values()) route.notePublished()
  if (replicated !== undefined && wait !== undefined) {
    const acknowledged = await replicated
    if (acknowledged < wait.replicas) {
      // Written on this node but not (yet) on enough replicas: a failover now would lose it.
      throw new Error(`the write reached ${acknowledged} of ${wait.replicas} replica(s) within ${wait.timeoutMs} ms`)
    }
  }
  return results
}
