/**
 * Carrying values on the bus (redisBus `carryValues`, docs/coherence.md
 * "Carrying values on the bus"): a small value a write stored rides with
 * its key's invalidation, so readers need not re-read L2. Off by default;
 * when off, nothing here runs. The hazards and where each is closed:
 *   - a message always evicts: the value rides in an extra field of the
 *     plain v1 message (same `"i"` list), the receiver evicts first,
 *     whatever the extra field holds (BusCore.receive);
 *   - only what the write script stored: the script publishes the carrying
 *     message only if every carried operation returned 1 (stored), else the
 *     plain one (scripts.ts WRITE_BATCH); the bytes are the very ARGV the
 *     SET wrote after its header;
 *   - authenticated: an HMAC-SHA256 over the value and what it is for, or a
 *     channel the user declared ACL-protected; a bad MAC evicts only;
 *   - a guarded fill, never a comparison of versions (local-state.ts
 *     fillCarried), and never into an instance whose own later write of the
 *     key has not come back over the subscription yet (OwnWrites below).
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import type { CarriedValue, CarriedWire, Invalidation, OriginInvalidation, PublishRoute, Serializer, TierEntry } from '@tiercache/core/adapter'
import { decodeEnvelope, TAG_SEPARATOR } from './entry-codec.js'

export interface CarryConfig {
  /** Largest encoded entry (envelope bytes) carried; larger writes send the plain message. */
  readonly maxBytes: number
  readonly secret: Buffer | undefined
}

/**
 * Carried bytes per message, at most (64 KiB, base64 makes ~86 KiB). Past
 * it the batch's remaining writes go plain. Why it is enough for Redis's
 * pub/sub output-buffer limit (`client-output-buffer-limit pubsub 32mb 8mb
 * 60` by default): a tick's batch holds at most 512 invalidations (the
 * write batcher's TickBatcher), whose plain message is ~25-60 KiB for
 * typical keys; with values it is at most ~150 KiB, i.e. a subscriber that
 * falls ~55 messages (8 MiB) behind for 60 s, or ~220 at once (32 MiB), is
 * disconnected instead of ~140/~560 plain ones. A disconnect is a gap
 * (liveness: every L1 on that bus is emptied before it is trusted again),
 * so the limit costs hit rate, never coherence; the cap keeps carrying from
 * making it more than ~2.5x likelier than today at the same write rate.
 */
export const MAX_CARRIED_BYTES_PER_MESSAGE = 64 * 1024

/** The route a carrying bus offers its tiers: the plain route, plus what a tier needs to carry. */
export interface CarryingRoute extends PublishRoute {
  readonly carry: CarrySide
}

export function carryOf(route: PublishRoute | undefined): CarrySide | undefined {
  return (route as Partial<CarryingRoute> | undefined)?.carry
}

/** One value to carry, as the writing tier hands it to the write script. */
export interface CarriedWrite {
  readonly origin: string
  readonly cache: string
  readonly key: string
  readonly payload: Buffer
  readonly freshMs: number
  readonly ttlMs: number
  readonly tags: string
}

/** MAC input: each field length-prefixed, so no two different tuples hash the same bytes. */
export function macOf(secret: Buffer, write: Omit<CarriedWrite, 'payload'>, payload: Buffer): string {
  const hmac = createHmac('sha256', secret)
  for (const field of [write.origin, write.cache, write.key, String(write.freshMs), String(write.ttlMs), write.tags]) {
    const bytes = Buffer.from(field, 'utf8')
    hmac.update(`${bytes.length}:`).update(bytes)
  }
  hmac.update(`${payload.length}:`).update(payload)
  return hmac.digest('base64url')
}

/**
 * The bus's side of carrying, shared by its tiers (sending) and its
 * receive path: the options, each cache's serializer (registered by a tier
 * that publishes atomically through this bus), the own-writes tracker and
 * the counters.
 */
export class CarrySide {
  readonly config: CarryConfig
  readonly own = new OwnWrites()
  /** Serializers of the caches whose tiers write through this bus's connection; null: two different ones (no carrying). */
  readonly #serializers = new Map<string, Serializer | null>()
  applied = 0
  rejected = 0
  undecodable = 0

  constructor(config: CarryConfig) {
    this.config = config
  }

  /** A tier of `cache` publishes atomically through this bus: its writes may carry, and its instances may take carried values. */
  accept(cache: string, serializer: Serializer): void {
    const known = this.#serializers.get(cache)
    this.#serializers.set(cache, known === undefined || known === serializer ? serializer : null)
  }

  serializerOf(cache: string): Serializer | undefined {
    return this.#serializers.get(cache) ?? undefined
  }

  /** The wire entry of one carried value at `index` of the message's `"i"`. */
  wire(index: number, write: CarriedWrite): CarriedWire {
    const secret = this.config.secret
    return [index, write.payload.toString('base64'), write.freshMs, write.ttlMs, write.tags, secret === undefined ? '' : macOf(secret, write, write.payload)]
  }

