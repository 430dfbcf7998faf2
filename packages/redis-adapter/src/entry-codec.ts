import { clock, type FillRead, type Serializer, type TierEntry } from '@tiercache/core/adapter'
import { HEADER_BYTES } from './scripts.js'

/*
 * Reading what Redis holds for an entry: `<generation>,<fresh until>,<tag
 * bytes>:<tags><envelope>` (written by WRITE_BATCH, scripts.ts), the envelope
 * being `[version, createdAt, graceMs, value]` in the tier's serializer.
 * Everything here takes bytes that anyone with access to Redis may have
 * written — another program, a truncated restore, random garbage — and
 * answers undefined for anything that is not exactly that shape; nothing
 * here throws (fuzzed in test/entry-codec.fuzz.test.ts).
 */

/** Version of the stored envelope `[version, createdAt, graceMs, value]`. */
export const ENVELOPE_VERSION = 1
/** Separates tags, and a tag from its version, in the stored header (tags cannot contain it). */
export const TAG_SEPARATOR = '\u001f'
const COLON = 0x3a
const COMMA = 0x2c

export interface Envelope {
  readonly value: unknown
  readonly createdAt: number
  readonly graceMs: number
}

export interface DecodedEntry extends Envelope {
  readonly tags: string[] | undefined
}

export interface Header {
  /** The generation is bytes [0, generationEnd). */
  readonly generationEnd: number
  readonly freshUntil: number
  readonly tagBytes: number
  readonly bodyStart: number
}

/**
 * `<generation>,<fresh until>,<tag bytes>:<tags><envelope>` (see scripts.ts),
 * or undefined if the bytes do not start with such a header. Scanned byte by
 * byte in JS: it runs once per L2 hit, and the Buffer methods this replaced
 * (subarray, indexOf, toString: a native call each) were about a fifth of the
 * adapter's time per read in a 64-caller profile.
 */
export function parseHeader(stored: Buffer): Header | undefined {
  const limit = Math.min(stored.length, HEADER_BYTES)
  let firstComma = -1
  let lastComma = -1
  let separator = -1
  for (let i = 0; i < limit; i++) {
    const byte = stored[i]
    if (byte === COLON) {
      separator = i
      break
    }
    if (byte === COMMA) {
      if (firstComma < 0) firstComma = i
      lastComma = i
    }
  }
  if (separator < 0 || firstComma < 0 || lastComma <= firstComma) return undefined
  const freshUntil = decimalAt(stored, firstComma + 1, lastComma)
  const tagBytes = decimalAt(stored, lastComma + 1, separator)
  const bodyStart = separator + 1 + tagBytes
  if (freshUntil < 0 || tagBytes < 0 || bodyStart > stored.length) return undefined
  return { generationEnd: firstComma, freshUntil, tagBytes, bodyStart }
}

/** The decimal integer written in bytes [from, to), or -1 if they are not one (empty, a non-digit, over 15 digits). */
function decimalAt(bytes: Buffer, from: number, to: number): number {
  if (to <= from || to - from > 15) return -1
  let value = 0
  for (let i = from; i < to; i++) {
    const digit = bytes[i]! - 0x30
    if (digit < 0 || digit > 9) return -1
    value = value * 10 + digit
  }
  return value
}

/** Whether the entry was written under `generation` (compared as bytes: no string is built per read). */
export function writtenUnder(stored: Buffer, header: Header, generation: Buffer): boolean {
  const end = header.generationEnd
  if (generation.length !== end) return false
  for (let i = 0; i < end; i++) if (stored[i] !== generation[i]) return false
  return true
}

/** The envelope in `bytes`, or undefined if they do not decode to one of a known version with sane times. */
export function decodeEnvelope(bytes: Uint8Array, serializer: Serializer): Envelope | undefined {
  let envelope: unknown
  try {
    envelope = serializer.decode(bytes)
  } catch {
    return undefined
  }
  if (!Array.isArray(envelope) || envelope.length !== 4 || envelope[0] !== ENVELOPE_VERSION) return undefined
  const [, createdAt, graceMs, value] = envelope as [number, unknown, unknown, unknown]
  if (typeof createdAt !== 'number' || !Number.isFinite(createdAt)) return undefined
  if (typeof graceMs !== 'number' || !Number.isFinite(graceMs) || graceMs < 0) return undefined
  return { value, createdAt, graceMs }
}

