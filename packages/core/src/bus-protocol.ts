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
 *
 * Bus traffic is untrusted input: anything that can PUBLISH on the channel
 * can send random bytes, huge messages, other versions or floods. The
 * decoder bounds what one message can cost before JSON.parse runs (size,
 * `{…}` framing, nesting depth), never throws, and never lets the message
 * reach an object prototype: names and keys are only ever looked up in Maps
 * and Sets (see BusMembers), and JSON.parse makes a `"__proto__"` member an
 * own property, not a prototype. Unknown top-level fields of a v1 message
 * are ignored (room for additions that older readers may skip).
 */
export const BUS_PROTOCOL_VERSION = 1

/**
 * Largest message the decoder accepts, in UTF-8 bytes (1 MiB). A larger one
 * is dropped unread (the bus counts it in `messagesDropped`), so what one
 * hostile message costs is bounded: JSON.parse of 1 MiB takes a few ms for
 * long strings and up to ~100 ms on a busy core for the worst shape that
 * passes the checks below (`"i"` holding ~350 000 empty objects, each a
 * dropped entry); its garbage is short-lived. Any limit above the
 * coarsened worst case (~64 KiB, below) would keep coherence; a lower one
 * would cut that worst case in proportion but coarsen more real batches.
 *
 * The encoder never exceeds it. What it is given is bounded — a tick's
 * batch holds at most 512 invalidations (TickBatcher's default `maxItems`,
 * for the buses' publish batchers and the tiers' write batcher alike; the
 * cache publishes one invalidation per write), cache names are at most 100
 * ASCII characters and origins are 12-character instance ids — but not
 * tightly enough: a key may be 1024 UTF-16 units, which JSON can make up to
 * 6 KiB (`\u001f`), so 512 of them reach 3 MiB, and one `invalidateTags`
 * may name 10 000 tags of 256 units (2.6 MB of plain ASCII, more in other
 * scripts). Rather than send what every receiver would drop (and so leave
 * their L1 copies stale), an over-size batch is sent coarsened: one `clear`
 * per (origin, cache) it names. A clear drops everything a key or tags
 * invalidation would (and more), so coherence holds at the price of those
 * caches' other L1 entries. At most 512 such entries are ~64 KiB, far below
 * the limit; only a batch of thousands of distinct caches — which the SDK
 * never builds — could still exceed it, and receivers would drop it.
 */
export const MAX_MESSAGE_BYTES = 1024 * 1024

/**
 * Deepest nesting of `[` and `{` in a v1 message: the object, its `i` list,
 * an entry, an entry's tag list. V8's JSON.parse takes hundreds of
 * milliseconds on a megabyte of `[[[[…`, so deeper input is rejected by a
 * linear scan before it is parsed.
 */
const MAX_NESTING = 4

export interface DecodedMessage {
  readonly invalidations: OriginInvalidation[]
  /** Entries of the batch that were malformed and skipped. */
  readonly dropped: number
  /**
   * Only when asked for (`decodeInvalidations(message, true)`): the values a
   * carrying message offers, aligned with `invalidations` (undefined where
   * an invalidation carries none), and the server time (ms) the writing
   * script stamped on the message. See encodeCarrying.
   */
  readonly carried?: Array<CarriedValue | undefined>
  readonly serverNowMs?: number
}

/**
 * A value carried with a key invalidation (`"x"` of a v1 message): what the
 * write script stored for that key, as the writer handed it to the script.
 * Untrusted until its `mac` is checked by the receiving bus; the receiver
 * always evicts first, whatever this holds.
 */
export interface CarriedValue {
  /** The stored envelope bytes, base64. */
  readonly payload: string
  /** How long the entry was fresh from the script's time, and its expiry (end of grace), ms. */
  readonly freshMs: number
  readonly ttlMs: number
  /** Its tags, U+001F-joined ('' for none). */
  readonly tags: string
  /** base64url HMAC-SHA256 ('' on a channel declared protected). */
  readonly mac: string
}

/** One carried value on the wire: [index in "i", payload, freshMs, ttlMs, tags, mac]. */
export type CarriedWire = readonly [number, string, number, number, string, string]

const HEAD = `{"v":${BUS_PROTOCOL_VERSION},"i":[`
const TAIL = ']}'