  /** The carried value's bytes if its MAC holds (or the channel is declared protected), else undefined (counted). */
  verified(origin: string, cache: string, key: string, carried: CarriedValue): Buffer | undefined {
    const payload = Buffer.from(carried.payload, 'base64')
    const secret = this.config.secret
    if (secret !== undefined) {
      const expected = Buffer.from(macOf(secret, { origin, cache, key, freshMs: carried.freshMs, ttlMs: carried.ttlMs, tags: carried.tags }, payload))
      const given = Buffer.from(carried.mac)
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
        this.rejected++
        return undefined
      }
    }
    return payload
  }

  /**
   * The entry to offer, on this process's clock: fresh until the script's
   * server time plus `freshMs`, converted with the over-estimated offset of
   * the connection's server clock (as the tier's fast read does: never later
   * than the true expiry), and never past arrival + `freshMs` / + `ttlMs`
   * (the server time is not under the MAC). Undefined when the offset is
   * unknown, the value does not decode, or it is no longer fresh.
   */
  entryOf(
    payload: Buffer,
    carried: CarriedValue,
    serializer: Serializer,
    serverNowMs: number | undefined,
    aheadMs: number | undefined,
    now: number,
  ): TierEntry | undefined {
    if (serverNowMs === undefined || aheadMs === undefined) return undefined
    const envelope = decodeEnvelope(payload, serializer)
    if (envelope === undefined) {
      this.undecodable++
      return undefined
    }
    const expiresAt = Math.min(serverNowMs + carried.freshMs - aheadMs, now + carried.freshMs)
    const staleUntil = Math.min(expiresAt + envelope.graceMs, now + carried.ttlMs)
    if (expiresAt <= now) return undefined
    this.applied++
    const { value, createdAt } = envelope
    if (carried.tags === '') return { value, createdAt, expiresAt, staleUntil }
    return { value, createdAt, expiresAt, staleUntil, tags: carried.tags.split(TAG_SEPARATOR) }
  }
}

/** Past this many tracked keys, no carried value is taken any more (fail closed; writes that failed without publishing stay tracked). */
const MAX_TRACKED = 10_000

/**
 * This process's own invalidations not yet echoed back over the
 * subscription. Why: a carrying message M from another instance may be
 * published before this instance's own write W of the same key, yet arrive
 * after W's reply (two sockets); W's own message is skipped by this
 * instance, so a value taken from M would be older than what Redis holds,
 * with nothing left to evict it. Every write of a carrying cache goes out
 * through its tier's write script with this bus's route (the write batcher
 * registers it here before the script is sent), and anything published
 * through the bus itself is registered by BusCore; it is released when its own message comes
 * back, which is after M. A write that fails without publishing stays
 * registered (its key then only evicts): fail closed, bounded.
 */
export class OwnWrites {
  /** instanceId → (cache, key) → count; `cache` alone for tag and clear invalidations (they block the whole cache). */
  #pending = new Map<string, Map<string, number>>()
  #size = 0
  /** A write went untracked: no carried value is safe to take any more in this process (carrying degrades to plain evictions). */
  #overflowed = false

  register(batch: readonly OriginInvalidation[]): void {
    for (const { origin, invalidation } of batch) {
      let byKey = this.#pending.get(origin)
      if (byKey === undefined) this.#pending.set(origin, (byKey = new Map()))
      const name = nameOf(invalidation)
      const count = byKey.get(name)
      if (count === undefined) {
        // Full: this write is not tracked, so nothing may be taken any more (see refuses); memory stays bounded.
        if (this.#size >= MAX_TRACKED) {
          this.#overflowed = true
          continue
        }
        this.#size++
      }
      byKey.set(name, (count ?? 0) + 1)
    }
  }

  release(origin: string, invalidation: Invalidation): void {
    const byKey = this.#pending.get(origin)
    if (byKey === undefined) return
    const name = nameOf(invalidation)
    const count = byKey.get(name)
    if (count === undefined) return
    if (count > 1) byKey.set(name, count - 1)
    else {
      byKey.delete(name)
      this.#size--
      if (byKey.size === 0) this.#pending.delete(origin)
    }
  }

  /** Whether `instanceId` must not take a carried value for `key` of `cache` now. */
  refuses(instanceId: string, cache: string, key: string): boolean {
    if (this.#overflowed) return true
    const byKey = this.#pending.get(instanceId)
    return byKey !== undefined && (byKey.has(`${cache}\u0000`) || byKey.has(`${cache}\u0000${key}`))
  }
}

function nameOf(invalidation: Invalidation): string {
  return invalidation.kind === 'key' ? `${invalidation.cache}\u0000${invalidation.key}` : `${invalidation.cache}\u0000`
}
