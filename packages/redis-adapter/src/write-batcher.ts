import { TickBatcher, encodeCarryingHead, type CarriedWire, type OriginInvalidation, type PublishRoute } from '@tiercache/core/adapter'
import { MAX_CARRIED_BYTES_PER_MESSAGE, carryOf, type CarriedWrite, type CarrySide } from './carry.js'
import { randomBytes } from 'node:crypto'
import { isCluster, type RedisClient } from './connections.js'
import { batcherOf } from './group-batchers.js'
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
  /** 'f' and 'r': the lease token; 'f': the scope (generation and tag epoch) its lease recorded. */
  readonly token?: string
  readonly expectedGeneration?: string
  /** The tags to write the entry under (U+001F-joined). */
  readonly tags?: string
  /** Invalidations to publish with this write, the route they go by, and the channel (on Cluster, the group's shard channel). */
  readonly publish?: { readonly route: PublishRoute; readonly channel: string; readonly batch: readonly OriginInvalidation[] }
  /** carryValues: the value to carry with this write's key invalidation if the script stores it (a set or fill small enough). */
  readonly carry?: { readonly side: CarrySide; readonly write: CarriedWrite }
}

/** WAIT after a write: how many replicas must have it, and how long to wait for them. */
export interface ReplicaWait {
  readonly replicas: number
  readonly timeoutMs: number
}

/**
 * The nonce of each script call: this process's random prefix and a
 * counter. The script makes its fresh bookkeeping values (a generation, a tag
 * epoch, a tag version) from the server's time and this nonce, so a value is
 * never made twice, even by two processes in the same microsecond or after
 * the server's clock stepped back (see scripts.ts: a lost key made again must
 * never equal a value it held before).
 */
const NONCE_PREFIX = randomBytes(6).toString('base64url')
let batches = 0

function nextNonce(): string {
  batches = (batches + 1) % Number.MAX_SAFE_INTEGER
  return NONCE_PREFIX + batches.toString(36)
}

/** A batch's payloads stay under this many bytes, so one burst of big values cannot become one huge script call. */
const MAX_BATCH_BYTES = 4 * 1024 * 1024

/**
 * Writes issued in one tick on one connection (on Cluster: in one hash-tag
 * group, so in one slot) go to Redis as one script call, in the order they
 * were issued (a fill and a delete of the same key must not swap), with
 * their invalidations as one message per channel.
 */
const batchers = new WeakMap<RedisClient, Map<string, TickBatcher<Submitted, number | string>>>()

interface Submitted {
  readonly operation: WriteOperation
  readonly wait: ReplicaWait | undefined
}

export function submitWrite(client: RedisClient, group: string, operation: WriteOperation, wait?: ReplicaWait): Promise<number | string> {
  const batcher = batcherOf(
    batchers,
    client,
    group,
    () =>
      new TickBatcher<Submitted, number | string>((submitted) => runBatch(client, submitted), {
        maxWeight: MAX_BATCH_BYTES,
        weigh: (submitted) => submitted.operation.payload?.byteLength ?? 0,
      }),
  )
  return batcher.submit({ operation, wait })
}