export function encodeInvalidations(batch: readonly OriginInvalidation[]): string {
  const parts: string[] = []
  // UTF-16 units so far: a lower bound of the UTF-8 bytes (JSON.stringify
  // escapes lone surrogates, so every unit is 1-3 bytes). Stop as soon as it
  // is over, before joining what could be too long for one string.
  let units = HEAD.length + TAIL.length
  for (const { origin, invalidation: inv } of batch) {
    const part = JSON.stringify(
      inv.kind === 'key' ? [origin, 'k', inv.cache, inv.key] : inv.kind === 'tags' ? [origin, 't', inv.cache, inv.tags] : [origin, 'c', inv.cache],
    )
    units += part.length + 1
    if (units > MAX_MESSAGE_BYTES) return encodeCoarsened(batch)
    parts.push(part)
  }
  const message = HEAD + parts.join(',') + TAIL
  if (message.length * 3 <= MAX_MESSAGE_BYTES || Buffer.byteLength(message, 'utf8') <= MAX_MESSAGE_BYTES) return message
  return encodeCoarsened(batch)
}

/**
 * A carrying message: the plain message (the same `"i"` list, so a reader
 * that ignores the rest still evicts exactly what it would), with the values
 * in an extra top-level `"x"` list and the script's server time in `"n"`,
 * which readers of the current format skip (unknown top-level fields of a v1
 * message are ignored, see above). Returned as the head the write script
 * completes: it appends its own TIME in ms and the closing `}`, so the time
 * a receiver converts the entry's freshness from is the time it was stored.
 * Undefined when the plain message had to be coarsened (its indices would
 * not match) or the carrying one would exceed MAX_MESSAGE_BYTES (then the
 * plain message goes alone).
 */
export function encodeCarryingHead(plain: string, carried: readonly CarriedWire[]): string | undefined {
  if (carried.length === 0 || !plain.startsWith(HEAD) || !plain.endsWith(TAIL)) return undefined
  const head = `${plain.slice(0, -1)},"x":${JSON.stringify(carried)},"n":`
  // 16 digits of time and the closing brace: still within the limit every reader applies.
  return overLimit(head, MAX_MESSAGE_BYTES - 17) ? undefined : head
}

/** The batch as one clear per (origin, cache), in order of first appearance; see MAX_MESSAGE_BYTES. */
function encodeCoarsened(batch: readonly OriginInvalidation[]): string {
  const seen = new Map<string, Set<string>>()
  const parts: string[] = []
  for (const { origin, invalidation } of batch) {
    let caches = seen.get(origin)
    if (caches === undefined) seen.set(origin, (caches = new Set()))
    if (caches.has(invalidation.cache)) continue
    caches.add(invalidation.cache)
    parts.push(JSON.stringify([origin, 'c', invalidation.cache]))
  }
  return HEAD + parts.join(',') + TAIL
}

/** UTF-8 length of `text` is over `limit`; measured only when its UTF-16 length leaves it in doubt. */
function overLimit(text: string, limit: number): boolean {
  if (text.length > limit) return true // every UTF-16 unit is at least one byte
  if (text.length * 3 <= limit) return false // and at most three
  return Buffer.byteLength(text, 'utf8') > limit
}

/**
 * `text` is an object as JSON writes one: `{…}` within JSON whitespace. A
 * message must be one, and checking costs nothing, while JSON.parse on
 * random bytes costs ~10 µs each (it builds a SyntaxError) — the bulk of a
 * flood of garbage.
 */
function braced(text: string): boolean {
  let start = 0
  let end = text.length - 1
  while (start <= end && isJsonSpace(text.charCodeAt(start))) start++
  while (end > start && isJsonSpace(text.charCodeAt(end))) end--
  return end > start && text.charCodeAt(start) === 0x7b && text.charCodeAt(end) === 0x7d
}

function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09
}

/**
 * `[` and `{` outside strings nest deeper than `max`. Exact for valid JSON;
 * for invalid JSON either answer is harmless (JSON.parse rejects it anyway).
 */
function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let index = 0; index < text.length; index++) {
    const c = text.charCodeAt(index)
    if (inString) {
      if (c === 0x5c)
        index++ // backslash: the next unit is escaped (`\"`, `\\`, `\u…`)
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true
    } else if (c === 0x5d || c === 0x7d) depth--
  }
  return false
}

