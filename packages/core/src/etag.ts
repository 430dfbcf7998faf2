/**
 * An entry's HTTP entity-tag: a 64-bit FNV-1a hash of the value's canonical
 * form, as a quoted strong ETag (`"9f2c…"`, 16 hex digits).
 *
 * Why the value's form and not the bytes Redis holds: core never sees those
 * bytes (the tier encodes), and the stored envelope also carries the
 * entry's write time, so hashing it would change the tag on every rewrite
 * of an unchanged value. The canonical form is what survives the default
 * serializer's round trip (msgpack with extended types), so an instance
 * that produced a value and one that decoded it from Redis compute the
 * same tag: own enumerable properties in insertion order (prototypes
 * ignored: a class instance decodes as a plain object), array holes as
 * undefined, -0 as 0, Dates by time, Maps and Sets in insertion order,
 * binary by bytes, bigint by digits. A serializer that changes the form
 * (JSON turning a Date into a string) makes the producing instance's tag
 * differ from the others' until its L1 copy goes.
 *
 * Cost: one walk of the value, once per entry object per instance
 * (memoized on the entry; see `etagOfEntry`).
 */
import type { TierEntry } from './contracts.js'

const FNV_PRIME_LOW = 0x1b3
const FNV_OFFSET_HIGH = 0xcbf29ce4
const FNV_OFFSET_LOW = 0x84222325

/** 64-bit FNV-1a over 16-bit code units, in two 32-bit halves (no BigInt on the way). */
class Fnv64 {
  #high = FNV_OFFSET_HIGH
  #low = FNV_OFFSET_LOW

  unit(code: number): void {
    let low = (this.#low ^ (code & 0xffff)) >>> 0
    let high = this.#high
    // (high, low) * 0x100000001b3 mod 2^64: low*0x1b3, plus low<<40 into the high half, plus high*0x1b3.
    const lowProduct = low * FNV_PRIME_LOW
    const carry = Math.floor(lowProduct / 0x100000000)
    high = (Math.imul(high, FNV_PRIME_LOW) + carry + ((low << 8) >>> 0)) >>> 0
    low = lowProduct >>> 0
    this.#high = high
    this.#low = low
  }

  text(text: string): void {
    this.unit(text.length & 0xffff)
    this.unit(text.length >>> 16)
    for (let i = 0; i < text.length; i++) this.unit(text.charCodeAt(i))
  }

  hex(): string {
    return this.#high.toString(16).padStart(8, '0') + this.#low.toString(16).padStart(8, '0')
  }
}

function walk(hash: Fnv64, value: unknown, ancestors: Set<object>): void {
  if (value === undefined || value === null) {
    hash.unit(value === undefined ? 0x75 : 0x6e)
    return
  }
  switch (typeof value) {
    case 'boolean':
      hash.unit(value ? 0x74 : 0x66)
      return
    case 'number':
      hash.unit(0x64)
      hash.text(Object.is(value, -0) ? '0' : String(value))
      return
    case 'bigint':
      hash.unit(0x62)
      hash.text(value.toString())
      return
    case 'string':
      hash.unit(0x73)
      hash.text(value)
      return
    case 'object':
      break
    default:
      // Functions and symbols have no stored form.
      hash.unit(0x78)
      return
  }
  const object = value as object
  if (ancestors.has(object)) {
    hash.unit(0x63)
    return
  }
  if (object instanceof Date) {
    hash.unit(0x44)
    hash.text(String(object.getTime()))
    return
  }
  if (ArrayBuffer.isView(object)) {
    const bytes = new Uint8Array(object.buffer, object.byteOffset, object.byteLength)
    hash.unit(0x42)
    hash.text(String(bytes.length))
    for (let i = 0; i < bytes.length; i++) hash.unit(bytes[i]!)
    return
  }
  ancestors.add(object)
  if (Array.isArray(object)) {
    hash.unit(0x61)
    hash.text(String(object.length))
    for (let i = 0; i < object.length; i++) walk(hash, object[i], ancestors)
  } else if (object instanceof Map) {
    hash.unit(0x4d)
    hash.text(String(object.size))
    for (const [k, v] of object) {
      walk(hash, k, ancestors)
      walk(hash, v, ancestors)
    }
  } else if (object instanceof Set) {
    hash.unit(0x53)
    hash.text(String(object.size))
    for (const v of object) walk(hash, v, ancestors)
  } else {
    const keys = Object.keys(object)
    hash.unit(0x6f)
    hash.text(String(keys.length))
    for (const k of keys) {
      hash.text(k)
      walk(hash, (object as Record<string, unknown>)[k], ancestors)
    }
  }
  ancestors.delete(object)
}

/** The quoted strong ETag of `value` (see the module comment for what counts as the same value). */
export function etagOf(value: unknown): string {
  const hash = new Fnv64()
  walk(hash, value, new Set())
  return `"${hash.hex()}"`
}

const byEntry = new WeakMap<TierEntry, string>()

/** `etagOf(entry.value)`, computed once per entry object (an L1 entry is the same object on every hit). */
export function etagOfEntry(entry: TierEntry): string {
  let etag = byEntry.get(entry)
  if (etag === undefined) {
    etag = etagOf(entry.value)
    byEntry.set(entry, etag)
  }
  return etag
}
