import type { OriginInvalidation } from './contracts.js'

/**
 * The wire format of invalidations, shared by every bus that crosses a
 * process boundary:
 *
 *   {"v":1,"i":[[origin,"k",cache,key],[origin,"t",cache,[tag,…]],[origin,"c",cache]]}
 *
 * JSON rather than msgpack: messages are a few dozen bytes, JSON.parse of
 * them is as fast as any decoder, and an operator can read the channel with
 * `redis-cli SUBSCRIBE`. Each invalidation carries its own origin so one
 * message can batch invalidations from several caches of one process.
 */
export const BUS_PROTOCOL_VERSION = 1

export interface DecodedMessage {
  readonly invalidations: OriginInvalidation[]
  /** Entries of the batch that were malformed and skipped. */
  readonly dropped: number
}

export function encodeInvalidations(batch: readonly OriginInvalidation[]): string {
  const items = batch.map(({ origin, invalidation: inv }) =>
    inv.kind === 'key'
      ? [origin, 'k', inv.cache, inv.key]
      : inv.kind === 'tags'
        ? [origin, 't', inv.cache, inv.tags]
        : [origin, 'c', inv.cache],
  )
  return JSON.stringify({ v: BUS_PROTOCOL_VERSION, i: items })
}

/**
 * Decodes a message; returns `undefined` when it is not a message of this
 * protocol at all (garbage, another version). Never throws: bus traffic is
 * untrusted input, and a throw here would surface in a connection's event
 * handler, far from any caller.
 */
export function decodeInvalidations(message: string | Uint8Array): DecodedMessage | undefined {
  let parsed: unknown
  try {
    parsed = JSON.parse(typeof message === 'string' ? message : Buffer.from(message).toString('utf8'))
  } catch {
    return undefined
  }
  if (parsed === null || typeof parsed !== 'object') return undefined
  const { v, i } = parsed as { v?: unknown; i?: unknown }
  if (v !== BUS_PROTOCOL_VERSION || !Array.isArray(i)) return undefined
  const invalidations: OriginInvalidation[] = []
  let dropped = 0
  for (const item of i) {
    const decoded = decodeOne(item)
    if (decoded === undefined) dropped++
    else invalidations.push(decoded)
  }
  return { invalidations, dropped }
}

function decodeOne(item: unknown): OriginInvalidation | undefined {
  if (!Array.isArray(item)) return undefined
  const [origin, kind, cache, key] = item as unknown[]
  if (typeof origin !== 'string' || typeof cache !== 'string') return undefined
  if (kind === 'k' && typeof key === 'string' && item.length === 4) {
    return { origin, invalidation: { kind: 'key', cache, key } }
  }
  if (kind === 't' && item.length === 4 && Array.isArray(key) && key.length > 0 && key.every((tag) => typeof tag === 'string')) {
    return { origin, invalidation: { kind: 'tags', cache, tags: key as string[] } }
  }
  if (kind === 'c' && item.length === 3) return { origin, invalidation: { kind: 'clear', cache } }
  return undefined
}
