import { TickBatcher, clock } from '@tiercache/core/adapter'
import type { RedisClient } from './connections.js'
import { batcherOf } from './group-batchers.js'
import { defineScripts, type ReadReply } from './scripts.js'
import { serverClockOf } from './server-clock.js'

/** One read of a batch; see READ_ENTRIES in scripts.ts. */
export interface ReadRequest {
  readonly entryKey: string
  readonly generationKey: string
  readonly leaseKey: string
  /** '0' for a plain read; otherwise the lease's length, asked for on a miss or a stale hit. */
  readonly leaseMs: string
  /** '0', or how close to its expiry a fresh entry is leased for its refresh ahead (whole ms). */
  readonly refreshAheadMs: string
  readonly token: string
}

/** An entry's stored bytes and its cache's current generation, read together (MGET is atomic). */
export type FastReadReply = readonly [stored: Buffer | null, generation: Buffer | null]

/*
 * Reads issued in one tick on one connection go to Redis as one command: the
 * scripted reads as one READ_ENTRIES call, the fast reads as one MGET.
 *
 * Why not ioredis auto-pipelining: it waits for `setImmediate` and builds a
 * Pipeline per batch, which measured about 15 µs per call for a lone caller
 * (bench/scenarios/l2-hit.mjs) — a fifth of an L2 hit — and still sends one
 * command per read, each script call paying Redis's per-script setup (about
 * 3 µs of server time). One command for the whole tick's reads pays that
 * once, and flushes on `process.nextTick`, when every promise chain resumed
 * by the previous replies has issued its next read.
 */
const scriptBatchers = new WeakMap<RedisClient, Map<string, TickBatcher<ReadRequest, ReadReply>>>()
const fastBatchers = new WeakMap<RedisClient, Map<string, TickBatcher<readonly [string, string], FastReadReply>>>()

/**
 * A read through READ_ENTRIES: generation and tags checked in Redis, lease
 * taken on a miss. `group` is the keys' hash-tag group on Cluster ('' when
 * standalone): one command carries only one group's reads, all in one slot.
 */
export function submitRead(client: RedisClient, group: string, request: ReadRequest): Promise<ReadReply> {
  return batcherOf(scriptBatchers, client, group, () => new TickBatcher((requests) => runScriptBatch(client, group, requests))).submit(request)
}

/** A read without a script: the entry and its generation in one MGET, checked by the caller. */
export function submitFastRead(client: RedisClient, group: string, entryKey: string, generationKey: string): Promise<FastReadReply> {
  return batcherOf(fastBatchers, client, group, () => new TickBatcher((requests) => runFastBatch(client, requests))).submit([entryKey, generationKey])
}

async function runScriptBatch(client: RedisClient, group: string, requests: ReadRequest[]): Promise<ReadReply[]> {
  const keys: string[] = new Array(requests.length * 3)
  const args: string[] = new Array(requests.length * 3)
  for (let i = 0; i < requests.length; i++) {
    const request = requests[i]!
    keys[i * 3] = request.entryKey
    keys[i * 3 + 1] = request.generationKey
    keys[i * 3 + 2] = request.leaseKey
    args[i * 3] = request.leaseMs
    args[i * 3 + 1] = request.refreshAheadMs
    args[i * 3 + 2] = request.token
  }
  const sentAt = clock()
  const replies = await defineScripts(client).tiercacheReadBuffer(keys.length, ...keys, ...args)
  // The script appends its TIME: the sample the fast path's freshness check relies on.
  const serverNow = replies.pop() as unknown as number
  serverClockOf(client, group).record(serverNow, sentAt)
  return replies
}

/**
 * One MGET: every entry key, then each distinct generation key once (the
 * reads of a tick are usually one cache's, so 64 reads ask for 65 keys, not 128).
 */
async function runFastBatch(client: RedisClient, requests: Array<readonly [string, string]>): Promise<FastReadReply[]> {
  const keys: string[] = new Array<string>(requests.length)
  const generationSlot: number[] = new Array<number>(requests.length)
  let lastGenerationKey = ''
  let lastSlot = -1
  for (let i = 0; i < requests.length; i++) {
    const [entryKey, generationKey] = requests[i]!
    keys[i] = entryKey
    if (generationKey !== lastGenerationKey || lastSlot < 0) {
      const known = keys.indexOf(generationKey, requests.length)
      lastSlot = known >= 0 ? known : keys.push(generationKey) - 1
      lastGenerationKey = generationKey
    }
    generationSlot[i] = lastSlot
  }
  const values = await client.mgetBuffer(...keys)
  const replies: FastReadReply[] = new Array<FastReadReply>(requests.length)
  for (let i = 0; i < requests.length; i++) replies[i] = [values[i] ?? null, values[generationSlot[i]!] ?? null]
  return replies
}