async function runBatch(client: RedisClient, submitted: Submitted[]): Promise<Array<number | string>> {
  const operations = submitted.map((s) => s.operation)
  // The strictest wait of the batch's tiers covers them all (tiers of one connection usually share one).
  let wait: ReplicaWait | undefined
  for (const { wait: w } of submitted) {
    if (w !== undefined) wait = { replicas: Math.max(w.replicas, wait?.replicas ?? 0), timeoutMs: Math.max(w.timeoutMs, wait?.timeoutMs ?? 0) }
  }
  const keys: string[] = []
  const operationArgs: Array<string | Buffer> = []
  const byChannel = new Map<string, { route: PublishRoute; batch: OriginInvalidation[]; carried?: CarriedInBatch }>()
  let opIndex = 0
  for (const operation of operations) {
    opIndex++
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
      let channel = byChannel.get(publish.channel)
      if (channel === undefined) byChannel.set(publish.channel, (channel = { route: publish.route, batch: [] }))
      const offset = channel.batch.length
      channel.batch.push(...publish.batch)
      // carryValues: this process's own invalidations, registered with their own bus before the script is sent (carry.ts OwnWrites).
      carryOf(publish.route)?.own.register(publish.batch)
      if (operation.carry !== undefined) noteCarried(channel, operation.carry, publish.batch, offset, opIndex)
    }
  }
  // On Cluster a classic PUBLISH would go to every node of the cluster; SPUBLISH stays in the slot's shard.
  const carrying = [...byChannel.values()].some((channel) => channel.carried !== undefined)
  // Carrying: (channel, plain message, carrying message head or '', the operations it needs stored) per channel (scripts.ts WRITE_BATCH).
  const messageArgs: string[] = [nextNonce(), isCluster(client) ? 'SPUBLISH' : 'PUBLISH', carrying ? `${byChannel.size}c` : String(byChannel.size)]
  for (const [channel, { route, batch, carried }] of byChannel) {
    const plain = route.encode(batch)
    if (!carrying) messageArgs.push(channel, plain)
    else {
      const head = carried === undefined ? undefined : encodeCarryingHead(plain, carried.wire)
      messageArgs.push(channel, plain, head ?? '', head === undefined ? '' : carried!.operations.join(','))
    }
  }
  const scriptArgs = [...keys, ...messageArgs, ...operationArgs]
  let writing: Promise<Array<number | string>>
  let replicated: Promise<number> | undefined
  if (wait === undefined) {
    writing = defineScripts(client).tiercacheWrite(keys.length, ...scriptArgs)
  } else if (isCluster(client)) {
    // WAIT has no key: only a pipeline keeps it on the connection of the write's slot.
    const replies = (defineScripts(client).pipeline() as unknown as ScriptedPipeline)
      .tiercacheWrite(keys.length, ...scriptArgs)
      .wait(wait.replicas, wait.timeoutMs)
      .exec()
    writing = replies.then((all) => replyOf<Array<number | string>>(all, 0))
    replicated = replies.then((all) => replyOf<number>(all, 1))
  } else {
    writing = defineScripts(client).tiercacheWrite(keys.length, ...scriptArgs)
    // Sent right behind the write on the same connection: answered once the replicas have it.
    replicated = client.wait(wait.replicas, wait.timeoutMs)
  }
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

/** The values one channel's message carries: their wire entries, and the operations (1-based) whose writes must all be stored. */
interface CarriedInBatch {
  readonly wire: CarriedWire[]
  readonly operations: number[]
  bytes: number
}

/**
 * Adds one write's value to its channel's carrying message, if the
 * message's budget (MAX_CARRIED_BYTES_PER_MESSAGE, carry.ts) has room; past
 * it the write goes plain (its key is evicted, its value re-read).
 */
function noteCarried(
  channel: { carried?: CarriedInBatch },
  carry: NonNullable<WriteOperation['carry']>,
  batch: readonly OriginInvalidation[],
  offset: number,
  opIndex: number,
): void {
  const { write, side } = carry
  const at = batch.findIndex(
    ({ origin, invalidation: inv }) => origin === write.origin && inv.kind === 'key' && inv.cache === write.cache && inv.key === write.key,
  )
  if (at < 0) return
  const carried = (channel.carried ??= { wire: [], operations: [], bytes: 0 })
  if (carried.bytes + write.payload.byteLength > MAX_CARRIED_BYTES_PER_MESSAGE) return
  carried.bytes += write.payload.byteLength
  carried.wire.push(side.wire(offset + at, write))
  carried.operations.push(opIndex)
}

interface ScriptedPipeline {
  tiercacheWrite(numberOfKeys: number, ...keysAndArgs: Array<string | Buffer>): ScriptedPipeline
  wait(replicas: number, timeoutMs: number): ScriptedPipeline
  exec(): Promise<Array<[Error | null, unknown]> | null>
}

/** The reply of command `index` of an executed pipeline, or its error thrown. */
function replyOf<T>(replies: Array<[Error | null, unknown]> | null, index: number): T {
  const reply = replies?.[index]
  if (reply === undefined) throw new Error('the pipeline was not executed')
  if (reply[0] !== null) throw reply[0]
  return reply[1] as T
}