/**
 * Decodes a message; returns `undefined` when it is not a message of this
 * protocol at all (garbage, another version, over MAX_MESSAGE_BYTES, not a
 * JSON object, nested deeper than a v1 message can be). Never throws, whatever it is given
 * (including invalid UTF-8 and values of other types): bus traffic is
 * untrusted input, and a throw here would surface in a connection's event
 * handler, far from any caller.
 */
export function decodeInvalidations(message: string | Uint8Array, withCarried = false): DecodedMessage | undefined {
  let text: string
  try {
    if (typeof message === 'string') {
      if (overLimit(message, MAX_MESSAGE_BYTES)) return undefined
      text = message
    } else if (message instanceof Uint8Array) {
      if (message.byteLength > MAX_MESSAGE_BYTES) return undefined
      // Invalid UTF-8 becomes U+FFFD; no copy of the bytes.
      text = Buffer.from(message.buffer, message.byteOffset, message.byteLength).toString('utf8')
    } else {
      return undefined
    }
    if (!braced(text) || nestsDeeperThan(text, MAX_NESTING)) return undefined
    return decodeParsed(JSON.parse(text), withCarried)
  } catch {
    return undefined
  }
}

function decodeParsed(parsed: unknown, withCarried: boolean): DecodedMessage | undefined {
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined
  // Own members only: an inherited `v` or `i` (a polluted Object.prototype) is not part of the message.
  if (!Object.hasOwn(parsed, 'v') || !Object.hasOwn(parsed, 'i')) return undefined
  const { v, i } = parsed as { v: unknown; i: unknown }
  if (v !== BUS_PROTOCOL_VERSION || !Array.isArray(i)) return undefined
  const invalidations: OriginInvalidation[] = []
  let dropped = 0
  const byIndex = withCarried ? carriedByIndex(parsed) : undefined
  const carried: Array<CarriedValue | undefined> | undefined = byIndex === undefined ? undefined : []
  let index = 0
  for (const item of i as unknown[]) {
    const decoded = decodeOne(item)
    if (decoded === undefined) dropped++
    else {
      invalidations.push(decoded)
      carried?.push(decoded.invalidation.kind === 'key' ? byIndex!.get(index) : undefined)
    }
    index++
  }
  if (byIndex === undefined) return { invalidations, dropped }
  const n: unknown = (parsed as { n?: unknown }).n
  return { invalidations, dropped, carried, serverNowMs: Object.hasOwn(parsed, 'n') && typeof n === 'number' && Number.isFinite(n) ? n : undefined }
}

/** The well-formed entries of a message's `"x"` by their index in `"i"`; malformed ones are left out (their keys are only evicted). */
function carriedByIndex(parsed: object): Map<number, CarriedValue> | undefined {
  if (!Object.hasOwn(parsed, 'x')) return undefined
  const x: unknown = (parsed as { x: unknown }).x
  if (!Array.isArray(x)) return undefined
  const byIndex = new Map<number, CarriedValue>()
  for (const item of x as unknown[]) {
    if (!Array.isArray(item) || item.length !== 6) continue
    const [index, payload, freshMs, ttlMs, tags, mac] = item as unknown[]
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0) continue
    if (typeof payload !== 'string' || typeof tags !== 'string' || typeof mac !== 'string') continue
    if (typeof freshMs !== 'number' || !Number.isFinite(freshMs) || typeof ttlMs !== 'number' || !Number.isFinite(ttlMs)) continue
    byIndex.set(index, { payload, freshMs, ttlMs, tags, mac })
  }
  return byIndex
}

function decodeOne(item: unknown): OriginInvalidation | undefined {
  if (!Array.isArray(item)) return undefined
  const origin: unknown = item[0]
  const kind: unknown = item[1]
  const cache: unknown = item[2]
  if (typeof origin !== 'string' || typeof cache !== 'string') return undefined
  if (kind === 'k' && item.length === 4) {
    const key: unknown = item[3]
    return typeof key === 'string' ? { origin, invalidation: { kind: 'key', cache, key } } : undefined
  }
  if (kind === 't' && item.length === 4) {
    const tags: unknown = item[3]
    if (!Array.isArray(tags) || tags.length === 0) return undefined
    for (const tag of tags as unknown[]) if (typeof tag !== 'string') return undefined
    return { origin, invalidation: { kind: 'tags', cache, tags: tags as string[] } }
  }
  if (kind === 'c' && item.length === 3) return { origin, invalidation: { kind: 'clear', cache } }
  return undefined
}