/**
 * A whole stored entry: header, tags and envelope. The read script has
 * already checked its generation and tags; here only the shape matters.
 */
export function decodeStored(stored: Buffer, serializer: Serializer): DecodedEntry | undefined {
  const header = parseHeader(stored)
  if (header === undefined) return undefined
  let tags: string[] | undefined
  if (header.tagBytes > 0) {
    const parts = stored
      .subarray(header.bodyStart - header.tagBytes, header.bodyStart)
      .toString('utf8')
      .split(TAG_SEPARATOR)
    tags = parts.filter((_, i) => i % 2 === 0 && i < parts.length - 1)
  }
  const envelope = decodeEnvelope(stored.subarray(header.bodyStart), serializer)
  return envelope === undefined ? undefined : { ...envelope, tags }
}

const NOT_FOUND: FillRead = Object.freeze({ entry: undefined })

/**
 * A refresh-ahead window as the read script takes it: whole ms (remaining
 * freshness is whole ms, so "at most 2.5" is "at most 2"), 0 when absent or
 * not a positive number (a fresh entry is then never leased), and finite.
 */
export function wholeAheadMs(refreshAheadMs: number | undefined): number {
  if (refreshAheadMs === undefined || !(refreshAheadMs > 0)) return 0
  return Math.min(Math.floor(refreshAheadMs), Number.MAX_SAFE_INTEGER)
}

/** A decoded entry as the cache takes it: plain literals, the same shapes core builds (see newEntry there). */
export function entryFrom(decoded: DecodedEntry, staleUntil: number): TierEntry {
  const { value, createdAt, tags } = decoded
  const expiresAt = staleUntil - decoded.graceMs
  return tags === undefined ? { value, createdAt, expiresAt, staleUntil } : { value, createdAt, expiresAt, staleUntil, tags }
}

/**
 * The read fast path's answer from an MGET of an entry and its cache's
 * generation (redisTier's #read), or undefined when the read needs the
 * script: a tagged entry, anything odd, and on the fill path (`plainRead`
 * false) a miss, a stale entry, or a fresh one within `refreshAheadMs` of
 * its expiry, which need the lease. `aheadMs` is how far the server clock is
 * ahead of ours, over-estimated.
 */
export function checkFastRead(
  stored: Buffer | null,
  generation: Buffer | null,
  aheadMs: number,
  plainRead: boolean,
  serializer: Serializer,
  refreshAheadMs = 0,
): FillRead | undefined {
  if (stored === null || generation === null) return plainRead ? NOT_FOUND : undefined // no entry, or none can be live
  const header = parseHeader(stored)
  if (header === undefined) return undefined
  if (!writtenUnder(stored, header, generation)) return plainRead ? NOT_FOUND : undefined // cleared since
  if (header.tagBytes > 0) return undefined
  // Not counted here: an entry that does not decode goes to the script read, which counts it.
  const envelope = decodeEnvelope(stored.subarray(header.bodyStart), serializer)
  if (envelope === undefined) return undefined
  // Server time to local time with an over-estimated offset: never later than the true expiry.
  const expiresAt = header.freshUntil - aheadMs
  const staleUntil = expiresAt + envelope.graceMs
  const now = clock()
  // The expiry is under-estimated here, so an entry this finds not due is not due by Redis's clock either; the script decides the rest.
  if (!plainRead && expiresAt - now <= refreshAheadMs) return undefined
  if (expiresAt <= now && !(plainRead && staleUntil > now)) return plainRead && staleUntil <= now ? NOT_FOUND : undefined
  return { entry: { value: envelope.value, createdAt: envelope.createdAt, expiresAt, staleUntil } }
}
